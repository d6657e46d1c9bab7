//! `/v1/node/pools` and `/v1/node/pool/:name[/nodes|/jobs]` (Nomad:
//! `command/agent/node_pool_endpoint.go`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

use super::jobs::parse_body;
use crate::api::blocking::{blocking_list, blocking_query, with_meta};
use crate::api::error::ApiError;
use crate::api::identity::Identity;
use crate::api::list::namespaced_token;
use crate::api::query::QueryOptions;
use crate::api::types::jobs::JobListStub;
use crate::api::types::nodes::NodeListStub;
use crate::server::Server;
use crate::server::node_pools::{node_pool, node_pools};
use crate::server::state::{StateSnapshot, Table};
use crate::structs::{NODE_POOL_ALL, NodePool};

pub async fn list(
    State(server): State<Arc<Server>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let token = |pool: &Arc<NodePool>| pool.name.clone();
    blocking_list(&server, &query, &[Table::NodePools], token, |snapshot| {
        Ok(node_pools(snapshot)
            .into_iter()
            .filter(|pool| pool.name.starts_with(&query.prefix))
            .collect::<Vec<_>>())
    })
    .await
}

/// `PUT /v1/node/pools`: the body is the pool itself, as Nomad's API client sends it.
pub async fn upsert(
    State(server): State<Arc<Server>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let pool: NodePool = parse_body(&body)?;
    let index = server.node_pool_upsert(pool).await?;
    Ok(with_meta(&server, index, ().into_response()))
}

fn find_pool(snapshot: &StateSnapshot, name: &str) -> Result<Arc<NodePool>, ApiError> {
    node_pool(snapshot, name).ok_or_else(|| ApiError::NotFound("node pool".to_owned()))
}

pub async fn read(
    State(server): State<Arc<Server>>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    blocking_query(&server, &query, &[Table::NodePools], |snapshot| {
        find_pool(snapshot, &name)
    })
    .await
}

pub async fn delete(
    State(server): State<Arc<Server>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let index = server.node_pool_delete(&name).await?;
    Ok(with_meta(&server, index, ().into_response()))
}

/// The nodes of a pool (`all`: every node).
pub async fn nodes(
    State(server): State<Arc<Server>>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let with_attributes = query.flag("os")?;
    let token = |stub: &NodeListStub| stub.id.to_string();
    let tables = [Table::Nodes, Table::NodePools];
    blocking_list(&server, &query, &tables, token, |snapshot| {
        find_pool(snapshot, &name)?;
        Ok(snapshot
            .tables()
            .nodes
            .values()
            .filter(|node| name == NODE_POOL_ALL || node.node_pool == name)
            .map(|node| NodeListStub::new(node, with_attributes))
            .collect::<Vec<_>>())
    })
    .await
}

/// The jobs of a pool (for `all`, those registered in `all`) in the request's namespace (`*`: all) that the token may list.
pub async fn jobs(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let token = |stub: &JobListStub| namespaced_token(&query, &stub.namespace, &stub.id);
    let tables = [Table::Jobs, Table::JobSummaries, Table::NodePools];
    blocking_list(&server, &query, &tables, token, |snapshot| {
        find_pool(snapshot, &name)?;
        Ok(snapshot
            .jobs()
            .filter(|job| job.node_pool == name)
            .filter(|job| query.all_namespaces() || job.namespace == query.namespace)
            .filter(|job| identity.acl.allow_namespace_op(&job.namespace, "list-jobs"))
            .map(|job| {
                JobListStub::new(
                    job,
                    snapshot.job_summary(&job.namespace, &job.id).as_deref(),
                )
            })
            .collect::<Vec<_>>())
    })
    .await
}
