//! Blocked evaluations: those the scheduler could not fully place for lack of capacity, kept by
//! the leader until capacity changes (a node becomes ready or eligible, allocations finish).
//!
//! Invariant: at most one blocked evaluation per job; a newer one replaces the older, which is
//! returned to be cancelled (Nomad: `nomad/blocked_evals.go` `processBlock`, duplicates).
//!
//! An evaluation planned against a snapshot older than the last capacity change missed that
//! change: it is released at once instead of waiting for the next one (Nomad: `missedUnblock`).
//! Without this, a job registered while its nodes are still registering could wait forever.
//!
//! Simplification against Nomad: every capacity change unblocks every blocked evaluation, rather
//! than only those whose computed node classes could use the change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::server::state::{JobKey, job_key};
use crate::structs::{Evaluation, JobId};

#[derive(Debug, Default)]
struct Inner {
    enabled: bool,
    by_job: HashMap<JobKey, Arc<Evaluation>>,
    duplicates: Vec<Arc<Evaluation>>,
    /// The Raft index of the last capacity change seen.
    unblock_index: u64,
}

#[derive(Debug, Default)]
pub struct BlockedEvals {
    inner: Mutex<Inner>,
}

impl BlockedEvals {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn set_enabled(&self, enabled: bool) {
        let mut inner = self.lock();
        if enabled {
            inner.enabled = true;
        } else {
            *inner = Inner::default();
        }
    }

    /// Tracks a blocked evaluation, or hands it back for the broker if it was planned before the
    /// last capacity change (it could not see that capacity).
    #[must_use = "a returned evaluation missed an unblock and must be enqueued"]
    pub fn block(&self, eval: Arc<Evaluation>) -> Option<Arc<Evaluation>> {
        let mut inner = self.lock();
        if !inner.enabled {
            return None;
        }
        if eval.snapshot_index < inner.unblock_index {
            tracing::debug!(eval_id = %eval.id, snapshot_index = eval.snapshot_index, unblock_index = inner.unblock_index, "blocked evaluation missed an unblock");
            return Some(eval);
        }
        let key = job_key(&eval.namespace, &eval.job_id);
        match inner.by_job.get(&key) {
            Some(existing) if existing.id == eval.id => {
                inner.by_job.insert(key, eval);
            }
            Some(existing) if existing.create_index > eval.create_index => {
                inner.duplicates.push(eval);
            }
            Some(_) => {
                if let Some(older) = inner.by_job.insert(key, eval) {
                    inner.duplicates.push(older);
                }
            }
            None => {
                inner.by_job.insert(key, eval);
            }
        }
        None
    }

    /// Forgets the job's blocked evaluation if it is `eval` (it completed or was cancelled).
    pub fn untrack(&self, eval: &Evaluation) {
        let mut inner = self.lock();
        let key = job_key(&eval.namespace, &eval.job_id);
        if inner
            .by_job
            .get(&key)
            .is_some_and(|blocked| blocked.id == eval.id)
        {
            inner.by_job.remove(&key);
        }
    }

    /// Capacity changed at Raft index `index`: every blocked evaluation is released, for the
    /// broker.
    pub fn unblock_all(&self, index: u64) -> Vec<Arc<Evaluation>> {
        let mut inner = self.lock();
        inner.unblock_index = inner.unblock_index.max(index);
        inner.by_job.drain().map(|(_, eval)| eval).collect()
    }

    /// Drops the job's blocked evaluation (the job was deregistered) and returns it to be
    /// cancelled.
    pub fn cancel_job(&self, namespace: &str, job_id: &JobId) -> Option<Arc<Evaluation>> {
        self.lock().by_job.remove(&job_key(namespace, job_id))
    }

    /// Older blocked evaluations replaced by newer ones, for the leader to cancel.
    pub fn take_duplicates(&self) -> Vec<Arc<Evaluation>> {
        std::mem::take(&mut self.lock().duplicates)
    }

    pub fn len(&self) -> usize {
        self.lock().by_job.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::{EvalId, EvalStatus, JobId};

    fn blocked(id: &str, job: &str, snapshot_index: u64) -> Arc<Evaluation> {
        Arc::new(Evaluation {
            id: EvalId::from(id),
            namespace: "default".to_owned(),
            job_id: JobId::from(job),
            status: EvalStatus::Blocked,
            snapshot_index,
            ..Evaluation::default()
        })
    }

    fn enabled() -> BlockedEvals {
        let blocked = BlockedEvals::default();
        blocked.set_enabled(true);
        blocked
    }

    #[test]
    fn capacity_change_releases_every_blocked_evaluation() {
        let evals = enabled();
        assert!(evals.block(blocked("e1", "a", 5)).is_none());
        assert!(evals.block(blocked("e2", "b", 5)).is_none());
        assert_eq!(evals.len(), 2);
        let mut released: Vec<String> = evals
            .unblock_all(6)
            .iter()
            .map(|eval| eval.id.to_string())
            .collect();
        released.sort();
        assert_eq!(released, ["e1", "e2"]);
        assert!(evals.is_empty());
    }

    #[test]
    fn evaluation_planned_before_the_last_capacity_change_is_released_at_once() {
        let evals = enabled();
        assert!(evals.unblock_all(10).is_empty());
        // Planned against index 9: it never saw the capacity that appeared at 10.
        let missed = evals.block(blocked("e1", "a", 9));
        assert_eq!(
            missed.map(|eval| eval.id.to_string()).as_deref(),
            Some("e1")
        );
        assert!(evals.is_empty());
        // Planned at 10 or later, it saw that capacity and still could not place: it waits.
        assert!(evals.block(blocked("e2", "a", 10)).is_none());
        assert_eq!(evals.len(), 1);
    }

    #[test]
    fn newer_blocked_evaluation_replaces_the_older_which_is_cancelled() {
        let evals = enabled();
        let mut older = (*blocked("e1", "a", 1)).clone();
        older.create_index = 1;
        let mut newer = (*blocked("e2", "a", 2)).clone();
        newer.create_index = 2;
        assert!(evals.block(Arc::new(older)).is_none());
        assert!(evals.block(Arc::new(newer)).is_none());
        assert_eq!(evals.len(), 1);
        let duplicates = evals.take_duplicates();
        assert_eq!(duplicates.len(), 1);
        assert_eq!(duplicates[0].id.as_str(), "e1");
    }

    #[test]
    fn disabled_tracker_keeps_nothing() {
        let evals = BlockedEvals::default();
        assert!(evals.block(blocked("e1", "a", 1)).is_none());
        assert!(evals.is_empty());
    }
}
