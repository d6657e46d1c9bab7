//! Blocked evaluations: those the scheduler could not fully place for lack of capacity, kept by
//! the leader until capacity changes (a node becomes ready or eligible, allocations finish).
//!
//! Invariant: at most one blocked evaluation per job; a newer one replaces the older, which is
//! returned to be cancelled (Nomad: `nomad/blocked_evals.go` `processBlock`, duplicates).
//!
//! Simplification against Nomad: every capacity change unblocks every blocked evaluation, rather
//! than only those whose computed node classes could use the change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::server::state::{JobKey, job_key};
use crate::structs::Evaluation;

#[derive(Debug, Default)]
struct Inner {
    enabled: bool,
    by_job: HashMap<JobKey, Arc<Evaluation>>,
    duplicates: Vec<Arc<Evaluation>>,
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

    /// Tracks a blocked evaluation.
    pub fn block(&self, eval: Arc<Evaluation>) {
        let mut inner = self.lock();
        if !inner.enabled {
            return;
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

    /// Capacity changed: every blocked evaluation is released, for the broker.
    pub fn unblock_all(&self) -> Vec<Arc<Evaluation>> {
        let mut inner = self.lock();
        inner.by_job.drain().map(|(_, eval)| eval).collect()
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
