//! Mutual TLS, as Nomad's `tls` agent block: HTTPS on the agent's listeners, certificates that
//! name a server or a client of a region, and every connection an agent or the CLI opens built
//! from one configuration.
//!
//! ```text
//!   tls { http, rpc, ca_file, cert_file, key_file, verify_server_hostname, verify_https_client }
//!     └─ AgentTls::load (once, at start-up)
//!          ├─ listener configs: HTTP port (client certificate optional, or required with
//!          │   verify_https_client), RPC port (client certificate required); both verified
//!          │   against ca_file                                          (listener.rs)
//!          └─ dialers: reqwest clients that present cert_file and check the peer's chain against
//!              ca_file, and with verify_server_hostname its name: server.<region>.nomad for
//!              servers, client.<region>.nomad (or a server's) for nodes   (verify.rs)
//! ```
//!
//! Caravan serves the API and the internal routes (client↔server, Raft, cluster join) on the same
//! ports, so with `rpc = true` the internal routes (`/v1/internal/...`) answer only a caller whose
//! certificate the cluster CA signed ([`listener::require_cluster_cert`]), and with
//! `verify_server_hostname` Raft answers only a server's certificate.
//!
//! Invariant: no listener or dialer is built from anything but one [`AgentTls`]; without a `tls`
//! block every listener is plain HTTP and every dialer `http://`, exactly as before TLS existed.

pub mod create;
pub mod listener;
mod verify;
pub mod websocket;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

pub use listener::{TlsListener, TlsPeer, require_cluster_cert};
use verify::{CaVerifier, NameCheck};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("failed to read the {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the {what} {} holds no PEM certificate", path.display())]
    NoCertificate { what: &'static str, path: PathBuf },
    #[error("the {what} {} holds no PEM private key", path.display())]
    NoKey { what: &'static str, path: PathBuf },
    #[error("the {what} {} is not valid: {message}", path.display())]
    Invalid {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{0} is not a valid TLS server name")]
    ServerName(String),
    #[error("building the TLS configuration: {0}")]
    Config(String),
}

/// The `tls` block, resolved: what [`AgentTls::load`] reads.
#[derive(Clone, Debug, Default)]
pub struct TlsSettings {
    /// HTTPS on the HTTP API port (Nomad's `http`).
    pub http: bool,
    /// TLS on the RPC port and between agents (Nomad's `rpc`).
    pub rpc: bool,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Outgoing connections check the peer's name (`server.<region>.nomad`), and Raft answers
    /// only servers' certificates.
    pub verify_server_hostname: bool,
    /// The HTTP port requires a client certificate from every caller.
    pub verify_https_client: bool,
    /// The agent's region: the names in `server.<region>.nomad`, `client.<region>.nomad`.
    pub region: String,
}

/// Which port a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    Http,
    Rpc,
}

/// Whom an outgoing connection reaches: a server (its RPC port), or a node's HTTP API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dial {
    Servers,
    Nodes,
}

/// The agent's TLS: listener and dialer configurations built once from the files.
#[derive(Debug)]
pub struct AgentTls {
    settings: TlsSettings,
    roots: Arc<RootCertStore>,
    http_listener: Arc<ServerConfig>,
    rpc_listener: Arc<ServerConfig>,
    to_servers: Arc<ClientConfig>,
    to_nodes: Arc<ClientConfig>,
}

/// The one crypto provider (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Nomad's name for a server of `region`.
pub fn server_name(region: &str) -> String {
    format!("server.{region}.nomad")
}

/// Nomad's name for a client of `region`.
pub fn client_name(region: &str) -> String {
    format!("client.{region}.nomad")
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in the PEM file at `path`; at least one.
pub fn load_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Invalid {
            what,
            path: path.to_owned(),
            message: error.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The private key in the PEM file at `path`.
pub fn load_key(what: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(what, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            what,
            path: path.to_owned(),
        },
        other => TlsError::Invalid {
            what,
            path: path.to_owned(),
            message: other.to_string(),
        },
    })
}

