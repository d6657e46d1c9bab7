//! Capability `host-wasm`: WASI workloads (the `wasm` driver's tasks) run inside the agent.
//!
//! Each workload gets its own store on the workload engine with: a memory cap over all its memories
//! and tables together (at most the task's memory) and a cap on its instances, memories and tables
//! (`budget.rs`), optional fuel, a WASI context that inherits nothing (args and env as given,
//! stdout/stderr written by the host into the task's rotated log files, buffered (`task_log.rs`:
//! no FIFO, collector or descriptor per idle task), one directory beneath the task directory
//! preopened as `.` and, besides it, only the task's host volumes preopened at their destinations
//! (read-only where recorded so), no network), and a tokio task that runs it (no thread).
//! p1 modules run `_start`; p2 components run `wasi:cli/run`.
//!
//! Scope: the module file and the preopened directory are opened beneath the task directory of
//! the call without following symlinks; the module is read from that descriptor and the directory
//! preopened through `/proc/self/fd/N`, so nothing planted between check and use is followed.
//! Workloads are recorded with their task's id: a call names only its own task's workloads.
//!
//! Compiled modules are cached in memory by the SHA-256 of their bytes (at most
//! [`MAX_COMPILED`] artifacts): every task of a job gets its own copy of the module file, and all
//! of them share one compiled `Module`/`Component` and instantiate from its `InstancePre`.
//!
//! ```text
//!   start ──> running ──(returns / proc_exit / trap / out of fuel)──> exited(exit)
//!                └──────(stop: stop signal, or the epoch callback sees it)──> exited(stopped)
//! ```

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};
use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Engine, InstancePre, Linker, Module, Store, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::driver_host::bindings::caravan::driver::host_wasm::{
    Host, Workload, WorkloadExit, WorkloadStats,
};
use crate::driver_host::budget::{BudgetHit, StoreBudget, WORKLOAD_STORE_COUNTS};
use crate::driver_host::host::task_log::TaskLog;
use crate::driver_host::host::{RawExit, bounded, fd_path, open_beneath};
use crate::driver_host::instance::CallState;
use crate::driver_host::types::TaskScope;

/// Exited workloads kept for late waiters before the table prunes them.
const KEEP_FINISHED: usize = 4096;

/// What a compiled workload file is.
#[derive(Clone)]
enum Compiled {
    Module(InstancePre<P1State>),
    Component(CommandPre<P2State>),
}

/// Distinct compiled artifacts kept; beyond, one is dropped (running workloads keep theirs).
const MAX_COMPILED: usize = 64;

/// The compile cache's key: the SHA-256 of the module's bytes.
type Digest32 = [u8; 32];

#[derive(Clone)]
struct Running {
    /// The task whose call started the workload.
    task_id: Arc<str>,
    stop: Arc<Notify>,
    stopping: Arc<AtomicBool>,
    exit: watch::Receiver<Option<WorkloadExit>>,
    memory_bytes: Arc<AtomicU64>,
}

/// The workloads by id, and their ids by task: a task's stop finds its own without scanning
/// every workload (10,000 tasks stopping at once would otherwise compare 10^8 task ids).
#[derive(Default)]
struct Workloads {
    by_id: HashMap<u64, Running>,
    by_task: HashMap<Arc<str>, BTreeSet<u64>>,
}

impl Workloads {
    fn insert(&mut self, id: u64, running: Running) {
        self.by_task
            .entry(Arc::clone(&running.task_id))
            .or_default()
            .insert(id);
        self.by_id.insert(id, running);
    }

    /// Forgets the workloads that exited.
    fn prune_exited(&mut self) {
        let by_task = &mut self.by_task;
        self.by_id.retain(|id, running| {
            let keep = running.exit.borrow().is_none();
            if !keep && let Some(ids) = by_task.get_mut(&running.task_id) {
                ids.remove(id);
                if ids.is_empty() {
                    by_task.remove(&running.task_id);
                }
            }
            keep
        });
    }
}

