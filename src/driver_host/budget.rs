//! Budgets per store and per driver: what one guest may take from the agent, whatever shape it
//! gives itself.
//!
//! - [`StoreBudget`]: the resource limiter of every store, driver calls and WASI workloads alike.
//!   One byte budget covers the linear memory of *all* the store's memories plus its tables (each
//!   element charged [`TABLE_ELEMENT_BYTES`]), so sixteen memories or sixty-four tables get no more
//!   than one; and the number of core instances, memories and tables per store is capped. The
//!   driver engine's pooling allocator enforces the same counts per component
//!   ([`DRIVER_STORE_COUNTS`], see `engine.rs`).
//! - [`PoolLanes`]: the driver engine's instance slots, shared out. Every driver call takes a
//!   permit before it instantiates: an ordinary call from its driver's lane (at most
//!   `max_instances_per_driver` at once) and from the pool's ordinary part, waiting its turn
//!   (bounded) when they are taken; `stop-task` and `destroy-task` then wait (bounded) for the
//!   reserved lane instead, which ordinary calls never use. So one driver can never take every
//!   slot, a burst of calls queues instead of failing, and a task can always be stopped.
//!
//! Invariant: budgets are the host's own counters, charged as wasmtime asks to grow; nothing a
//! guest reports is trusted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::driver_host::error::Error;

/// Bytes one table element is charged against its store's budget (a funcref or externref slot
/// is a pointer; wasmtime allocates the whole table when it is declared or grown).
pub(crate) const TABLE_ELEMENT_BYTES: usize = 8;

/// How many core instances, memories and tables one store may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoreCounts {
    pub instances: usize,
    pub memories: usize,
    pub tables: usize,
}

/// A driver component as wit-component makes it has a few core instances (the module, the shim
/// and its fixup), one memory and a table or two; the limits leave room and no more.
pub(crate) const DRIVER_STORE_COUNTS: StoreCounts = StoreCounts {
    instances: 8,
    memories: 2,
    tables: 4,
};

/// Elements of one driver table (the pooling allocator's slot size).
pub(crate) const DRIVER_TABLE_ELEMENTS: usize = 20_000;

/// A WASI workload: a p1 module is one instance; a p2 command component adds the preview1
/// adapter and its shims.
pub(crate) const WORKLOAD_STORE_COUNTS: StoreCounts = StoreCounts {
    instances: 32,
    memories: 4,
    tables: 8,
};

/// Which budget a guest ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BudgetHit {
    /// Growing a memory would pass the store's byte budget.
    Memory,
    /// Growing a table would pass the store's byte budget.
    Table,
}

/// The resource limiter of one store: a byte budget over all its memories and tables together,
/// and counts of instances, memories and tables.
pub(crate) struct StoreBudget {
    cap_bytes: usize,
    counts: StoreCounts,
    /// Bytes charged so far: linear memory plus table elements.
    charged_bytes: usize,
    /// Linear memory of all memories, published for stats.
    memory_bytes: Arc<AtomicU64>,
    hit: Option<BudgetHit>,
}

impl StoreBudget {
    pub(crate) fn new(cap_bytes: usize, counts: StoreCounts) -> StoreBudget {
        StoreBudget {
            cap_bytes,
            counts,
            charged_bytes: 0,
            memory_bytes: Arc::new(AtomicU64::new(0)),
            hit: None,
        }
    }

    pub(crate) fn cap_bytes(&self) -> usize {
        self.cap_bytes
    }

    /// The budget the guest ran into, if it did.
    pub(crate) fn hit(&self) -> Option<BudgetHit> {
        self.hit
    }

    /// The linear memory of all the store's memories, kept current as they grow.
    pub(crate) fn memory_bytes(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.memory_bytes)
    }

    fn charge(&mut self, bytes: usize, kind: BudgetHit) -> bool {
        match self.charged_bytes.checked_add(bytes) {
            Some(total) if total <= self.cap_bytes => {
                self.charged_bytes = total;
                true
            }
            _ => {
                self.hit = Some(kind);
                false
            }
        }
    }
}

