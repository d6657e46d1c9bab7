//! The scaling events table: a scale of a group's count (the new job version, its evaluation and
//! the event) applied as one command. Nomad: `state_store.go` `UpsertJob` with
//! `upsertScalingEventsImpl`.

use std::sync::Arc;

use super::apply::ApplyEffects;
use super::error::{ApplyError, ObjectKind, check_enforce_index};
use super::tables::{Tables, job_key};
use crate::structs::{Evaluation, Job, JobId, JobScalingEvents, ScalingEvent};

impl Tables {
    /// Registers `job` (the group's new count) if given, provided its stored modify index is
    /// still `enforce_index`, then records `event` first in the group's events.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_job_scale(
        &mut self,
        index: u64,
        namespace: &str,
        job_id: &JobId,
        group: &str,
        job: Option<&Arc<Job>>,
        enforce_index: Option<u64>,
        eval: Option<&Evaluation>,
        event: &ScalingEvent,
        effects: &mut ApplyEffects,
    ) -> Result<(), ApplyError> {
        let key = job_key(namespace, job_id);
        let Some(existing) = self.jobs.get(&key) else {
            return Err(ApplyError::not_found(ObjectKind::Job, job_id));
        };
        if let Some(expected) = enforce_index {
            check_enforce_index(expected, Some(existing.job_modify_index))?;
        }
        let mut event = event.clone();
        event.create_index = index;
        if let Some(job) = job {
            self.upsert_job(index, (**job).clone(), effects);
        }
        if let Some(eval) = eval {
            let mut eval = eval.clone();
            if let Some(stored) = self.jobs.get(&key) {
                eval.job_modify_index = stored.job_modify_index;
            }
            self.upsert_evals(index, std::slice::from_ref(&eval), effects);
        }
        let mut events = self
            .scaling_events
            .get(&key)
            .map(|events| (**events).clone())
            .unwrap_or_else(|| JobScalingEvents {
                namespace: namespace.to_owned(),
                job_id: job_id.clone(),
                ..JobScalingEvents::default()
            });
        let group_events = events.scaling_events.entry(group.to_owned()).or_default();
        group_events.insert(0, event);
        group_events.truncate(JobScalingEvents::TRACKED);
        events.modify_index = index;
        self.scaling_events.insert(key, Arc::new(events));
        self.indexes.scaling_events = index;
        Ok(())
    }
}