/// Agent-wide: the workload engine, its linkers, compiled files and running workloads.
pub(crate) struct WorkloadRuntime {
    engine: Engine,
    p1_linker: Linker<P1State>,
    p2_linker: wasmtime::component::Linker<P2State>,
    compiled: Mutex<HashMap<Digest32, Compiled>>,
    /// Held while compiling (see `compile`).
    compiling: Mutex<()>,
    workloads: Mutex<Workloads>,
    /// The table's size at which `start` prunes exited workloads next.
    prune_at: std::sync::atomic::AtomicUsize,
    next_id: AtomicU64,
}

/// Store data of a p1 module.
pub(crate) struct P1State {
    wasi: WasiP1Ctx,
    limits: StoreBudget,
}

/// Store data of a p2 component.
pub(crate) struct P2State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreBudget,
}

impl WasiView for P2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

trait Limited {
    fn limiter(&mut self) -> &mut StoreBudget;
}

impl Limited for P1State {
    fn limiter(&mut self) -> &mut StoreBudget {
        &mut self.limits
    }
}

impl Limited for P2State {
    fn limiter(&mut self) -> &mut StoreBudget {
        &mut self.limits
    }
}

impl WorkloadRuntime {
    pub(crate) fn new(engine: Engine) -> wasmtime::Result<WorkloadRuntime> {
        let mut p1_linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut p1_linker, |state: &mut P1State| {
            &mut state.wasi
        })?;
        let mut p2_linker = wasmtime::component::Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut p2_linker)?;
        Ok(WorkloadRuntime {
            engine,
            p1_linker,
            p2_linker,
            compiled: Mutex::new(HashMap::new()),
            compiling: Mutex::new(()),
            workloads: Mutex::new(Workloads::default()),
            prune_at: std::sync::atomic::AtomicUsize::new(KEEP_FINISHED),
            next_id: AtomicU64::new(1),
        })
    }

    /// Compiles (or finds in the cache) the workload file, read from the descriptor the host
    /// opened beneath the task directory (`path` only names it in messages).
    fn compile(&self, file: std::fs::File, path: &str) -> Result<Compiled, String> {
        let mut file = file;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|err| format!("{path}: {err}"))?;
        let key: Digest32 = Sha256::digest(&bytes).into();
        if let Some(compiled) = lock(&self.compiled).get(&key) {
            return Ok(compiled.clone());
        }
        // One compile at a time: the tasks of a job that start together wait for the first one
        // to compile their module instead of each compiling it.
        let _compiling = lock(&self.compiling);
        if let Some(compiled) = lock(&self.compiled).get(&key) {
            return Ok(compiled.clone());
        }
        let compiled = if is_component(&bytes) {
            let component =
                Component::new(&self.engine, &bytes).map_err(|err| format!("{path}: {err}"))?;
            let pre = self
                .p2_linker
                .instantiate_pre(&component)
                .map_err(|err| format!("{path}: {err}"))?;
            Compiled::Component(
                CommandPre::new(pre).map_err(|err| format!("{path}: not a WASI command: {err}"))?,
            )
        } else {
            let module =
                Module::new(&self.engine, &bytes).map_err(|err| format!("{path}: {err}"))?;
            Compiled::Module(
                self.p1_linker
                    .instantiate_pre(&module)
                    .map_err(|err| format!("{path}: {err}"))?,
            )
        };
        let mut cache = lock(&self.compiled);
        if cache.len() >= MAX_COMPILED
            && let Some(evicted) = cache.keys().next().copied()
        {
            cache.remove(&evicted);
        }
        cache.insert(key, compiled.clone());
        Ok(compiled)
    }

    /// Starts a workload of the task of `scope`; returns its id.
    pub(crate) fn start(&self, workload: &Workload, scope: &TaskScope) -> Result<u64, String> {
        let module = open_beneath(&scope.task_dir, &workload.module_path, false)
            .map_err(|err| format!("module: {err}"))?;
        let compiled = self.compile(std::fs::File::from(module), &workload.module_path)?;
        let logs = (TaskLog::new(scope, "stdout"), TaskLog::new(scope, "stderr"));
        let wasi = wasi_builder(workload, scope, &logs)?;
        let max_memory = match scope.memory_limit_bytes() {
            Some(task_limit) => workload.max_memory_bytes.min(task_limit),
            None => workload.max_memory_bytes,
        };
        let cap_bytes = usize::try_from(max_memory).unwrap_or(usize::MAX);
        let limits = StoreBudget::new(cap_bytes, WORKLOAD_STORE_COUNTS);
        let memory_bytes = limits.memory_bytes();
        let stop = Arc::new(Notify::new());
        let stopping = Arc::new(AtomicBool::new(false));
        let (sender, receiver) = watch::channel(None);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let fuel = workload.fuel;
        let engine = self.engine.clone();
        let run_stop = Arc::clone(&stop);
        let run_stopping = Arc::clone(&stopping);
        tokio::spawn(async move {
            let run = async {
                match compiled {
                    Compiled::Module(pre) => {
                        let mut wasi = wasi;
                        let state = P1State {
                            wasi: wasi.build_p1(),
                            limits,
                        };
                        let mut store = new_store(&engine, state, fuel, Arc::clone(&run_stopping))?;
                        let result = run_module(&mut store, &pre).await;
                        Ok::<_, String>(exit_of(result, &store.data().limits, fuel, &store))
                    }
                    Compiled::Component(pre) => {
                        let mut wasi = wasi;
                        let state = P2State {
                            wasi: wasi.build(),
                            table: ResourceTable::new(),
                            limits,
                        };
                        let mut store = new_store(&engine, state, fuel, Arc::clone(&run_stopping))?;
                        let result = run_component(&mut store, &pre).await;
                        Ok(exit_of(result, &store.data().limits, fuel, &store))
                    }
                }
            };
            let exit = tokio::select! {
                exit = run => exit.unwrap_or_else(|err| WorkloadExit { exit_code: -1, trap: Some(err) }),
                () = run_stop.notified() => WorkloadExit { exit_code: -1, trap: Some(String::from("stopped")) },
            };
            tracing::debug!(workload = id, exit_code = exit.exit_code, trap = ?exit.trap, "workload exited");
            // What the workload wrote last is on disk before anyone hears it ended.
            for log in [&logs.0, &logs.1] {
                if let Err(err) = log.flush() {
                    tracing::debug!(workload = id, error = %err, "workload log lost");
                }
            }
            let _ = sender.send(Some(exit));
        });
        let mut workloads = lock(&self.workloads);
        // Pruning scans every workload: done when the table doubled since the last time, so
        // starting N workloads costs O(N) however many run.
        if workloads.by_id.len() >= self.prune_at.load(Ordering::Relaxed) {
            workloads.prune_exited();
            self.prune_at.store(
                (workloads.by_id.len() * 2).max(KEEP_FINISHED),
                Ordering::Relaxed,
            );
        }
        workloads.insert(
            id,
            Running {
                task_id: Arc::from(scope.task_id.as_str()),
                stop,
                stopping,
                exit: receiver,
                memory_bytes,
            },
        );
        Ok(id)
    }

    /// The workload `id` if the task `task_id` started it; any other id is refused.
    fn running(&self, id: u64, task_id: &str) -> Result<Running, String> {
        match lock(&self.workloads).by_id.get(&id) {
            Some(running) if *running.task_id == *task_id => Ok(running.clone()),
            _ => Err(format!(
                "workload {id} is not a workload of this task: refused"
            )),
        }
    }

    /// Whether workload `id` belongs to the task `task_id`.
    pub(crate) fn owned(&self, id: u64, task_id: &str) -> Result<(), String> {
        self.running(id, task_id).map(drop)
    }

    /// Stops every running workload of a task; returns how many.
    pub(crate) fn reap(&self, task_id: &str) -> usize {
        let ids: Vec<u64> = {
            let workloads = lock(&self.workloads);
            workloads
                .by_task
                .get(task_id)
                .into_iter()
                .flatten()
                .filter(|id| {
                    workloads
                        .by_id
                        .get(id)
                        .is_some_and(|running| running.exit.borrow().is_none())
                })
                .copied()
                .collect()
        };
        ids.iter()
            .filter(|id| self.stop(**id, task_id).is_ok())
            .count()
    }

    /// The host's own wait for a task whose life is workload `id`.
    pub(crate) async fn wait_task(&self, id: u64, task_id: &str) -> Result<RawExit, String> {
        let exit = self
            .wait(id, task_id, None)
            .await?
            .ok_or_else(|| format!("wait for workload {id} ended without an exit"))?;
        Ok(RawExit {
            exit_code: exit.exit_code,
            signal: 0,
            oom_killed: false,
            detail: exit.trap,
        })
    }

    pub(crate) async fn wait(
        &self,
        id: u64,
        task_id: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<WorkloadExit>, String> {
        let mut exit = self.running(id, task_id)?.exit;
        let waiting = async {
            exit.wait_for(Option::is_some)
                .await
                .map(|exit| exit.clone())
                .map_err(|_| format!("workload {id} vanished"))
        };
        match timeout {
            None => waiting.await,
            Some(timeout) => tokio::time::timeout(timeout, waiting)
                .await
                .unwrap_or(Ok(None)),
        }
    }

    pub(crate) fn stop(&self, id: u64, task_id: &str) -> Result<(), String> {
        let running = self.running(id, task_id)?;
        running.stopping.store(true, Ordering::Relaxed);
        // `notify_one` stores a permit, so a stop that races the task's first poll is not lost.
        running.stop.notify_one();
        Ok(())
    }

    pub(crate) fn is_running(&self, id: u64, task_id: &str) -> bool {
        self.running(id, task_id)
            .is_ok_and(|running| running.exit.borrow().is_none())
    }

    pub(crate) fn stats(&self, id: u64, task_id: &str) -> Result<WorkloadStats, String> {
        let running = self.running(id, task_id)?;
        Ok(WorkloadStats {
            memory_bytes: running.memory_bytes.load(Ordering::Relaxed),
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// p2 components start with the component-model layer header (version 0x0d, layer 1).
fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}

/// A WASI context that inherits nothing from the agent: the task's log files, one directory
/// beneath the task directory.
fn wasi_builder(
    workload: &Workload,
    scope: &TaskScope,
    logs: &(TaskLog, TaskLog),
) -> Result<WasiCtxBuilder, String> {
    let mut builder = WasiCtxBuilder::new();
    let argv0 = std::path::Path::new(&workload.module_path)
        .file_name()
        .map_or_else(
            || String::from("main.wasm"),
            |name| name.to_string_lossy().into_owned(),
        );
    builder.arg(argv0).args(&workload.args).envs(&workload.env);
    builder.stdout(logs.0.clone()).stderr(logs.1.clone());
    let dir = open_beneath(&scope.task_dir, &workload.dir, true)
        .map_err(|err| format!("preopen: {err}"))?;
    // Preopens the directory opened and checked above (its /proc/self/fd path), not a path that
    // could be swapped for a symlink in between.
    builder
        .preopened_dir(fd_path(&dir), ".", FsPerms::ReadWrite)
        .map_err(|err| format!("cannot preopen {:?}: {err}", workload.dir))?;
    // The task's host volumes: directories of the agent's config, preopened where the task
    // mounts them, read-only where recorded so.
    for volume in &scope.volumes {
        let perms = if volume.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        builder
            .preopened_dir(&volume.host_path, &volume.task_path, perms)
            .map_err(|err| {
                format!(
                    "cannot mount host volume {} at {:?} (a Wasm task mounts directories only): {err}",
                    volume.host_path.display(),
                    volume.task_path
                )
            })?;
    }
    Ok(builder)
}

fn new_store<T: Limited + Send + 'static>(
    engine: &Engine,
    state: T,
    fuel: Option<u64>,
    stopping: Arc<AtomicBool>,
) -> Result<Store<T>, String> {
    let mut store = Store::new(engine, state);
    store.limiter(|state| state.limiter());
    store
        .set_fuel(fuel.unwrap_or(u64::MAX))
        .map_err(|err| format!("fuel: {err}"))?;
    // Busy workloads yield to tokio every tick, so other tasks run and a stop is seen.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if stopping.load(Ordering::Relaxed) {
            return Ok(UpdateDeadline::Interrupt);
        }
        Ok(UpdateDeadline::Yield(1))
    });
    Ok(store)
}

