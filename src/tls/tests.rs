//! The TLS pieces against each other on loopback: certificates made here, a real listener, real
//! dialers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::create::{CaOptions, CertOptions, CreatedPem, Role, create_ca, create_cert};
use super::listener::{PLAIN_HTTP_ANSWER, PeerRoles, TlsPeer, refusal};
use super::*;

/// A CA and its certificates written under a directory.
struct Pki {
    dir: tempfile::TempDir,
    ca: CreatedPem,
}

impl Pki {
    fn new() -> Pki {
        let ca = create_ca(&CaOptions {
            days: 30,
            common_name: None,
        })
        .expect("a CA");
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("ca.pem"), &ca.cert_pem).expect("write");
        Pki { dir, ca }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Makes a `role` certificate named `stem`; returns (cert file, key file).
    fn cert(&self, role: Role, stem: &str) -> (PathBuf, PathBuf) {
        let created = create_cert(
            &self.ca.cert_pem,
            &self.ca.key_pem,
            &CertOptions {
                role,
                region: "global".to_owned(),
                domain: "nomad".to_owned(),
                days: 30,
                additional_dns_names: Vec::new(),
                additional_ip_addresses: Vec::new(),
            },
        )
        .expect("a certificate");
        let cert = self.dir.path().join(format!("{stem}.pem"));
        let key = self.dir.path().join(format!("{stem}-key.pem"));
        std::fs::write(&cert, created.cert_pem).expect("write");
        std::fs::write(&key, created.key_pem).expect("write");
        (cert, key)
    }

    fn settings(&self, role: Role, stem: &str) -> TlsSettings {
        let (cert_file, key_file) = self.cert(role, stem);
        TlsSettings {
            http: true,
            rpc: true,
            ca_file: self.ca_file(),
            cert_file,
            key_file,
            verify_server_hostname: true,
            verify_https_client: false,
            region: "global".to_owned(),
        }
    }
}

fn chain_of(path: &Path) -> Vec<CertificateDer<'static>> {
    load_certs("test certificate", path).expect("certs")
}

#[test]
fn certificates_name_their_role_of_the_region() {
    let pki = Pki::new();
    let tls = AgentTls::load(pki.settings(Role::Server, "server")).expect("loads");
    let (server, _) = pki.cert(Role::Server, "server2");
    let (client, _) = pki.cert(Role::Client, "client");
    let (cli, _) = pki.cert(Role::Cli, "cli");
    assert_eq!(
        tls.peer_roles(Some(&chain_of(&server))),
        PeerRoles {
            certified: true,
            server: true,
            client: false
        }
    );
    assert_eq!(
        tls.peer_roles(Some(&chain_of(&client))),
        PeerRoles {
            certified: true,
            server: false,
            client: true
        }
    );
    let cli_roles = tls.peer_roles(Some(&chain_of(&cli)));
    assert!(cli_roles.certified && !cli_roles.server && !cli_roles.client);
    assert_eq!(tls.peer_roles(None), PeerRoles::default());
}

#[test]
fn internal_routes_need_the_certificate_of_their_role() {
    let pki = Pki::new();
    let tls = AgentTls::load(pki.settings(Role::Server, "server")).expect("loads");
    let peer = |certified, server, client| TlsPeer {
        remote: "127.0.0.1:1".parse().expect("addr"),
        roles: PeerRoles {
            certified,
            server,
            client,
        },
    };
    // The API is not gated here: ACLs and verify_https_client are.
    assert_eq!(refusal(&tls, None, "/v1/jobs"), None);
    let refused = refusal(&tls, None, "/v1/internal/node/register").expect("refused");
    assert!(refused.contains("signed by the cluster CA"), "{refused}");
    assert!(
        refusal(
            &tls,
            Some(&peer(true, false, false)),
            "/v1/internal/node/register"
        )
        .is_some()
    );
    assert_eq!(
        refusal(
            &tls,
            Some(&peer(true, false, true)),
            "/v1/internal/node/register"
        ),
        None
    );
    let raft = refusal(
        &tls,
        Some(&peer(true, false, true)),
        "/v1/internal/raft/append",
    )
    .expect("a client may not speak raft");
    assert!(raft.contains("server.global.nomad"), "{raft}");
    assert_eq!(
        refusal(
            &tls,
            Some(&peer(true, true, false)),
            "/v1/internal/raft/append"
        ),
        None
    );
}

#[test]
fn files_at_fault_are_named() {
    let pki = Pki::new();
    let mut settings = pki.settings(Role::Server, "server");
    settings.key_file = pki.ca_file();
    let error = AgentTls::load(settings).expect_err("a certificate is no key");
    assert!(error.to_string().contains("tls.key_file"), "{error}");
    let mut settings = pki.settings(Role::Server, "server");
    settings.ca_file = pki.dir.path().join("missing.pem");
    let error = AgentTls::load(settings).expect_err("no CA file");
    assert!(error.to_string().contains("missing.pem"), "{error}");
}

