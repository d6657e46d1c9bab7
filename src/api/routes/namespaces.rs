//! `/v1/namespaces`, `/v1/namespace/:name`, as Nomad's (`command/agent/namespace_endpoint.go`).
//!
//! | method and path                    | body        | reply           | needs                    |
//! |------------------------------------|-------------|-----------------|--------------------------|
//! | `GET /v1/namespaces?prefix=`       |             | `[Namespace]`   | those the token may use  |
//! | `GET /v1/namespace/:name`          |             | `Namespace`     | any capability there     |
//! | `PUT/POST /v1/namespace[/:name]`   | `Namespace` | empty           | management               |
//! | `DELETE /v1/namespace/:name`       |             | empty           | management               |

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

use super::jobs::parse_body;
use crate::acl::PERMISSION_DENIED;
use crate::api::blocking::{blocking_query, with_meta};
use crate::api::error::ApiError;
use crate::api::identity::Identity;
use crate::api::query::QueryOptions;
use crate::server::Server;
use crate::server::state::Table;
use crate::structs::Namespace;

/// `GET /v1/namespaces`: the namespaces the caller may use, by name.
pub async fn list(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    blocking_query(&server, &query, &[Table::Namespaces], |snapshot| {
        Ok(snapshot
            .tables()
            .all_namespaces()
            .into_iter()
            .filter(|namespace| namespace.name.starts_with(&query.prefix))
            .filter(|namespace| identity.acl.allow_namespace(&namespace.name))
            .collect::<Vec<_>>())
    })
    .await
}

/// `GET /v1/namespace/:name`.
pub async fn read(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if !identity.acl.allow_namespace(&name) {
        return Err(ApiError::Forbidden(PERMISSION_DENIED.to_owned()));
    }
    let query = QueryOptions::parse(params)?;
    blocking_query(&server, &query, &[Table::Namespaces], |snapshot| {
        snapshot
            .tables()
            .namespace(&name)
            .ok_or_else(|| ApiError::NotFound(format!("namespace {name:?}")))
    })
    .await
}

/// `PUT /v1/namespace`: the body names the namespace.
pub async fn apply(
    State(server): State<Arc<Server>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let namespace: Namespace = parse_body(&body)?;
    let index = server.namespace_upsert(namespace).await?;
    Ok(with_meta(&server, index, ().into_response()))
}

/// `PUT /v1/namespace/:name`.
pub async fn apply_at(
    State(server): State<Arc<Server>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let mut namespace: Namespace = parse_body(&body)?;
    if namespace.name.is_empty() {
        namespace.name = name.clone();
    }
    if namespace.name != name {
        return Err(ApiError::BadRequest(
            "Namespace name does not match request path".to_owned(),
        ));
    }
    let index = server.namespace_upsert(namespace).await?;
    Ok(with_meta(&server, index, ().into_response()))
}

/// `DELETE /v1/namespace/:name`.
pub async fn delete(
    State(server): State<Arc<Server>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let index = server.namespace_delete(&name).await?;
    Ok(with_meta(&server, index, ().into_response()))
}