async fn run_module(
    store: &mut Store<P1State>,
    pre: &InstancePre<P1State>,
) -> wasmtime::Result<i32> {
    let instance = pre.instantiate_async(&mut *store).await?;
    let start = instance.get_typed_func::<(), ()>(&mut *store, "_start")?;
    start.call_async(&mut *store, ()).await?;
    Ok(0)
}

async fn run_component(
    store: &mut Store<P2State>,
    pre: &CommandPre<P2State>,
) -> wasmtime::Result<i32> {
    let command = pre.instantiate_async(&mut *store).await?;
    match command.wasi_cli_run().call_run(&mut *store).await? {
        Ok(()) => Ok(0),
        Err(()) => Ok(1),
    }
}

fn exit_of<T>(
    result: wasmtime::Result<i32>,
    limits: &StoreBudget,
    fuel: Option<u64>,
    store: &Store<T>,
) -> WorkloadExit {
    match result {
        Ok(code) => WorkloadExit {
            exit_code: code,
            trap: None,
        },
        Err(err) => {
            if let Some(exit) = err.downcast_ref::<I32Exit>() {
                return WorkloadExit {
                    exit_code: exit.0,
                    trap: None,
                };
            }
            let trap = if let Some(hit) = limits.hit() {
                let what = match hit {
                    BudgetHit::Memory => "memory",
                    BudgetHit::Table => "table",
                };
                format!(
                    "exceeded its memory limit of {} bytes (linear memory and tables together; a \
                     {what} grew past it)",
                    limits.cap_bytes()
                )
            } else if fuel.is_some() && store.get_fuel().is_ok_and(|left| left == 0) {
                String::from("ran out of fuel")
            } else if matches!(
                err.downcast_ref::<wasmtime::Trap>(),
                Some(wasmtime::Trap::Interrupt)
            ) {
                String::from("stopped")
            } else {
                format!("{err:#}")
            };
            WorkloadExit {
                exit_code: -1,
                trap: Some(trap),
            }
        }
    }
}

