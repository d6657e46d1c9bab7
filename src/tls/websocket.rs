//! Opening a websocket to an agent, over plain TCP or TLS: the CLI's `alloc exec`, and a server
//! forwarding a caller's exec stream to the node that runs the allocation.
//!
//! tokio-tungstenite is built without its own TLS; the stream is TCP, wrapped in rustls (with
//! the caller's [`ClientConfig`]) for `wss://`, and the handshake runs over it.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::{self, Error};
use tokio_util::either::Either;

/// A websocket over TCP, or over TLS over TCP.
pub type AgentSocket = WebSocketStream<Either<TcpStream, TlsStream<TcpStream>>>;

/// Opens the websocket `request` names: `ws://` over TCP, `wss://` over TLS with `tls` (an error
/// without one). A refusal before the upgrade is [`Error::Http`] with the agent's answer.
pub async fn connect(
    request: Request,
    tls: Option<Arc<ClientConfig>>,
) -> Result<AgentSocket, Error> {
    let uri = request.uri().clone();
    let secure = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => {
            return Err(Error::Url(
                tungstenite::error::UrlError::UnsupportedUrlScheme,
            ));
        }
    };
    let host = uri
        .host()
        .ok_or(Error::Url(tungstenite::error::UrlError::NoHostName))?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    let stream = if secure {
        let config = tls.ok_or(Error::Url(
            tungstenite::error::UrlError::TlsFeatureNotEnabled,
        ))?;
        let server_name = ServerName::try_from(host)
            .map_err(|_| Error::Url(tungstenite::error::UrlError::NoHostName))?;
        Either::Right(
            tokio_rustls::TlsConnector::from(config)
                .connect(server_name, tcp)
                .await?,
        )
    } else {
        Either::Left(tcp)
    };
    let (socket, _) = tokio_tungstenite::client_async(request, stream).await?;
    Ok(socket)
}
