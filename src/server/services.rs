//! The server's service catalog endpoints: a client's sync of its allocations' registrations,
//! and an operator's delete. Each is one [`Command::ServiceRegistrations`] through Raft.
//!
//! A client may register only for allocations the servers placed on its node, under Nomad's
//! registration IDs (`_nomad-task-<alloc ID>-...`), so one node cannot publish or remove
//! another's instances.
//!
//! Nomad: `nomad/service_registration_endpoint.go` (`Upsert`, `DeleteByID`).

use std::sync::Arc;

use super::Server;
use super::endpoints::ServerError;
use super::raft::Command;
use super::state::{ObjectKind, alloc_service_prefix};
use crate::structs::{NodeId, ServiceRegistration};

impl Server {
    /// A client's registrations and deregistrations for its allocations; returns the Raft index.
    pub async fn service_sync(
        &self,
        node_id: &NodeId,
        upserts: Vec<ServiceRegistration>,
        deletes: Vec<String>,
    ) -> Result<u64, ServerError> {
        let snapshot = self.store.snapshot();
        for registration in &upserts {
            if registration.node_id != *node_id {
                return Err(ServerError::Forbidden(format!(
                    "node {node_id} cannot register services for node {}",
                    registration.node_id
                )));
            }
            if !registration
                .id
                .starts_with(&alloc_service_prefix(&registration.alloc_id))
            {
                return Err(ServerError::Invalid(format!(
                    "service registration ID {:?} does not belong to allocation {}",
                    registration.id, registration.alloc_id
                )));
            }
            if registration.service_name.is_empty() {
                return Err(ServerError::Invalid(format!(
                    "service registration {:?} has no service name",
                    registration.id
                )));
            }
            match snapshot.alloc(&registration.alloc_id) {
                Some(alloc) if alloc.node_id != *node_id => {
                    return Err(ServerError::Forbidden(format!(
                        "allocation {} does not run on node {node_id}",
                        registration.alloc_id
                    )));
                }
                // An allocation gone meanwhile: the apply skips it.
                _ => {}
            }
        }
        for id in &deletes {
            if let Some(existing) = snapshot.tables().services.get(id)
                && existing.node_id != *node_id
            {
                return Err(ServerError::Forbidden(format!(
                    "service registration {id:?} is not on node {node_id}"
                )));
            }
        }
        // A client's periodic resync usually changes nothing: no Raft write then.
        let services = &snapshot.tables().services;
        let unchanged = upserts.iter().all(|registration| {
            services
                .get(&registration.id)
                .is_some_and(|existing| existing.same_as(registration))
        }) && deletes.iter().all(|id| !services.contains_key(id));
        if unchanged {
            return Ok(snapshot.tables().indexes.services.max(1));
        }
        let response = self
            .write(Command::ServiceRegistrations {
                upserts: upserts.into_iter().map(Arc::new).collect(),
                deletes,
            })
            .await?;
        Ok(response.index)
    }

    /// Deletes one registration of service `name` (Nomad: `ServiceRegistration.DeleteByID`).
    pub async fn service_delete(
        &self,
        namespace: &str,
        name: &str,
        id: &str,
    ) -> Result<u64, ServerError> {
        let snapshot = self.store.snapshot();
        let found = snapshot
            .tables()
            .services
            .get(id)
            .is_some_and(|registration| {
                registration.service_name == name && registration.namespace == namespace
            });
        if !found {
            return Err(ServerError::not_found(ObjectKind::Service, id));
        }
        let response = self
            .write(Command::ServiceRegistrations {
                upserts: Vec::new(),
                deletes: vec![id.to_owned()],
            })
            .await?;
        Ok(response.index)
    }
}
