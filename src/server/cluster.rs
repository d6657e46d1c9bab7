//! Forming and changing the cluster of servers: who bootstraps, joining, removing.
//!
//! ```text
//!   start ─► retry_join loop (every retry_interval, at most retry_max times):
//!              ask each join address for its RaftServerInfo (GET /v1/internal/raft/info)
//!              ├─ some server is a voter of a cluster ─► POST /v1/internal/raft/join to it
//!              │     (forwarded to the leader: add as learner, wait until caught up, promote)
//!              ├─ no cluster yet, ≥ bootstrap_expect uninitialised servers found (self included)
//!              │     └─ the one with the lowest ID bootstraps all of them as voters; the others
//!              │        wait for its configuration to reach them
//!              └─ done once this server is a voter of an initialised configuration
//! ```
//!
//! Exactly once: only an uninitialised server bootstraps, only the lowest ID among those found
//! does, and a server that finds a cluster joins it instead. The ID is kept in the data dir, so a
//! server restarted mid-way is the same candidate. A server restarted with a wiped data dir has a
//! new ID and the same address: the leader replaces the old entry of that address when it joins.
//!
//! Nomad: `nomad/serf.go` `maybeBootstrap`, `nomad/leader.go` `addRaftPeer` (non-voter first,
//! promoted by autopilot once healthy).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};

use super::{Server, ServerError};
use crate::api::types::cluster::{
    RaftConfiguration, RaftJoinRequest, RaftJoinResponse, RaftServer, RaftServerInfo,
};
use crate::tls::Dialer;

/// How a server looks for the others (`server_join` of the agent config).
#[derive(Clone, Debug)]
pub struct JoinOptions {
    /// RPC addresses of other servers (`host:port`; without a port, 4647).
    pub addresses: Vec<String>,
    /// Between attempts (Nomad's `retry_interval`, 30 s).
    pub retry_interval: Duration,
    /// Attempts before giving up; 0 tries for ever (Nomad's `retry_max`).
    pub retry_max: u32,
}

impl Default for JoinOptions {
    fn default() -> Self {
        Self {
            addresses: Vec::new(),
            retry_interval: Duration::from_secs(30),
            retry_max: 0,
        }
    }
}

/// Why joining failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("no server answered at {0}")]
    NoneAnswered(String),
    #[error("joining through {addr}: {message}")]
    Refused { addr: String, message: String },
    #[error("waiting for {expect} servers to bootstrap, found {found}")]
    Waiting { expect: u32, found: usize },
}

/// `host:port`; a bare host gets the default RPC port, a URL loses its scheme.
pub fn rpc_address(address: &str) -> String {
    let address = address
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    if address
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        address
    } else {
        format!("{address}:4647")
    }
}

