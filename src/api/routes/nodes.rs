//! `/v1/nodes`, `/v1/node/:id`, `/v1/node/:id/allocations`, `/v1/node/:id/drain`,
//! `/v1/node/:id/eligibility` (Nomad: `command/agent/node_endpoint.go`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::ser::{Error as _, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

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
use crate::structs::{Allocation, Job, JobsWrittenApart, Node, NodeId, SchedulingEligibility};

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
        Ok(JobsOnce(allocs))
    })
    .await
}

/// Full allocations, each with its `Job` as Nomad answers, each distinct job serialised once:
/// the allocations of one job version share one `Arc<Job>` in the state store, and a node's
/// 10,000 allocations of one job would otherwise serialise it 10,000 times.
struct JobsOnce(Vec<Arc<Allocation>>);

/// One allocation and its job's JSON, written after the allocation's other fields.
#[derive(Serialize)]
struct AllocWithJob<'a> {
    #[serde(flatten)]
    alloc: &'a Allocation,
    #[serde(rename = "Job")]
    job: Option<&'a RawValue>,
}

impl Serialize for JobsOnce {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut jobs: HashMap<*const Job, Box<RawValue>> = HashMap::new();
        for job in self.0.iter().filter_map(|alloc| alloc.job.as_ref()) {
            if let std::collections::hash_map::Entry::Vacant(entry) = jobs.entry(Arc::as_ptr(job)) {
                entry.insert(serde_json::value::to_raw_value(&**job).map_err(S::Error::custom)?);
            }
        }
        let _apart = JobsWrittenApart::enter();
        let mut list = serializer.serialize_seq(Some(self.0.len()))?;
        for alloc in &self.0 {
            let job = alloc
                .job
                .as_ref()
                .and_then(|job| jobs.get(&Arc::as_ptr(job)))
                .map(|raw| &**raw);
            list.serialize_element(&AllocWithJob { alloc, job })?;
        }
        list.end()
    }
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

#[cfg(test)]
mod jobs_once_tests {
    use std::sync::Arc;

    use super::JobsOnce;
    use crate::structs::{Allocation, Job, JobId};

    /// The answer is what serialising each allocation in full gives, fields in any order: each
    /// allocation carries its own job (two jobs shared by three allocations, one with none).
    #[test]
    fn jobs_once_writes_what_full_allocations_would() -> anyhow::Result<()> {
        let job = |id: &str| {
            Arc::new(Job {
                id: JobId::from(id),
                name: id.to_owned(),
                ..Job::default()
            })
        };
        let (web, db) = (job("web"), job("db"));
        let alloc = |name: &str, job: Option<&Arc<Job>>| {
            Arc::new(Allocation {
                name: name.to_owned(),
                job: job.cloned(),
                ..Allocation::default()
            })
        };
        let allocs = vec![
            alloc("web.0", Some(&web)),
            alloc("db.0", Some(&db)),
            alloc("web.1", Some(&web)),
            alloc("orphan", None),
        ];
        let expected = serde_json::to_value(&allocs)?;
        let text = serde_json::to_string(&JobsOnce(allocs))?;
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text)?, expected);
        assert_eq!(expected[1]["Job"]["ID"], "db");
        assert!(expected[3]["Job"].is_null());
        // The allocations serialise in full again once the answer is written.
        let after = serde_json::to_value(alloc("web.2", Some(&web)))?;
        assert_eq!(after["Job"]["ID"], "web");
        Ok(())
    }
}
