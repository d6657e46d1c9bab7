//! The root keyring: `/v1/operator/keyring/...` as Nomad's (`command/agent/keyring_endpoint.go`),
//! and the server-only route peers fetch key material from ([`crate::server::keyring_replication`]).
//!
//! | method and path                            | reply                          | needs                 |
//! |--------------------------------------------|--------------------------------|-----------------------|
//! | `GET /v1/operator/keyring/keys`            | `[RootKeyMeta]`                | management            |
//! | `PUT/POST /v1/operator/keyring/rotate`     | `{"Key": RootKeyMeta, "Index"}`| management            |
//! | `GET /v1/internal/server/keyring/:id`      | `KeyFile` (the key material)   | a server certificate  |

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Path, Query, State};
use axum::http::Extensions;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::api::blocking::{blocking_query, with_meta};
use crate::api::error::ApiError;
use crate::api::query::QueryOptions;
use crate::server::Server;
use crate::server::keyring_replication::key_request_refusal;
use crate::server::state::{ObjectKind, Table};
use crate::structs::RootKeyMeta;
use crate::tls::TlsPeer;

/// `GET /v1/operator/keyring/keys`: every root key's metadata, oldest first.
pub async fn list(
    State(server): State<Arc<Server>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = QueryOptions::parse(params)?;
    blocking_query(&server, &query, &[Table::RootKeys], |snapshot| {
        let mut keys: Vec<Arc<RootKeyMeta>> =
            snapshot.tables().root_keys.values().cloned().collect();
        keys.sort_by_key(|key| key.create_index);
        Ok(keys)
    })
    .await
}

/// Nomad's `KeyringRotateRootKeyResponse`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RotateResponse {
    key: Arc<RootKeyMeta>,
    index: u64,
}

/// `PUT /v1/operator/keyring/rotate`: a new active key.
pub async fn rotate(
    State(server): State<Arc<Server>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if params.get("full").is_some_and(|full| full != "false") {
        return Err(ApiError::BadRequest(
            "full re-encryption of variables is not supported: old variables stay readable with their key".to_owned(),
        ));
    }
    let (key, index) = server.root_key_rotate().await?;
    Ok(with_meta(
        &server,
        index,
        Json(RotateResponse { key, index }).into_response(),
    ))
}

/// `GET /v1/internal/server/keyring/:id`: the key's material, to a peer server only.
pub async fn internal_key(
    State(server): State<Arc<Server>>,
    Path(key_id): Path<String>,
    extensions: Extensions,
) -> Result<Response, ApiError> {
    let peer = extensions.get::<ConnectInfo<TlsPeer>>().map(|info| info.0);
    if let Some(reason) = key_request_refusal(&server, peer.as_ref()) {
        tracing::warn!(peer = ?peer.map(|peer| peer.remote), "root key request refused");
        return Err(ApiError::Forbidden(reason));
    }
    let file = server
        .keyring
        .key_file(&key_id)
        .ok_or_else(|| ApiError::NotFound(format!("{} {key_id:?}", ObjectKind::RootKey)))?;
    Ok(Json(file).into_response())
}
