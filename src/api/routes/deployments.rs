//! `/v1/deployments`, `/v1/deployment/:id` (Nomad: `command/agent/deployment_endpoint.go`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Response;

use super::by_id_or_prefix;
use crate::api::blocking::blocking_query;
use crate::api::error::ApiError;
use crate::api::query::QueryOptions;
use crate::server::Server;
use crate::server::state::Table;
use crate::structs::DeploymentId;

pub async fn list(
    State(server): State<Arc<Server>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    blocking_query(&server, &query, &[Table::Deployments], |snapshot| {
        Ok(snapshot
            .deployments_with_prefix(&query.prefix)
            .filter(|deployment| query.all_namespaces() || deployment.namespace == query.namespace)
            .cloned()
            .collect::<Vec<_>>())
    })
    .await
}

pub async fn read(
    State(server): State<Arc<Server>>,
    Path(deployment_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    blocking_query(&server, &query, &[Table::Deployments], |snapshot| {
        by_id_or_prefix(
            "deployment",
            &deployment_id,
            snapshot.deployment(&DeploymentId::from(deployment_id.clone())),
            snapshot.deployments_with_prefix(&deployment_id),
        )
    })
    .await
}
