//! `caravan tls ca create` and `caravan tls cert create -server|-client|-cli`: a cluster CA and
//! its agents' certificates in the current directory, under Nomad's file names, without openssl
//! (Nomad: `command/tls_ca_create.go`, `command/tls_cert_create.go`).
//!
//! An existing file is never overwritten; private keys are written readable by their owner only.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::output::outln;
use crate::tls::create::{
    CaOptions, CertOptions, Role, ca_file_names, cert_file_names, create_ca, create_cert,
};

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Makes and manages certificate authorities
    #[command(subcommand)]
    Ca(TlsCaCommand),
    /// Makes and manages agent certificates
    #[command(subcommand)]
    Cert(TlsCertCommand),
}

#[derive(Debug, Subcommand)]
pub enum TlsCaCommand {
    /// Makes a new certificate authority: <domain>-agent-ca.pem and <domain>-agent-ca-key.pem
    Create(CaCreateArgs),
}

#[derive(Debug, Subcommand)]
pub enum TlsCertCommand {
    /// Makes a certificate signed by the CA: <region>-<server|client|cli>-<domain>.pem and -key.pem
    Create(CertCreateArgs),
}

#[derive(Debug, Args)]
pub struct CaCreateArgs {
    /// Days the CA is valid for
    #[arg(long, default_value_t = 1825)]
    pub days: u32,
    /// The domain of the agents' names, and of the file names
    #[arg(long, default_value = "nomad")]
    pub domain: String,
    /// The CA's common name (default: "Nomad Agent CA <serial>")
    #[arg(long)]
    pub common_name: Option<String>,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("role").required(true).multiple(false))]
pub struct CertCreateArgs {
    /// Makes a server certificate (server.<region>.<domain>)
    #[arg(long, group = "role")]
    pub server: bool,
    /// Makes a client certificate (client.<region>.<domain>)
    #[arg(long, group = "role")]
    pub client: bool,
    /// Makes a certificate for the CLI (cli.<region>.<domain>)
    #[arg(long, group = "role")]
    pub cli: bool,
    /// The region the agent serves
    #[arg(long, default_value = "global")]
    pub region: String,
    /// The domain of the agents' names
    #[arg(long, default_value = "nomad")]
    pub domain: String,
    /// Days the certificate is valid for
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// The CA certificate (default: <domain>-agent-ca.pem)
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// The CA's private key (default: <domain>-agent-ca-key.pem)
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Another DNS name the certificate names (repeatable)
    #[arg(long = "additional-dnsname", value_name = "NAME")]
    pub additional_dnsnames: Vec<String>,
    /// Another IP address the certificate names (repeatable)
    #[arg(long = "additional-ipaddress", value_name = "IP")]
    pub additional_ipaddresses: Vec<IpAddr>,
}

pub fn run(command: &TlsCommand) -> anyhow::Result<ExitCode> {
    match command {
        TlsCommand::Ca(TlsCaCommand::Create(args)) => ca_create(args),
        TlsCommand::Cert(TlsCertCommand::Create(args)) => cert_create(args),
    }
}

fn ca_create(args: &CaCreateArgs) -> anyhow::Result<ExitCode> {
    let (cert_file, key_file) = ca_file_names(&args.domain);
    refuse_existing(&[&cert_file, &key_file])?;
    let created = create_ca(&CaOptions {
        days: args.days,
        common_name: args.common_name.clone(),
    })?;
    write_new(Path::new(&cert_file), &created.cert_pem, 0o644)?;
    outln!("==> CA certificate saved to: {cert_file}")?;
    write_new(Path::new(&key_file), &created.key_pem, 0o600)?;
    outln!("==> CA certificate key saved to: {key_file}")?;
    Ok(ExitCode::SUCCESS)
}

fn cert_create(args: &CertCreateArgs) -> anyhow::Result<ExitCode> {
    let role = match (args.server, args.client, args.cli) {
        (true, _, _) => Role::Server,
        (_, true, _) => Role::Client,
        (_, _, true) => Role::Cli,
        _ => anyhow::bail!("one of -server, -client or -cli is required"),
    };
    let (default_ca, default_key) = ca_file_names(&args.domain);
    let ca_file = args.ca.clone().unwrap_or_else(|| PathBuf::from(default_ca));
    let key_file = args
        .key
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_key));
    let ca_pem = std::fs::read_to_string(&ca_file)
        .with_context(|| format!("Error reading CA file {}", ca_file.display()))?;
    let ca_key_pem = std::fs::read_to_string(&key_file)
        .with_context(|| format!("Error reading CA key file {}", key_file.display()))?;
    let options = CertOptions {
        role,
        region: args.region.clone(),
        domain: args.domain.clone(),
        days: args.days,
        additional_dns_names: args.additional_dnsnames.clone(),
        additional_ip_addresses: args.additional_ipaddresses.clone(),
    };
    let (cert_file, cert_key_file) = cert_file_names(&options);
    refuse_existing(&[&cert_file, &cert_key_file])?;
    let created = create_cert(&ca_pem, &ca_key_pem, &options)?;
    outln!(
        "==> Using CA file {} and CA key {}",
        ca_file.display(),
        key_file.display()
    )?;
    write_new(Path::new(&cert_file), &created.cert_pem, 0o644)?;
    outln!("==> {} Certificate saved to {cert_file}", role.title())?;
    write_new(Path::new(&cert_key_file), &created.key_pem, 0o600)?;
    outln!(
        "==> {} Certificate key saved to {cert_key_file}",
        role.title()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// What to do about a TLS failure, from rustls's words for it.
pub fn hint(message: &str) -> Option<&'static str> {
    if message.contains("UnknownIssuer") {
        Some(
            "The agent's certificate is not signed by a CA this command trusts: pass the \
             cluster's CA with -ca-cert (or NOMAD_CACERT)",
        )
    } else if message.contains("CertificateRequired") {
        Some(
            "The agent requires a client certificate signed by its CA: pass -client-cert and \
             -client-key (or NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY)",
        )
    } else if message.contains("NotValidForName") || message.contains("not valid for name") {
        Some(
            "The agent's certificate does not name the address's host: pass the name it holds \
             with -tls-server-name (or NOMAD_TLS_SERVER_NAME)",
        )
    } else if message.contains("Client sent an HTTP request to an HTTPS server") {
        Some("The agent serves HTTPS: use an https:// address (-address or NOMAD_ADDR)")
    } else {
        None
    }
}

/// Nomad's refusal to overwrite: `File 'x' already exists`.
fn refuse_existing(files: &[&str]) -> anyhow::Result<()> {
    for file in files {
        if Path::new(file).exists() {
            anyhow::bail!("File '{file}' already exists");
        }
    }
    Ok(())
}

/// Creates `path` (it must not exist) with `mode` and writes `text`.
fn write_new(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
