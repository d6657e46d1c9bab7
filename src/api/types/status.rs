//! The status routes' answers: `/v1/status/leader` and `/v1/status/peers` (Nomad:
//! `api/status.go`), bare JSON values.

/// `GET /v1/status/leader`: the leader's RPC address, `""` when none is known.
pub type StatusLeader = String;

/// `GET /v1/status/peers`: the RPC addresses of the Raft voters.
pub type StatusPeers = Vec<String>;