impl wasmtime::ResourceLimiter for StoreBudget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grown = desired.saturating_sub(current);
        if !self.charge(grown, BudgetHit::Memory) {
            return Ok(false);
        }
        self.memory_bytes.fetch_add(grown as u64, Ordering::Relaxed);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grown = desired
            .saturating_sub(current)
            .saturating_mul(TABLE_ELEMENT_BYTES);
        Ok(self.charge(grown, BudgetHit::Table))
    }

    fn instances(&self) -> usize {
        self.counts.instances
    }

    fn memories(&self) -> usize {
        self.counts.memories
    }

    fn tables(&self) -> usize {
        self.counts.tables
    }
}

/// How the driver engine's instance slots are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LaneSizes {
    /// Slots for ordinary calls, all drivers together.
    pub ordinary: u32,
    /// Ordinary calls of one driver at once.
    pub per_driver: u32,
    /// Slots only `stop-task` and `destroy-task` use, all drivers together.
    pub reserved: u32,
    /// Reserved slots one driver may hold at once.
    pub reserved_per_driver: u32,
}

impl LaneSizes {
    /// Shares `max_instances` slots: a reserve of 1/16 (2 to 64 slots) for stop and destroy, the
    /// rest for ordinary calls, of which one driver gets `per_driver` (default: half).
    pub(crate) fn new(max_instances: u32, per_driver: Option<u32>) -> LaneSizes {
        let reserved = (max_instances / 16).clamp(2, 64).min(max_instances / 2);
        let ordinary = max_instances - reserved;
        let per_driver = per_driver.unwrap_or(ordinary / 2).clamp(1, ordinary.max(1));
        LaneSizes {
            ordinary,
            per_driver,
            reserved,
            reserved_per_driver: (reserved / 2).max(1),
        }
    }
}

/// The driver engine's instance slots as lanes; see the module docs.
pub(crate) struct PoolLanes {
    sizes: LaneSizes,
    ordinary: Arc<Semaphore>,
    reserved: Arc<Semaphore>,
    /// Per driver name (kept across reloads of a driver): its ordinary and reserved lanes.
    drivers: Mutex<HashMap<String, DriverLanes>>,
}

/// One driver's lanes: ordinary and reserved.
type DriverLanes = (Arc<Semaphore>, Arc<Semaphore>);

/// The slots a call holds until its instance is dropped.
pub(crate) struct LanePermit {
    _driver: OwnedSemaphorePermit,
    _pool: OwnedSemaphorePermit,
}

/// Whether a call may use the reserved lane.
fn uses_reserve(call: &str) -> bool {
    matches!(call, "stop-task" | "destroy-task")
}

impl PoolLanes {
    pub(crate) fn new(sizes: LaneSizes) -> PoolLanes {
        PoolLanes {
            sizes,
            ordinary: Arc::new(Semaphore::new(sizes.ordinary as usize)),
            reserved: Arc::new(Semaphore::new(sizes.reserved as usize)),
            drivers: Mutex::new(HashMap::new()),
        }
    }

    fn driver_lanes(&self, driver: &str) -> DriverLanes {
        let mut drivers = self
            .drivers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        drivers
            .entry(driver.to_owned())
            .or_insert_with(|| {
                (
                    Arc::new(Semaphore::new(self.sizes.per_driver as usize)),
                    Arc::new(Semaphore::new(self.sizes.reserved_per_driver as usize)),
                )
            })
            .clone()
    }

