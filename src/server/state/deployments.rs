//! The deployments table and its index by job.
//!
//! Nomad: `nomad/state/state_store.go` `upsertDeploymentImpl`, `UpdateDeploymentStatus`.

use std::sync::Arc;

use super::apply::ApplyEffects;
use super::error::{ApplyError, ObjectKind};
use super::events::{Event, EventPayload, Topic};
use super::tables::{Tables, job_key};
use crate::structs::{Deployment, DeploymentStatusUpdate};

impl Tables {
    pub(super) fn upsert_deployment(
        &mut self,
        index: u64,
        mut deployment: Deployment,
        effects: &mut ApplyEffects,
    ) {
        match self.deployments.get(&deployment.id) {
            Some(existing) => deployment.create_index = existing.create_index,
            None => deployment.create_index = index,
        }
        deployment.modify_index = index;
        let key = job_key(&deployment.namespace, &deployment.job_id);
        let deployment = Arc::new(deployment);
        self.deployments
            .insert(deployment.id.clone(), deployment.clone());
        if let Some(by_job) = self.deployments_by_job.get_mut(&key) {
            by_job.insert(deployment.id.clone(), deployment.clone());
        } else {
            self.deployments_by_job.insert(
                key,
                imbl::OrdMap::unit(deployment.id.clone(), deployment.clone()),
            );
        }
        self.indexes.deployments = index;
        effects.event(|| Event {
            topic: Topic::Deployment,
            event_type: "DeploymentStatusUpdate",
            key: deployment.id.to_string(),
            namespace: deployment.namespace.clone(),
            index,
            payload: EventPayload::Deployment(deployment.clone()),
        });
    }

    pub(super) fn apply_deployment_update(
        &mut self,
        index: u64,
        update: &DeploymentStatusUpdate,
        effects: &mut ApplyEffects,
    ) -> Result<(), ApplyError> {
        let Some(existing) = self.deployments.get(&update.deployment_id) else {
            return Err(ApplyError::not_found(
                ObjectKind::Deployment,
                &update.deployment_id.0,
            ));
        };
        let mut deployment = (**existing).clone();
        deployment.status = update.status;
        deployment.status_description = update.status_description.clone();
        self.upsert_deployment(index, deployment, effects);
        Ok(())
    }
}
