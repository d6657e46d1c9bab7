//! `/v1/acl/...`: bootstrap, policies and tokens, as Nomad's (`command/agent/acl_endpoint.go`).
//!
//! | method and path                   | body        | reply                        | needs              |
//! |-----------------------------------|-------------|------------------------------|--------------------|
//! | `POST /v1/acl/bootstrap`          |             | `ACLToken` (management)      | nothing, once      |
//! | `GET /v1/acl/policies`            |             | `[ACLPolicyListStub]`        | management         |
//! | `GET /v1/acl/policy/:name`        |             | `ACLPolicy`                  | management or own  |
//! | `PUT/POST /v1/acl/policy/:name`   | `ACLPolicy` | empty                        | management         |
//! | `DELETE /v1/acl/policy/:name`     |             | empty                        | management         |
//! | `GET /v1/acl/tokens`              |             | `[ACLTokenListStub]`         | management         |
//! | `PUT/POST /v1/acl/token`          | `ACLToken`  | `ACLToken` (with its secret) | management         |
//! | `GET /v1/acl/token/self`          |             | `ACLToken`                   | the token itself   |
//! | `GET /v1/acl/token/:accessor`     |             | `ACLToken`                   | management         |
//! | `PUT/POST /v1/acl/token/:accessor`| `ACLToken`  | `ACLToken`                   | management         |
//! | `DELETE /v1/acl/token/:accessor`  |             | empty                        | management         |
//!
//! What each needs is checked by the identity middleware ([`crate::api::access`]); the
//! handlers only narrow what `Filtered` routes answer.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::jobs::parse_body;
use crate::api::blocking::with_meta;
use crate::api::error::ApiError;
use crate::api::identity::Identity;
use crate::server::Server;
use crate::server::node_identity::PERMISSION_DENIED;
use crate::structs::{AclPolicy, AclPolicyListStub, AclToken, AclTokenListStub};

fn denied() -> ApiError {
    ApiError::Forbidden(PERMISSION_DENIED.to_owned())
}

pub async fn bootstrap(State(server): State<Arc<Server>>) -> Result<Response, ApiError> {
    let token = server.acl_bootstrap().await?;
    let index = token.modify_index;
    Ok(with_meta(&server, index, Json(token).into_response()))
}

pub async fn list_policies(State(server): State<Arc<Server>>) -> Response {
    let snapshot = server.store.snapshot();
    let tables = snapshot.tables();
    let stubs: Vec<AclPolicyListStub> = tables
        .acl_policies
        .values()
        .map(|policy| policy.stub())
        .collect();
    with_meta(
        &server,
        tables.indexes.acl_policies,
        Json(stubs).into_response(),
    )
}

/// A management token reads any policy, a client token those it holds.
pub async fn read_policy(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let holds = identity
        .acl_token
        .as_ref()
        .is_some_and(|token| token.policies.contains(&name));
    if server.acl_enabled() && !identity.acl.is_management() && !holds {
        return Err(denied());
    }
    let snapshot = server.store.snapshot();
    let tables = snapshot.tables();
    let policy = tables
        .acl_policies
        .get(&name)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("ACL policy {name:?}")))?;
    Ok(with_meta(
        &server,
        tables.indexes.acl_policies,
        Json(policy).into_response(),
    ))
}

pub async fn write_policy(
    State(server): State<Arc<Server>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let mut policy: AclPolicy = parse_body(&body)?;
    if policy.name.is_empty() {
        policy.name = name.clone();
    }
    if policy.name != name {
        return Err(ApiError::BadRequest(
            "Policy name does not match request path".to_owned(),
        ));
    }
    let index = server.acl_policy_upsert(policy).await?;
    Ok(with_meta(&server, index, ().into_response()))
}

pub async fn delete_policy(
    State(server): State<Arc<Server>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let index = server.acl_policy_delete(&name).await?;
    Ok(with_meta(&server, index, ().into_response()))
}

pub async fn list_tokens(State(server): State<Arc<Server>>) -> Response {
    let snapshot = server.store.snapshot();
    let tables = snapshot.tables();
    let stubs: Vec<AclTokenListStub> = tables
        .acl_tokens
        .values()
        .map(|token| token.stub())
        .collect();
    with_meta(
        &server,
        tables.indexes.acl_tokens,
        Json(stubs).into_response(),
    )
}

/// `PUT /v1/acl/token`: a new token.
pub async fn create_token(
    State(server): State<Arc<Server>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let mut token: AclToken = parse_body(&body)?;
    if !token.accessor_id.is_empty() {
        return Err(ApiError::BadRequest(
            "a new token has no AccessorID: update one at /v1/acl/token/<accessor>".to_owned(),
        ));
    }
    token.secret_id.clear();
    let token = server.acl_token_upsert(token).await?;
    let index = token.modify_index;
    Ok(with_meta(&server, index, Json(token).into_response()))
}

/// `GET /v1/acl/token/self`: the caller's own token.
pub async fn token_self(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
) -> Result<Response, ApiError> {
    let token = identity
        .acl_token
        .ok_or_else(|| ApiError::Forbidden("ACL token not found".to_owned()))?;
    let index = token.modify_index;
    Ok(with_meta(&server, index, Json(token).into_response()))
}

pub async fn read_token(
    State(server): State<Arc<Server>>,
    Path(accessor_id): Path<String>,
) -> Result<Response, ApiError> {
    let snapshot = server.store.snapshot();
    let tables = snapshot.tables();
    let token = tables
        .acl_tokens
        .get(&accessor_id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("ACL token {accessor_id:?}")))?;
    Ok(with_meta(
        &server,
        tables.indexes.acl_tokens,
        Json(token).into_response(),
    ))
}

pub async fn update_token(
    State(server): State<Arc<Server>>,
    Path(accessor_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let mut token: AclToken = parse_body(&body)?;
    if token.accessor_id.is_empty() {
        token.accessor_id = accessor_id.clone();
    }
    if token.accessor_id != accessor_id {
        return Err(ApiError::BadRequest(
            "Token accessor ID does not match request path".to_owned(),
        ));
    }
    let token = server.acl_token_upsert(token).await?;
    let index = token.modify_index;
    Ok(with_meta(&server, index, Json(token).into_response()))
}

pub async fn delete_token(
    State(server): State<Arc<Server>>,
    Path(accessor_id): Path<String>,
) -> Result<Response, ApiError> {
    let index = server.acl_token_delete(&accessor_id).await?;
    Ok(with_meta(&server, index, ().into_response()))
}