impl Server {
    /// What this server tells the servers looking for it.
    pub async fn raft_info(&self) -> RaftServerInfo {
        let initialized = self.raft.raft.is_initialized().await.unwrap_or(false);
        let metrics = self.raft.raft.metrics().borrow().clone();
        let voter = metrics
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == self.raft.id);
        RaftServerInfo {
            id: self.raft.id,
            name: self.member_name(),
            region: self.options.region.clone(),
            datacenter: self.options.datacenter.clone(),
            rpc_addr: self.raft.advertise_rpc.clone(),
            http_addr: self.options.http_addr.to_string(),
            initialized,
            voter,
            bootstrap_expect: self.options.bootstrap_expect,
            leader_rpc_addr: self.leader_addr(),
            build: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// `name.region`, as Nomad names a server member.
    pub fn member_name(&self) -> String {
        format!("{}.{}", self.options.node_name, self.options.region)
    }

    /// On the leader: adds a server as a learner, waits until it has caught up (by snapshot if
    /// the log was compacted), then makes it a voter, dropping any older entry with its address
    /// (a server that lost its data dir). Joining twice is harmless.
    pub async fn raft_join(
        &self,
        request: RaftJoinRequest,
    ) -> Result<RaftJoinResponse, ServerError> {
        if request.rpc_addr.is_empty() {
            return Err(ServerError::Invalid(
                "missing RPC address of the joining server".to_owned(),
            ));
        }
        let metrics = self.raft.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let is_voter = membership.voter_ids().any(|id| id == request.id);
        let same_node = membership
            .get_node(&request.id)
            .is_some_and(|node| node.addr == request.rpc_addr);
        let stale: BTreeSet<u64> = membership
            .nodes()
            .filter(|(id, node)| **id != request.id && node.addr == request.rpc_addr)
            .map(|(id, _)| *id)
            .collect();
        if is_voter && same_node && stale.is_empty() {
            return Ok(RaftJoinResponse {
                index: metrics
                    .membership_config
                    .log_id()
                    .map_or(0, |log_id| log_id.index),
            });
        }
        if membership.get_node(&request.id).is_some() && !same_node {
            return Err(ServerError::Invalid(format!(
                "server {} is a member with another address; remove it first",
                request.id
            )));
        }
        tracing::info!(server_id = request.id, addr = %request.rpc_addr, "adding a server as a learner");
        self.raft
            .raft
            .add_learner(request.id, BasicNode::new(request.rpc_addr.clone()), true)
            .await
            .map_err(membership_error)?;
        let mut voters: BTreeSet<u64> = membership
            .voter_ids()
            .filter(|id| !stale.contains(id))
            .collect();
        voters.insert(request.id);
        tracing::info!(server_id = request.id, removed = ?stale, "promoting the server to voter");
        let response = self
            .raft
            .raft
            .change_membership(ChangeMembers::ReplaceAllVoters(voters), false)
            .await
            .map_err(membership_error)?;
        Ok(RaftJoinResponse {
            index: response.log_id.index,
        })
    }

    /// On the leader: removes a server from the Raft configuration, voter or learner.
    pub async fn raft_remove_peer(&self, id: u64) -> Result<u64, ServerError> {
        let metrics = self.raft.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        if membership.get_node(&id).is_none() {
            return Err(ServerError::Invalid(format!(
                "address or ID {id} is not a Raft peer"
            )));
        }
        let changes = if membership.voter_ids().any(|voter| voter == id) {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        let response = self
            .raft
            .raft
            .change_membership(changes, false)
            .await
            .map_err(membership_error)?;
        Ok(response.log_id.index)
    }

    /// The Raft configuration as this server knows it, each server named by its own answer
    /// (its address when it does not answer within `timeout`).
    pub async fn raft_configuration(
        &self,
        dialer: &Dialer,
        timeout: Duration,
    ) -> RaftConfiguration {
        let metrics = self.raft.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let infos = self.peer_infos(dialer, timeout).await;
        let servers = membership
            .nodes()
            .map(|(id, node)| RaftServer {
                id: id.to_string(),
                node: infos
                    .get(id)
                    .map_or_else(|| node.addr.clone(), |info| info.name.clone()),
                address: node.addr.clone(),
                leader: metrics.current_leader == Some(*id),
                voter: voters.contains(id),
                raft_protocol: "3".to_owned(),
            })
            .collect();
        RaftConfiguration {
            servers,
            index: metrics
                .membership_config
                .log_id()
                .map_or(0, |log_id| log_id.index),
        }
    }

    /// Every member's own answer, by Raft ID; this server's without asking.
    pub async fn peer_infos(
        &self,
        dialer: &Dialer,
        timeout: Duration,
    ) -> BTreeMap<u64, RaftServerInfo> {
        let metrics = self.raft.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let others: Vec<String> = membership
            .nodes()
            .filter(|(id, _)| **id != self.raft.id)
            .map(|(_, node)| node.addr.clone())
            .collect();
        let mut infos: BTreeMap<u64, RaftServerInfo> = ask_all(dialer, &others, timeout)
            .await
            .into_iter()
            .filter(|info| {
                membership
                    .get_node(&info.id)
                    .is_some_and(|node| node.addr == info.rpc_addr)
            })
            .map(|info| (info.id, info))
            .collect();
        infos.insert(self.raft.id, self.raft_info().await);
        infos
    }
}

fn membership_error(error: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> ServerError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
            match forward.leader_node {
                Some(node) => ServerError::NotLeader(node.addr),
                None => ServerError::NoLeader,
            }
        }
        other => ServerError::Raft(other.to_string()),
    }
}