    /// A permit for one call of `driver`. An ordinary call waits, in turn, up to `wait` for a
    /// slot of its driver's lane and of the pool's ordinary part, and fails with [`Error::Busy`]
    /// naming the limit when none frees in time: a burst of calls (a thousand tasks starting
    /// together) queues instead of failing. `stop-task` and `destroy-task` take an ordinary slot
    /// if one is free at once, else wait for the reserved lane up to `wait`.
    pub(crate) async fn acquire(
        &self,
        driver: &str,
        call: &'static str,
        wait: Duration,
    ) -> Result<LanePermit, Error> {
        let (driver_lane, driver_reserve) = self.driver_lanes(driver);
        let busy = |reason: String| Error::Busy {
            driver: driver.to_owned(),
            call,
            reason,
        };
        let driver_full = || {
            format!(
                "the driver already has {} calls in flight, its limit \
                 (max_instances_per_driver)",
                self.sizes.per_driver
            )
        };
        let pool_full = || {
            format!(
                "all {} instance slots for ordinary calls are in use (the pool holds {} more \
                 for stop-task and destroy-task)",
                self.sizes.ordinary, self.sizes.reserved
            )
        };
        if !uses_reserve(call) {
            let deadline = tokio::time::Instant::now() + wait;
            let driver_permit =
                tokio::time::timeout_at(deadline, Arc::clone(&driver_lane).acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .ok_or_else(|| busy(driver_full()))?;
            let pool_permit =
                tokio::time::timeout_at(deadline, Arc::clone(&self.ordinary).acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .ok_or_else(|| busy(pool_full()))?;
            return Ok(LanePermit {
                _driver: driver_permit,
                _pool: pool_permit,
            });
        }
        if let Ok(driver_permit) = Arc::clone(&driver_lane).try_acquire_owned()
            && let Ok(pool_permit) = Arc::clone(&self.ordinary).try_acquire_owned()
        {
            return Ok(LanePermit {
                _driver: driver_permit,
                _pool: pool_permit,
            });
        }
        let reserved = async {
            let driver_permit = driver_reserve.acquire_owned().await.ok()?;
            let pool_permit = Arc::clone(&self.reserved).acquire_owned().await.ok()?;
            Some(LanePermit {
                _driver: driver_permit,
                _pool: pool_permit,
            })
        };
        match tokio::time::timeout(wait, reserved).await {
            Ok(Some(permit)) => Ok(permit),
            _ => Err(busy(format!(
                "no slot of the reserved lane ({} slots, {} per driver) freed within {wait:?}",
                self.sizes.reserved, self.sizes.reserved_per_driver
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    /// Hand-encoded Wasm: the budget tests need shapes no compiler emits on purpose.
    mod encode {
        pub fn leb(mut value: u64, out: &mut Vec<u8>) {
            loop {
                let byte = (value & 0x7f) as u8;
                value >>= 7;
                if value == 0 {
                    out.push(byte);
                    return;
                }
                out.push(byte | 0x80);
            }
        }

        pub fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
            out.push(id);
            leb(body.len() as u64, out);
            out.extend_from_slice(body);
        }

        /// A core module defining `memories` memories of `pages` pages and `tables` funcref
        /// tables of `elements` elements.
        pub fn module(memories: u64, pages: u64, tables: u64, elements: u64) -> Vec<u8> {
            let mut out = b"\0asm\x01\0\0\0".to_vec();
            if tables > 0 {
                let mut body = Vec::new();
                leb(tables, &mut body);
                for _ in 0..tables {
                    body.extend_from_slice(&[0x70, 0x00]);
                    leb(elements, &mut body);
                }
                section(4, &body, &mut out);
            }
            if memories > 0 {
                let mut body = Vec::new();
                leb(memories, &mut body);
                for _ in 0..memories {
                    body.push(0x00);
                    leb(pages, &mut body);
                }
                section(5, &body, &mut out);
            }
            out
        }

        /// A component instantiating `module` `instances` times.
        pub fn component(module: &[u8], instances: u64) -> Vec<u8> {
            let mut out = b"\0asm\x0d\0\x01\0".to_vec();
            section(1, module, &mut out);
            let mut body = Vec::new();
            leb(instances, &mut body);
            for _ in 0..instances {
                body.extend_from_slice(&[0x00, 0x00, 0x00]);
            }
            section(2, &body, &mut out);
            out
        }
    }

    fn driver_engine() -> wasmtime::Engine {
        crate::driver_host::engine::driver_engine(crate::driver_host::engine::DriverEngineConfig {
            max_instances: 8,
            memory_cap_bytes: 32 << 20,
        })
        .expect("driver engine")
    }

    /// Instantiates `component` on the driver engine in a store with a driver's budget.
    async fn instantiate_driver(component: &[u8]) -> Result<(), String> {
        let engine = driver_engine();
        let component = wasmtime::component::Component::new(&engine, component)
            .map_err(|err| format!("compile: {err:#}"))?;
        let mut store =
            wasmtime::Store::new(&engine, StoreBudget::new(32 << 20, DRIVER_STORE_COUNTS));
        store.limiter(|budget| budget);
        store.set_epoch_deadline(1);
        let linker = wasmtime::component::Linker::new(&engine);
        linker
            .instantiate_async(&mut store, &component)
            .await
            .map(drop)
            .map_err(|err| format!("{err:#}"))
    }

    #[tokio::test]
    async fn a_driver_component_with_grafted_instances_or_memories_does_not_instantiate() {
        // Three instances of a module with one 1-page memory: a driver's shape, fine.
        let one_memory = encode::module(1, 1, 1, 10);
        assert_eq!(
            instantiate_driver(&encode::component(&one_memory, 2)).await,
            Ok(())
        );
        // Sixteen grafted core instances (the agent grew by 1 GB per call): refused by count.
        let err = instantiate_driver(&encode::component(&one_memory, 16))
            .await
            .expect_err("16 core instances");
        assert!(err.contains("16") && err.contains("maximum of 8"), "{err}");
        // Three memories in one module.
        let err = instantiate_driver(&encode::component(&encode::module(3, 1, 0, 0), 1))
            .await
            .expect_err("3 memories");
        assert!(err.contains("memor"), "{err}");
        // Two memories of 20 MiB each: each under the 32 MiB cap, together over it.
        let err = instantiate_driver(&encode::component(&encode::module(2, 320, 0, 0), 1))
            .await
            .expect_err("40 MiB of memories");
        assert!(err.contains("memory"), "{err}");
    }

    #[test]
    fn a_workload_store_caps_its_memories_tables_and_their_sum() -> wasmtime::Result<()> {
        let engine = crate::driver_host::engine::workload_engine()?;
        let instantiate = |bytes: Vec<u8>, cap: usize| -> Result<Option<BudgetHit>, String> {
            let module = wasmtime::Module::new(&engine, bytes).map_err(|err| format!("{err:#}"))?;
            let mut store =
                wasmtime::Store::new(&engine, StoreBudget::new(cap, WORKLOAD_STORE_COUNTS));
            store.limiter(|budget| budget);
            let linker = wasmtime::Linker::new(&engine);
            let result = linker.instantiate(&mut store, &module);
            let hit = store.data().hit();
            result
                .map(|_| hit)
                .map_err(|err| format!("{err:#} ({hit:?})"))
        };
        // 64 tables of 1M funcrefs at a 1 MiB limit: refused by the byte budget.
        let err = instantiate(encode::module(0, 0, 8, 1 << 20), 1 << 20).expect_err("tables");
        assert!(err.contains("Some(Table)"), "{err}");
        let err = instantiate(encode::module(0, 0, 64, 1000), 1 << 20).expect_err("64 tables");
        assert!(err.contains("table"), "{err}");
        // 16 memories: refused by count; 4 of 32 MiB at 64 MiB: refused by the sum.
        let err = instantiate(encode::module(16, 1, 0, 0), 64 << 20).expect_err("16 memories");
        assert!(err.contains("memor"), "{err}");
        let err = instantiate(encode::module(4, 512, 0, 0), 64 << 20).expect_err("128 MiB");
        assert!(err.contains("Some(Memory)"), "{err}");
        assert_eq!(
            instantiate(encode::module(4, 240, 2, 1000), 64 << 20),
            Ok(None)
        );
        Ok(())
    }

    #[test]
    fn one_byte_budget_covers_every_memory_and_table_of_a_store() {
        let mut budget = StoreBudget::new(64 << 20, WORKLOAD_STORE_COUNTS);
        // Three memories of 16 MiB fit; a fourth 32 MiB does not, though alone it would.
        for _ in 0..3 {
            assert!(budget.memory_growing(0, 16 << 20, None).is_ok_and(|ok| ok));
        }
        assert!(budget.memory_growing(0, 32 << 20, None).is_ok_and(|ok| !ok));
        assert_eq!(budget.hit(), Some(BudgetHit::Memory));
        assert_eq!(budget.memory_bytes().load(Ordering::Relaxed), 48 << 20);
        // Growth is charged by its increment.
        assert!(
            budget
                .memory_growing(16 << 20, 32 << 20, None)
                .is_ok_and(|ok| ok)
        );
        assert!(
            budget
                .memory_growing(32 << 20, 32 << 20, None)
                .is_ok_and(|ok| ok)
        );

        let mut budget = StoreBudget::new(1 << 20, WORKLOAD_STORE_COUNTS);
        // 1M funcrefs are 8 MiB: more than a 1 MiB budget.
        assert!(budget.table_growing(0, 1 << 20, None).is_ok_and(|ok| !ok));
        assert_eq!(budget.hit(), Some(BudgetHit::Table));
        assert!(budget.table_growing(0, 1000, None).is_ok_and(|ok| ok));
        assert!(
            budget
                .table_growing(usize::MAX / 2, usize::MAX, None)
                .is_ok_and(|ok| !ok)
        );
        assert_eq!(budget.instances(), WORKLOAD_STORE_COUNTS.instances);
        assert_eq!(budget.memories(), WORKLOAD_STORE_COUNTS.memories);
        assert_eq!(budget.tables(), WORKLOAD_STORE_COUNTS.tables);
    }

    #[test]
    fn lanes_keep_a_reserve_and_give_one_driver_at_most_half() {
        let sizes = LaneSizes::new(1000, None);
        assert_eq!(
            sizes,
            LaneSizes {
                ordinary: 938,
                per_driver: 469,
                reserved: 62,
                reserved_per_driver: 31
            }
        );
        let small = LaneSizes::new(16, None);
        assert_eq!(
            (small.ordinary, small.reserved, small.per_driver),
            (14, 2, 7)
        );
        assert_eq!(LaneSizes::new(16, Some(100)).per_driver, 14);
        assert_eq!(LaneSizes::new(2, None).ordinary, 1);
    }

    /// `count` start-task slots of `driver`, held.
    async fn hold(
        lanes: &PoolLanes,
        driver: &str,
        count: usize,
        wait: Duration,
    ) -> Vec<LanePermit> {
        let mut held = Vec::new();
        for _ in 0..count {
            let permit = lanes.acquire(driver, "start-task", wait).await;
            held.push(permit.expect("slot"));
        }
        held
    }

    #[tokio::test]
    async fn a_call_over_its_drivers_limit_waits_its_turn() {
        let lanes = Arc::new(PoolLanes::new(LaneSizes::new(16, None)));
        let wait = Duration::from_secs(60);
        let mut held = hold(&lanes, "burst", 7, wait).await;
        let queued = tokio::spawn({
            let lanes = Arc::clone(&lanes);
            async move { lanes.acquire("burst", "start-task", wait).await.map(drop) }
        });
        tokio::task::yield_now().await;
        assert!(!queued.is_finished(), "no slot is free yet");
        // One call of the burst ends: the queued one gets its slot instead of failing busy.
        held.pop();
        queued.await.expect("joined").expect("the freed slot");
    }

    #[tokio::test]
    async fn a_driver_at_its_limit_is_refused_while_others_and_its_stops_go_on() {
        let lanes = PoolLanes::new(LaneSizes::new(16, None));
        let wait = Duration::from_millis(50);
        let mut held = hold(&lanes, "hog", 7, wait).await;
        let err = lanes
            .acquire("hog", "start-task", wait)
            .await
            .err()
            .expect("over its limit");
        assert!(
            err.to_string().contains("7 calls in flight") && err.to_string().contains("\"hog\""),
            "{err}"
        );
        // Another driver still gets the rest of the ordinary slots.
        for _ in 0..7 {
            held.push(
                lanes
                    .acquire("other", "fingerprint", wait)
                    .await
                    .expect("slot"),
            );
        }
        let err = lanes
            .acquire("third", "fingerprint", wait)
            .await
            .err()
            .expect("pool full");
        assert!(err.to_string().contains("all 14 instance slots"), "{err}");
        // stop-task and destroy-task use the reserve, one slot per driver here.
        let stop = lanes
            .acquire("hog", "stop-task", wait)
            .await
            .expect("reserved");
        let err = lanes
            .acquire("hog", "destroy-task", wait)
            .await
            .err()
            .expect("its reserve is taken");
        assert!(err.to_string().contains("reserved lane"), "{err}");
        assert!(lanes.acquire("other", "destroy-task", wait).await.is_ok());
        drop(stop);
        drop(held);
        assert!(lanes.acquire("hog", "start-task", wait).await.is_ok());
    }
}
