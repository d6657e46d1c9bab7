//! Root key replication between servers (Nomad: `nomad/encrypter.go` `KeyringReplicator`,
//! `Keyring.Get`): the state names every root key through Raft; a server whose keystore lacks
//! one asks its peers for it.
//!
//! ```text
//!   every second, on each server:
//!     state.root_keys ∖ keystore ─► for each missing key, each peer (Raft membership):
//!        GET /v1/internal/server/keyring/<id>  (mutual TLS, this server's certificate)
//!        ─► KeyFile { KeyID, Algorithm, Key } ─► keystore/<id>.json (0600)
//!   peer side: answered only to a caller whose certificate names server.<region>.nomad
//! ```
//!
//! Invariant: key material never enters the Raft log, a snapshot or a log line; it travels only
//! between servers that proved themselves with the cluster's server certificate.

use std::sync::Arc;
use std::time::Duration;

use super::Server;
use super::endpoints::ServerError;
use super::keyring::KeyFile;
use crate::tls::TlsPeer;

/// How often a server looks for keys it lacks.
const REPLICATE_EVERY: Duration = Duration::from_secs(1);

/// How long one peer may take to send a key (a write waiting for the active key waits on it).
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a peer's request for a key is refused, if it is: only a server of the cluster, proved by
/// its certificate over mutual TLS, gets key material.
pub fn key_request_refusal(server: &Server, peer: Option<&TlsPeer>) -> Option<String> {
    let rpc_tls = server
        .options
        .tls
        .as_ref()
        .is_some_and(|tls| tls.settings().rpc);
    if !rpc_tls {
        return Some(
            "Permission denied: root keys are sent only over mutual TLS (tls.rpc)".to_owned(),
        );
    }
    if !peer.is_some_and(|peer| peer.roles.server) {
        return Some(
            "Permission denied: root keys are sent only to a server certificate of this region"
                .to_owned(),
        );
    }
    None
}

impl Server {
    /// Key IDs the state names that this server's keystore lacks.
    fn missing_root_keys(&self) -> Vec<String> {
        let snapshot = self.store.snapshot();
        snapshot
            .tables()
            .root_keys
            .keys()
            .filter(|key_id| !self.keyring.has_key(key_id))
            .cloned()
            .collect()
    }

    /// Fetches `key_id` from a peer server and stores it; `Ok(false)` if no peer had it.
    pub async fn fetch_root_key(&self, key_id: &str) -> Result<bool, ServerError> {
        if uuid::Uuid::parse_str(key_id).is_err() {
            return Err(ServerError::Invalid(format!("invalid key ID {key_id:?}")));
        }
        if !self
            .options
            .tls
            .as_ref()
            .is_some_and(|tls| tls.settings().rpc)
        {
            return Ok(false);
        }
        let peers: Vec<String> = {
            let metrics = self.raft.raft.metrics().borrow().clone();
            metrics
                .membership_config
                .membership()
                .nodes()
                .filter(|(id, _)| **id != metrics.id)
                .map(|(_, node)| node.addr.clone())
                .collect()
        };
        for addr in peers {
            let url = format!(
                "{}/v1/internal/server/keyring/{key_id}",
                self.dialer.base(&addr)
            );
            let request = self.dialer.http.get(&url).timeout(FETCH_TIMEOUT);
            let response = match request.send().await {
                Ok(response) if response.status().is_success() => response,
                Ok(response) => {
                    tracing::debug!(peer = %addr, key_id, status = %response.status(), "peer did not send the root key");
                    continue;
                }
                Err(error) => {
                    tracing::debug!(peer = %addr, key_id, error = %error, "peer unreachable for the root key");
                    continue;
                }
            };
            let Ok(file) = response.json::<KeyFile>().await else {
                tracing::warn!(peer = %addr, key_id, "peer sent an unreadable root key");
                continue;
            };
            if file.key_id != key_id {
                tracing::warn!(peer = %addr, key_id, "peer sent another root key");
                continue;
            }
            let key = match file.bytes() {
                Ok(key) => key,
                Err(problem) => {
                    tracing::warn!(peer = %addr, key_id, problem, "peer sent a bad root key");
                    continue;
                }
            };
            if !self.keyring.has_key(key_id) {
                self.keyring.store_key(key_id, key)?;
                tracing::info!(peer = %addr, key_id, "fetched a root key from a peer");
            }
            return Ok(true);
        }
        Ok(false)
    }
}

/// The replicator: until shutdown, fetches the keys the state names that this server lacks.
pub async fn replicate(server: Arc<Server>) {
    loop {
        for key_id in server.missing_root_keys() {
            if server.is_shutting_down() {
                return;
            }
            match server.fetch_root_key(&key_id).await {
                Ok(true) => {}
                Ok(false) => tracing::debug!(key_id, "no peer sent the root key yet"),
                Err(error) => tracing::warn!(key_id, error = %error, "root key not replicated"),
            }
        }
        tokio::select! {
            () = server.shutdown_requested() => return,
            () = tokio::time::sleep(REPLICATE_EVERY) => {}
        }
    }
}
