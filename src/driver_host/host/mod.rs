//! Host capabilities: one file per WIT interface of `caravan:driver` (as wasmtime's `p2/host/`).
//!
//! Each file implements the generated `Host` trait of its interface for the call's
//! [`CallState`](crate::driver_host::instance::CallState). [`link`] adds to a linker exactly the
//! interfaces granted to a driver; nothing is linked by default.
//!
//! Invariant: every host function either finishes within `host_call_timeout` or is one of the
//! deliberate waits (`host-process.wait`, `host-wasm.wait`, `host-docker.wait-container`) whose
//! timeout the driver passes (and the call's own timeout bounds); all of them are async. A running
//! task's life is waited on by the host itself ([`HostRuntime::wait`]), holding no instance.
//!
//! Invariant: what a capability creates belongs to the task of the call (the call's
//! [`TaskScope`], the client's record), in tables keyed by the task's id; every call naming a pid,
//! workload or container checks it there. [`HostRuntime::reap`] ends everything a task owns.

use std::collections::BTreeSet;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use crate::driver_host::bindings::caravan::driver as wit;
use crate::driver_host::grants::Capability;
use crate::driver_host::instance::CallState;
use crate::driver_host::types::{TaskScope, WaitOn};

pub(crate) mod config;
pub(crate) mod docker;
pub(crate) mod docker_convert;
pub(crate) mod docker_scope;
pub(crate) mod fs;
pub(crate) mod isolated;
pub(crate) mod isolated_child;
pub(crate) mod log;
pub(crate) mod process;
pub(crate) mod socket;
pub(crate) mod task_log;
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
    /// The agent config's `plugin "NAME" { config {...} }` blocks (process user policy...).
    pub plugins: std::collections::BTreeMap<String, serde_json::Value>,
}

/// How the thing a task waited on ended, before the driver interprets it.
pub(crate) type RawExit = wit::types::RawExit;

