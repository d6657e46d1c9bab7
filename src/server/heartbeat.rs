//! Node heartbeats: each client node gets a TTL when it registers or heartbeats; the leader marks
//! nodes that miss theirs `down` (through Raft, with evaluations for the jobs on them, whose
//! allocations the schedulers then mark lost and replace).
//!
//! The TTL grows with the number of nodes so the servers see at most `max_heartbeats_per_second`
//! heartbeats, never below `min_ttl`, plus a random stagger so nodes spread out
//! (Nomad: `nomad/heartbeat.go`, `lib.RateScaledInterval`, `lib.RandomStagger`).
//!
//! Invariant: timers run only on the leader; a new leader gives every known node a fresh TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::structs::{Node, NodeId, NodeStatus};

#[derive(Clone, Debug)]
pub struct HeartbeatConfig {
    /// Nomad: `min_heartbeat_ttl`, 10 s.
    pub min_ttl: Duration,
    /// Nomad: `max_heartbeats_per_second`, 50.
    pub max_heartbeats_per_second: f64,
    /// Added to the TTL before a node is declared down (Nomad: `heartbeat_grace`, 10 s).
    pub grace: Duration,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            min_ttl: Duration::from_secs(10),
            max_heartbeats_per_second: 50.0,
            grace: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    enabled: bool,
    deadlines: HashMap<NodeId, Instant>,
}

#[derive(Debug)]
pub struct Heartbeats {
    config: HeartbeatConfig,
    inner: Mutex<Inner>,
}

impl Heartbeats {
    pub fn new(config: HeartbeatConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts (with fresh TTLs for `nodes`) or stops tracking.
    pub fn set_enabled(&self, enabled: bool, nodes: &[std::sync::Arc<Node>]) {
        let ttl_base = self.base_ttl(nodes.len());
        let mut inner = self.lock();
        inner.enabled = enabled;
        inner.deadlines.clear();
        if enabled {
            let now = Instant::now();
            for node in nodes.iter().filter(|node| node.status != NodeStatus::Down) {
                let ttl = ttl_base + stagger(ttl_base);
                inner
                    .deadlines
                    .insert(node.id.clone(), now + ttl + self.config.grace);
            }
        }
    }

    fn base_ttl(&self, num_nodes: usize) -> Duration {
        let scaled =
            Duration::from_secs_f64(num_nodes as f64 / self.config.max_heartbeats_per_second);
        scaled.max(self.config.min_ttl)
    }

    /// Gives the node a fresh TTL and returns it, for the node to heartbeat within.
    pub fn reset(&self, node_id: &NodeId) -> Duration {
        let mut inner = self.lock();
        let base = self.base_ttl(inner.deadlines.len().max(1));
        let ttl = base + stagger(base);
        if inner.enabled {
            inner
                .deadlines
                .insert(node_id.clone(), Instant::now() + ttl + self.config.grace);
        }
        ttl
    }

    /// Follows a node written through Raft: a down node needs no timer.
    pub fn node_changed(&self, node: &Node) {
        if node.status == NodeStatus::Down {
            self.lock().deadlines.remove(&node.id);
        } else if !self.lock().deadlines.contains_key(&node.id) {
            self.reset(&node.id);
        }
    }

    /// Nodes whose TTL ran out; they are forgotten until they register or heartbeat again.
    pub fn take_expired(&self) -> Vec<NodeId> {
        let now = Instant::now();
        let mut inner = self.lock();
        if !inner.enabled {
            return Vec::new();
        }
        let expired: Vec<NodeId> = inner
            .deadlines
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(node_id, _)| node_id.clone())
            .collect();
        for node_id in &expired {
            inner.deadlines.remove(node_id);
        }
        expired
    }

    pub fn tracked(&self) -> usize {
        self.lock().deadlines.len()
    }
}

/// A random duration in `[0, interval)`.
fn stagger(interval: Duration) -> Duration {
    if interval.is_zero() {
        return Duration::ZERO;
    }
    rand::thread_rng().gen_range(Duration::ZERO..interval)
}
