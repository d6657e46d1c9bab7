//! The one typed client of the HTTP API, as Nomad's `api` package is for Nomad: every request and
//! answer is a type of [`crate::api::types`] (or a model object), never loose JSON. The CLI and the
//! client agent's link to the servers (`client/http_link.rs`) use it.
//!
//! - Blocking queries: [`ApiClient::blocking`] passes `index` and `wait` and returns the answer
//!   with the `X-Nomad-Index` it came with ([`QueryMeta`]).
//! - [`ClientConfig`] carries the agent address, the region and namespace (added to every
//!   request), the ACL token (`X-Nomad-Token` on every request) and `stale` (any server may answer a read, Nomad's `-stale`).
//! - IDs by prefix, as Nomad's CLI resolves them ([`ApiClient::by_prefix`]): an exact ID wins, an
//!   odd-length UUID prefix is queried one character shorter and filtered here.
//! - Errors in Nomad's words: `Unexpected response code: 404 (job "x" not found)`.
//! - The event stream ([`ApiClient::events`]): one typed frame a line, heartbeats skipped.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::types::events::EventsFrame;

/// Where and how to reach the API.
#[derive(Clone, Debug, Default)]
pub struct ClientConfig {
    /// `host:port` or a URL; `http://` is assumed.
    pub address: String,
    pub region: Option<String>,
    pub namespace: Option<String>,
    /// The ACL token's secret, sent as `X-Nomad-Token` (marked sensitive, never logged).
    pub token: Option<String>,
    /// Reads may be answered by any server, not only the leader (Nomad's `-stale`).
    pub stale: bool,
    /// The CA, client certificate and checks for `https://` addresses.
    pub tls: crate::tls::CliTls,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The agent could not be reached; the root cause, without reqwest's repeated URL.
    #[error("{0}")]
    Transport(String),
    /// An answer other than 2xx, with the API's plain-text reason (Nomad's wording).
    #[error("Unexpected response code: {status} ({reason})")]
    UnexpectedResponse { status: u16, reason: String },
    /// The answer is not the type the route answers with.
    #[error("the agent's reply to {path} does not decode: {message}")]
    Decode { path: String, message: String },
    #[error("failed to build the HTTP client: {0}")]
    Build(String),
}

impl ClientError {
    /// The HTTP status of an unexpected response.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::UnexpectedResponse { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn transport(error: &reqwest::Error) -> Self {
        let root = std::iter::successors(Some(error as &dyn std::error::Error), |e| e.source())
            .last()
            .map(ToString::to_string)
            .unwrap_or_else(|| error.to_string());
        Self::Transport(root)
    }
}

/// What came with an answer (Nomad: `api.QueryMeta`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryMeta {
    /// `X-Nomad-Index`: pass it to [`ApiClient::blocking`] to wait for a change.
    pub last_index: u64,
    /// `X-Nomad-NextToken`: a paged list's next page starts there (`next_token=`).
    pub next_token: Option<String>,
}

/// The outcome of resolving an ID prefix.
#[derive(Clone, Debug, PartialEq)]
pub enum PrefixMatch<T> {
    /// Exactly one object matched, or one's ID equals the prefix.
    One(T),
    None,
    /// Several matched, none exactly.
    Many(Vec<T>),
}

/// A list entry with an `ID`, resolvable by prefix.
pub trait HasId {
    fn id(&self) -> &str;
}

