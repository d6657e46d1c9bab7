//! The native service catalog: `/v1/services`, `/v1/service/:name` (GET, blocking),
//! `/v1/service/:name/:id` (DELETE), `/v1/job/:id/services`, `/v1/allocation/:id/services`
//! (Nomad: `command/agent/service_registration_endpoint.go`), and the clients' sync under
//! `/v1/internal/node/:id/services`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::jobs::parse_body;
use crate::api::blocking::{blocking_query, with_meta};
use crate::api::error::ApiError;
use crate::api::identity::Identity;
use crate::api::query::QueryOptions;
use crate::api::types::client::EmptyResponse;
use crate::api::types::services::{
    ServiceRegistration, ServiceRegistrationListStub, ServiceSyncRequest, ServiceSyncResponse,
};
use crate::server::Server;
use crate::server::state::{StateSnapshot, Table};
use crate::structs::{JobId, NodeId, ServiceRegistrationStub};

fn registrations<'a>(
    snapshot: &'a StateSnapshot,
    query: &'a QueryOptions,
    identity: &'a Identity,
) -> impl Iterator<Item = &'a Arc<ServiceRegistration>> + 'a {
    snapshot
        .tables()
        .services
        .values()
        .filter(|registration| query.all_namespaces() || registration.namespace == query.namespace)
        .filter(|registration| identity.may_read_namespace(&registration.namespace))
}

/// `GET /v1/services`: per namespace, each service's name and the union of its tags.
pub async fn list(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    blocking_query(&server, &query, &[Table::Services], |snapshot| {
        let mut by_namespace: BTreeMap<&str, BTreeMap<&str, BTreeSet<&str>>> = BTreeMap::new();
        for registration in registrations(snapshot, &query, &identity) {
            by_namespace
                .entry(&registration.namespace)
                .or_default()
                .entry(&registration.service_name)
                .or_default()
                .extend(registration.tags.iter().map(String::as_str));
        }
        Ok(by_namespace
            .into_iter()
            .map(|(namespace, services)| ServiceRegistrationListStub {
                namespace: namespace.to_owned(),
                services: services
                    .into_iter()
                    .map(|(name, tags)| ServiceRegistrationStub {
                        service_name: name.to_owned(),
                        tags: tags.into_iter().map(str::to_owned).collect(),
                    })
                    .collect(),
            })
            .collect::<Vec<_>>())
    })
    .await
}

/// `GET /v1/service/:name`: every instance of the service.
pub async fn read(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    blocking_query(&server, &query, &[Table::Services], |snapshot| {
        Ok(registrations(snapshot, &query, &identity)
            .filter(|registration| registration.service_name == name)
            .cloned()
            .collect::<Vec<_>>())
    })
    .await
}

/// `DELETE /v1/service/:name/:id`.
pub async fn delete(
    State(server): State<Arc<Server>>,
    Path((name, id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let index = server.service_delete(&query.namespace, &name, &id).await?;
    Ok(with_meta(
        &server,
        index,
        Json(EmptyResponse {}).into_response(),
    ))
}

/// `GET /v1/job/:id/services`.
pub async fn by_job(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let job_id = JobId::from(job_id);
    blocking_query(&server, &query, &[Table::Services], |snapshot| {
        Ok(registrations(snapshot, &query, &identity)
            .filter(|registration| registration.job_id == job_id)
            .cloned()
            .collect::<Vec<_>>())
    })
    .await
}

/// `GET /v1/allocation/:id/services`.
pub async fn by_alloc(
    State(server): State<Arc<Server>>,
    Path(alloc_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    blocking_query(&server, &query, &[Table::Services], |snapshot| {
        Ok(snapshot
            .tables()
            .services
            .values()
            .filter(|registration| registration.alloc_id.as_str() == alloc_id)
            .cloned()
            .collect::<Vec<_>>())
    })
    .await
}

/// `PUT /v1/internal/node/:id/services`: a client's registrations and deregistrations.
/// Only the node itself, proved by its secret in `X-Nomad-Token`, may sync.
pub async fn node_sync(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Path(node_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let node_id = NodeId::from(node_id);
    server.authenticate_node(&node_id, identity.token.as_deref())?;
    let request: ServiceSyncRequest = parse_body(&body)?;
    let index = server
        .service_sync(&node_id, request.upserts, request.deletes)
        .await?;
    Ok(with_meta(
        &server,
        index,
        Json(ServiceSyncResponse { index }).into_response(),
    ))
}
