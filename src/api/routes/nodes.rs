//! `/v1/nodes`, `/v1/node/:id`, `/v1/node/:id/allocations`, `/v1/node/:id/drain`,
//! `/v1/node/:id/eligibility` (Nomad: `command/agent/node_endpoint.go`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::by_id_or_prefix;
use super::jobs::parse_body;
use crate::api::blocking::{blocking_query, with_meta};
use crate::api::error::ApiError;
use crate::api::query::QueryOptions;
use crate::api::stubs::NodeListStub;
use crate::server::Server;
use crate::server::state::{StateSnapshot, Table};
use crate::structs::{DrainStrategy, Node, NodeId, SchedulingEligibility};

pub async fn list(
    State(server): State<Arc<Server>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let with_attributes = query.flag("os")?;
    blocking_query(&server, &query, &[Table::Nodes], |snapshot| {
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
        Ok(crate::scheduler::State::allocs_by_node(snapshot, &node_id))
    })
    .await
}

/// `api.DrainSpec`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DrainSpec {
    /// Nanoseconds; 0 drains without a deadline, a negative value forces the drain now (Nomad's
    /// `-force`).
    pub deadline: i64,
    pub ignore_system_jobs: bool,
}

impl DrainSpec {
    /// The drain strategy this spec asks for, started at `now` (Unix nanoseconds). The deadline
    /// saturates: `2^63-1` ns is as far in the future as time goes, never a wrap into the past.
    pub fn strategy(&self, now: i64, started_at: String) -> DrainStrategy {
        let force_deadline = match self.deadline {
            0 => 0,
            deadline if deadline < 0 => now,
            deadline => now.saturating_add(deadline),
        };
        DrainStrategy {
            deadline: Duration::from_nanos(u64::try_from(self.deadline.max(0)).unwrap_or(0)),
            ignore_system_jobs: self.ignore_system_jobs,
            force_deadline,
            started_at,
        }
    }
}

/// `api.NodeUpdateDrainRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DrainRequest {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub drain_spec: Option<DrainSpec>,
    pub mark_eligible: bool,
}

/// `api.NodeDrainUpdateResponse`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DrainResponse {
    #[serde(rename = "EvalIDs")]
    pub eval_ids: Vec<String>,
    pub eval_create_index: u64,
    pub node_modify_index: u64,
    pub index: u64,
}

pub async fn drain(
    State(server): State<Arc<Server>>,
    Path(node_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: DrainRequest = parse_body(&body)?;
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
    let body = DrainResponse {
        eval_ids: response.eval_ids,
        eval_create_index: response.eval_create_index,
        node_modify_index: index,
        index,
    };
    Ok(with_meta(&server, index, Json(body).into_response()))
}

/// `api.NodeUpdateEligibilityRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EligibilityRequest {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub eligibility: String,
}

pub async fn eligibility(
    State(server): State<Arc<Server>>,
    Path(node_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: EligibilityRequest = parse_body(&body)?;
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
    let body = DrainResponse {
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

    fn spec(deadline: i64) -> DrainSpec {
        DrainSpec {
            deadline,
            ignore_system_jobs: false,
        }
    }

    #[test]
    fn drain_deadlines_saturate_and_force() {
        let now = 1_700_000_000_000_000_000;
        let far = spec(i64::MAX).strategy(now, String::new());
        assert_eq!(far.force_deadline, i64::MAX, "never wraps into the past");
        assert_eq!(far.deadline, Duration::from_nanos(i64::MAX as u64));
        assert_eq!(spec(0).strategy(now, String::new()).force_deadline, 0);
        let forced = spec(-1).strategy(now, String::new());
        assert_eq!(
            (forced.force_deadline, forced.deadline),
            (now, Duration::ZERO)
        );
        assert_eq!(spec(5).strategy(now, String::new()).force_deadline, now + 5);
    }

    #[test]
    fn drain_bodies_are_strict() {
        for body in [
            &b"[]"[..],
            b"{\"DrainSpec\": []}",
            b"{\"DrainSpec\": {\"Deadline\": \"1h\"}}",
        ] {
            let error = parse_body::<DrainRequest>(body).expect_err("not a drain body");
            assert!(error.to_string().contains("invalid type"), "{error}");
        }
    }
}