impl CallState {
    /// The task of this call: workload calls need one.
    fn wasm_scope(&self) -> Result<Arc<TaskScope>, String> {
        self.scope
            .clone()
            .ok_or_else(|| String::from("workload calls need a task: this call concerns none"))
    }
}

impl Host for CallState {
    async fn start(&mut self, spec: Workload) -> Result<u64, String> {
        let runtime = Arc::clone(&self.runtime);
        let scope = self.wasm_scope()?;
        bounded(self, "start", async move {
            tokio::task::spawn_blocking(move || runtime.workloads.start(&spec, &scope))
                .await
                .map_err(|err| format!("start: {err}"))?
        })
        .await
    }

    async fn wait(&mut self, id: u64, timeout_ms: u64) -> Result<Option<WorkloadExit>, String> {
        let _timer = self.host_timer();
        let scope = self.wasm_scope()?;
        self.runtime
            .workloads
            .wait(id, &scope.task_id, Some(Duration::from_millis(timeout_ms)))
            .await
    }

    async fn stop(&mut self, id: u64) -> Result<(), String> {
        let _timer = self.host_timer();
        let scope = self.wasm_scope()?;
        self.runtime.workloads.stop(id, &scope.task_id)
    }

    async fn is_running(&mut self, id: u64) -> bool {
        self.wasm_scope()
            .is_ok_and(|scope| self.runtime.workloads.is_running(id, &scope.task_id))
    }

