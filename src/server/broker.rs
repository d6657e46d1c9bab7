//! The evaluation broker: the leader's queue of evaluations waiting for a scheduler worker.
//!
//! ```text
//!  enqueue ─► delayed (WaitUntil in the future) ─┐
//!     │                                          ▼
//!     ├────► pending (job has one in flight) ──► ready (priority, then age) ─► dequeue ─► unacked
//!     │                                          ▲                                  │
//!     └──────────────────────────────────────────┘       ack: done, job's next pending ┤
//!                          nack / nack timeout: redeliver after a delay ◄────────────┤
//!                          delivery limit reached: failed (the leader marks it) ◄────┘
//! ```
//!
//! Invariant: at most one evaluation per job is ready or unacked at a time, so two workers never
//! schedule the same job concurrently. Invariant: the broker holds state only on the leader; it
//! is disabled (and emptied) on followers, and refilled from the state store when leadership is
//! gained.
//!
//! Nomad: `nomad/eval_broker.go`.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::server::state::{JobKey, job_key};
use crate::structs::{EvalId, Evaluation, JobId};

/// Timings and limits of the broker.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// An unacked evaluation is nacked after this long (Nomad: 60 s).
    pub nack_timeout: Duration,
    /// Deliveries before an evaluation is failed (Nomad: 3).
    pub delivery_limit: u32,
    /// Redelivery delay after the first nack (Nomad: 1 s).
    pub initial_nack_delay: Duration,
    /// Redelivery delay after later nacks (Nomad: 20 s).
    pub subsequent_nack_delay: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            nack_timeout: Duration::from_secs(60),
            delivery_limit: 3,
            initial_nack_delay: Duration::from_secs(1),
            subsequent_nack_delay: Duration::from_secs(20),
        }
    }
}

/// A broker refusal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BrokerError {
    #[error("evaluation {0} is not outstanding")]
    NotOutstanding(EvalId),
    #[error("evaluation {0}: token does not match")]
    TokenMismatch(EvalId),
}

/// A ready evaluation, ordered by priority (higher first), then age (older first).
#[derive(Debug)]
struct ReadyEval(Arc<Evaluation>);

impl PartialEq for ReadyEval {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ReadyEval {}

impl PartialOrd for ReadyEval {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ReadyEval {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .priority
            .cmp(&other.0.priority)
            .then_with(|| other.0.create_index.cmp(&self.0.create_index))
            .then_with(|| other.0.id.cmp(&self.0.id))
    }
}

#[derive(Debug)]
struct Unacked {
    eval: Arc<Evaluation>,
    token: String,
    deadline: Instant,
}

#[derive(Debug)]
struct Delayed {
    at: Instant,
    eval: Arc<Evaluation>,
    /// A redelivery after a nack: the job's slot is still held by this evaluation.
    redelivery: bool,
}

#[derive(Debug, Default)]
struct Inner {
    enabled: bool,
    /// The scheduler configuration's `PauseEvalBroker`: evaluations are held, none dequeued.
    paused: bool,
    ready: BinaryHeap<ReadyEval>,
    /// Per job, evaluations waiting for the job's in-flight one.
    pending: HashMap<JobKey, BinaryHeap<ReadyEval>>,
    /// Jobs with an evaluation ready, unacked or waiting for redelivery.
    jobs_in_flight: HashSet<JobKey>,
    unacked: HashMap<EvalId, Unacked>,
    delayed: Vec<Delayed>,
    deliveries: HashMap<EvalId, u32>,
    /// Every evaluation the broker holds, wherever it is.
    tracked: HashSet<EvalId>,
    /// Evaluations enqueued again while unacked: requeued on ack.
    requeue: HashMap<EvalId, Arc<Evaluation>>,
    failed: Vec<Arc<Evaluation>>,
}

/// Counts for `/v1/agent/self` and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BrokerStats {
    pub total_ready: usize,
    pub total_unacked: usize,
    pub total_pending: usize,
    pub total_waiting: usize,
    pub total_failed: usize,
}

