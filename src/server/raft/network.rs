//! Raft traffic between servers: append-entries, vote and install-snapshot as HTTP POSTs on the
//! RPC port, in the binary [`codec`](crate::codec) (no JSON on the Raft path).
//!
//! ```text
//!   leader ── POST /v1/internal/raft/append   ──► follower: Raft::append_entries
//!          ── POST /v1/internal/raft/vote     ──► Raft::vote
//!          ── POST /v1/internal/raft/snapshot ──► Raft::install_snapshot (chunks)
//!
//!   append, vote body = a codec record of the request
//!   snapshot body     = header length (u32, big-endian) ─ a codec record of the chunk's vote,
//!                       meta, offset, done ─ the chunk's bytes as they are
//! ```
//! A reply is a codec record of `Result<Response, RaftError>`, so a remote Raft error travels back
//! as itself; a transport failure becomes `RPCError::Unreachable`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, BasicNode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::LastContact;
use super::types::{Raft, ServerId, SnapshotMeta, TypeConfig, Vote};
use crate::codec::{self, CodecError};
use crate::tls::Dialer;

/// The content type of every Raft message and reply.
const CONTENT_TYPE: &str = "application/cbor";

/// Makes connections to the other servers.
#[derive(Clone, Debug, Default)]
pub struct Network {
    dialer: Dialer,
}

impl Network {
    /// Connections through `dialer` (its TLS and scheme).
    pub fn new(dialer: Dialer) -> Self {
        Self { dialer }
    }
}

/// A connection to one server.
#[derive(Debug)]
pub struct Connection {
    dialer: Dialer,
    target: ServerId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: ServerId, node: &BasicNode) -> Self::Network {
        Connection {
            dialer: self.dialer.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

impl Connection {
    async fn post<Resp, E>(
        &self,
        path: &str,
        body: Result<Vec<u8>, CodecError>,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<ServerId, BasicNode, E>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body = body.map_err(|error| RPCError::Network(NetworkError::new(&error)))?;
        let url = format!("{}/v1/internal/raft/{path}", self.dialer.base(&self.addr));
        let response = self
            .dialer
            .http
            .post(url)
            .timeout(option.hard_ttl())
            .header(TARGET_HEADER, self.target)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body)
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
        let reply = response
            .bytes()
            .await
            .map_err(|error| RPCError::Network(NetworkError::new(&error)))?;
        let result: Result<Resp, E> = codec::decode_record(&reply)
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
        self.post("append", codec::encode_record(&rpc), &option)
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<ServerId>,
        RPCError<ServerId, BasicNode, RaftError<ServerId, InstallSnapshotError>>,
    > {
        self.post("snapshot", encode_chunk(rpc), &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<ServerId>,
        option: RPCOption,
    ) -> Result<VoteResponse<ServerId>, RPCError<ServerId, BasicNode, RaftError<ServerId>>> {
        self.post("vote", codec::encode_record(&rpc), &option).await
    }
}

/// What an install-snapshot message carries besides the chunk's bytes.
#[derive(Serialize, Deserialize)]
struct ChunkHeader {
    vote: Vote,
    meta: SnapshotMeta,
    offset: u64,
    done: bool,
}

/// An install-snapshot message as its body: the header record's length, the record, the bytes.
fn encode_chunk(rpc: InstallSnapshotRequest<TypeConfig>) -> Result<Vec<u8>, CodecError> {
    let header = codec::encode_record(&ChunkHeader {
        vote: rpc.vote,
        meta: rpc.meta,
        offset: rpc.offset,
        done: rpc.done,
    })?;
    let length = u32::try_from(header.len())
        .map_err(|_| CodecError::Encode("a snapshot chunk header over 4 GiB".to_owned()))?;
    let mut body = Vec::with_capacity(4 + header.len() + rpc.data.len());
    body.extend_from_slice(&length.to_be_bytes());
    body.extend_from_slice(&header);
    body.extend_from_slice(&rpc.data);
    Ok(body)
}

/// The install-snapshot message [`encode_chunk`] made `body` of.
fn decode_chunk(body: &[u8]) -> Result<InstallSnapshotRequest<TypeConfig>, CodecError> {
    let short = || CodecError::Decode("a snapshot chunk shorter than its header".to_owned());
    let (length, rest) = body.split_first_chunk::<4>().ok_or_else(short)?;
    let length = usize::try_from(u32::from_be_bytes(*length)).map_err(|_| short())?;
    let (header, data) = (rest.get(..length), rest.get(length..));
    let (Some(header), Some(data)) = (header, data) else {
        return Err(short());
    };
    let header: ChunkHeader = codec::decode_record(header)?;
    Ok(InstallSnapshotRequest {
        vote: header.vote,
        meta: header.meta,
        offset: header.offset,
        data: data.to_vec(),
        done: header.done,
    })
}

/// A reply: the codec record of `value`.
fn reply<T: Serialize>(value: &T) -> Response {
    match codec::encode_record(value) {
        Ok(body) => ([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

/// The refusal of a message that does not decode.
fn undecodable(error: &CodecError) -> Response {
    (
        StatusCode::BAD_REQUEST,
        format!("a Raft message that does not decode: {error}"),
    )
        .into_response()
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
    body: Bytes,
) -> Response {
    if let Some(refused) = wrong_target(&raft, &headers) {
        return refused;
    }
    let request: AppendEntriesRequest<TypeConfig> = match codec::decode_record(&body) {
        Ok(request) => request,
        Err(error) => return undecodable(&error),
    };
    let result = raft.append_entries(request).await;
    // A higher vote means the sender is no longer the leader; any other reply is its contact.
    if matches!(&result, Ok(reply) if !matches!(reply, AppendEntriesResponse::HigherVote(_))) {
        last_contact.touch();
    }
    reply(&result)
}

async fn vote(State((raft, _)): State<RpcState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = wrong_target(&raft, &headers) {
        return refused;
    }
    let request: VoteRequest<ServerId> = match codec::decode_record(&body) {
        Ok(request) => request,
        Err(error) => return undecodable(&error),
    };
    reply(&raft.vote(request).await)
}

async fn snapshot(
    State((raft, last_contact)): State<RpcState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = wrong_target(&raft, &headers) {
        return refused;
    }
    let request = match decode_chunk(&body) {
        Ok(request) => request,
        Err(error) => return undecodable(&error),
    };
    let result = raft.install_snapshot(request).await;
    if result.is_ok() {
        last_contact.touch();
    }
    reply(&result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_chunk_carries_its_bytes_as_they_are() -> anyhow::Result<()> {
        let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let request = InstallSnapshotRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 7),
            meta: SnapshotMeta {
                snapshot_id: "3-40-x".to_owned(),
                ..SnapshotMeta::default()
            },
            offset: 4096,
            data: data.clone(),
            done: true,
        };
        let body = encode_chunk(request.clone())?;
        assert!(body.len() < data.len() + 200, "{} bytes", body.len());
        let decoded = decode_chunk(&body)?;
        assert_eq!(decoded, request);

        for cut in [0, 3, 10] {
            let error = decode_chunk(&body[..cut]).expect_err("refused");
            assert!(
                error.to_string().contains("shorter than its header"),
                "{error}"
            );
        }
        Ok(())
    }
}
