//! `/v1/allocations`, `/v1/allocation/:id`, `/v1/allocation/:id/stop` (Nomad:
//! `command/agent/alloc_endpoint.go`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

use super::by_id_or_prefix;
use crate::api::blocking::{blocking_list, blocking_query, with_meta};
use crate::api::error::ApiError;
use crate::api::list::namespaced_token;
use crate::api::query::QueryOptions;
use crate::api::types::allocs::{AllocListStub, AllocStopResponse};
use crate::server::Server;
use crate::server::state::Table;
use crate::structs::AllocId;

pub async fn list(
    State(server): State<Arc<Server>>,
    axum::Extension(identity): axum::Extension<crate::api::identity::Identity>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let resources = query.flag("resources")?;
    let token = |stub: &AllocListStub| namespaced_token(&query, &stub.namespace, &stub.id);
    blocking_list(&server, &query, &[Table::Allocs], token, |snapshot| {
        Ok(snapshot
            .allocs_with_prefix(&query.prefix)
            .filter(|alloc| query.all_namespaces() || alloc.namespace == query.namespace)
            .filter(|alloc| identity.may_read_namespace(&alloc.namespace))
            .map(|alloc| AllocListStub::new(alloc, resources))
            .collect::<Vec<_>>())
    })
    .await
}

pub async fn read(
    State(server): State<Arc<Server>>,
    Path(alloc_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    blocking_query(&server, &query, &[Table::Allocs], |snapshot| {
        by_id_or_prefix(
            "alloc",
            &alloc_id,
            snapshot.alloc(&AllocId::from(alloc_id.clone())),
            snapshot.allocs_with_prefix(&alloc_id),
        )
    })
    .await
}

pub async fn stop(
    State(server): State<Arc<Server>>,
    Path(alloc_id): Path<String>,
) -> Result<Response, ApiError> {
    let snapshot = server.store.snapshot();
    let alloc = by_id_or_prefix(
        "alloc",
        &alloc_id,
        snapshot.alloc(&AllocId::from(alloc_id.clone())),
        snapshot.allocs_with_prefix(&alloc_id),
    )?;
    let response = server.alloc_stop(&alloc.id).await?;
    let index = response.index;
    let body = AllocStopResponse {
        eval_id: response.eval_id,
        index,
    };
    Ok(with_meta(&server, index, Json(body).into_response()))
}
