//! Blocking queries: a read with `?index=N` waits until the tables it reads change past `N` (or
//! `wait` passes), then answers with the data and the index in `X-Nomad-Index`.
//!
//! Nomad: `nomad/rpc.go` `blockingRPC`, `command/agent/http.go` `setMeta`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::Serialize;
use tokio::sync::watch;

use super::error::ApiError;
use super::list::{ListQuery, NEXT_TOKEN_HEADER};
use super::query::QueryOptions;
use crate::server::Server;
use crate::server::state::{StateSnapshot, Table};
use crate::structs::NodeId;

/// Runs `read` against a snapshot once the tables have changed past the query's index, or
/// the wait ran out, and answers with Nomad's query headers.
pub async fn blocking_query<T, F>(
    server: &Arc<Server>,
    query: &QueryOptions,
    tables: &[Table],
    read: F,
) -> Result<Response, ApiError>
where
    T: Serialize,
    F: Fn(&StateSnapshot) -> Result<T, ApiError>,
{
    wait_past(query, server.store.watch_indexes(), |indexes| {
        indexes.max_of(tables) > query.min_index
    })
    .await;
    let snapshot = server.store.snapshot();
    let index = snapshot.tables().indexes.max_of(tables);
    let body = read(&snapshot)?;
    Ok(with_meta(server, index, Json(body).into_response()))
}

/// A [`blocking_query`] for a list endpoint: the items `read` gives are filtered and paged as
/// the request's [`ListQuery`] asks, `key` giving each item's page token, and the next page's
/// token is answered in `X-Nomad-NextToken`.
pub async fn blocking_list<T, F, K>(
    server: &Arc<Server>,
    query: &QueryOptions,
    tables: &[Table],
    key: K,
    read: F,
) -> Result<Response, ApiError>
where
    T: Serialize,
    F: Fn(&StateSnapshot) -> Result<Vec<T>, ApiError>,
    K: Fn(&T) -> String,
{
    // A malformed filter or page size is refused before the query waits.
    let list = ListQuery::parse(query)?;
    blocking_page(server, query, list, tables, key, read).await
}

/// [`blocking_list`] with the filter and pagination already read (and ordered as the endpoint
/// orders, e.g. [`ListQuery::newest_first`]).
pub async fn blocking_page<T, F, K>(
    server: &Arc<Server>,
    query: &QueryOptions,
    list: ListQuery,
    tables: &[Table],
    key: K,
    read: F,
) -> Result<Response, ApiError>
where
    T: Serialize,
    F: Fn(&StateSnapshot) -> Result<Vec<T>, ApiError>,
    K: Fn(&T) -> String,
{
    wait_past(query, server.store.watch_indexes(), |indexes| {
        indexes.max_of(tables) > query.min_index
    })
    .await;
    let snapshot = server.store.snapshot();
    let index = snapshot.tables().indexes.max_of(tables);
    let page = list.page(read(&snapshot)?, key)?;
    let mut response = Json(page.items).into_response();
    if let Some(token) = page.next_token {
        let token = HeaderValue::from_bytes(token.as_bytes())
            .map_err(|_| ApiError::Internal(format!("page token {token:?} is not a header")))?;
        response.headers_mut().insert(NEXT_TOKEN_HEADER, token);
    }
    Ok(with_meta(server, index, response))
}

/// Waits as [`blocking_query`] does, on one node's allocation index instead of whole tables: a
/// client's watch wakes only when its own allocations change (Nomad: `Node.GetClientAllocs`).
/// Returns the snapshot to answer from.
pub async fn wait_for_node_allocs(
    server: &Arc<Server>,
    query: &QueryOptions,
    node_id: &NodeId,
) -> StateSnapshot {
    if query.min_index > 0 {
        let index = server.store.watch_node_allocs(node_id);
        wait_past(query, index, |index| *index > query.min_index).await;
    }
    server.store.snapshot()
}

/// Waits until `reached` holds for the watched value, or the query's wait runs out, plus up to
/// wait/16 of jitter as Nomad adds so many blocked clients do not wake at once. A query without
/// an index does not wait. A timeout is a normal end of a blocking query: the unchanged data is
/// the answer.
async fn wait_past<T>(
    query: &QueryOptions,
    mut watched: watch::Receiver<T>,
    reached: impl FnMut(&T) -> bool,
) {
    if query.min_index == 0 {
        return;
    }
    let jitter_nanos = u64::try_from(query.wait.as_nanos() / 16).unwrap_or(0);
    let jitter = Duration::from_nanos(rand::thread_rng().gen_range(0..=jitter_nanos));
    let deadline = tokio::time::Instant::now() + query.wait + jitter;
    let _ = tokio::time::timeout_at(deadline, watched.wait_for(reached)).await;
}

/// Adds `X-Nomad-Index`, `X-Nomad-KnownLeader` and `X-Nomad-LastContact` to a response.
pub fn with_meta(server: &Server, index: u64, mut response: Response) -> Response {
    set_meta(server, index, response.headers_mut());
    response
}

pub fn set_meta(server: &Server, index: u64, headers: &mut HeaderMap) {
    headers.insert("X-Nomad-Index", HeaderValue::from(index.max(1)));
    let known_leader = server.leader_addr().is_some();
    headers.insert(
        "X-Nomad-KnownLeader",
        HeaderValue::from_static(if known_leader { "true" } else { "false" }),
    );
    headers.insert(
        "X-Nomad-LastContact",
        HeaderValue::from(server.last_contact_ms()),
    );
}