impl HostRuntime {
    pub(crate) fn new(
        workloads: wasm::WorkloadRuntime,
        docker: docker::DockerRuntime,
        lanes: crate::driver_host::budget::PoolLanes,
        plugins: std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Arc<HostRuntime> {
        Arc::new(HostRuntime {
            processes: process::ProcessTable::default(),
            workloads,
            docker,
            log: log::LogLimiter::default(),
            lanes,
            plugins,
        })
    }

    /// Whether `wait_on`, returned by a driver's `start-task`, is one of the task's own things.
    pub(crate) async fn check_waitable(
        &self,
        driver: &str,
        scope: &TaskScope,
        wait_on: &WaitOn,
    ) -> Result<(), String> {
        match wait_on {
            WaitOn::Process(pid) => self.processes.authorize(*pid, &scope.task_id).map(drop),
            WaitOn::Workload(id) => self.workloads.owned(*id, &scope.task_id).map(drop),
            WaitOn::Container(id) => self.docker.check_owned(driver, scope, id).await,
            WaitOn::Poll => Ok(()),
        }
    }

    /// Waits natively for the task's process, workload or container to end (`None` for
    /// [`WaitOn::Poll`], which the caller polls through the driver).
    pub(crate) async fn wait(
        &self,
        driver: &str,
        scope: &TaskScope,
        wait_on: &WaitOn,
    ) -> Option<Result<RawExit, String>> {
        let exit = match wait_on {
            WaitOn::Process(pid) => self.processes.wait_task(*pid, &scope.task_id).await,
            WaitOn::Workload(id) => self.workloads.wait_task(*id, &scope.task_id).await,
            WaitOn::Container(id) => self.docker.wait_task(driver, scope, id).await,
            WaitOn::Poll => return None,
        };
        Some(exit)
    }

    /// Ends everything the task owns: its process groups, its workloads, its containers (the
    /// driver's). Used when `start-task` failed or timed out, and after `destroy-task`.
    pub(crate) async fn reap(&self, driver: &str, scope: &TaskScope, docker_granted: bool) {
        let processes = self.processes.reap(&scope.task_id);
        let workloads = self.workloads.reap(&scope.task_id);
        let containers = if docker_granted {
            self.docker.reap(driver, scope).await
        } else {
            0
        };
        if processes + workloads + containers > 0 {
            tracing::info!(
                task = %scope.task_id,
                processes,
                workloads,
                containers,
                "reaped what the task left running"
            );
        }
    }
}

/// Opens `relative` beneath `root` without following any symlink (`root`'s last component
/// included: a task could replace its own directory by a link) and without leaving it: no
/// absolute path, no `..` above it. Through [`crate::allocfs`], the one layer for host code under
/// an allocation directory, so nothing planted before or during the walk is followed.
/// `directory` asks for a directory at the end, else a regular file opened for reading.
pub(crate) fn open_beneath(
    root: &Path,
    relative: &str,
    directory: bool,
) -> Result<OwnedFd, String> {
    use crate::allocfs::{OpenOptions, RelPath, Root};
    let (Some(parent), Some(name)) = (root.parent(), root.file_name()) else {
        return Err(format!("{} has no parent directory", root.display()));
    };
    let refuse = |err: crate::allocfs::AllocFsError| err.to_string();
    let root = Root::open(parent)
        .and_then(|parent| parent.subdir(&RelPath::root().join_name(name)))
        .map_err(refuse)?;
    if Path::new(relative).is_absolute() {
        return Err(format!(
            "{relative:?} is absolute: paths are relative to the task directory"
        ));
    }
    let path = root.rel(relative).map_err(refuse)?;
    if directory {
        let dir = if path.is_root() {
            root
        } else {
            root.subdir(&path).map_err(refuse)?
        };
        dir.as_fd()
            .try_clone_to_owned()
            .map_err(|err| format!("{relative:?}: {err}"))
    } else {
        let file = root.open_file(&path, OpenOptions::read()).map_err(refuse)?;
        Ok(OwnedFd::from(file))
    }
}

/// The path through which an open descriptor of this process reaches exactly what it opened
/// (`/proc/self/fd/N`); used to hand an already-checked directory to APIs that take a path.
pub(crate) fn fd_path(fd: &OwnedFd) -> std::path::PathBuf {
    use std::os::fd::AsRawFd;
    std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Opens one of the task's log files (host paths from the scope) for appending, refusing a
/// symlink in its place.
pub(crate) fn open_task_log(scope: &TaskScope, path: &Path) -> Result<std::fs::File, String> {
    use crate::allocfs::{AllocFsError, OpenOptions, Root};
    let refused = |err: AllocFsError| format!("cannot open log file {}: {err}", path.display());
    let relative = path.strip_prefix(&scope.alloc_dir).map_err(|_| {
        format!(
            "log file {} is not inside the allocation directory",
            path.display()
        )
    })?;
    // Beneath the allocation directory, no link followed on the way (a task can write there).
    let root = Root::open(&scope.alloc_dir).map_err(refused)?;
    let relative = root.rel(relative).map_err(refused)?;
    // The log collector's FIFO when there is one; else a plain file, appended to.
    match root.open_fifo(&relative, false) {
        Ok(fd) => Ok(std::fs::File::from(fd)),
        Err(AllocFsError::NotRegular { .. } | AllocFsError::NotFound { .. }) => root
            .open_file(&relative, OpenOptions::append())
            .map_err(refused),
        Err(err) => Err(refused(err)),
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
            Capability::Config => wit::host_config::add_to_linker::<CallState, HasSelf<CallState>>(
                &mut linker,
                |state| state,
            )?,
            Capability::Socket => wit::host_socket::add_to_linker::<CallState, HasSelf<CallState>>(
                &mut linker,
                |state| state,
            )?,
            Capability::Isolated => wit::host_isolated::add_to_linker::<
                CallState,
                HasSelf<CallState>,
            >(&mut linker, |state| state)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_open_beneath_the_root_and_never_through_a_symlink() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        let root = dir.path().join("task");
        std::fs::create_dir_all(root.join("local/sub")).map_err(|err| err.to_string())?;
        std::fs::write(root.join("local/app.wasm"), b"\0asm").map_err(|err| err.to_string())?;
        std::fs::write(dir.path().join("secret"), b"s").map_err(|err| err.to_string())?;
        std::os::unix::fs::symlink(dir.path(), root.join("up")).map_err(|err| err.to_string())?;
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("local/link"))
            .map_err(|err| err.to_string())?;

        open_beneath(&root, "", true)?;
        open_beneath(&root, "./local/sub", true)?;
        open_beneath(&root, "local/app.wasm", false)?;
        for (path, directory) in [
            ("/", true),
            ("..", true),
            ("local/../..", true),
            ("up", true),
            ("up/secret", false),
            ("local/link", false),
            ("local", false),
            ("local/app.wasm", true),
        ] {
            assert!(
                open_beneath(&root, path, directory).is_err(),
                "{path} (directory: {directory})"
            );
        }
        // The root itself must not be a symlink either.
        assert!(open_beneath(&root.join("up"), "", true).is_err());
        Ok(())
    }

    #[test]
    fn task_logs_are_never_opened_through_a_symlink() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        let alloc_dir = dir.path().join("alloc-1");
        let logs = alloc_dir.join("alloc").join("logs");
        std::fs::create_dir_all(&logs).map_err(|err| err.to_string())?;
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"s").map_err(|err| err.to_string())?;
        let scope = TaskScope::new(
            "alloc-1",
            "web",
            &alloc_dir,
            logs.join("web.stdout.0"),
            logs.join("web.stderr.0"),
        );
        // A link as the file itself.
        std::os::unix::fs::symlink(&secret, &scope.stdout_path).map_err(|err| err.to_string())?;
        assert!(open_task_log(&scope, &scope.stdout_path).is_err());
        assert!(open_task_log(&scope, &scope.stderr_path).is_ok());
        // A link on the way: `alloc/logs` replaced by a link to a directory outside.
        std::fs::remove_dir_all(alloc_dir.join("alloc")).map_err(|err| err.to_string())?;
        std::fs::create_dir_all(alloc_dir.join("alloc")).map_err(|err| err.to_string())?;
        std::os::unix::fs::symlink(dir.path(), &logs).map_err(|err| err.to_string())?;
        assert!(open_task_log(&scope, &scope.stderr_path).is_err());
        assert!(
            !dir.path().join("web.stderr.0").exists(),
            "nothing created outside"
        );
        // And nothing outside the allocation directory.
        assert!(open_task_log(&scope, &secret).is_err());
        assert_eq!(std::fs::read(&secret).map_err(|err| err.to_string())?, b"s");
        Ok(())
    }
}