/// The CA certificates of `path` as trust anchors.
pub fn load_roots(what: &'static str, path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(what, path)? {
        roots.add(cert).map_err(|error| TlsError::Invalid {
            what,
            path: path.to_owned(),
            message: error.to_string(),
        })?;
    }
    Ok(Arc::new(roots))
}

fn config_error(error: impl std::fmt::Display) -> TlsError {
    TlsError::Config(error.to_string())
}

/// A client configuration that checks servers with `verifier` and presents `identity` if any.
pub fn client_config(
    verifier: Arc<dyn rustls::client::danger::ServerCertVerifier>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(config_error),
        None => Ok(builder.with_no_client_auth()),
    }
}

impl AgentTls {
    /// Reads the files and builds every configuration; fails naming the file at fault.
    pub fn load(settings: TlsSettings) -> Result<Arc<Self>, TlsError> {
        let roots = load_roots("CA file (tls.ca_file)", &settings.ca_file)?;
        let chain = load_certs("certificate file (tls.cert_file)", &settings.cert_file)?;
        let key = load_key("key file (tls.key_file)", &settings.key_file)?;
        let listener = |require_client_cert: bool| -> Result<Arc<ServerConfig>, TlsError> {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider());
            let verifier = if require_client_cert {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let mut config = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(config_error)?
                .with_client_cert_verifier(verifier.build().map_err(config_error)?)
                .with_single_cert(chain.clone(), key.clone_key())
                .map_err(|error| TlsError::Invalid {
                    what: "certificate and key (tls.cert_file, tls.key_file)",
                    path: settings.cert_file.clone(),
                    message: error.to_string(),
                })?;
            // The listeners speak HTTP/1.1 (websockets included).
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        };
        let http_listener = listener(settings.verify_https_client)?;
        let rpc_listener = listener(true)?;
        let dialer = |names: NameCheck| -> Result<Arc<ClientConfig>, TlsError> {
            let verifier = Arc::new(CaVerifier::new(roots.clone(), names));
            Ok(Arc::new(client_config(
                verifier,
                Some((chain.clone(), key.clone_key())),
            )?))
        };
        let region = settings.region.clone();
        let names = |accepted: &[String]| -> Result<NameCheck, TlsError> {
            if !settings.verify_server_hostname {
                return Ok(NameCheck::ChainOnly);
            }
            let names = accepted
                .iter()
                .map(|name| {
                    ServerName::try_from(name.clone())
                        .map_err(|_| TlsError::ServerName(name.clone()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(NameCheck::OneOf(names))
        };
        let to_servers = dialer(names(&[server_name(&region)])?)?;
        // A node's agent may run a server too and present the server's certificate.
        let to_nodes = dialer(names(&[client_name(&region), server_name(&region)])?)?;
        Ok(Arc::new(Self {
            settings,
            roots,
            http_listener,
            rpc_listener,
            to_servers,
            to_nodes,
        }))
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// The listener configuration of `port`; `None` when that port serves plain HTTP.
    pub fn listener(&self, port: Port) -> Option<Arc<ServerConfig>> {
        match port {
            Port::Http if self.settings.http => Some(self.http_listener.clone()),
            Port::Rpc if self.settings.rpc => Some(self.rpc_listener.clone()),
            _ => None,
        }
    }

    /// What a verified peer certificate chain names: a server or a client of this region.
    pub fn peer_roles(&self, chain: Option<&[CertificateDer<'static>]>) -> listener::PeerRoles {
        verify::peer_roles(chain, &self.settings.region)
    }

    /// True when `dial` goes over TLS.
    pub fn dials_tls(&self, dial: Dial) -> bool {
        match dial {
            Dial::Servers => self.settings.rpc,
            Dial::Nodes => self.settings.http,
        }
    }

    fn dial_config(&self, dial: Dial) -> Arc<ClientConfig> {
        match dial {
            Dial::Servers => self.to_servers.clone(),
            Dial::Nodes => self.to_nodes.clone(),
        }
    }

    /// The CA's trust anchors.
    pub fn roots(&self) -> Arc<RootCertStore> {
        self.roots.clone()
    }
}

/// A reqwest client and the scheme it speaks: how agents reach servers or nodes.
#[derive(Clone, Debug)]
pub struct Dialer {
    pub http: reqwest::Client,
    scheme: &'static str,
    /// The TLS settings `http` dials with, for connections it cannot make (websockets).
    tls: Option<Arc<ClientConfig>>,
}

impl Default for Dialer {
    fn default() -> Self {
        Self {
            http: reqwest::Client::new(),
            scheme: "http",
            tls: None,
        }
    }
}

impl Dialer {
    /// A dialer to `dial` with `tls` (plain HTTP without), connecting within `connect_timeout`.
    pub fn new(
        tls: Option<&AgentTls>,
        dial: Dial,
        connect_timeout: Duration,
    ) -> Result<Self, TlsError> {
        let builder = reqwest::Client::builder().connect_timeout(connect_timeout);
        let tls = tls
            .filter(|tls| tls.dials_tls(dial))
            .map(|tls| tls.dial_config(dial));
        let (builder, scheme) = match &tls {
            Some(config) => (
                builder
                    .use_preconfigured_tls((**config).clone())
                    .https_only(true),
                "https",
            ),
            None => (builder, "http"),
        };
        let http = builder.build().map_err(config_error)?;
        Ok(Self { http, scheme, tls })
    }

    /// The TLS settings this dialer speaks with (`None`: plain).
    pub fn tls(&self) -> Option<Arc<ClientConfig>> {
        self.tls.clone()
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// `host:port` → `<scheme>://host:port`; a URL keeps its scheme and loses a trailing slash.
    pub fn base(&self, address: &str) -> String {
        let address = address.trim_end_matches('/');
        if address.contains("://") {
            address.to_owned()
        } else {
            format!("{}://{address}", self.scheme)
        }
    }
}

/// How an API client (the CLI) speaks TLS to an agent: Nomad's `-ca-cert`, `-client-cert`,
/// `-client-key`, `-tls-server-name` and `-tls-skip-verify`.
#[derive(Clone, Debug, Default)]
pub struct CliTls {
    /// The CA that signed the agent's certificate; without it no agent certificate is trusted.
    pub ca_cert: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// The name the agent's certificate must hold instead of the address's host.
    pub server_name: Option<String>,
    pub skip_verify: bool,
}

impl CliTls {
    /// The client configuration these settings describe; `None` when none is set.
    pub fn client_config(&self) -> Result<Option<ClientConfig>, TlsError> {
        if self.ca_cert.is_none()
            && self.client_cert.is_none()
            && self.client_key.is_none()
            && self.server_name.is_none()
            && !self.skip_verify
        {
            return Ok(None);
        }
        self.https_config().map(Some)
    }

    /// The configuration for an `https://` agent, trusting no agent without `ca_cert` (or
    /// `skip_verify`).
    pub fn https_config(&self) -> Result<ClientConfig, TlsError> {
        let roots = match &self.ca_cert {
            Some(path) => load_roots("CA certificate (-ca-cert)", path)?,
            None => Arc::new(RootCertStore::empty()),
        };
        let names = if self.skip_verify {
            NameCheck::Nothing
        } else if let Some(name) = &self.server_name {
            let name = ServerName::try_from(name.clone())
                .map_err(|_| TlsError::ServerName(name.clone()))?;
            NameCheck::OneOf(vec![name])
        } else {
            NameCheck::Dialled
        };
        let identity = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => Some((
                load_certs("client certificate (-client-cert)", cert)?,
                load_key("client key (-client-key)", key)?,
            )),
            (None, None) => None,
            _ => {
                return Err(TlsError::Config(
                    "-client-cert and -client-key go together".to_owned(),
                ));
            }
        };
        client_config(Arc::new(CaVerifier::new(roots, names)), identity)
    }
}

#[cfg(test)]
mod tests;
