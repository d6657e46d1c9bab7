//! One driver call's instance: a fresh store with a memory budget (all its memories and tables
//! together, see `budget.rs`) and a CPU deadline, instantiated from the driver's `InstancePre`
//! while the call holds a slot of its driver's lane, and the classification of how a call failed.
//!
//! Invariant: an instance serves exactly one call. A trap, a deadline overrun or a timeout
//! discards it with its store; the next call instantiates again (microseconds with the pooling
//! allocator), so a misbehaving driver costs only its own call.
//!
//! The CPU deadline counts guest execution only: [`CallState::host_timer`] measures the time the
//! call spends suspended in host capabilities (a task's `wait` may last days) and the epoch
//! callback subtracts it; and since a computing guest yields to the executor at every tick, the
//! time it then waits to be polled again (long on a loaded agent) is not counted either: the guest
//! is charged at most one tick per epoch callback, which fires only while it runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use crate::driver_host::bindings;
use crate::driver_host::budget::{DRIVER_STORE_COUNTS, LanePermit, StoreBudget};
use crate::driver_host::engine::EPOCH_TICK;
use crate::driver_host::error::Error;
use crate::driver_host::host::HostRuntime;
use crate::driver_host::types::TaskScope;

/// The data of a driver call's store.
pub(crate) struct CallState {
    pub driver: Arc<str>,
    /// Linear memory and tables of the whole store, and the counts of its instances.
    pub memory: StoreBudget,
    /// Guest execution allowed for the call.
    pub budget: Duration,
    pub started: Instant,
    /// Nanoseconds spent inside host capabilities so far.
    pub host_nanos: Arc<AtomicU64>,
    pub deadline_hit: bool,
    /// Epoch callbacks so far: each marks a tick in which the guest ran.
    pub ticks_run: u32,
    /// The task the call concerns (the client's record), if any: the scope of every capability.
    pub scope: Option<Arc<TaskScope>>,
    /// Scope of capability `fs`: the task directory of [`CallState::scope`].
    pub task_dir: Option<PathBuf>,
    pub runtime: Arc<HostRuntime>,
    /// Wall-clock limit of one host capability call (except the deliberate waits).
    pub host_call_timeout: Duration,
}

impl CallState {
    pub(crate) fn new(
        driver: Arc<str>,
        limits: CallLimits,
        scope: Option<Arc<TaskScope>>,
        runtime: Arc<HostRuntime>,
    ) -> CallState {
        let task_dir = scope.as_ref().map(|scope| scope.task_dir.clone());
        CallState {
            driver,
            memory: StoreBudget::new(limits.memory_cap_bytes, DRIVER_STORE_COUNTS),
            budget: limits.cpu_budget,
            started: Instant::now(),
            host_nanos: Arc::new(AtomicU64::new(0)),
            deadline_hit: false,
            ticks_run: 0,
            scope,
            task_dir,
            runtime,
            host_call_timeout: limits.host_call_timeout,
        }
    }

    /// Starts measuring a stretch of time in a host capability; it ends when the timer drops.
    pub(crate) fn host_timer(&self) -> HostTimer {
        HostTimer {
            started: Instant::now(),
            total: Arc::clone(&self.host_nanos),
        }
    }

    /// Guest execution so far: the wall time outside host capabilities, but never more than one
    /// tick per epoch callback (time spent queued after a yield is the executor's, not the
    /// guest's).
    fn guest_time(&self) -> Duration {
        let outside_host = self.started.elapsed().saturating_sub(Duration::from_nanos(
            self.host_nanos.load(Ordering::Relaxed),
        ));
        outside_host.min(EPOCH_TICK.saturating_mul(self.ticks_run))
    }
}

/// The limits of one call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallLimits {
    pub memory_cap_bytes: usize,
    pub cpu_budget: Duration,
    pub host_call_timeout: Duration,
}

/// Adds the time it lived to the call's host time.
pub(crate) struct HostTimer {
    started: Instant,
    total: Arc<AtomicU64>,
}

impl Drop for HostTimer {
    fn drop(&mut self) {
        let nanos = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.total.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// A driver instance ready for one call.
pub(crate) struct Instance {
    pub store: Store<CallState>,
    pub bindings: bindings::Driver,
    /// The call's slot in its driver's lane, released with the instance.
    _permit: LanePermit,
}

impl Instance {
    pub(crate) async fn new(
        engine: &Engine,
        pre: &bindings::DriverPre<CallState>,
        state: CallState,
        permit: LanePermit,
    ) -> wasmtime::Result<Instance> {
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut context| {
            let state = context.data_mut();
            state.ticks_run = state.ticks_run.saturating_add(1);
            if state.guest_time() > state.budget {
                state.deadline_hit = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            // Yield to the executor at every tick: a guest that computes never holds an agent
            // thread for longer than a tick, and the call's wall-clock timeout can fire.
            Ok(UpdateDeadline::Yield(1))
        });
        let bindings = match pre.instantiate_async(&mut store).await {
            Ok(bindings) => bindings,
            Err(err) if store.data().memory.hit().is_some() => {
                let cap_bytes = store.data().memory.cap_bytes();
                return Err(err.context(format!(
                    "over the memory cap of {cap_bytes} bytes (linear memory and tables of all \
                     its instances together)"
                )));
            }
            Err(err) => return Err(err),
        };
        Ok(Instance {
            store,
            bindings,
            _permit: permit,
        })
    }
}

/// Names the cause of a failed call from the error and what the store saw.
pub(crate) fn classify(call: &'static str, state: &CallState, err: &wasmtime::Error) -> Error {
    let driver = state.driver.to_string();
    if state.deadline_hit {
        return Error::DeadlineExceeded {
            driver,
            call,
            budget: state.budget,
        };
    }
    if state.memory.hit().is_some() {
        return Error::MemoryCapExceeded {
            driver,
            call,
            cap_bytes: state.memory.cap_bytes(),
        };
    }
    let message = match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{err:#}"),
    };
    Error::Trap {
        driver,
        call,
        message,
    }
}