/// Asks every address for its [`RaftServerInfo`] at once; those that do not answer within
/// `timeout` are left out.
pub async fn ask_all(
    dialer: &Dialer,
    addresses: &[String],
    timeout: Duration,
) -> Vec<RaftServerInfo> {
    let asks = addresses.iter().map(|address| async move {
        let url = format!(
            "{}/v1/internal/raft/info",
            dialer.base(&rpc_address(address))
        );
        let response = dialer.http.get(url).timeout(timeout).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json::<RaftServerInfo>().await.ok()
    });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// One attempt at joining the servers at `addresses`, or bootstrapping with them: returns how
/// many answered. Succeeds once this server is a voter of an initialised configuration, or has
/// asked a cluster member to add it.
pub async fn join_once(
    server: &Server,
    dialer: &Dialer,
    addresses: &[String],
) -> Result<usize, JoinError> {
    let own = server.raft_info().await;
    let found: BTreeMap<u64, RaftServerInfo> = ask_all(dialer, addresses, Duration::from_secs(2))
        .await
        .into_iter()
        .filter(|info| info.id != own.id)
        .map(|info| (info.id, info))
        .collect();
    if own.initialized && own.voter {
        return Ok(found.len());
    }
    if let Some(member) = found.values().find(|info| info.initialized && info.voter) {
        let request = RaftJoinRequest {
            id: own.id,
            rpc_addr: own.rpc_addr.clone(),
        };
        let url = format!("{}/v1/internal/raft/join", dialer.base(&member.rpc_addr));
        let refused = |message: String| JoinError::Refused {
            addr: member.rpc_addr.clone(),
            message,
        };
        let response = dialer
            .http
            .post(url)
            .json(&request)
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .map_err(|error| refused(error.to_string()))?;
        if !response.status().is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(refused(body.trim().to_owned()));
        }
        tracing::info!(through = %member.rpc_addr, "joined the cluster");
        return Ok(found.len());
    }
    if found.is_empty() && !addresses.is_empty() && own.bootstrap_expect > 1 {
        return Err(JoinError::NoneAnswered(addresses.join(", ")));
    }
    if own.initialized {
        // A learner, or a voter-to-be whose configuration has not reached it: wait.
        return Err(JoinError::Waiting {
            expect: own.bootstrap_expect,
            found: found.len() + 1,
        });
    }
    let candidates: BTreeMap<u64, String> = found
        .values()
        .filter(|info| !info.initialized && info.bootstrap_expect == own.bootstrap_expect)
        .map(|info| (info.id, info.rpc_addr.clone()))
        .chain([(own.id, own.rpc_addr.clone())])
        .collect();
    let expect = own.bootstrap_expect.max(1);
    if candidates.len() < expect as usize {
        return Err(JoinError::Waiting {
            expect,
            found: candidates.len(),
        });
    }
    if candidates.keys().next() != Some(&own.id) {
        // The lowest ID bootstraps; its configuration will reach this server.
        return Ok(found.len());
    }
    let members: BTreeMap<u64, BasicNode> = candidates
        .into_iter()
        .map(|(id, addr)| (id, BasicNode::new(addr)))
        .collect();
    tracing::info!(servers = members.len(), "bootstrapping the cluster");
    match server.raft.raft.initialize(members).await {
        Ok(()) => Ok(found.len()),
        // Another attempt of this same server got there first: the same configuration.
        Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => {
            Ok(found.len())
        }
        Err(error) => Err(JoinError::Refused {
            addr: own.rpc_addr,
            message: error.to_string(),
        }),
    }
}

/// Joins or bootstraps, retrying every `retry_interval` until this server is a voter, or
/// `retry_max` attempts failed.
pub async fn retry_join(server: Arc<Server>, options: JoinOptions) {
    let dialer = server.dialer.clone();
    let mut attempts = 0u32;
    loop {
        if server.is_shutting_down() {
            return;
        }
        let own = server.raft_info().await;
        if own.initialized && own.voter {
            tracing::debug!("this server is a voter; joining done");
            return;
        }
        match join_once(&server, &dialer, &options.addresses).await {
            Ok(_) => {}
            Err(error) => {
                attempts += 1;
                tracing::info!(error = %error, attempt = attempts, "not joined yet");
                if options.retry_max > 0 && attempts >= options.retry_max {
                    tracing::error!(attempts, "giving up joining the cluster (retry_max)");
                    return;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(options.retry_interval) => {}
            () = server.shutdown_requested() => return,
        }
    }
}