/// A client for one agent address.
#[derive(Clone, Debug)]
pub struct ApiClient {
    base: String,
    config: ClientConfig,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(5));
        if let Some(tls) = config
            .tls
            .client_config()
            .map_err(|error| ClientError::Build(error.to_string()))?
        {
            builder = builder.use_preconfigured_tls(tls);
        }
        let http = builder
            .build()
            .map_err(|error| ClientError::Build(error.to_string()))?;
        Ok(Self::with_http(config, http))
    }

    /// A client over an HTTP client built elsewhere.
    pub fn with_http(config: ClientConfig, http: reqwest::Client) -> Self {
        Self {
            base: base_url(&config.address),
            config,
            http,
        }
    }

    /// The same client pointed at another agent's `address`: the region, namespace, `stale`
    /// and the connection pool are shared (the client agent's link fails over this way).
    pub fn at(&self, address: &str) -> ApiClient {
        let mut config = self.config.clone();
        config.address = address.to_owned();
        ApiClient {
            base: base_url(address),
            config,
            http: self.http.clone(),
        }
    }

    /// The same client sending `token` as its ACL token (`None`: no token); the client agent's
    /// link carries its node secret this way once it has registered.
    pub fn with_token(mut self, token: Option<String>) -> ApiClient {
        self.config.token = token;
        self
    }

    /// The same client acting in `namespace` (an object listed across namespaces is read in
    /// its own).
    pub fn in_namespace(&self, namespace: &str) -> ApiClient {
        let mut config = self.config.clone();
        config.namespace = Some(namespace.to_owned());
        ApiClient {
            base: self.base.clone(),
            config,
            http: self.http.clone(),
        }
    }

    /// The agent's address, as a URL.
    pub fn address(&self) -> &str {
        &self.base
    }

    /// The URL of `path_and_query` with the region, namespace and `stale` of the config.
    pub fn url(&self, path_and_query: &str) -> String {
        let mut url = format!("{}{path_and_query}", self.base);
        let mut extra = Vec::new();
        if let Some(namespace) = &self.config.namespace {
            extra.push(format!("namespace={}", encode(namespace)));
        }
        if let Some(region) = &self.config.region {
            extra.push(format!("region={}", encode(region)));
        }
        if self.config.stale {
            extra.push("stale=true".to_owned());
        }
        if !extra.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&extra.join("&"));
        }
        url
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let request = match self
            .config
            .token
            .as_deref()
            .and_then(|token| reqwest::header::HeaderValue::from_str(token).ok())
        {
            Some(mut token) => {
                token.set_sensitive(true);
                request.header("X-Nomad-Token", token)
            }
            None => request,
        };
        let response = request
            .send()
            .await
            .map_err(|error| ClientError::transport(&error))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let reason = response.text().await.unwrap_or_default();
        Err(ClientError::UnexpectedResponse {
            status: status.as_u16(),
            reason: reason.trim().to_owned(),
        })
    }

    async fn decode<T: DeserializeOwned>(
        path: &str,
        response: reqwest::Response,
    ) -> Result<(T, QueryMeta), ClientError> {
        let last_index = response
            .headers()
            .get("X-Nomad-Index")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        let next_token = response
            .headers()
            .get(crate::api::list::NEXT_TOKEN_HEADER)
            .and_then(|value| value.to_str().ok())
            .filter(|token| !token.is_empty())
            .map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .map_err(|error| ClientError::transport(&error))?;
        // An empty body reads as JSON `null` (an `Option` or a unit answer).
        let bytes: &[u8] = if bytes.trim_ascii().is_empty() {
            b"null"
        } else {
            &bytes
        };
        let body = serde_json::from_slice(bytes).map_err(|error| ClientError::Decode {
            path: path.to_owned(),
            message: error.to_string(),
        })?;
        Ok((
            body,
            QueryMeta {
                last_index,
                next_token,
            },
        ))
    }

    /// `GET path` as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        Ok(self.get_with_meta(path).await?.0)
    }

    /// `GET path` as `T`, with its index.
    pub async fn get_with_meta<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<(T, QueryMeta), ClientError> {
        let response = self.send(self.http.get(self.url(path))).await?;
        Self::decode(path, response).await
    }

    /// A blocking query: answers when the index passes `index` or `wait` elapses.
    pub async fn blocking<T: DeserializeOwned>(
        &self,
        path: &str,
        index: u64,
        wait: Duration,
    ) -> Result<(T, QueryMeta), ClientError> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let blocking_path = format!("{path}{separator}index={index}&wait={}ms", wait.as_millis());
        // The server may hold the query up to `wait` plus wait/16 of jitter (Nomad's).
        let request = self
            .http
            .get(self.url(&blocking_path))
            .timeout(wait + wait / 16 + Duration::from_secs(10));
        let response = self.send(request).await?;
        Self::decode(path, response).await
    }

    /// `PUT path` with a JSON body, the answer as `T`.
    pub async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let response = self.send(self.http.put(self.url(path)).json(body)).await?;
        Ok(Self::decode(path, response).await?.0)
    }

    /// `PUT path` with a raw body (a snapshot file); the answer is not read.
    pub async fn put_bytes(&self, path: &str, body: Vec<u8>) -> Result<(), ClientError> {
        self.send(self.http.put(self.url(path)).body(body)).await?;
        Ok(())
    }

    /// `POST path` with a JSON body, the answer as `T`.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let response = self.send(self.http.post(self.url(path)).json(body)).await?;
        Ok(Self::decode(path, response).await?.0)
    }

    /// `DELETE path`, the answer as `T`.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let response = self.send(self.http.delete(self.url(path))).await?;
        Ok(Self::decode(path, response).await?.0)
    }

    /// `GET path`, the raw response, for bodies that stream (logs, files).
    pub async fn get_stream(&self, path: &str) -> Result<reqwest::Response, ClientError> {
        self.send(self.http.get(self.url(path))).await
    }

    /// Lists `/v1/<plural>?prefix=` as `T` and resolves `prefix` among them as Nomad's CLI does:
    /// an exact ID wins; UUID-like prefixes of odd length are queried one character shorter
    /// (Nomad: `sanitizeUUIDPrefix`) and filtered here.
    pub async fn by_prefix<T: DeserializeOwned + HasId>(
        &self,
        plural: &str,
        prefix: &str,
    ) -> Result<PrefixMatch<T>, ClientError> {
        let query = short_prefix(prefix);
        let list: Vec<T> = self
            .get(&format!("/v1/{plural}?prefix={}", encode(&query)))
            .await?;
        Ok(resolve(list, prefix))
    }

    /// The event stream of `topics` (`Job:web`, `Allocation:*`; none is every topic): each
    /// frame with events, in order, heartbeats skipped. Ends when the agent closes it.
    pub async fn events(
        &self,
        topics: &[String],
    ) -> Result<impl futures::Stream<Item = Result<EventsFrame, ClientError>>, ClientError> {
        let query: Vec<String> = topics
            .iter()
            .map(|topic| format!("topic={}", encode(topic)))
            .collect();
        let path = if query.is_empty() {
            "/v1/event/stream".to_owned()
        } else {
            format!("/v1/event/stream?{}", query.join("&"))
        };
        let response = self.get_stream(&path).await?;
        let lines = futures::stream::unfold(
            (response, Vec::<u8>::new()),
            move |(mut response, mut pending)| {
                let path = path.clone();
                async move {
                    loop {
                        if let Some(end) = pending.iter().position(|byte| *byte == b'\n') {
                            let line: Vec<u8> = pending.drain(..=end).collect();
                            let frame =
                                serde_json::from_slice::<EventsFrame>(&line).map_err(|error| {
                                    ClientError::Decode {
                                        path: path.clone(),
                                        message: error.to_string(),
                                    }
                                });
                            if matches!(&frame, Ok(frame) if frame.is_heartbeat()) {
                                continue;
                            }
                            return Some((frame, (response, pending)));
                        }
                        match response.chunk().await {
                            Ok(Some(chunk)) => pending.extend_from_slice(&chunk),
                            Ok(None) => return None,
                            Err(error) => {
                                return Some((
                                    Err(ClientError::transport(&error)),
                                    (response, Vec::new()),
                                ));
                            }
                        }
                    }
                }
            },
        );
        Ok(lines)
    }
}

