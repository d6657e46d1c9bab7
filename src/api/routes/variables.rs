//! `/v1/vars`, `/v1/var/:path`, as Nomad's (`command/agent/variable_endpoint.go`), and the
//! clients' reads for their tasks under `/v1/internal/node/:id/var`.
//!
//! | method and path                           | body       | reply                | needs     |
//! |-------------------------------------------|------------|----------------------|-----------|
//! | `GET /v1/vars?prefix=&namespace=`         |            | `[VariableMetadata]` | `list`    |
//! | `GET /v1/var/:path?namespace=`            |            | `Variable`           | `read`    |
//! | `PUT /v1/var/:path?namespace=&cas=`       | `Variable` | `Variable`           | `write`   |
//! | `DELETE /v1/var/:path?namespace=&cas=`    |            | empty                | `destroy` |
//! | `GET /v1/internal/node/:id/var?alloc_id=&task=&path=` |  | `Variable`         | node secret, the task's implicit paths |
//!
//! Capabilities are those of the token's `variables` rules for the path in the namespace
//! ([`crate::acl::Acl::allow_variable_op`]). A check-and-set conflict (`cas` not the stored
//! modify index; 0: the variable must not exist) is a 409 whose body is the stored variable, its
//! items only for a caller who may read them, as Nomad's.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::jobs::parse_body;
use crate::acl::PERMISSION_DENIED;
use crate::api::blocking::{blocking_query, with_meta};
use crate::api::error::ApiError;
use crate::api::identity::Identity;
use crate::api::query::QueryOptions;
use crate::server::state::{ApplyError, ObjectKind, Table};
use crate::server::{Server, ServerError};
use crate::structs::{AllocId, NodeId, Variable, VariableMetadata};

fn require(
    identity: &Identity,
    namespace: &str,
    path: &str,
    capability: &str,
) -> Result<(), ApiError> {
    if identity.acl.allow_variable_op(namespace, path, capability) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(PERMISSION_DENIED.to_owned()))
    }
}

/// The `cas` parameter: the modify index a write or delete expects.
fn cas_of(query: &QueryOptions) -> Result<Option<u64>, ApiError> {
    query
        .params
        .get("cas")
        .map(|text| {
            text.parse()
                .map_err(|_| ApiError::BadRequest(format!("invalid cas value {text:?}")))
        })
        .transpose()
}

/// `GET /v1/vars`: the metadata of the variables the caller may list.
pub async fn list(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    blocking_query(&server, &query, &[Table::Variables], |snapshot| {
        Ok(snapshot
            .tables()
            .variables_with_prefix(&query.namespace, &query.prefix)
            .filter(|variable| {
                let meta = &variable.meta;
                identity
                    .acl
                    .allow_variable_op(&meta.namespace, &meta.path, "list")
            })
            .map(|variable| variable.meta.clone())
            .collect::<Vec<VariableMetadata>>())
    })
    .await
}

/// `GET /v1/var/:path`.
pub async fn read(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Path(path): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    require(&identity, &query.namespace, &path, "read")?;
    blocking_query(&server, &query, &[Table::Variables], |snapshot| {
        let sealed = snapshot
            .tables()
            .variable(&query.namespace, &path)
            .ok_or_else(|| ApiError::NotFound("variable".to_owned()))?;
        Ok(server.variable_open(sealed)?)
    })
    .await
}

/// The 409 of a check-and-set conflict: the stored variable, its items only for a caller who
/// may read them.
fn conflict(
    server: &Server,
    identity: &Identity,
    namespace: &str,
    path: &str,
) -> Result<Response, ApiError> {
    let mut stored = server
        .variable_read(namespace, path)?
        .unwrap_or_else(|| Variable {
            namespace: namespace.to_owned(),
            path: path.to_owned(),
            ..Variable::default()
        });
    if !identity.acl.allow_variable_op(namespace, path, "read") {
        stored.items.clear();
    }
    Ok((StatusCode::CONFLICT, Json(stored)).into_response())
}

/// `PUT /v1/var/:path`.
pub async fn write(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Path(path): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let asked_namespace = params.contains_key("namespace");
    let query = QueryOptions::parse(params)?;
    let cas = cas_of(&query)?;
    let mut variable: Variable = parse_body(&body)?;
    if asked_namespace || variable.namespace.is_empty() {
        variable.namespace = query.namespace.clone();
    }
    if variable.path.is_empty() {
        variable.path = path.clone();
    }
    if variable.path != path {
        return Err(ApiError::BadRequest(
            "variable path does not match request path".to_owned(),
        ));
    }
    require(&identity, &variable.namespace, &path, "write")?;
    let namespace = variable.namespace.clone();
    match server.variable_upsert(variable, cas).await {
        Ok(stored) => {
            let index = stored.modify_index;
            Ok(with_meta(&server, index, Json(stored).into_response()))
        }
        Err(ServerError::State(ApplyError::VariableCas { .. })) => {
            conflict(&server, &identity, &namespace, &path)
        }
        Err(error) => Err(error.into()),
    }
}

/// `DELETE /v1/var/:path`.
pub async fn delete(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Path(path): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    let cas = cas_of(&query)?;
    require(&identity, &query.namespace, &path, "destroy")?;
    match server.variable_delete(&query.namespace, &path, cas).await {
        Ok(index) => Ok(with_meta(&server, index, ().into_response())),
        Err(ServerError::State(ApplyError::VariableCas { .. })) => {
            conflict(&server, &identity, &query.namespace, &path)
        }
        Err(error) => Err(error.into()),
    }
}

/// `GET /v1/internal/node/:id/var`: a variable a task of the node reads through its templates.
pub async fn node_read(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Path(node_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let param = |name: &str| {
        params
            .get(name)
            .filter(|value| !value.is_empty())
            .cloned()
            .ok_or_else(|| ApiError::BadRequest(format!("missing {name}")))
    };
    let (alloc_id, task, path) = (param("alloc_id")?, param("task")?, param("path")?);
    let variable = server
        .workload_variable(
            &NodeId::from(node_id),
            identity.token.as_deref(),
            &AllocId::from(alloc_id),
            &task,
            &path,
        )
        .map_err(|error| match error {
            ServerError::State(ApplyError::NotFound {
                kind: ObjectKind::Variable,
                ..
            }) => ApiError::NotFound("variable".to_owned()),
            other => other.into(),
        })?;
    let index = variable.modify_index;
    Ok(with_meta(&server, index, Json(variable).into_response()))
}