/// Serves a small router over HTTPS with `tls` on a loopback port until the test ends.
async fn serve(tls: Arc<AgentTls>) -> std::net::SocketAddr {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let router = axum::Router::new()
        .route("/v1/status/leader", get(|| async { "\"leader\"" }))
        .route("/v1/internal/raft/info", get(|| async { "raft" }))
        .layer(axum::middleware::from_fn_with_state(
            tls.clone(),
            require_cluster_cert,
        ));
    let config = tls.listener(Port::Rpc).expect("rpc is on");
    let listener = TlsListener::new(tcp, config, tls).expect("listener");
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<TlsPeer>(),
        )
        .await
    });
    addr
}

fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn servers_speak_https_with_each_other_and_refuse_strangers() {
    let pki = Pki::new();
    let server = AgentTls::load(pki.settings(Role::Server, "server")).expect("loads");
    let addr = serve(server.clone()).await;
    let timeout = Duration::from_secs(5);

    // Another server of the cluster: chain, name and client certificate check out.
    let peer = AgentTls::load(pki.settings(Role::Server, "peer")).expect("loads");
    let dialer = Dialer::new(Some(&peer), Dial::Servers, timeout).expect("dialer");
    let url = format!("{}/v1/internal/raft/info", dialer.base(&addr.to_string()));
    assert!(url.starts_with("https://"), "{url}");
    let answer = dialer.http.get(&url).send().await.expect("answers");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("body"), "raft");

    // A client of the cluster reaches the server, but not its Raft routes.
    let client = AgentTls::load(pki.settings(Role::Client, "client")).expect("loads");
    let dialer = Dialer::new(Some(&client), Dial::Servers, timeout).expect("dialer");
    let answer = dialer.http.get(&url).send().await.expect("answers");
    assert_eq!(answer.status(), 403);
    let body = answer.text().await.expect("body");
    assert!(body.contains("server.global.nomad"), "{body}");

    // A server that dials a client's certificate where a server should be refuses it.
    let impostor = AgentTls::load(pki.settings(Role::Client, "impostor")).expect("loads");
    let impostor_addr = serve(impostor).await;
    let dialer = Dialer::new(Some(&peer), Dial::Servers, timeout).expect("dialer");
    let error = dialer
        .http
        .get(format!("https://{impostor_addr}/v1/status/leader"))
        .send()
        .await
        .expect_err("a client's certificate is no server's");
    assert!(
        error_chain(&error).contains("not valid for name"),
        "{}",
        error_chain(&error)
    );

    // A certificate from another CA is refused, whichever side holds it.
    let other = Pki::new();
    let stranger = AgentTls::load(other.settings(Role::Server, "stranger")).expect("loads");
    let dialer = Dialer::new(Some(&stranger), Dial::Servers, timeout).expect("dialer");
    let error = dialer
        .http
        .get(&url)
        .send()
        .await
        .expect_err("another CA's server is not trusted");
    assert!(
        error_chain(&error).contains("UnknownIssuer"),
        "{}",
        error_chain(&error)
    );
}

#[tokio::test]
async fn plain_http_to_the_https_port_gets_gos_answer() {
    let pki = Pki::new();
    let server = AgentTls::load(pki.settings(Role::Server, "server")).expect("loads");
    let addr = serve(server).await;
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    stream
        .write_all(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("writes");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("reads");
    assert_eq!(answer, PLAIN_HTTP_ANSWER);
}

#[tokio::test]
async fn the_cli_settings_check_the_agent_as_asked() {
    let pki = Pki::new();
    let mut settings = pki.settings(Role::Server, "server");
    settings.verify_https_client = false;
    let server = AgentTls::load(settings).expect("loads");
    let addr = serve(server).await;
    let get = |tls: CliTls| async move {
        let config = tls.client_config().expect("config").expect("some");
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .build()
            .expect("client");
        http.get(format!("https://{addr}/v1/status/leader"))
            .send()
            .await
    };
    // The RPC port requires a client certificate.
    let error = get(CliTls {
        ca_cert: Some(pki.ca_file()),
        ..CliTls::default()
    })
    .await
    .expect_err("no client certificate");
    assert!(
        error_chain(&error).contains("CertificateRequired"),
        "{}",
        error_chain(&error)
    );
    let (cert, key) = pki.cert(Role::Cli, "cli");
    let answer = get(CliTls {
        ca_cert: Some(pki.ca_file()),
        client_cert: Some(cert.clone()),
        client_key: Some(key.clone()),
        ..CliTls::default()
    })
    .await
    .expect("the CA and a CLI certificate reach the agent");
    assert_eq!(answer.status(), 200);
    // A name the agent's certificate does not hold is refused; skipping verification is not.
    let error = get(CliTls {
        ca_cert: Some(pki.ca_file()),
        client_cert: Some(cert.clone()),
        client_key: Some(key.clone()),
        server_name: Some("server.elsewhere.nomad".to_owned()),
        ..CliTls::default()
    })
    .await
    .expect_err("the wrong name");
    assert!(
        error_chain(&error).contains("not valid for name"),
        "{}",
        error_chain(&error)
    );
    let answer = get(CliTls {
        client_cert: Some(cert),
        client_key: Some(key),
        skip_verify: true,
        ..CliTls::default()
    })
    .await
    .expect("-tls-skip-verify trusts any agent");
    assert_eq!(answer.status(), 200);
    assert!(
        CliTls {
            client_cert: Some(pki.ca_file()),
            ..CliTls::default()
        }
        .client_config()
        .is_err(),
        "a certificate without its key"
    );
}
