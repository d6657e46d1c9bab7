//! Raft traffic between servers: append-entries, vote and install-snapshot as HTTP POSTs of JSON
//! on the RPC port.
//!
//! ```text
//!   leader ── POST /v1/internal/raft/append   ──► follower: Raft::append_entries
//!          ── POST /v1/internal/raft/vote     ──► Raft::vote
//!          ── POST /v1/internal/raft/snapshot ──► Raft::install_snapshot (chunks)
//! ```
//! A reply is the JSON of `Result<Response, RaftError>`, so a remote Raft error travels back as
//! itself; a transport failure becomes `RPCError::Unreachable`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, BasicNode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::LastContact;
use super::types::{Raft, ServerId, TypeConfig};

/// Makes connections to the other servers.
#[derive(Clone, Debug, Default)]
pub struct Network {
    client: reqwest::Client,
}

/// A connection to one server.
#[derive(Debug)]
pub struct Connection {
    client: reqwest::Client,
    target: ServerId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: ServerId, node: &BasicNode) -> Self::Network {
        Connection {
            client: self.client.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

impl Connection {
    async fn post<Req, Resp, E>(
        &self,
        path: &str,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<ServerId, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let url = format!("http://{}/v1/internal/raft/{path}", self.addr);
        let response = self
            .client
            .post(url)
            .timeout(option.hard_ttl())
            .header(TARGET_HEADER, self.target)
            .json(request)
            .send()
            .await
            .map_err(|error| RPCError::Unreachable(Unreachable::new(&error)))?;
        if !response.status().is_success() {
            // Another server at the address (one restarted with a wiped data dir), or a
            // refusal before Raft saw the message: the target is not reachable as itself.
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(RPCError::Unreachable(Unreachable::new(&AnyError::error(
                format!("{status}: {}", body.trim()),
            ))));
        }
        let result: Result<Resp, E> = response
            .json()
            .await
            .map_err(|error| RPCError::Network(NetworkError::new(&error)))?;
        result.map_err(|error| RPCError::RemoteError(RemoteError::new(self.target, error)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<ServerId>, RPCError<ServerId, BasicNode, RaftError<ServerId>>>
    {
        self.post("append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<ServerId>,
        RPCError<ServerId, BasicNode, RaftError<ServerId, InstallSnapshotError>>,
    > {
        self.post("snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<ServerId>,
        option: RPCOption,
    ) -> Result<VoteResponse<ServerId>, RPCError<ServerId, BasicNode, RaftError<ServerId>>> {
        self.post("vote", &rpc, &option).await
    }
}

/// The Raft ID a message is meant for. A server answers only messages meant for itself: a server
/// restarted with a wiped data dir has a new ID at the old address, and must not answer for the
/// old one (its empty log would look like a follower that lost committed entries).
pub const TARGET_HEADER: &str = "X-Caravan-Raft-Target";

/// The largest Raft message accepted: a batch of entries or a snapshot chunk
/// ([`SNAPSHOT_CHUNK_BYTES`]) with room to spare; axum's default of 2 MiB would refuse both.
pub const MAX_RPC_BODY_BYTES: usize = 64 * 1024 * 1024;

/// How much of a snapshot one install-snapshot message carries.
pub const SNAPSHOT_CHUNK_BYTES: u64 = 4 * 1024 * 1024;

/// The receiving side: routes for the RPC listener. Append-entries and install-snapshot from
/// the current leader mark `last_contact` (what `X-Nomad-LastContact` reports on a follower).
pub fn router(raft: Raft, last_contact: LastContact) -> Router {
    Router::new()
        .route("/v1/internal/raft/append", post(append))
        .route("/v1/internal/raft/vote", post(vote))
        .route("/v1/internal/raft/snapshot", post(snapshot))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_RPC_BODY_BYTES))
        .with_state((raft, last_contact))
}

type RpcState = (Raft, LastContact);

/// The refusal of a message meant for another server ID, if it is one.
fn wrong_target(raft: &Raft, headers: &HeaderMap) -> Option<Response> {
    let target = headers
        .get(TARGET_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<ServerId>().ok());
    let own = raft.metrics().borrow().id;
    (target != Some(own)).then(|| {
        (
            StatusCode::CONFLICT,
            format!("this is server {own}, not {target:?}"),
        )
            .into_response()
    })
}

async fn append(
    State((raft, last_contact)): State<RpcState>,
    headers: HeaderMap,
    Json(request): Json<AppendEntriesRequest<TypeConfig>>,
) -> Response {
    if let Some(refused) = wrong_target(&raft, &headers) {
        return refused;
    }
    let result = raft.append_entries(request).await;
    // A higher vote means the sender is no longer the leader; any other reply is its contact.
    if matches!(&result, Ok(reply) if !matches!(reply, AppendEntriesResponse::HigherVote(_))) {
        last_contact.touch();
    }
    Json(result).into_response()
}

async fn vote(
    State((raft, _)): State<RpcState>,
    headers: HeaderMap,
    Json(request): Json<VoteRequest<ServerId>>,
) -> Response {
    if let Some(refused) = wrong_target(&raft, &headers) {
        return refused;
    }
    Json(raft.vote(request).await).into_response()
}

async fn snapshot(
    State((raft, last_contact)): State<RpcState>,
    headers: HeaderMap,
    Json(request): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Response {
    if let Some(refused) = wrong_target(&raft, &headers) {
        return refused;
    }
    let result = raft.install_snapshot(request).await;
    if result.is_ok() {
        last_contact.touch();
    }
    Json(result).into_response()
}
