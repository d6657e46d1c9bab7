//! An in-process [`ServerLink`] for unit tests: a node table, an allocation table with a Raft-like
//! index that blocking watches wait on, and a record of every status update.
//!
//! As the servers do, a server-side change (`upsert_alloc`, `stop_alloc`) stamps the
//! allocation's `AllocModifyIndex` and moves the watch; a client's status update does neither.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::client::server_link::{
    AllocUpdate, HeartbeatResponse, LinkError, NodeClientAllocs, ServerLink, TokenGrant,
    VariableRequest,
};
use crate::structs::{
    AllocDesiredStatus, AllocId, Allocation, Node, NodeId, ServiceRegistration,
    ServiceRegistrationListStub, ServiceRegistrationStub, Variable,
};

#[derive(Default)]
struct FakeState {
    nodes: HashMap<NodeId, Node>,
    allocs: BTreeMap<AllocId, Allocation>,
    updates: Vec<AllocUpdate>,
    registrations: u64,
    heartbeats: u64,
    services: BTreeMap<String, ServiceRegistration>,
    /// Variables by path, readable by every task (the servers' path checks are theirs).
    variables: BTreeMap<String, Variable>,
    servers: Vec<String>,
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

    fn next_index(&self) -> u64 {
        *self.index.borrow() + 1
    }

    /// A blocking query's wait: until the index passes `min_index` or 5 s go by; the index then.
    async fn wait_past(&self, min_index: u64) -> u64 {
        let mut index = self.index.subscribe();
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            index.wait_for(|index| *index > min_index),
        )
        .await;
        *index.borrow()
    }

    fn bump(&self) {
        self.index.send_modify(|index| *index += 1);
    }

    pub(crate) fn upsert_alloc(&self, mut alloc: Allocation) {
        let index = self.next_index();
        alloc.modify_index = index;
        alloc.alloc_modify_index = index;
        self.lock().allocs.insert(alloc.id.clone(), alloc);
        self.bump();
    }

    pub(crate) fn stop_alloc(&self, alloc_id: &AllocId) {
        let index = self.next_index();
        if let Some(alloc) = self.lock().allocs.get_mut(alloc_id) {
            alloc.desired_status = AllocDesiredStatus::Stop;
            alloc.modify_index = index;
            alloc.alloc_modify_index = index;
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

    /// The service registrations the client keeps now.
    pub(crate) fn services(&self) -> Vec<ServiceRegistration> {
        self.lock().services.values().cloned().collect()
    }

    pub(crate) fn updates(&self) -> Vec<AllocUpdate> {
        self.lock().updates.clone()
    }

    /// Stores a variable every task may read.
    pub(crate) fn put_variable(&self, variable: Variable) {
        self.lock()
            .variables
            .insert(variable.path.clone(), variable);
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
    ) -> BoxFuture<'a, Result<NodeClientAllocs, LinkError>> {
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
                .map(|alloc| (alloc.id.clone(), alloc.alloc_modify_index))
                .collect();
            Ok(NodeClientAllocs { allocs, index })
        })
    }

    fn pull_allocs<'a>(
        &'a self,
        node_id: &'a NodeId,
        alloc_ids: &'a [AllocId],
    ) -> BoxFuture<'a, Result<Vec<Allocation>, LinkError>> {
        Box::pin(async move {
            let state = self.lock();
            Ok(alloc_ids
                .iter()
                .filter_map(|alloc_id| state.allocs.get(alloc_id))
                .filter(|alloc| alloc.node_id == *node_id)
                .cloned()
                .collect())
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
                    if !update.task_states.is_empty() {
                        alloc.task_states = update.task_states.clone().into();
                    }
                }
                state.updates.push(update.clone());
            }
            Ok(())
        })
    }

    fn sync_services<'a>(
        &'a self,
        _node_id: &'a NodeId,
        upserts: &'a [ServiceRegistration],
        deletes: &'a [String],
    ) -> BoxFuture<'a, Result<(), LinkError>> {
        Box::pin(async move {
            {
                let mut state = self.lock();
                for id in deletes {
                    state.services.remove(id);
                }
                for registration in upserts {
                    state
                        .services
                        .insert(registration.id.clone(), registration.clone());
                }
            }
            self.bump();
            Ok(())
        })
    }

    /// The fake servers enforce no ACLs: every secret grants everything, as a server's does
    /// with ACLs off.
    fn resolve_token<'a>(
        &'a self,
        _node_id: &'a NodeId,
        _secret: Option<&'a str>,
    ) -> BoxFuture<'a, Result<TokenGrant, LinkError>> {
        Box::pin(async move {
            Ok(TokenGrant {
                management: true,
                ..TokenGrant::default()
            })
        })
    }

    /// Answers at once with the registrations the client keeps (the fake does not block).
    fn read_service<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        min_index: u64,
    ) -> BoxFuture<'a, Result<(Vec<ServiceRegistration>, u64), LinkError>> {
        Box::pin(async move {
            let index = self.wait_past(min_index).await;
            let instances = self
                .lock()
                .services
                .values()
                .filter(|r| r.namespace == namespace && r.service_name == name)
                .cloned()
                .collect();
            Ok((instances, index))
        })
    }

    fn list_services<'a>(
        &'a self,
        namespace: &'a str,
        min_index: u64,
    ) -> BoxFuture<'a, Result<(Vec<ServiceRegistrationListStub>, u64), LinkError>> {
        Box::pin(async move {
            let index = self.wait_past(min_index).await;
            let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for registration in self.lock().services.values() {
                if registration.namespace == namespace {
                    let tags = by_name
                        .entry(registration.service_name.clone())
                        .or_default();
                    tags.extend(registration.tags.iter().cloned());
                    tags.sort();
                    tags.dedup();
                }
            }
            let services = by_name
                .into_iter()
                .map(|(service_name, tags)| ServiceRegistrationStub { service_name, tags })
                .collect();
            Ok((
                vec![ServiceRegistrationListStub {
                    namespace: namespace.to_owned(),
                    services,
                }],
                index,
            ))
        })
    }

    fn servers(&self) -> Vec<String> {
        self.lock().servers.clone()
    }

    fn set_servers(&self, servers: &[String]) -> Result<(), LinkError> {
        self.lock().servers = servers.to_vec();
        Ok(())
    }

    fn read_variable<'a>(
        &'a self,
        request: &'a VariableRequest,
    ) -> BoxFuture<'a, Result<Option<Variable>, LinkError>> {
        Box::pin(async move { Ok(self.lock().variables.get(&request.path).cloned()) })
    }
}
