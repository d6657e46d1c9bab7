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
use axum::routing::post;
use axum::{Json, Router};
use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

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
            .json(request)
            .send()
            .await
            .map_err(|error| RPCError::Unreachable(Unreachable::new(&error)))?;
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

/// The receiving side: routes for the RPC listener.
pub fn router(raft: Raft) -> Router {
    Router::new()
        .route("/v1/internal/raft/append", post(append))
        .route("/v1/internal/raft/vote", post(vote))
        .route("/v1/internal/raft/snapshot", post(snapshot))
        .with_state(raft)
}

async fn append(
    State(raft): State<Raft>,
    Json(request): Json<AppendEntriesRequest<TypeConfig>>,
) -> Json<Result<AppendEntriesResponse<ServerId>, RaftError<ServerId>>> {
    Json(raft.append_entries(request).await)
}

async fn vote(
    State(raft): State<Raft>,
    Json(request): Json<VoteRequest<ServerId>>,
) -> Json<Result<VoteResponse<ServerId>, RaftError<ServerId>>> {
    Json(raft.vote(request).await)
}

async fn snapshot(
    State(raft): State<Raft>,
    Json(request): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Json<Result<InstallSnapshotResponse<ServerId>, RaftError<ServerId, InstallSnapshotError>>> {
    Json(raft.install_snapshot(request).await)
}