/// `host:port` → `http://host:port`; URLs keep their scheme, lose a trailing slash.
pub fn base_url(address: &str) -> String {
    let address = address.trim_end_matches('/');
    if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    }
}

/// Picks the object `prefix` names among `list`.
fn resolve<T: HasId>(list: Vec<T>, prefix: &str) -> PrefixMatch<T> {
    let mut matches: Vec<T> = list
        .into_iter()
        .filter(|item| item.id().starts_with(prefix))
        .collect();
    if let Some(exact) = matches.iter().position(|item| item.id() == prefix) {
        return PrefixMatch::One(matches.swap_remove(exact));
    }
    match matches.len() {
        0 => PrefixMatch::None,
        1 => PrefixMatch::One(matches.remove(0)),
        _ => PrefixMatch::Many(matches),
    }
}

/// Nomad queries UUID prefixes in even-length hex only: an odd prefix is cut by one for the query
/// and filtered client-side (Nomad: `sanitizeUUIDPrefix`).
fn short_prefix(prefix: &str) -> String {
    let is_uuid_like = prefix.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if is_uuid_like && prefix.len() % 2 == 1 {
        prefix[..prefix.len() - 1].to_owned()
    } else {
        prefix.to_owned()
    }
}

/// Percent-encodes a query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

macro_rules! has_id {
    ($($ty:ty),*) => {
        $(impl HasId for $ty {
            fn id(&self) -> &str {
                &self.id
            }
        })*
    };
}

has_id!(
    crate::api::types::jobs::JobListStub,
    crate::api::types::allocs::AllocListStub,
    crate::api::types::nodes::NodeListStub
);

impl HasId for crate::structs::Evaluation {
    fn id(&self) -> &str {
        self.id.as_str()
    }
}

impl HasId for crate::structs::Deployment {
    fn id(&self) -> &str {
        self.id.as_str()
    }
}

#[cfg(test)]
mod tests;
