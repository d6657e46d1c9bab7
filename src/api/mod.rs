//! The HTTP API: Nomad's v1 paths and JSON, on axum.
//!
//! Every list and read is a blocking query ([`blocking`]); errors are plain text with Nomad's
//! statuses, mapped in one place ([`error::ApiError`]); the caller's identity is resolved once, in
//! a middleware ([`identity`]), which enforces ACLs by the table of [`access`]. The client-facing writes (node
//! register, heartbeat, allocation updates) are under `/v1/internal/`: see [`routes::internal`].
//!
//! Invariant: handlers only read snapshots and call `Server` endpoints; they never write state.
//!
//! Nomad: `command/agent/http.go` (the mux and `wrap`), `*_endpoint.go`.

pub mod access;
pub mod blocking;
pub mod client;
pub mod decode;
pub mod error;
pub mod filter;
pub mod forward;
#[cfg(test)]
mod fuzz_tests;
pub mod identity;
pub mod list;
pub mod query;
pub mod routes;
pub mod types;
pub mod ui;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};

use crate::server::Server;
use routes::{
    acl, agent, allocs, deployments, evals, events, internal, job_launch, job_statuses, jobs,
    jobs_parse, keyring, monitor, namespaces, node_pools, nodes, operator, scaling, services,
    system, validate, variables,
};

