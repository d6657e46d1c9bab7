//! Scheduler workers: each takes an evaluation from the broker, a state snapshot at least as new
//! as the evaluation, runs the scheduler, and acks (or nacks) the evaluation.
//!
//! ```text
//!   loop: broker.dequeue ─► wait state ≥ eval.ModifyIndex ─► snapshot ─► scheduler(snapshot,
//!         WorkerPlanner) ─► ack | nack
//!   WorkerPlanner: submit_plan ─► plan queue ─► PlanResult (+ fresher snapshot on refresh)
//!                  update/create/reblock_eval ─► Raft EvalUpdate
//! ```
//!
//! Workers are OS threads: scheduling is CPU-bound synchronous code (the `Planner` trait is
//! synchronous), so each blocks on the async server calls it makes. It blocks on a small runtime
//! of its own (a timer, no I/O): the server is reached only through channels, so a server runtime
//! dropped without [`Server::shutdown`] leaves the workers with closed channels to report, never a
//! panic from a runtime being shut down under them; a guard task on the server's runtime tells
//! them it is gone, and they stop.
//!
//! Nomad: `nomad/worker.go`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::runtime::Runtime;

use super::Server;
use super::raft::Command;
use crate::scheduler::{Planner, PlannerError, SchedulerConfig, SchedulerError, State};
use crate::structs::{EvalStatus, Evaluation, Plan, PlanResult};

/// The scheduler entry point a worker calls (`scheduler::process_eval`; tests may pass another).
pub type SchedulerFn = fn(
    Arc<dyn State>,
    &mut dyn Planner,
    &SchedulerConfig,
    &Evaluation,
) -> Result<(), SchedulerError>;

/// How long a worker waits for an evaluation before checking for shutdown.
const DEQUEUE_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a worker waits for the state to catch up with an evaluation or a plan's refresh index.
const STATE_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn spawn_workers(
    server: &Arc<Server>,
    count: usize,
    scheduler: SchedulerFn,
) -> anyhow::Result<Vec<std::thread::JoinHandle<()>>> {
    let server_runtime = RuntimeAlive::watch();
    (0..count)
        .map(|worker_idx| {
            let server = server.clone();
            let server_runtime = server_runtime.clone();
            let runtime = Arc::new(
                tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()?,
            );
            std::thread::Builder::new()
                .name(format!("scheduler-worker-{worker_idx}"))
                .spawn(move || run_worker(&server, &runtime, &server_runtime, scheduler))
                .map_err(anyhow::Error::from)
        })
        .collect()
}

/// Whether the server's runtime still runs: a task on it flips the flag when it is dropped,
/// which a runtime does to its tasks when it shuts down.
#[derive(Clone)]
struct RuntimeAlive(Arc<AtomicBool>);

struct RuntimeGuard(Arc<AtomicBool>);

impl Drop for RuntimeGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

impl RuntimeAlive {
    /// Watches the current runtime.
    fn watch() -> Self {
        let alive = Arc::new(AtomicBool::new(true));
        let guard = RuntimeGuard(alive.clone());
        tokio::spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        Self(alive)
    }

    fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

fn run_worker(
    server: &Arc<Server>,
    runtime: &Arc<Runtime>,
    server_runtime: &RuntimeAlive,
    scheduler: SchedulerFn,
) {
    while !server.is_shutting_down() && server_runtime.get() {
        let Some((eval, token)) = runtime.block_on(server.broker.dequeue(DEQUEUE_TIMEOUT)) else {
            continue;
        };
        let span = tracing::debug_span!("eval", eval_id = %eval.id, job_id = %eval.job_id);
        let _entered = span.enter();
        let outcome = process(server, runtime, scheduler, &eval, &token);
        let acked = match outcome {
            Ok(()) => server.broker.ack(&eval.id, &token),
            Err(error) => {
                tracing::warn!(error = %error, "scheduling failed: nacking the evaluation");
                server.broker.nack(&eval.id, &token)
            }
        };
        if let Err(error) = acked {
            tracing::warn!(error = %error, "ack/nack refused");
        }
    }
}

fn process(
    server: &Arc<Server>,
    runtime: &Arc<Runtime>,
    scheduler: SchedulerFn,
    eval: &Arc<Evaluation>,
    token: &str,
) -> Result<(), String> {
    let wait_index = eval.modify_index.max(eval.snapshot_index);
    let reached = runtime.block_on(
        server
            .store
            .wait_for_index(wait_index, STATE_CATCH_UP_TIMEOUT),
    );
    if reached < wait_index {
        return Err(format!(
            "state did not reach index {wait_index} (at {reached})"
        ));
    }
    let snapshot = server.store.snapshot();
    let config = SchedulerConfig {
        now_unix_nanos: super::now_unix_nanos(),
        algorithm: server.algorithm_for(
            &snapshot,
            snapshot.job(&eval.namespace, &eval.job_id).as_deref(),
        ),
        ..SchedulerConfig::default()
    };
    let snapshot: Arc<dyn State> = Arc::new(snapshot);
    let mut planner = WorkerPlanner {
        server: server.clone(),
        runtime: runtime.clone(),
        eval_token: token.to_owned(),
        snapshot_index: snapshot.index(),
    };
    scheduler(snapshot, &mut planner, &config, eval).map_err(|error| error.to_string())
}

/// The [`Planner`] a worker hands the scheduler: plans go to the plan applier, evaluation changes
/// through Raft.
pub struct WorkerPlanner {
    server: Arc<Server>,
    runtime: Arc<Runtime>,
    eval_token: String,
    snapshot_index: u64,
}

impl WorkerPlanner {
    fn write_evals(&self, evals: Vec<Evaluation>) -> Result<(), PlannerError> {
        self.runtime
            .block_on(self.server.write(Command::EvalUpdate { evals }))
            .map(|_| ())
            .map_err(|error| PlannerError(error.to_string()))
    }

    fn stamp(&self, mut eval: Evaluation) -> Evaluation {
        let now = super::now_unix_nanos();
        if eval.create_time == 0 {
            eval.create_time = now;
        }
        eval.modify_time = now;
        if eval.snapshot_index == 0 {
            eval.snapshot_index = self.snapshot_index;
        }
        eval
    }
}

impl Planner for WorkerPlanner {
    fn submit_plan(
        &mut self,
        mut plan: Plan,
    ) -> Result<(PlanResult, Option<Arc<dyn State>>), PlannerError> {
        plan.eval_token = self.eval_token.clone();
        if plan.snapshot_index == 0 {
            plan.snapshot_index = self.snapshot_index;
        }
        let result = self
            .runtime
            .block_on(self.server.plan_queue.submit(plan))
            .map_err(|error| PlannerError(error.to_string()))?;
        if result.refresh_index == 0 {
            return Ok((result, None));
        }
        let reached = self.runtime.block_on(self.server.store.wait_for_index(
            result.refresh_index.max(result.alloc_index),
            STATE_CATCH_UP_TIMEOUT,
        ));
        let snapshot = self.server.store.snapshot();
        self.snapshot_index = reached;
        Ok((result, Some(Arc::new(snapshot))))
    }

    fn update_eval(&mut self, eval: Evaluation) -> Result<(), PlannerError> {
        let eval = self.stamp(eval);
        self.write_evals(vec![eval])
    }

    fn create_eval(&mut self, eval: Evaluation) -> Result<(), PlannerError> {
        let eval = self.stamp(eval);
        self.write_evals(vec![eval])
    }

    fn reblock_eval(&mut self, mut eval: Evaluation) -> Result<(), PlannerError> {
        eval.status = EvalStatus::Blocked;
        let eval = self.stamp(eval);
        self.write_evals(vec![eval])
    }
}

/// caravan's schedulers, as workers run them.
pub fn default_scheduler() -> SchedulerFn {
    crate::scheduler::process_eval
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ServerOptions;

    #[test]
    fn workers_stop_without_panicking_when_the_server_runtime_is_dropped() -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let options = ServerOptions {
            http_addr: "127.0.0.1:0".parse()?,
            rpc_addr: "127.0.0.1:0".parse()?,
            dev: true,
            num_workers: 2,
            node_name: "worker-test".to_owned(),
            ..ServerOptions::default()
        };
        let server = runtime.block_on(Server::start(options, default_scheduler()))?;
        let workers = std::mem::take(
            &mut *server
                .workers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        assert_eq!(workers.len(), 2);
        // No `Server::shutdown`: the runtime simply goes away, as when a caller forgets.
        drop(runtime);
        for worker in workers {
            assert!(worker.join().is_ok(), "a scheduler worker panicked");
        }
        Ok(())
    }
}