    async fn stats(&mut self, id: u64) -> Result<WorkloadStats, String> {
        let scope = self.wasm_scope()?;
        self.runtime.workloads.stats(id, &scope.task_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COUNTER_WASM: &str = env!("CARAVAN_EXAMPLE_COUNTER_WASM");

    /// A task `task` of its own allocation with its own copy of the counter example.
    fn task_with_counter(dir: &std::path::Path, alloc: &str) -> std::io::Result<TaskScope> {
        let alloc_dir = dir.join(alloc);
        std::fs::create_dir_all(alloc_dir.join("t"))?;
        std::fs::create_dir_all(alloc_dir.join("alloc/logs"))?;
        std::fs::copy(COUNTER_WASM, alloc_dir.join("t/counter.wasm"))?;
        Ok(TaskScope::new(
            alloc,
            "t",
            &alloc_dir,
            alloc_dir.join("alloc/logs/.t.stdout.fifo"),
            alloc_dir.join("alloc/logs/.t.stderr.fifo"),
        ))
    }

    /// A workload of `task`, with the sender that ends it.
    fn running(task: &str) -> (Running, watch::Sender<Option<WorkloadExit>>) {
        let (sender, exit) = watch::channel(None);
        let running = Running {
            task_id: Arc::from(task),
            stop: Arc::new(Notify::new()),
            stopping: Arc::new(AtomicBool::new(false)),
            exit,
            memory_bytes: Arc::new(AtomicU64::new(0)),
        };
        (running, sender)
    }

    #[test]
    fn workloads_are_indexed_by_task_and_pruned_from_both_tables() {
        let mut workloads = Workloads::default();
        let (a1, end_a1) = running("a/t");
        let (a2, _end_a2) = running("a/t");
        let (b1, end_b1) = running("b/t");
        workloads.insert(1, a1);
        workloads.insert(2, a2);
        workloads.insert(3, b1);
        assert_eq!(workloads.by_task["a/t"], BTreeSet::from([1, 2]));
        assert_eq!(workloads.by_task["b/t"], BTreeSet::from([3]));
        let exited = || {
            Some(WorkloadExit {
                exit_code: 0,
                trap: None,
            })
        };
        let _ = end_a1.send(exited());
        let _ = end_b1.send(exited());
        workloads.prune_exited();
        assert_eq!(workloads.by_id.keys().copied().collect::<Vec<_>>(), [2]);
        assert_eq!(workloads.by_task["a/t"], BTreeSet::from([2]));
        assert!(
            !workloads.by_task.contains_key("b/t"),
            "no task keeps an empty entry"
        );
    }

    #[tokio::test]
    async fn tasks_share_one_compiled_module_and_log_without_a_collector() -> anyhow::Result<()> {
        let runtime = WorkloadRuntime::new(crate::driver_host::engine::workload_engine()?)
            .map_err(|err| anyhow::anyhow!("{err:#}"))?;
        let dir = tempfile::tempdir()?;
        let workload = Workload {
            module_path: String::from("counter.wasm"),
            args: vec![String::from("3600000")],
            env: Vec::new(),
            dir: String::new(),
            max_memory_bytes: 16 << 20,
            fuel: None,
        };
        let mut started = Vec::new();
        for alloc in ["a1", "a2", "a3"] {
            let scope = task_with_counter(dir.path(), alloc)?;
            let id = runtime
                .start(&workload, &scope)
                .map_err(anyhow::Error::msg)?;
            started.push((id, scope));
        }
        // Three files, three inodes, one content: compiled once, one `Module` for all.
        let modules: Vec<Module> = lock(&runtime.compiled)
            .values()
            .filter_map(|compiled| match compiled {
                Compiled::Module(pre) => Some(pre.module().clone()),
                Compiled::Component(_) => None,
            })
            .collect();
        assert_eq!(modules.len(), 1);
        // Each task's first line reaches its own rotated log file, written by the host.
        for (_, scope) in &started {
            let log = scope.alloc_dir.join("alloc/logs/t.stdout.0");
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::fs::read_to_string(&log).unwrap_or_default() != "count 0\n" {
                anyhow::ensure!(
                    std::time::Instant::now() < deadline,
                    "no log line in {}",
                    log.display()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // Reaping a task stops its own workloads only.
        let (first_id, first_scope) = &started[0];
        assert_eq!(runtime.reap(&first_scope.task_id), 1);
        runtime
            .wait(
                *first_id,
                &first_scope.task_id,
                Some(Duration::from_secs(10)),
            )
            .await
            .map_err(anyhow::Error::msg)?;
        for (id, scope) in &started[1..] {
            assert!(runtime.is_running(*id, &scope.task_id), "workload {id}");
        }
        // A sleeping workload stops at once.
        for (id, scope) in &started[1..] {
            runtime
                .stop(*id, &scope.task_id)
                .map_err(anyhow::Error::msg)?;
            let exit = runtime
                .wait(*id, &scope.task_id, Some(Duration::from_secs(10)))
                .await
                .map_err(anyhow::Error::msg)?;
            assert_eq!(
                exit.and_then(|exit| exit.trap),
                Some(String::from("stopped"))
            );
        }
        Ok(())
    }
}