/// The API router over a server.
pub fn router(server: Arc<Server>) -> Router {
    let body_limit = server.options.limits.max_request_body_bytes;
    Router::new()
        .route(
            "/v1/jobs",
            get(jobs::list).put(jobs::register).post(jobs::register),
        )
        .route(
            "/v1/validate/job",
            post(validate::validate_job).put(validate::validate_job),
        )
        .route(
            "/v1/jobs/statuses",
            get(job_statuses::statuses).post(job_statuses::statuses),
        )
        .route(
            "/v1/jobs/parse",
            post(jobs_parse::parse).put(jobs_parse::parse),
        )
        .route(
            "/v1/job/{id}",
            get(jobs::read)
                .put(jobs::register_at)
                .post(jobs::register_at)
                .delete(jobs::deregister),
        )
        .route("/v1/job/{id}/allocations", get(jobs::allocations))
        .route("/v1/job/{id}/evaluations", get(jobs::evaluations))
        .route(
            "/v1/job/{id}/evaluate",
            put(jobs::evaluate).post(jobs::evaluate),
        )
        .route("/v1/job/{id}/versions", get(jobs::versions))
        .route("/v1/job/{id}/summary", get(jobs::summary))
        .route(
            "/v1/job/{id}/periodic/force",
            post(job_launch::periodic_force).put(job_launch::periodic_force),
        )
        .route(
            "/v1/job/{id}/scale",
            get(scaling::status)
                .put(scaling::scale)
                .post(scaling::scale),
        )
        .route(
            "/v1/job/{id}/dispatch",
            post(job_launch::dispatch).put(job_launch::dispatch),
        )
        .route("/v1/job/{id}/plan", post(jobs::plan).put(jobs::plan))
        .route("/v1/job/{id}/deployments", get(jobs::deployments))
        .route("/v1/job/{id}/deployment", get(jobs::latest_deployment))
        .route("/v1/job/{id}/services", get(services::by_job))
        .route("/v1/services", get(services::list))
        .route("/v1/service/{name}", get(services::read))
        .route(
            "/v1/service/{name}/{id}",
            axum::routing::delete(services::delete),
        )
        .route("/v1/allocation/{id}/services", get(services::by_alloc))
        .route("/v1/allocations", get(allocs::list))
        .route("/v1/allocation/{id}", get(allocs::read))
        .route(
            "/v1/allocation/{id}/stop",
            post(allocs::stop).put(allocs::stop),
        )
        .route(
            "/v1/node/pools",
            get(node_pools::list)
                .put(node_pools::upsert)
                .post(node_pools::upsert),
        )
        .route(
            "/v1/node/pool/{name}",
            get(node_pools::read).delete(node_pools::delete),
        )
        .route("/v1/node/pool/{name}/nodes", get(node_pools::nodes))
        .route("/v1/node/pool/{name}/jobs", get(node_pools::jobs))
        .route("/v1/nodes", get(nodes::list))
        .route("/v1/node/{id}", get(nodes::read))
        .route("/v1/node/{id}/allocations", get(nodes::allocations))
        .route("/v1/node/{id}/drain", post(nodes::drain).put(nodes::drain))
        .route(
            "/v1/node/{id}/eligibility",
            post(nodes::eligibility).put(nodes::eligibility),
        )
        .route("/v1/evaluations", get(evals::list))
        .route("/v1/evaluation/{id}", get(evals::read))
        .route("/v1/evaluation/{id}/allocations", get(evals::allocations))
        .route("/v1/deployments", get(deployments::list))
        .route("/v1/deployment/{id}", get(deployments::read))
        .route(
            "/v1/deployment/allocations/{id}",
            get(deployments::allocations),
        )
        .route(
            "/v1/deployment/promote/{id}",
            post(deployments::promote).put(deployments::promote),
        )
        .route(
            "/v1/deployment/fail/{id}",
            post(deployments::fail).put(deployments::fail),
        )
        .route(
            "/v1/deployment/pause/{id}",
            post(deployments::pause).put(deployments::pause),
        )
        .route(
            "/v1/deployment/allocation-health/{id}",
            post(deployments::allocation_health).put(deployments::allocation_health),
        )
        .route(
            "/v1/job/{id}/revert",
            post(deployments::revert).put(deployments::revert),
        )
        .route(
            "/v1/job/{id}/stable",
            post(deployments::stable).put(deployments::stable),
        )
        .route("/v1/system/gc", put(system::gc).post(system::gc))
        .route("/v1/status/leader", get(agent::leader))
        .route("/v1/status/peers", get(agent::peers))
        .route("/v1/agent/self", get(agent::agent_self))
        .route("/v1/agent/members", get(agent::members))
        .route("/v1/agent/health", get(agent::health))
        .route("/v1/agent/monitor", get(monitor::monitor))
        .route("/v1/agent/join", post(agent::join).put(agent::join))
        .route(
            "/v1/agent/force-leave",
            post(agent::force_leave).put(agent::force_leave),
        )
        .route(
            "/v1/operator/raft/configuration",
            get(operator::raft_configuration),
        )
        .route(
            "/v1/operator/raft/peer",
            axum::routing::delete(operator::raft_remove_peer),
        )
        .route(
            "/v1/operator/snapshot",
            get(operator::snapshot_save)
                .put(operator::snapshot_restore)
                .post(operator::snapshot_restore),
        )
        .route(
            "/v1/operator/scheduler/configuration",
            get(operator::scheduler_get_config)
                .put(operator::scheduler_set_config)
                .post(operator::scheduler_set_config),
        )
        .route("/v1/operator/keyring/keys", get(keyring::list))
        .route(
            "/v1/operator/keyring/rotate",
            put(keyring::rotate).post(keyring::rotate),
        )
        .route(
            "/v1/internal/server/keyring/{id}",
            get(keyring::internal_key),
        )
        .route("/v1/internal/raft/info", get(operator::raft_info))
        .route("/v1/internal/raft/join", post(operator::raft_join))
        .route("/v1/event/stream", get(events::stream))
        .route(
            "/v1/internal/node/register",
            post(internal::node_register).put(internal::node_register),
        )
        .route(
            "/v1/internal/node/{id}/heartbeat",
            post(internal::node_heartbeat).put(internal::node_heartbeat),
        )
        .route(
            "/v1/internal/node/{id}/allocations",
            post(internal::node_update_allocs).put(internal::node_update_allocs),
        )
        .route(
            "/v1/internal/node/{id}/client-allocs",
            get(internal::node_client_allocs),
        )
        .route(
            "/v1/internal/node/{id}/services",
            post(services::node_sync).put(services::node_sync),
        )
        .route(
            "/v1/internal/node/{id}/allocs/pull",
            post(internal::node_pull_allocs),
        )
        .route(
            "/v1/internal/node/{id}/acl/resolve",
            post(internal::node_resolve_token),
        )
        .route(
            "/v1/acl/bootstrap",
            post(acl::bootstrap).put(acl::bootstrap),
        )
        .route("/v1/acl/policies", get(acl::list_policies))
        .route(
            "/v1/acl/policy/{name}",
            get(acl::read_policy)
                .put(acl::write_policy)
                .post(acl::write_policy)
                .delete(acl::delete_policy),
        )
        .route("/v1/acl/tokens", get(acl::list_tokens))
        .route(
            "/v1/acl/token",
            post(acl::create_token).put(acl::create_token),
        )
        .route("/v1/acl/token/self", get(acl::token_self))
        .route(
            "/v1/acl/token/{id}",
            get(acl::read_token)
                .put(acl::update_token)
                .post(acl::update_token)
                .delete(acl::delete_token),
        )
        .route("/v1/namespaces", get(namespaces::list))
        .route(
            "/v1/namespace",
            put(namespaces::apply).post(namespaces::apply),
        )
        .route(
            "/v1/namespace/{name}",
            get(namespaces::read)
                .put(namespaces::apply_at)
                .post(namespaces::apply_at)
                .delete(namespaces::delete),
        )
        .route("/v1/vars", get(variables::list))
        .route(
            "/v1/var/{*path}",
            get(variables::read)
                .put(variables::write)
                .post(variables::write)
                .delete(variables::delete),
        )
        .route("/v1/internal/node/{id}/var", get(variables::node_read))
        .merge(ui::router())
        .fallback(|| async { error::ApiError::NotFound("path".to_owned()) })
        .layer(axum::middleware::from_fn_with_state(
            server.clone(),
            forward::forward_to_leader,
        ))
        .layer(axum::middleware::from_fn_with_state(
            body_limit,
            decode::limit_body,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(server)
}

/// `router` behind the identity middleware (every route of an agent's listeners: the API, the
/// client routes merged beside it, the servers' Raft routes), which resolves the caller and
/// enforces ACLs ([`identity`]).
pub fn with_identity(router: Router, server: Arc<Server>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        server,
        identity::resolve_identity,
    ))
}
