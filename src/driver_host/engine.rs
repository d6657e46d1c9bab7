//! The wasmtime engines of an agent and the epoch ticker that drives their deadlines.
//!
//! Two engines, one per kind of guest:
//! - the *driver* engine: components of the driver contract, pooling allocator (instantiation per
//!   call is a few microseconds), epoch interruption for per-call CPU deadlines; the pool refuses
//!   a component with more core instances, memories or tables than a driver needs
//!   ([`DRIVER_STORE_COUNTS`]), and sizes its totals so a component at those limits in every
//!   slot still fits;
//! - the *workload* engine: WASI tasks run by the `wasm` driver, on-demand allocation (their
//!   memory caps vary per task), epoch interruption (so `stop` can interrupt a busy workload),
//!   fuel (for the task config's `fuel` limit), and data segments copied, not mapped (two kernel
//!   mappings per memory instead of four: see `workload_engine`).
//!
//! One [`EpochTicker`] thread advances both engines' epochs every [`EPOCH_TICK`]; it stops when
//! the driver host is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::driver_host::budget::{DRIVER_STORE_COUNTS, DRIVER_TABLE_ELEMENTS};
use crate::driver_host::error::{Error, Result};

/// The epoch period: the granularity of every deadline.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Sizes the driver engine's pooling allocator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DriverEngineConfig {
    /// Instances alive at once: each in-flight call holds one (a running task holds none).
    pub max_instances: u32,
    /// Linear memory cap of one driver instance.
    pub memory_cap_bytes: usize,
}

pub(crate) fn driver_engine(config: DriverEngineConfig) -> Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    let counts = DRIVER_STORE_COUNTS;
    let per_slot = |count: usize| {
        config
            .max_instances
            .saturating_mul(u32::try_from(count).unwrap_or(u32::MAX))
    };
    // A wit-component driver has a few core instances (the module, shims), one memory and a table
    // or two; a component declaring more than the limits does not instantiate.
    pool.total_component_instances(config.max_instances)
        .total_core_instances(per_slot(counts.instances))
        .total_memories(per_slot(counts.memories))
        .total_tables(per_slot(counts.tables))
        .max_core_instances_per_component(u32::try_from(counts.instances).unwrap_or(u32::MAX))
        .max_memories_per_component(u32::try_from(counts.memories).unwrap_or(u32::MAX))
        .max_tables_per_component(u32::try_from(counts.tables).unwrap_or(u32::MAX))
        .max_memories_per_module(u32::try_from(counts.memories).unwrap_or(u32::MAX))
        .max_tables_per_module(u32::try_from(counts.tables).unwrap_or(u32::MAX))
        .table_elements(DRIVER_TABLE_ELEMENTS)
        .max_memory_size(config.memory_cap_bytes);
    let mut wasm_config = Config::new();
    wasm_config
        .wasm_component_model(true)
        .epoch_interruption(true)
        // Slots only as large as the cap: explicit bounds checks, but 1000 slots cost 64 GiB of
        // address space instead of 4 TiB.
        .memory_reservation(config.memory_cap_bytes as u64)
        .memory_guard_size(64 << 10)
        .memory_reservation_for_growth(0)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&wasm_config).map_err(|err| Error::Engine(format!("driver engine: {err}")))
}

pub(crate) fn workload_engine() -> Result<Engine> {
    let mut wasm_config = Config::new();
    wasm_config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(true)
        // Data segments copied into each memory rather than mapped copy-on-write from the
        // module's image: the image mapping splits every workload's memory into three kernel
        // mappings more, and at 10,000 idle tasks those pass the kernel's default
        // `vm.max_map_count` (65,530), when further mmaps fail. The copy is the few KiB a
        // guest's data segments hold, written by most guests anyway.
        .memory_init_cow(false);
    Engine::new(&wasm_config).map_err(|err| Error::Engine(format!("workload engine: {err}")))
}

/// Advances the epochs of its engines every [`EPOCH_TICK`] until dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engines: Vec<Engine>) -> Result<EpochTicker> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(String::from("caravan-epoch"))
            .spawn(move || {
                while !thread_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    for engine in &engines {
                        engine.increment_epoch();
                    }
                }
            })
            .map_err(|err| Error::Engine(format!("cannot start the epoch ticker: {err}")))?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // Joining costs at most one tick and guarantees the engines are released.
            let _ = thread.join();
        }
    }
}
