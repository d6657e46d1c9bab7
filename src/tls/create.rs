//! Making a cluster CA and the certificates of its agents without openssl, as Nomad's
//! `nomad tls ca create` and `nomad tls cert create` do (rcgen; ECDSA P-256 keys).
//!
//! A server's certificate names `server.<region>.<domain>`, a client's `client.<region>.<domain>`,
//! the CLI's `cli.<region>.<domain>`; each also names `localhost` and, but the CLI's, 127.0.0.1,
//! so agents and the CLI on one machine verify each other. Every leaf may authenticate a server and
//! a client (both extended key usages), as Nomad's do.
//!
//! Nomad: `command/tls_ca_create.go`, `command/tls_cert_create.go`, `helper/tlsutil/generate.go`.

use std::net::{IpAddr, Ipv4Addr};

use chrono::{Datelike, NaiveDate};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// Why a CA or certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("-days must be between 1 and 36500, not {0}")]
    Days(u32),
    #[error("{name:?} is not a valid DNS name")]
    DnsName { name: String },
    #[error("the CA certificate is not a PEM certificate rcgen can read: {0}")]
    CaCert(rcgen::Error),
    #[error("the CA key is not a PEM private key rcgen can read: {0}")]
    CaKey(rcgen::Error),
    #[error("making the certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// A certificate and its private key, PEM-encoded (the key as PKCS#8).
#[derive(Clone, Debug)]
pub struct CreatedPem {
    pub cert_pem: String,
    pub key_pem: String,
}

/// What `tls ca create` makes.
#[derive(Clone, Debug)]
pub struct CaOptions {
    /// Validity in days (Nomad: 1825).
    pub days: u32,
    /// The subject's common name; Nomad's `Nomad Agent CA <serial>` when `None`.
    pub common_name: Option<String>,
}

/// Whose certificate `tls cert create` makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
    Cli,
}

impl Role {
    /// `server`, `client`, `cli`: the first label of the name and of the file.
    pub fn label(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
            Role::Cli => "cli",
        }
    }

    /// `Server`, `Client`, `Cli`, as Nomad's messages name them.
    pub fn title(self) -> &'static str {
        match self {
            Role::Server => "Server",
            Role::Client => "Client",
            Role::Cli => "Cli",
        }
    }
}

/// What `tls cert create` makes.
#[derive(Clone, Debug)]
pub struct CertOptions {
    pub role: Role,
    pub region: String,
    pub domain: String,
    /// Validity in days (Nomad: 365).
    pub days: u32,
    pub additional_dns_names: Vec<String>,
    pub additional_ip_addresses: Vec<IpAddr>,
}

/// Nomad's file names: `nomad-agent-ca.pem` and `nomad-agent-ca-key.pem` for `domain = nomad`.
pub fn ca_file_names(domain: &str) -> (String, String) {
    (
        format!("{domain}-agent-ca.pem"),
        format!("{domain}-agent-ca-key.pem"),
    )
}

/// Nomad's file names: `global-server-nomad.pem` and `global-server-nomad-key.pem`.
pub fn cert_file_names(options: &CertOptions) -> (String, String) {
    let stem = format!(
        "{}-{}-{}",
        options.region,
        options.role.label(),
        options.domain
    );
    (format!("{stem}.pem"), format!("{stem}-key.pem"))
}

/// From yesterday (a little clock skew between machines is fine) to `days` from today, midnight
/// UTC.
fn validity(params: &mut CertificateParams, days: u32) -> Result<(), CreateError> {
    if days == 0 || days > 36_500 {
        return Err(CreateError::Days(days));
    }
    let today = chrono::Utc::now().date_naive();
    let at =
        |date: NaiveDate| rcgen::date_time_ymd(date.year(), date.month() as u8, date.day() as u8);
    params.not_before = at(today.pred_opt().unwrap_or(today));
    params.not_after = at(today
        .checked_add_days(chrono::Days::new(u64::from(days)))
        .ok_or(CreateError::Days(days))?);
    Ok(())
}

/// A random positive serial number (127 bits) and its encoding.
fn serial() -> (u128, rcgen::SerialNumber) {
    let value = rand::random::<u128>() >> 1;
    (value, rcgen::SerialNumber::from_slice(&value.to_be_bytes()))
}

/// A new self-signed CA.
pub fn create_ca(options: &CaOptions) -> Result<CreatedPem, CreateError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    validity(&mut params, options.days)?;
    let (serial_value, serial) = serial();
    let common_name = options
        .common_name
        .clone()
        .unwrap_or_else(|| format!("Nomad Agent CA {serial_value}"));
    params.serial_number = Some(serial);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    Ok(CreatedPem {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A certificate for `options.role`, signed by the CA in `ca_cert_pem` and `ca_key_pem`.
pub fn create_cert(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    options: &CertOptions,
) -> Result<CreatedPem, CreateError> {
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(CreateError::CaKey)?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, ca_key).map_err(CreateError::CaCert)?;
    let name = format!(
        "{}.{}.{}",
        options.role.label(),
        options.region,
        options.domain
    );
    let mut dns_names = vec![name.clone(), "localhost".to_owned()];
    dns_names.extend(options.additional_dns_names.iter().cloned());
    let mut ip_addresses = Vec::new();
    if options.role != Role::Cli {
        ip_addresses.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    ip_addresses.extend(options.additional_ip_addresses.iter().copied());
    let mut params = CertificateParams::default();
    validity(&mut params, options.days)?;
    params.serial_number = Some(serial().1);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = dns_names
        .into_iter()
        .map(|name| {
            name.clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|_| CreateError::DnsName { name })
        })
        .chain(
            ip_addresses
                .into_iter()
                .map(|ip| Ok(SanType::IpAddress(ip))),
        )
        .collect::<Result<_, _>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(CreatedPem {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}
