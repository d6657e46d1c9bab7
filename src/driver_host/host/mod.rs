//! Host capabilities: one file per WIT interface of `caravan:driver` (as wasmtime's `p2/host/`).
//!
//! Each file implements the generated `Host` trait of its interface for the call's
//! [`CallState`](crate::driver_host::instance::CallState). [`link`] adds to a linker exactly the
//! interfaces granted to a driver; nothing is linked by default.
//!
//! Invariant: every host function either finishes within `host_call_timeout` or is one of the
//! deliberate waits (`host-process.wait`, `host-wasm.wait`, `host-docker.wait-container`) whose timeout the driver passes; all
//! of them are async, so a waiting task suspends its call and never holds an agent thread.

use std::collections::BTreeSet;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use crate::driver_host::bindings::caravan::driver as wit;
use crate::driver_host::grants::Capability;
use crate::driver_host::instance::CallState;

pub(crate) mod docker;
pub(crate) mod docker_convert;
pub(crate) mod docker_scope;
pub(crate) mod fs;
pub(crate) mod log;
pub(crate) mod process;
pub(crate) mod wasm;

/// Agent-wide state behind the capabilities, shared by every call of every driver.
pub(crate) struct HostRuntime {
    pub processes: process::ProcessTable,
    pub workloads: wasm::WorkloadRuntime,
    pub docker: docker::DockerRuntime,
    /// Each driver's log-line budget.
    pub log: log::LogLimiter,
    /// The driver engine's instance slots, shared out per driver (`budget.rs`).
    pub lanes: crate::driver_host::budget::PoolLanes,
}

impl HostRuntime {
    pub(crate) fn new(
        workloads: wasm::WorkloadRuntime,
        docker: docker::DockerRuntime,
        lanes: crate::driver_host::budget::PoolLanes,
    ) -> Arc<HostRuntime> {
        Arc::new(HostRuntime {
            processes: process::ProcessTable::default(),
            workloads,
            docker,
            log: log::LogLimiter::default(),
            lanes,
        })
    }
}

/// A linker with the granted capabilities and nothing else.
pub(crate) fn link(
    engine: &wasmtime::Engine,
    capabilities: &BTreeSet<Capability>,
) -> wasmtime::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    wit::types::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |state| state)?;
    for capability in capabilities {
        match capability {
            Capability::Log => wit::host_log::add_to_linker::<CallState, HasSelf<CallState>>(
                &mut linker,
                |state| state,
            )?,
            Capability::Process => {
                wit::host_process::add_to_linker::<CallState, HasSelf<CallState>>(
                    &mut linker,
                    |state| state,
                )?
            }
            Capability::Fs => wit::host_fs::add_to_linker::<CallState, HasSelf<CallState>>(
                &mut linker,
                |state| state,
            )?,
            Capability::Wasm => wit::host_wasm::add_to_linker::<CallState, HasSelf<CallState>>(
                &mut linker,
                |state| state,
            )?,
            Capability::Docker => wit::host_docker::add_to_linker::<CallState, HasSelf<CallState>>(
                &mut linker,
                |state| state,
            )?,
        }
    }
    Ok(linker)
}

impl wit::types::Host for CallState {}

/// Runs a host operation under the call's host timeout, counting its time as host time.
pub(crate) async fn bounded<T>(
    state: &CallState,
    what: &str,
    operation: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    let _timer = state.host_timer();
    match tokio::time::timeout(state.host_call_timeout, operation).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "{what} timed out after {:?}",
            state.host_call_timeout
        )),
    }
}
