//! Mutual TLS on real agent processes, with certificates `caravan tls ...` made: a server and a
//! client agent with the cluster's certificates run a job over HTTPS; a client agent with another
//! CA's certificate, and one without TLS, never register (each says why in its log); the CLI
//! reaches the agent with `-ca-cert` and client certificate flags, or their `NOMAD_*`
//! variables, and fails naming the certificate problem without them; plain HTTP to the HTTPS
//! port gets Go's answer.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::support::{Run, caravan, caravan_bin, free_port};

const WAIT: Duration = Duration::from_secs(60);

/// An agent process, killed when dropped; its stdout and stderr in `log`.
struct Agent {
    child: Child,
    log: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    fn start(dir: &Path, name: &str, config: &str) -> anyhow::Result<Agent> {
        let config_file = dir.join(format!("{name}.hcl"));
        std::fs::write(&config_file, config)?;
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(caravan_bin())
            .args(["agent", "-config"])
            .arg(&config_file)
            .stdout(Stdio::from(std::fs::File::create(&log)?))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new().append(true).open(&log)?,
            ))
            .spawn()
            .with_context(|| format!("starting agent {name}"))?;
        Ok(Agent { child, log })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `text`.
    fn wait_for_log(&self, text: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + WAIT;
        while !self.log().contains(text) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the log never said {text:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

/// The `tls` block of an agent with these files.
fn tls_block(ca: &Path, cert: &Path, key: &Path) -> String {
    format!(
        r#"
tls {{
  http                   = true
  rpc                    = true
  ca_file                = "{}"
  cert_file              = "{}"
  key_file               = "{}"
  verify_server_hostname = true
  verify_https_client    = true
}}
"#,
        ca.display(),
        cert.display(),
        key.display()
    )
}

/// A client-only agent named `name` that joins the server at `rpc_port`.
fn client_config(dir: &Path, name: &str, rpc_port: u16, tls: &str) -> anyhow::Result<String> {
    Ok(format!(
        r#"
bind_addr = "127.0.0.1"
data_dir  = "{data}"
name      = "{name}"
ports {{
  http = {http}
}}
client {{
  enabled = true
  servers = ["127.0.0.1:{rpc_port}"]
}}
plugin "raw_exec" {{
  config {{
    enabled = true
  }}
}}
{tls}
"#,
        data = dir.join(name).display(),
        http = free_port()?,
    ))
}

/// Runs `caravan WORDS FLAGS REST` in `dir` with `env` set (and no TLS or address variables
/// inherited).
fn cli(
    dir: &Path,
    words: &[&str],
    flags: &[String],
    rest: &[&str],
    env: &[(&str, String)],
) -> anyhow::Result<Run> {
    let mut command = Command::new(caravan_bin());
    command.args(words).args(flags).args(rest).current_dir(dir);
    for name in [
        "CARAVAN_ADDR",
        "NOMAD_ADDR",
        "NOMAD_CACERT",
        "NOMAD_CLIENT_CERT",
        "NOMAD_CLIENT_KEY",
        "NOMAD_TLS_SERVER_NAME",
        "NOMAD_SKIP_VERIFY",
        "CARAVAN_CACERT",
        "CARAVAN_CLIENT_CERT",
        "CARAVAN_CLIENT_KEY",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    Ok(Run::from(command.output()?))
}

/// Runs the CLI until `done` holds for its stdout.
fn cli_until(
    dir: &Path,
    words: &[&str],
    flags: &[String],
    rest: &[&str],
    done: impl Fn(&str) -> bool,
    server: &Agent,
) -> anyhow::Result<Run> {
    let deadline = Instant::now() + WAIT;
    loop {
        let run = cli(dir, words, flags, rest, &[])?;
        if run.code == Some(0) && done(&run.stdout) {
            return Ok(run);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "`caravan {}` never got there: {run:?}\nserver log:\n{}",
            words.join(" "),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

const JOB: &str = r#"
job "secure" {
  datacenters = ["dc1"]
  type        = "service"
  group "web" {
    task "server" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["600"]
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
"#;

#[test]
fn mutual_tls_admits_the_clusters_certificates_only() -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = temp.path();

    // The cluster's CA and certificates, Nomad's file names.
    let made = caravan(dir, &["tls", "ca", "create"])?;
    assert_eq!(made.code, Some(0), "{made:?}");
    assert!(
        made.stdout.contains("nomad-agent-ca.pem")
            && made.stdout.contains("nomad-agent-ca-key.pem"),
        "{made:?}"
    );
    for role in ["-server", "-client", "-cli"] {
        let made = caravan(dir, &["tls", "cert", "create", role])?;
        assert_eq!(made.code, Some(0), "{role}: {made:?}");
    }
    let again = caravan(dir, &["tls", "ca", "create"])?;
    assert_eq!(
        again.code,
        Some(1),
        "an existing CA is not overwritten: {again:?}"
    );
    assert!(again.stderr.contains("already exists"), "{again:?}");
    // Another CA, in its own directory, with a client certificate of the same name.
    let other = dir.join("other");
    std::fs::create_dir(&other)?;
    assert_eq!(caravan(&other, &["tls", "ca", "create"])?.code, Some(0));
    assert_eq!(
        caravan(&other, &["tls", "cert", "create", "-client"])?.code,
        Some(0)
    );
    let ca = dir.join("nomad-agent-ca.pem");
    let file = |name: &str| dir.join(name);

    // A server with mutual TLS on both ports.
    let (http_port, rpc_port) = (free_port()?, free_port()?);
    let server = Agent::start(
        dir,
        "server",
        &format!(
            r#"
bind_addr = "127.0.0.1"
data_dir  = "{data}"
name      = "tls-server"
ports {{
  http = {http_port}
  rpc  = {rpc_port}
}}
server {{
  enabled          = true
  bootstrap_expect = 1
}}
{tls}
"#,
            data = dir.join("server").display(),
            tls = tls_block(
                &ca,
                &file("global-server-nomad.pem"),
                &file("global-server-nomad-key.pem")
            ),
        ),
    )?;
    let _good = Agent::start(
        dir,
        "good",
        &client_config(
            dir,
            "good",
            rpc_port,
            &tls_block(
                &ca,
                &file("global-client-nomad.pem"),
                &file("global-client-nomad-key.pem"),
            ),
        )?,
    )?;
    let stranger = Agent::start(
        dir,
        "stranger",
        &client_config(
            dir,
            "stranger",
            rpc_port,
            &tls_block(
                &other.join("nomad-agent-ca.pem"),
                &other.join("global-client-nomad.pem"),
                &other.join("global-client-nomad-key.pem"),
            ),
        )?,
    )?;
    let plain = Agent::start(dir, "plain", &client_config(dir, "plain", rpc_port, "")?)?;

    let address = format!("https://127.0.0.1:{http_port}");
    let flags: Vec<String> = vec![
        "-address".to_owned(),
        address.clone(),
        "-ca-cert".to_owned(),
        ca.display().to_string(),
        "-client-cert".to_owned(),
        file("global-cli-nomad.pem").display().to_string(),
        "-client-key".to_owned(),
        file("global-cli-nomad-key.pem").display().to_string(),
    ];

    // The good client registers over HTTPS and runs a job the CLI submits.
    cli_until(
        dir,
        &["node", "status"],
        &flags,
        &[],
        |out| out.contains("good") && out.contains("ready"),
        &server,
    )?;
    std::fs::write(dir.join("secure.nomad.hcl"), JOB)?;
    let run = cli(
        dir,
        &["job", "run"],
        &flags,
        &["-detach", "secure.nomad.hcl"],
        &[],
    )?;
    assert_eq!(run.code, Some(0), "{run:?}");
    cli_until(
        dir,
        &["job", "status"],
        &flags,
        &["secure"],
        |out| out.lines().any(|line| line.contains(" running ")),
        &server,
    )?;

    // The other CA's client and the plain one never got in, and their logs say why.
    stranger.wait_for_log("UnknownIssuer")?;
    plain.wait_for_log("Client sent an HTTP request to an HTTPS server.")?;
    let nodes = cli(dir, &["node", "status"], &flags, &[], &[])?;
    assert_eq!(nodes.code, Some(0), "{nodes:?}");
    assert!(
        !nodes.stdout.contains("stranger") && !nodes.stdout.contains("plain"),
        "only the cluster's client registered: {}",
        nodes.stdout
    );

    // The same through NOMAD_* variables.
    let env = [
        ("NOMAD_ADDR", address.clone()),
        ("NOMAD_CACERT", ca.display().to_string()),
        (
            "NOMAD_CLIENT_CERT",
            file("global-cli-nomad.pem").display().to_string(),
        ),
        (
            "NOMAD_CLIENT_KEY",
            file("global-cli-nomad-key.pem").display().to_string(),
        ),
    ];
    let by_env = cli(dir, &["node", "status"], &[], &[], &env)?;
    assert_eq!(by_env.code, Some(0), "{by_env:?}");
    assert!(by_env.stdout.contains("good"), "{by_env:?}");

    // Without the CA the agent's certificate is not trusted; without a client certificate the
    // agent (verify_https_client) refuses the CLI. Each failure names its fix.
    let address_only = ["-address".to_owned(), address.clone()];
    let untrusted = cli(dir, &["node", "status"], &address_only, &[], &[])?;
    assert_eq!(untrusted.code, Some(1), "{untrusted:?}");
    assert!(
        untrusted.stderr.contains("UnknownIssuer") && untrusted.stderr.contains("-ca-cert"),
        "{untrusted:?}"
    );
    let ca_only = [
        "-address".to_owned(),
        address.clone(),
        "-ca-cert".to_owned(),
        ca.display().to_string(),
    ];
    let no_client_cert = cli(dir, &["node", "status"], &ca_only, &[], &[])?;
    assert_eq!(no_client_cert.code, Some(1), "{no_client_cert:?}");
    assert!(
        no_client_cert.stderr.contains("CertificateRequired")
            && no_client_cert.stderr.contains("-client-cert"),
        "{no_client_cert:?}"
    );

    // Plain HTTP to the HTTPS ports: Go's answer, to the CLI and byte for byte on the wire.
    let plain_address = [
        "-address".to_owned(),
        format!("http://127.0.0.1:{http_port}"),
    ];
    let plain_cli = cli(dir, &["node", "status"], &plain_address, &[], &[])?;
    assert_eq!(plain_cli.code, Some(1), "{plain_cli:?}");
    assert!(
        plain_cli
            .stderr
            .contains("Client sent an HTTP request to an HTTPS server."),
        "{plain_cli:?}"
    );
    for port in [http_port, rpc_port] {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(b"GET /v1/status/leader HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        assert_eq!(
            answer,
            "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
        );
    }
    Ok(())
}
