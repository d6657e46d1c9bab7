//! Forwarding API requests from a client-only agent to the servers.
//!
//! A Nomad client agent answers the whole HTTP API: what it cannot serve itself it forwards to a
//! server. caravan's client agent serves `/v1/client/...` itself and forwards every other request,
//! method, path, query, headers and body, to the first server that answers, streaming the reply (so
//! blocking queries and the event stream pass through).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Where the servers are now: the client's link knows them (those configured, those the servers
/// named, those the operator set with `node config -update-servers`), as `host:port` or URLs.
pub type ServerSource = Box<dyn Fn() -> Vec<String> + Send + Sync>;

/// Forwards to the servers its [`ServerSource`] names when asked.
pub struct Forwarder {
    dialer: crate::tls::Dialer,
    servers: ServerSource,
    current: AtomicUsize,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("servers", &(self.servers)())
            .finish_non_exhaustive()
    }
}

/// Hop-by-hop headers a proxy must not pass on (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "host",
    "content-length",
];

impl Forwarder {
    /// Forwards to the servers `servers` names at each request, through `dialer` (a bare
    /// `host:port` gets its scheme).
    pub fn new(servers: ServerSource, dialer: crate::tls::Dialer) -> Self {
        Self {
            servers,
            dialer,
            current: AtomicUsize::new(0),
        }
    }

    /// An axum fallback that forwards whatever no route matched.
    pub fn router(self) -> axum::Router {
        axum::Router::new()
            .fallback(forward)
            .with_state(Arc::new(self))
    }
}

async fn forward(State(forwarder): State<Arc<Forwarder>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(err) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("reading the request body: {err}"),
            )
                .into_response();
        }
    };
    let servers: Vec<String> = (forwarder.servers)()
        .iter()
        .map(|server| forwarder.dialer.base(server))
        .collect();
    let mut last_error = String::from("no servers configured");
    for attempt in 0..servers.len() {
        let index = (forwarder.current.load(Ordering::Relaxed) + attempt) % servers.len();
        let server = &servers[index];
        match forward_once(&forwarder.dialer.http, server, &parts, body.clone()).await {
            Ok(response) => {
                forwarder.current.store(index, Ordering::Relaxed);
                return response;
            }
            Err(err) => {
                tracing::warn!(server = %server, error = %err, "forwarding to server failed");
                last_error = format!("{server}: {err}");
            }
        }
    }
    (
        StatusCode::BAD_GATEWAY,
        format!("no server answered: {last_error}"),
    )
        .into_response()
}

/// The largest request body forwarded.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Sends the request described by `parts` and `body` to `base` (an HTTP base URL) and streams the
/// reply back; an error means `base` did not answer at all.
pub async fn forward_once(
    http: &reqwest::Client,
    base: &str,
    parts: &axum::http::request::Parts,
    body: axum::body::Bytes,
) -> Result<Response, reqwest::Error> {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |path_and_query| path_and_query.as_str());
    let mut outgoing = http.request(parts.method.clone(), format!("{base}{path_and_query}"));
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            outgoing = outgoing.header(name, value);
        }
    }
    let reply = outgoing.body(body).send().await?;
    let mut response = Response::builder().status(reply.status());
    for (name, value) in reply.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            response = response.header(name, value);
        }
    }
    Ok(response
        .body(Body::from_stream(reply.bytes_stream()))
        .unwrap_or_else(|err| {
            (
                StatusCode::BAD_GATEWAY,
                format!("forwarding the reply: {err}"),
            )
                .into_response()
        }))
}