#[derive(Debug)]
pub struct EvalBroker {
    config: BrokerConfig,
    inner: Mutex<Inner>,
    ready_changed: Notify,
}

impl EvalBroker {
    pub fn new(config: BrokerConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner::default()),
            ready_changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Enables the broker (on gaining leadership) or disables and empties it (on losing it).
    pub fn set_enabled(&self, enabled: bool) {
        let mut inner = self.lock();
        if enabled {
            inner.enabled = true;
        } else {
            *inner = Inner::default();
        }
        drop(inner);
        self.ready_changed.notify_waiters();
    }

    /// Holds every evaluation (`PauseEvalBroker`) or lets them be dequeued again.
    pub fn set_paused(&self, paused: bool) {
        self.lock().paused = paused;
        self.ready_changed.notify_waiters();
    }

    pub fn enabled(&self) -> bool {
        self.lock().enabled
    }

    /// Adds an evaluation. Evaluations already held are ignored, unless unacked: those are
    /// delivered again once acked, since something changed while they were being processed.
    pub fn enqueue(&self, eval: Arc<Evaluation>, now_unix_nanos: i64) {
        let mut inner = self.lock();
        if !inner.enabled {
            return;
        }
        if inner.tracked.contains(&eval.id) {
            if inner.unacked.contains_key(&eval.id) {
                inner.requeue.insert(eval.id.clone(), eval);
            }
            return;
        }
        inner.tracked.insert(eval.id.clone());
        if eval.wait_until > now_unix_nanos {
            let wait = Duration::from_nanos((eval.wait_until - now_unix_nanos).unsigned_abs());
            inner.delayed.push(Delayed {
                at: Instant::now() + wait,
                eval,
                redelivery: false,
            });
            return;
        }
        if !eval.wait.is_zero() {
            inner.delayed.push(Delayed {
                at: Instant::now() + eval.wait,
                eval,
                redelivery: false,
            });
            return;
        }
        Self::make_ready(&mut inner, eval);
        drop(inner);
        self.ready_changed.notify_waiters();
    }

    /// Puts an evaluation in the ready queue, or behind its job's in-flight one.
    fn make_ready(inner: &mut Inner, eval: Arc<Evaluation>) {
        let key = job_key(&eval.namespace, &eval.job_id);
        if inner.jobs_in_flight.contains(&key) {
            inner.pending.entry(key).or_default().push(ReadyEval(eval));
        } else {
            inner.jobs_in_flight.insert(key);
            inner.ready.push(ReadyEval(eval));
        }
    }

