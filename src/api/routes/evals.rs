//! `/v1/evaluations`, `/v1/evaluation/:id`, `/v1/evaluation/:id/allocations` (Nomad:
//! `command/agent/eval_endpoint.go`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Response;

use super::by_id_or_prefix;
use crate::api::blocking::{blocking_list, blocking_query};
use crate::api::error::ApiError;
use crate::api::list::namespaced_token;
use crate::api::query::QueryOptions;
use crate::api::types::allocs::AllocListStub;
use crate::server::Server;
use crate::server::state::Table;
use crate::structs::{EvalId, Evaluation};

pub async fn list(
    State(server): State<Arc<Server>>,
    axum::Extension(identity): axum::Extension<crate::api::identity::Identity>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let job_filter = query.params.get("job").cloned();
    let status_filter = query.params.get("status").cloned();
    let token = |eval: &Arc<Evaluation>| namespaced_token(&query, &eval.namespace, &eval.id);
    blocking_list(&server, &query, &[Table::Evals], token, |snapshot| {
        Ok(snapshot
            .evals_with_prefix(&query.prefix)
            .filter(|eval| query.all_namespaces() || eval.namespace == query.namespace)
            .filter(|eval| identity.may_read_namespace(&eval.namespace))
            .filter(|eval| job_filter.as_ref().is_none_or(|job| *eval.job_id == **job))
            .filter(|eval| {
                status_filter
                    .as_ref()
                    .is_none_or(|status| eval.status.to_string() == *status)
            })
            .cloned()
            .collect::<Vec<_>>())
    })
    .await
}

pub async fn read(
    State(server): State<Arc<Server>>,
    Path(eval_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    blocking_query(&server, &query, &[Table::Evals], |snapshot| {
        by_id_or_prefix(
            "eval",
            &eval_id,
            snapshot.eval(&EvalId::from(eval_id.clone())),
            snapshot.evals_with_prefix(&eval_id),
        )
    })
    .await
}

pub async fn allocations(
    State(server): State<Arc<Server>>,
    Path(eval_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    blocking_query(&server, &query, &[Table::Allocs], |snapshot| {
        let eval = by_id_or_prefix(
            "eval",
            &eval_id,
            snapshot.eval(&EvalId::from(eval_id.clone())),
            snapshot.evals_with_prefix(&eval_id),
        )?;
        Ok(snapshot
            .allocs_by_eval(&eval)
            .iter()
            .map(|alloc| AllocListStub::new(alloc, false))
            .collect::<Vec<_>>())
    })
    .await
}
