//! HTTPS on a listener: TLS handshakes off the accept loop, Go's answer to plain HTTP, the
//! caller's verified certificate handed to the routes, and the gate on the internal routes.
//!
//! ```text
//!   TCP accept ─► spawn: peek the first byte (within HANDSHAKE_TIMEOUT)
//!                   ├─ 0x16 (a TLS handshake) ─► rustls accept (client certificate verified
//!                   │     against the CA when presented; required where the config says)
//!                   │     ├─ ok ─► (stream, TlsPeer{roles}) ─► channel ─► axum::serve
//!                   │     └─ failed ─► logged with the peer's address, closed
//!                   ├─ a letter (plain HTTP) ─► "400 Client sent an HTTP request to an HTTPS
//!                   │     server." (Go's answer, which Nomad's users know), closed
//!                   └─ anything else ─► closed
//! ```
//!
//! A slow or silent caller holds only its own task, never the accept loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::AgentTls;

/// How long a caller has to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Go's `net/http` reply to plain HTTP on a TLS port, byte for byte.
pub const PLAIN_HTTP_ANSWER: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// How much of a plain HTTP request is read (and dropped) after answering it.
const MAX_PLAIN_REQUEST_BYTES: usize = 64 * 1024;

/// The first byte of a TLS record that carries a handshake.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a caller's certificate names (the listener verified its chain against the CA).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerRoles {
    /// It presented a certificate the CA signed.
    pub certified: bool,
    /// Valid for `server.<region>.nomad`.
    pub server: bool,
    /// Valid for `client.<region>.nomad`.
    pub client: bool,
}

/// A TLS caller: its address and what its certificate names. Routes read it as
/// `ConnectInfo<TlsPeer>`.
#[derive(Clone, Copy, Debug)]
pub struct TlsPeer {
    pub remote: SocketAddr,
    pub roles: PeerRoles,
}

/// A TLS listener for `axum::serve`: yields connections whose handshake finished.
#[derive(Debug)]
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, TlsPeer)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    /// Takes over `tcp`: handshakes with `config`, naming callers' roles with `tls`.
    pub fn new(
        tcp: TcpListener,
        config: Arc<ServerConfig>,
        tls: Arc<AgentTls>,
    ) -> std::io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let (sender, incoming) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tls, sender));
        Ok(Self {
            incoming,
            local_addr,
        })
    }
}

/// Accepts until the listener is dropped (the channel closes); each handshake on its own task.
async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tls: Arc<AgentTls>,
    sender: mpsc::Sender<(TlsStream<TcpStream>, TlsPeer)>,
) {
    loop {
        let (stream, remote) = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(error = %error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = sender.closed() => return,
        };
        let acceptor = acceptor.clone();
        let tls = tls.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(stream, &acceptor)).await {
                Ok(Ok(Some(stream))) => {
                    let roles = tls.peer_roles(stream.get_ref().1.peer_certificates());
                    let _ = sender.send((stream, TlsPeer { remote, roles })).await;
                }
                Ok(Ok(None)) => {
                    tracing::debug!(peer = %remote, "plain http on the https port refused");
                }
                Ok(Err(error)) => {
                    tracing::warn!(peer = %remote, error = %error, "tls handshake failed");
                }
                Err(_) => tracing::debug!(peer = %remote, "tls handshake timed out"),
            }
        });
    }
}

/// The handshake, or `None` after answering a plain HTTP request (or closing on other bytes).
async fn handshake(
    mut stream: TcpStream,
    acceptor: &TlsAcceptor,
) -> std::io::Result<Option<TlsStream<TcpStream>>> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Ok(None);
    }
    if first[0] != TLS_HANDSHAKE_RECORD {
        if first[0].is_ascii_alphabetic() {
            stream.write_all(PLAIN_HTTP_ANSWER).await?;
            stream.shutdown().await?;
            // Read what the caller sent until it closes: closing with its request unread would
            // reset the connection and could lose the answer on the way.
            let mut unread = [0u8; 4096];
            let mut left = MAX_PLAIN_REQUEST_BYTES;
            while left > 0 {
                let read = stream.read(&mut unread).await?;
                if read == 0 {
                    break;
                }
                left = left.saturating_sub(read);
            }
        }
        return Ok(None);
    }
    acceptor.accept(stream).await.map(Some)
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = TlsPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(accepted) => accepted,
            // The accept loop ended (the runtime is going away): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(TlsPeer {
            remote: self.local_addr,
            roles: PeerRoles::default(),
        })
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for TlsPeer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        *stream.remote_addr()
    }
}

/// Why `peer` may not call `path`, if it may not: with `rpc = true` the internal routes need a
/// certificate the CA signed, and with `verify_server_hostname` Raft needs a server's and the
/// rest a server's or a client's.
pub fn refusal(tls: &AgentTls, peer: Option<&TlsPeer>, path: &str) -> Option<String> {
    let settings = tls.settings();
    if !settings.rpc || !path.starts_with("/v1/internal/") {
        return None;
    }
    let roles = peer.map(|peer| peer.roles).unwrap_or_default();
    let server = super::server_name(&settings.region);
    let client = super::client_name(&settings.region);
    if !roles.certified {
        return Some(format!(
            "Permission denied: {path} needs a client certificate signed by the cluster CA (tls.rpc)"
        ));
    }
    if !settings.verify_server_hostname {
        return None;
    }
    if path.starts_with("/v1/internal/raft/") || path.starts_with("/v1/internal/server/") {
        return (!roles.server)
            .then(|| format!("Permission denied: {path} needs a certificate for {server}"));
    }
    (!roles.server && !roles.client)
        .then(|| format!("Permission denied: {path} needs a certificate for {server} or {client}"))
}

/// The middleware: refuses internal routes to callers without the certificate they need (403).
pub async fn require_cluster_cert(
    State(tls): State<Arc<AgentTls>>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<TlsPeer>>()
        .map(|info| info.0);
    if let Some(reason) = refusal(&tls, peer.as_ref(), request.uri().path()) {
        tracing::warn!(
            peer = ?peer.map(|peer| peer.remote),
            path = %request.uri().path(),
            "internal route refused: no cluster certificate"
        );
        return (StatusCode::FORBIDDEN, reason).into_response();
    }
    next.run(request).await
}
