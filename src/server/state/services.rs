//! The service registrations table: the native service catalog (`provider = "nomad"`).
//!
//! Keyed by registration ID, which begins `_nomad-task-<alloc ID>-` (the endpoint refuses any
//! other), so an allocation's registrations are one ordered range. A registration lives while its
//! allocation does: the apply drops an allocation's registrations when the allocation turns
//! client-terminal or is deleted, and a node's when the node goes down, so a client that died
//! without deregistering leaves nothing behind; and it refuses to register for an allocation it
//! does not have or that is already terminal, so a late upsert does not bring one back.
//!
//! Nomad: `nomad/state/state_store_service_registration.go`, and the deletes in
//! `UpdateAllocsFromClient` and `updateNodeStatusTxn`.

use std::sync::Arc;

use super::apply::ApplyEffects;
use super::tables::Tables;
use crate::structs::{AllocId, NodeId, ServiceRegistration};

/// The ID prefix every registration of `alloc_id` has.
pub fn alloc_service_prefix(alloc_id: &AllocId) -> String {
    format!("_nomad-task-{alloc_id}-")
}

impl Tables {
    /// Upserts and deletes registrations (one client's sync, or an operator's delete).
    pub(super) fn apply_service_registrations(
        &mut self,
        index: u64,
        upserts: &[Arc<ServiceRegistration>],
        deletes: &[String],
        _effects: &mut ApplyEffects,
    ) {
        for id in deletes {
            if self.services.remove(id).is_some() {
                self.indexes.services = index;
            }
        }
        for registration in upserts {
            let live = self
                .allocs
                .get(&registration.alloc_id)
                .is_some_and(|alloc| !alloc.is_client_terminal() && !alloc.is_terminal());
            if !live {
                continue;
            }
            let mut registration = (**registration).clone();
            match self.services.get(&registration.id) {
                Some(existing) if existing.same_as(&registration) => continue,
                Some(existing) => registration.create_index = existing.create_index,
                None => registration.create_index = index,
            }
            registration.modify_index = index;
            self.services
                .insert(registration.id.clone(), Arc::new(registration));
            self.indexes.services = index;
        }
    }

    /// Drops every registration of `alloc_id` (it turned terminal or was deleted).
    pub(super) fn delete_alloc_services(&mut self, index: u64, alloc_id: &AllocId) {
        let prefix = alloc_service_prefix(alloc_id);
        let ids: Vec<String> = self
            .services
            .range(prefix.clone()..)
            .take_while(|(id, _)| id.starts_with(&prefix))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.services.remove(&id);
            self.indexes.services = index;
        }
    }

    /// Drops every registration on `node_id` (the node went down).
    pub(super) fn delete_node_services(&mut self, index: u64, node_id: &NodeId) {
        let ids: Vec<String> = self
            .services
            .iter()
            .filter(|(_, registration)| registration.node_id == *node_id)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.services.remove(&id);
            self.indexes.services = index;
        }
    }
}
