//! An in-process [`ServerLink`] for unit tests: a node table, an allocation table with a Raft-like
//! index that blocking watches wait on, and a record of every status update.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::client::server_link::{
    AllocUpdate, HeartbeatResponse, LinkError, NodeAllocs, ServerLink,
};
use crate::structs::{AllocDesiredStatus, AllocId, Allocation, Node, NodeId};

#[derive(Default)]
struct FakeState {
    nodes: HashMap<NodeId, Node>,
    allocs: BTreeMap<AllocId, Allocation>,
    updates: Vec<AllocUpdate>,
    registrations: u64,
    heartbeats: u64,
}

pub(crate) struct FakeLink {
    state: std::sync::Mutex<FakeState>,
    index: watch::Sender<u64>,
    ttl: Duration,
}

impl FakeLink {
    pub(crate) fn new(ttl: Duration) -> FakeLink {
        FakeLink {
            state: std::sync::Mutex::new(FakeState::default()),
            index: watch::channel(1).0,
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn bump(&self) {
        self.index.send_modify(|index| *index += 1);
    }

    pub(crate) fn upsert_alloc(&self, alloc: Allocation) {
        self.lock().allocs.insert(alloc.id.clone(), alloc);
        self.bump();
    }

    pub(crate) fn stop_alloc(&self, alloc_id: &AllocId) {
        if let Some(alloc) = self.lock().allocs.get_mut(alloc_id) {
            alloc.desired_status = AllocDesiredStatus::Stop;
            alloc.modify_index += 1;
        }
        self.bump();
    }

    /// Forgets every node, as a server that lost its state.
    pub(crate) fn forget_nodes(&self) {
        self.lock().nodes.clear();
    }

    pub(crate) fn node(&self, node_id: &NodeId) -> Option<Node> {
        self.lock().nodes.get(node_id).cloned()
    }

    pub(crate) fn registrations(&self) -> u64 {
        self.lock().registrations
    }

    pub(crate) fn heartbeats(&self) -> u64 {
        self.lock().heartbeats
    }

    pub(crate) fn alloc(&self, alloc_id: &AllocId) -> Option<Allocation> {
        self.lock().allocs.get(alloc_id).cloned()
    }

    pub(crate) fn updates(&self) -> Vec<AllocUpdate> {
        self.lock().updates.clone()
    }
}

impl ServerLink for FakeLink {
    fn register<'a>(
        &'a self,
        node: &'a Node,
    ) -> BoxFuture<'a, Result<HeartbeatResponse, LinkError>> {
        Box::pin(async move {
            let mut state = self.lock();
            state.nodes.insert(node.id.clone(), node.clone());
            state.registrations += 1;
            Ok(HeartbeatResponse {
                heartbeat_ttl: self.ttl,
            })
        })
    }

    fn heartbeat<'a>(
        &'a self,
        node_id: &'a NodeId,
    ) -> BoxFuture<'a, Result<HeartbeatResponse, LinkError>> {
        Box::pin(async move {
            let mut state = self.lock();
            state.heartbeats += 1;
            if state.nodes.contains_key(node_id) {
                Ok(HeartbeatResponse {
                    heartbeat_ttl: self.ttl,
                })
            } else {
                Err(LinkError::NodeUnknown(node_id.clone()))
            }
        })
    }

    fn watch_allocs<'a>(
        &'a self,
        node_id: &'a NodeId,
        min_index: u64,
    ) -> BoxFuture<'a, Result<NodeAllocs, LinkError>> {
        Box::pin(async move {
            let mut index = self.index.subscribe();
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                index.wait_for(|index| *index > min_index),
            )
            .await;
            let index = *index.borrow();
            let allocs = self
                .lock()
                .allocs
                .values()
                .filter(|alloc| alloc.node_id == *node_id)
                .cloned()
                .collect();
            Ok(NodeAllocs { allocs, index })
        })
    }

    fn update_allocs<'a>(
        &'a self,
        updates: &'a [AllocUpdate],
    ) -> BoxFuture<'a, Result<(), LinkError>> {
        Box::pin(async move {
            let mut state = self.lock();
            for update in updates {
                if let Some(alloc) = state.allocs.get_mut(&update.id) {
                    alloc.client_status = update.client_status;
                    alloc.client_description = update.client_description.clone();
                    alloc.task_states = update.task_states.clone();
                }
                state.updates.push(update.clone());
            }
            Ok(())
        })
    }
}
