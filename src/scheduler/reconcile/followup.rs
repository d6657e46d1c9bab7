//! Follow-up evaluations for failed allocations whose reschedule delay has not passed.
//!
//! Allocations due within five seconds of each other share one evaluation, which waits until the
//! first of them is due; each allocation is annotated with its follow-up evaluation's ID so later
//! evaluations leave it to that one.
//!
//! Nomad: `scheduler/reconciler/reconcile_cluster.go` `createRescheduleLaterEvals`.

use std::sync::Arc;

use super::DelayedReschedule;
use super::descriptions::RESCHEDULING_FOLLOWUP_EVAL;
use crate::structs::{Allocation, EvalId, EvalStatus, EvalTrigger, Evaluation};

/// Nomad's `batchedFailedAllocWindowSize`.
const BATCH_WINDOW_NANOS: i64 = 5_000_000_000;

/// The follow-up evaluations, and each delayed allocation with the evaluation that will replace it.
pub fn followup_evals(
    parent: &Evaluation,
    mut delayed: Vec<DelayedReschedule>,
    now: i64,
) -> (Vec<Evaluation>, Vec<(Arc<Allocation>, EvalId)>) {
    delayed.sort_by(|left, right| {
        left.at
            .cmp(&right.at)
            .then(left.alloc.id.cmp(&right.alloc.id))
    });
    let mut evals: Vec<Evaluation> = Vec::new();
    let mut annotated = Vec::with_capacity(delayed.len());
    let mut window_start = i64::MIN;
    for reschedule in delayed {
        if evals.is_empty() || reschedule.at - window_start >= BATCH_WINDOW_NANOS {
            window_start = reschedule.at;
            evals.push(Evaluation {
                id: EvalId::generate(),
                namespace: parent.namespace.clone(),
                priority: parent.priority,
                eval_type: parent.eval_type,
                triggered_by: EvalTrigger::RETRY_FAILED_ALLOC.to_owned(),
                job_id: parent.job_id.clone(),
                job_modify_index: parent.job_modify_index,
                status: EvalStatus::Pending,
                status_description: RESCHEDULING_FOLLOWUP_EVAL.to_owned(),
                wait_until: reschedule.at,
                previous_eval: Some(parent.id.clone()),
                create_time: now,
                modify_time: now,
                ..Evaluation::default()
            });
        }
        if let Some(eval) = evals.last() {
            annotated.push((reschedule.alloc, eval.id.clone()));
        }
    }
    (evals, annotated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::AllocId;

    #[test]
    fn batches_within_five_seconds() {
        let second = 1_000_000_000;
        let delayed = [10, 12, 14, 16, 40]
            .into_iter()
            .enumerate()
            .map(|(idx, at)| DelayedReschedule {
                alloc: Arc::new(Allocation {
                    id: AllocId::from(format!("a{idx}")),
                    ..Allocation::default()
                }),
                at: at * second,
            })
            .collect();
        let parent = Evaluation::default();
        let (evals, annotated) = followup_evals(&parent, delayed, 0);
        let waits: Vec<i64> = evals.iter().map(|eval| eval.wait_until / second).collect();
        assert_eq!(waits, [10, 16, 40]);
        assert_eq!(annotated.len(), 5);
        assert_eq!(annotated[2].1, evals[0].id);
        assert_eq!(annotated[3].1, evals[1].id);
        assert!(
            evals
                .iter()
                .all(|eval| eval.triggered_by == "alloc-failure")
        );
    }
}
