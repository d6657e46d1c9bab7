//! The client agent's routes, `/v1/client/...`, as an `axum::Router` the agent mounts into its
//! HTTP server beside [`crate::api::router`] (Nomad: `command/agent/fs_endpoint.go`,
//! `alloc_endpoint.go`, `stats_endpoint.go`). One module per group: [`fs`] (ls, stat, cat,
//! readat), [`logs`], [`tasks`] (restart, signal, checks, exec), [`stats`]. Their messages are the wire
//! types of [`crate::api::types::client`]; their errors the one [`ApiError`].
//!
//! - `GET /v1/client/fs/logs/{alloc}?task=&type=stdout|stderr&origin=start|end&offset=&follow=&plain=`
//! - `GET /v1/client/fs/ls/{alloc}?path=`, `stat`, `cat`, `readat?path=&offset=&limit=`
//! - `GET /v1/client/allocation/{id}/exec?task=&command=["cmd","arg"]` (WebSocket)
//! - `PUT|POST /v1/client/allocation/{id}/restart`, `.../signal`; `GET .../stats`; `GET .../checks`
//!   (the latest result of each native service check, by check ID)
//! - `GET /v1/client/stats`: the host's usage
//! - `GET|PUT /v1/agent/servers`: the servers the client calls ([`agent`])
//!
//! **Invariant:** every file served is reached through `crate::allocfs` beneath the
//! allocation's directory: a symbolic link a task planted is listed as a link and never
//! followed, and only regular files are read.

pub mod agent;
pub mod fs;
pub mod logs;
pub mod stats;
pub mod tasks;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Query;
use axum::routing::{any, get};

use crate::api::error::ApiError;
use crate::client::Shared;
use crate::client::alloc_runner::AllocRunnerHandle;

/// The `/v1/client/...` routes over a client's shared state, with `/v1/agent/monitor` where no
/// server in the same agent answers it (`standalone`).
/// With ACLs on, every route checks the caller's token first ([`crate::client::acl`]).
pub(crate) fn router(shared: Arc<Shared>, standalone: bool) -> Router {
    let router = Router::new()
        .route("/v1/client/fs/logs/{alloc}", get(logs::logs))
        .route("/v1/client/fs/ls/{alloc}", get(fs::ls))
        .route("/v1/client/fs/cat/{alloc}", get(fs::cat))
        .route("/v1/client/fs/stat/{alloc}", get(fs::stat))
        .route("/v1/client/fs/readat/{alloc}", get(fs::readat))
        .route("/v1/client/allocation/{alloc}/restart", any(tasks::restart))
        .route("/v1/client/allocation/{alloc}/signal", any(tasks::signal))
        .route(
            "/v1/client/allocation/{alloc}/stats",
            get(stats::alloc_stats),
        )
        .route("/v1/client/allocation/{alloc}/checks", get(tasks::checks))
        .route("/v1/client/allocation/{alloc}/exec", get(tasks::exec))
        .route("/v1/client/stats", get(stats::host_stats))
        .route(
            "/v1/agent/servers",
            get(agent::list_servers)
                .put(agent::update_servers)
                .post(agent::update_servers),
        );
    let router = if standalone {
        router
            .route(
                "/v1/agent/monitor",
                get(crate::api::routes::monitor::monitor_local),
            )
            .route("/v1/agent/health", get(agent::health))
    } else {
        router
    };
    let router = if shared.acl_enabled {
        router.route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            crate::client::acl::check_caller,
        ))
    } else {
        router
    };
    router.with_state(shared)
}

type Params = Query<HashMap<String, String>>;

fn runner_of(shared: &Shared, alloc_id: &str) -> Result<AllocRunnerHandle, ApiError> {
    shared
        .runner(alloc_id)
        .ok_or_else(|| ApiError::NotFound(format!("allocation {alloc_id:?}")))
}

/// The task a request names, or the allocation's only task when it names none.
fn task_name_of(
    runner: &AllocRunnerHandle,
    params: &HashMap<String, String>,
) -> Result<String, ApiError> {
    match params.get("task") {
        Some(task) => Ok(task.clone()),
        None if runner.tasks().len() == 1 => {
            Ok(runner.tasks().keys().next().cloned().unwrap_or_default())
        }
        None => Err(ApiError::BadRequest("must provide task name".to_owned())),
    }
}

/// A boolean query parameter as Go's `strconv.ParseBool` reads it (python-nomad sends `True`).
fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params
        .get(name)
        .and_then(|value| crate::api::query::parse_bool(value))
        .unwrap_or(false)
}

/// A non-negative integer query parameter, `default` when absent.
fn number(params: &HashMap<String, String>, name: &str, default: u64) -> Result<u64, ApiError> {
    match params.get(name) {
        None => Ok(default),
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| ApiError::BadRequest(format!("{name} must be a non-negative integer"))),
    }
}

/// Runs a blocking operation (files, `/proc`) off the async threads.
async fn blocking<T: Send + 'static>(
    operation: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(operation)
        .await
        .map_err(|err| ApiError::Internal(err.to_string()))?
}
