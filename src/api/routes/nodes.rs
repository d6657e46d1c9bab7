//! `/v1/nodes`, `/v1/node/:id`, `/v1/node/:id/allocations`, `/v1/node/:id/drain`,
//! `/v1/node/:id/eligibility` (Nomad: `command/agent/node_endpoint.go`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

use super::by_id_or_prefix;
use super::jobs::parse_body;
use crate::api::blocking::{blocking_list, blocking_query, with_meta};
use crate::api::error::ApiError;
use crate::api::query::QueryOptions;
use crate::api::types::nodes::{
    NodeDrainUpdateResponse, NodeListStub, NodeUpdateDrainRequest, NodeUpdateEligibilityRequest,
};
use crate::server::Server;
use crate::server::state::{StateSnapshot, Table};
use crate::structs::{Node, NodeId, SchedulingEligibility};

pub async fn list(
    State(server): State<Arc<Server>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let with_attributes = query.flag("os")?;
    let token = |stub: &NodeListStub| stub.id.to_string();
    blocking_list(&server, &query, &[Table::Nodes], token, |snapshot| {
        Ok(snapshot
            .nodes_with_prefix(&query.prefix)
            .map(|node| NodeListStub::new(node, with_attributes))
            .collect::<Vec<_>>())
    })
    .await
}

fn find_node(snapshot: &StateSnapshot, node_id: &str) -> Result<Arc<Node>, ApiError> {
    by_id_or_prefix(
        "node",
        node_id,
        snapshot.tables().nodes.get(&NodeId::from(node_id)).cloned(),
        snapshot.nodes_with_prefix(node_id),
    )
}

pub async fn read(
    State(server): State<Arc<Server>>,
    Path(node_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    blocking_query(&server, &query, &[Table::Nodes], |snapshot| {
        let mut node = (*find_node(snapshot, &node_id)?).clone();
        // The node's secret is for the node alone.
        node.secret_id.clear();
        Ok(node)
    })
    .await
}

pub async fn allocations(
    State(server): State<Arc<Server>>,
    axum::Extension(identity): axum::Extension<crate::api::identity::Identity>,
    Path(node_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    blocking_query(&server, &query, &[Table::Allocs], |snapshot| {
        let node_id = match find_node(snapshot, &node_id) {
            Ok(node) => node.id.clone(),
            // A node that has not registered yet simply has no allocations.
            Err(ApiError::NotFound(_)) => NodeId::from(node_id.as_str()),
            Err(error) => return Err(error),
        };
        // Nomad: node:read lists the node, each allocation needs read-job in its namespace.
        let mut allocs = crate::scheduler::State::allocs_by_node(snapshot, &node_id);
        allocs.retain(|alloc| identity.may_read_namespace(&alloc.namespace));
        Ok(allocs)
    })
    .await
}

pub async fn drain(
    State(server): State<Arc<Server>>,
    Path(node_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: NodeUpdateDrainRequest = parse_body(&body)?;
    let node = find_node(&server.store.snapshot(), &node_id)?;
    let now = crate::server::now_unix_nanos();
    let strategy = request.drain_spec.map(|spec| {
        spec.strategy(
            now,
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        )
    });
    let response = server
        .node_update_drain(&node.id, strategy, request.mark_eligible)
        .await?;
    let index = response.index;
    let body = NodeDrainUpdateResponse {
        eval_ids: response.eval_ids,
        eval_create_index: response.eval_create_index,
        node_modify_index: index,
        index,
    };
    Ok(with_meta(&server, index, Json(body).into_response()))
}

pub async fn eligibility(
    State(server): State<Arc<Server>>,
    Path(node_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: NodeUpdateEligibilityRequest = parse_body(&body)?;
    let eligibility = match request.eligibility.as_str() {
        "eligible" => SchedulingEligibility::Eligible,
        "ineligible" => SchedulingEligibility::Ineligible,
        other => {
            return Err(ApiError::BadRequest(format!(
                "invalid scheduling eligibility {other:?}"
            )));
        }
    };
    let node = find_node(&server.store.snapshot(), &node_id)?;
    let response = server
        .node_update_eligibility(&node.id, eligibility)
        .await?;
    let index = response.index;
    let body = NodeDrainUpdateResponse {
        eval_ids: response.eval_ids,
        eval_create_index: response.eval_create_index,
        node_modify_index: index,
        index,
    };
    Ok(with_meta(&server, index, Json(body).into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_bodies_are_strict() {
        for body in [
            &b"[]"[..],
            b"{\"DrainSpec\": []}",
            b"{\"DrainSpec\": {\"Deadline\": \"1h\"}}",
        ] {
            let error = parse_body::<NodeUpdateDrainRequest>(body).expect_err("not a drain body");
            assert!(error.to_string().contains("invalid type"), "{error}");
        }
    }
}