    /// Takes the highest-priority ready evaluation and its token, waiting up to `timeout`.
    pub async fn dequeue(&self, timeout: Duration) -> Option<(Arc<Evaluation>, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.ready_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(found) = self.try_dequeue() {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    fn try_dequeue(&self) -> Option<(Arc<Evaluation>, String)> {
        let mut inner = self.lock();
        if !inner.enabled || inner.paused {
            return None;
        }
        let ReadyEval(eval) = inner.ready.pop()?;
        let token = uuid::Uuid::new_v4().to_string();
        *inner.deliveries.entry(eval.id.clone()).or_default() += 1;
        let deadline = Instant::now() + self.config.nack_timeout;
        inner.unacked.insert(
            eval.id.clone(),
            Unacked {
                eval: eval.clone(),
                token: token.clone(),
                deadline,
            },
        );
        Some((eval, token))
    }

    /// True if `token` is the current token of the unacked evaluation `eval_id`.
    pub fn outstanding(&self, eval_id: &EvalId, token: &str) -> bool {
        self.lock()
            .unacked
            .get(eval_id)
            .is_some_and(|unacked| unacked.token == token)
    }

    /// Pushes back an unacked evaluation's nack deadline (a worker still busy with it).
    pub fn outstanding_reset(&self, eval_id: &EvalId, token: &str) -> Result<(), BrokerError> {
        let mut inner = self.lock();
        let unacked = inner
            .unacked
            .get_mut(eval_id)
            .ok_or_else(|| BrokerError::NotOutstanding(eval_id.clone()))?;
        if unacked.token != token {
            return Err(BrokerError::TokenMismatch(eval_id.clone()));
        }
        unacked.deadline = Instant::now() + self.config.nack_timeout;
        Ok(())
    }

    /// The evaluation was processed: forget it and release its job.
    pub fn ack(&self, eval_id: &EvalId, token: &str) -> Result<(), BrokerError> {
        let mut inner = self.lock();
        let unacked = Self::take_unacked(&mut inner, eval_id, token)?;
        inner.tracked.remove(eval_id);
        inner.deliveries.remove(eval_id);
        let key = job_key(&unacked.eval.namespace, &unacked.eval.job_id);
        Self::release_job(&mut inner, &key);
        if let Some(requeued) = inner.requeue.remove(eval_id) {
            inner.tracked.insert(requeued.id.clone());
            Self::make_ready(&mut inner, requeued);
        }
        drop(inner);
        self.ready_changed.notify_waiters();
        Ok(())
    }

    /// The evaluation could not be processed: redeliver it after a delay, or fail it once it
    /// reached the delivery limit.
    pub fn nack(&self, eval_id: &EvalId, token: &str) -> Result<(), BrokerError> {
        let mut inner = self.lock();
        let unacked = Self::take_unacked(&mut inner, eval_id, token)?;
        self.redeliver_or_fail(&mut inner, unacked.eval);
        drop(inner);
        self.ready_changed.notify_waiters();
        Ok(())
    }

    fn take_unacked(
        inner: &mut Inner,
        eval_id: &EvalId,
        token: &str,
    ) -> Result<Unacked, BrokerError> {
        match inner.unacked.get(eval_id) {
            None => Err(BrokerError::NotOutstanding(eval_id.clone())),
            Some(unacked) if unacked.token != token => {
                Err(BrokerError::TokenMismatch(eval_id.clone()))
            }
            Some(_) => Ok(inner
                .unacked
                .remove(eval_id)
                .expect("the unacked entry was just found")),
        }
    }

    fn redeliver_or_fail(&self, inner: &mut Inner, eval: Arc<Evaluation>) {
        let deliveries = inner.deliveries.get(&eval.id).copied().unwrap_or(0);
        if deliveries >= self.config.delivery_limit {
            tracing::warn!(eval_id = %eval.id, deliveries, "evaluation reached its delivery limit");
            inner.tracked.remove(&eval.id);
            inner.deliveries.remove(&eval.id);
            inner.requeue.remove(&eval.id);
            let key = job_key(&eval.namespace, &eval.job_id);
            Self::release_job(inner, &key);
            inner.failed.push(eval);
            return;
        }
        let delay = if deliveries <= 1 {
            self.config.initial_nack_delay
        } else {
            self.config.subsequent_nack_delay
        };
        inner.delayed.push(Delayed {
            at: Instant::now() + delay,
            eval,
            redelivery: true,
        });
    }

    /// Lets the job's next pending evaluation become ready.
    fn release_job(inner: &mut Inner, key: &JobKey) {
        inner.jobs_in_flight.remove(key);
        let next = inner.pending.get_mut(key).and_then(BinaryHeap::pop);
        if inner.pending.get(key).is_some_and(BinaryHeap::is_empty) {
            inner.pending.remove(key);
        }
        if let Some(ReadyEval(next)) = next {
            inner.jobs_in_flight.insert(key.clone());
            inner.ready.push(ReadyEval(next));
        }
    }

    /// Moves due delayed evaluations to ready and nacks unacked ones past their deadline. The
    /// leader calls it periodically.
    pub fn tick(&self) {
        let now = Instant::now();
        let mut inner = self.lock();
        if !inner.enabled {
            return;
        }
        let expired: Vec<Arc<Evaluation>> = {
            let expired_ids: Vec<EvalId> = inner
                .unacked
                .iter()
                .filter(|(_, unacked)| unacked.deadline <= now)
                .map(|(eval_id, _)| eval_id.clone())
                .collect();
            expired_ids
                .iter()
                .filter_map(|eval_id| inner.unacked.remove(eval_id))
                .map(|unacked| unacked.eval)
                .collect()
        };
        for eval in expired {
            tracing::warn!(eval_id = %eval.id, "evaluation nack timeout reached");
            self.redeliver_or_fail(&mut inner, eval);
        }
        let mut due = Vec::new();
        inner.delayed.retain(|delayed| {
            if delayed.at <= now {
                due.push((delayed.eval.clone(), delayed.redelivery));
                false
            } else {
                true
            }
        });
        let any_due = !due.is_empty();
        for (eval, redelivery) in due {
            if redelivery {
                // The job's slot is still held by this evaluation.
                inner.ready.push(ReadyEval(eval));
            } else {
                Self::make_ready(&mut inner, eval);
            }
        }
        drop(inner);
        if any_due {
            self.ready_changed.notify_waiters();
        }
    }

    /// Drops the queued evaluations of a job that was deregistered, all but `keep` (the
    /// deregister's own), and returns them for the leader to mark cancelled. An evaluation a
    /// worker holds is left to finish: the plan applier refuses its placements.
    pub fn cancel_job(
        &self,
        namespace: &str,
        job_id: &JobId,
        keep: Option<&EvalId>,
    ) -> Vec<Arc<Evaluation>> {
        let key = job_key(namespace, job_id);
        let cancels = |eval: &Evaluation| {
            eval.namespace == namespace && eval.job_id == *job_id && Some(&eval.id) != keep
        };
        let mut inner = self.lock();
        let mut cancelled = Vec::new();
        if let Some(pending) = inner.pending.remove(&key) {
            let kept: BinaryHeap<ReadyEval> = pending
                .into_iter()
                .filter_map(|ReadyEval(eval)| {
                    if cancels(&eval) {
                        cancelled.push(eval);
                        None
                    } else {
                        Some(ReadyEval(eval))
                    }
                })
                .collect();
            if !kept.is_empty() {
                inner.pending.insert(key.clone(), kept);
            }
        }
        // The job's slot is freed when the evaluation holding it (ready, or waiting for a
        // redelivery) is cancelled.
        let mut slot_freed = false;
        for ReadyEval(eval) in std::mem::take(&mut inner.ready).into_vec() {
            if cancels(&eval) {
                slot_freed = true;
                cancelled.push(eval);
            } else {
                inner.ready.push(ReadyEval(eval));
            }
        }
        for delayed in std::mem::take(&mut inner.delayed) {
            if cancels(&delayed.eval) {
                slot_freed |= delayed.redelivery;
                cancelled.push(delayed.eval);
            } else {
                inner.delayed.push(delayed);
            }
        }
        inner.requeue.retain(|_, eval| !cancels(eval));
        for eval in &cancelled {
            inner.tracked.remove(&eval.id);
            inner.deliveries.remove(&eval.id);
        }
        if slot_freed {
            Self::release_job(&mut inner, &key);
        }
        drop(inner);
        self.ready_changed.notify_waiters();
        cancelled
    }

    /// Evaluations that reached the delivery limit, for the leader to mark failed.
    pub fn take_failed(&self) -> Vec<Arc<Evaluation>> {
        std::mem::take(&mut self.lock().failed)
    }

    pub fn stats(&self) -> BrokerStats {
        let inner = self.lock();
        BrokerStats {
            total_ready: inner.ready.len(),
            total_unacked: inner.unacked.len(),
            total_pending: inner.pending.values().map(BinaryHeap::len).sum(),
            total_waiting: inner.delayed.len(),
            total_failed: inner.failed.len(),
        }
    }
}

#[cfg(test)]
mod tests;
