//! Any server answers every call: what only the leader may answer is forwarded to it, in this one
//! middleware (Nomad: `nomad/rpc.go` `forward`, `forwardLeader`).
//!
//! ```text
//!   request ─► stale read (GET ?stale), agent/status/raft-peer route, or already forwarded?
//!                 └─ yes ─► served here, from this server's state
//!              this server leads? ─► served here
//!              a leader is known ─► the whole request to the leader's RPC port (which serves the
//!                                   API), marked forwarded; the reply streams back
//!              no leader ─► wait for one (polling) up to LEADER_WAIT, then 500 "No cluster leader"
//! ```
//!
//! Writes and consistent reads go to the leader; blocking queries pass through as streams. A
//! request is retried on the next leader only when it could not be sent at all (the connection
//! was refused), so a write is never applied twice by a retry.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::server::Server;

/// Marks a request one server forwarded to another; the receiver serves it itself.
pub const FORWARDED_HEADER: &str = "X-Caravan-Forwarded";

/// How long a request waits for a leader before failing (Nomad: `rpc_hold_timeout`, 5 s).
pub const LEADER_WAIT: Duration = Duration::from_secs(5);

/// Nomad's error text when there is no leader (`structs.ErrNoLeader`).
pub const NO_LEADER: &str = "No cluster leader";

/// True for the routes every server answers from what it knows itself.
fn served_locally(method: &Method, path: &str, query: &str) -> bool {
    const LOCAL_PREFIXES: &[&str] = &[
        "/v1/agent/",
        "/v1/status/",
        "/v1/internal/raft/info",
        "/v1/internal/server/",
        "/v1/operator/raft/configuration",
        "/v1/jobs/parse",
        "/v1/validate/",
        "/v1/event/stream",
        "/ui",
    ];
    if LOCAL_PREFIXES.iter().any(|prefix| path.starts_with(prefix)) {
        // Joining and force-leave change the configuration: the leader does that.
        return !(path == "/v1/agent/force-leave" && method != Method::GET);
    }
    (method == Method::GET || method == Method::HEAD) && is_stale(query)
}

/// `?stale`, `?stale=true` (Nomad: `parseConsistency`, any value but false).
fn is_stale(query: &str) -> bool {
    query.split('&').any(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        name == "stale" && !matches!(value, "false" | "0" | "f" | "F" | "FALSE" | "False")
    })
}

/// The middleware: serves here or forwards to the leader.
pub async fn forward_to_leader(
    State(server): State<Arc<Server>>,
    request: Request,
    next: Next,
) -> Response {
    let uri = request.uri();
    if request.headers().contains_key(FORWARDED_HEADER)
        || served_locally(request.method(), uri.path(), uri.query().unwrap_or(""))
    {
        return next.run(request).await;
    }
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    let (mut parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(error) => {
            return ApiError::BadRequest(format!("reading the request body: {error}"))
                .into_response();
        }
    };
    parts
        .headers
        .insert(FORWARDED_HEADER, HeaderValue::from(server.raft_id()));
    loop {
        if server.is_leader() {
            parts.headers.remove(FORWARDED_HEADER);
            return next
                .run(Request::from_parts(parts, axum::body::Body::from(body)))
                .await;
        }
        if let Some(leader) = server.leader_addr() {
            let base = server.dialer.base(&leader);
            match crate::agent::proxy::forward_once(
                &server.dialer.http,
                &base,
                &parts,
                body.clone(),
            )
            .await
            {
                Ok(response) => return response,
                Err(error) if error.is_connect() => {
                    tracing::debug!(leader = %leader, error = %error, "leader unreachable; waiting for another");
                }
                Err(error) => {
                    tracing::warn!(leader = %leader, error = %error, "forwarding to the leader failed");
                    return ApiError::Internal(format!(
                        "forwarding to the leader {leader}: {error}"
                    ))
                    .into_response();
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return ApiError::Internal(NO_LEADER.to_owned()).into_response();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_reads_and_agent_routes_are_served_locally() {
        assert!(served_locally(&Method::GET, "/v1/jobs", "stale"));
        assert!(served_locally(
            &Method::GET,
            "/v1/jobs",
            "index=4&stale=true"
        ));
        assert!(!served_locally(&Method::GET, "/v1/jobs", "stale=false"));
        assert!(!served_locally(&Method::GET, "/v1/jobs", "index=4"));
        assert!(!served_locally(&Method::PUT, "/v1/jobs", "stale"));
        assert!(served_locally(&Method::GET, "/v1/agent/members", ""));
        assert!(served_locally(&Method::GET, "/v1/status/leader", ""));
        assert!(served_locally(&Method::PUT, "/v1/agent/join", "address=a"));
        assert!(!served_locally(
            &Method::PUT,
            "/v1/agent/force-leave",
            "node=a"
        ));
        assert!(!served_locally(&Method::POST, "/v1/internal/raft/join", ""));
        assert!(!served_locally(
            &Method::PUT,
            "/v1/internal/node/register",
            ""
        ));
    }
}
