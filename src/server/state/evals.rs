//! The evaluations table and its index by job.
//!
//! Nomad: `nomad/state/state_store.go` `UpsertEvals`, `nestedUpsertEval`, `DeleteEval`.

use std::sync::Arc;

use super::apply::ApplyEffects;
use super::events::{Event, EventPayload, Topic};
use super::tables::{Tables, job_key};
use crate::structs::{AllocId, EvalId, Evaluation};

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

    pub(super) fn apply_eval_delete(
        &mut self,
        index: u64,
        eval_ids: &[EvalId],
        alloc_ids: &[AllocId],
        effects: &mut ApplyEffects,
    ) {
        for eval_id in eval_ids {
            let Some(eval) = self.evals.remove(eval_id) else {
                continue;
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
        for alloc_id in alloc_ids {
            self.delete_alloc(index, alloc_id, effects);
        }
    }
}
