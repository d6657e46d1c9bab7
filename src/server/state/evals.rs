//! The evaluations table and its index by job.
//!
//! Nomad: `nomad/state/state_store.go` `UpsertEvals`, `nestedUpsertEval`, `DeleteEval`.

use std::sync::Arc;

use super::apply::ApplyEffects;
use super::events::{Event, EventPayload, Topic};
use super::tables::{Tables, job_key};
use crate::server::raft::ReapRequest;
use crate::structs::{EvalId, Evaluation};

impl Tables {
    pub(super) fn upsert_evals(
        &mut self,
        index: u64,
        evals: &[Evaluation],
        effects: &mut ApplyEffects,
    ) {
        for eval in evals {
            self.upsert_eval(index, eval.clone(), effects);
        }
    }

    fn upsert_eval(&mut self, index: u64, mut eval: Evaluation, effects: &mut ApplyEffects) {
        match self.evals.get(&eval.id) {
            Some(existing) => eval.create_index = existing.create_index,
            None => eval.create_index = index,
        }
        eval.modify_index = index;
        let key = job_key(&eval.namespace, &eval.job_id);
        // The scheduler's count of what it could not place becomes the summary's queued count.
        if !eval.queued_allocations.is_empty() && eval.status.is_terminal() {
            for (group, queued) in &eval.queued_allocations {
                let queued = *queued;
                self.change_summary(index, &key, group, |summary| summary.queued = queued);
            }
        }
        let eval = Arc::new(eval);
        self.evals.insert(eval.id.clone(), eval.clone());
        if let Some(by_job) = self.evals_by_job.get_mut(&key) {
            by_job.insert(eval.id.clone(), eval.clone());
        } else {
            self.evals_by_job.insert(
                key.clone(),
                imbl::OrdMap::unit(eval.id.clone(), eval.clone()),
            );
        }
        self.indexes.evals = index;
        effects.touched_jobs.insert(key);
        effects.evals.push(eval.clone());
        effects.event(|| Event {
            topic: Topic::Evaluation,
            event_type: "EvaluationUpdated".into(),
            key: eval.id.to_string(),
            namespace: eval.namespace.clone(),
            index,
            payload: EventPayload::Evaluation(eval.clone()),
        });
    }

    /// Removes what a garbage collection picked (see [`ReapRequest`]).
    pub(super) fn apply_reap(
        &mut self,
        index: u64,
        request: &ReapRequest,
        effects: &mut ApplyEffects,
    ) {
        for alloc_id in &request.alloc_ids {
            self.delete_alloc(index, alloc_id, effects);
        }
        for eval_id in &request.eval_ids {
            self.delete_eval(index, eval_id, effects);
        }
        for deployment_id in &request.deployment_ids {
            self.delete_deployment(index, deployment_id, effects);
        }
        for job in &request.jobs {
            let key = job_key(&job.namespace, &job.job_id);
            let unchanged = self
                .jobs
                .get(&key)
                .is_some_and(|stored| stored.modify_index == job.modify_index);
            if unchanged {
                // Found just above, so the purge cannot fail.
                let _ = self.apply_job_deregister(
                    index,
                    &job.namespace,
                    &job.job_id,
                    true,
                    None,
                    effects,
                );
            }
        }
        for node_id in &request.node_ids {
            self.delete_down_node(index, node_id, effects);
        }
    }

    fn delete_eval(&mut self, index: u64, eval_id: &EvalId, effects: &mut ApplyEffects) {
        let Some(eval) = self.evals.remove(eval_id) else {
            return;
        };
        let key = job_key(&eval.namespace, &eval.job_id);
        if let Some(by_job) = self.evals_by_job.get_mut(&key) {
            by_job.remove(eval_id);
            if by_job.is_empty() {
                self.evals_by_job.remove(&key);
            }
        }
        effects.touched_jobs.insert(key);
        self.indexes.evals = index;
    }
}
