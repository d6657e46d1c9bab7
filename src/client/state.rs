//! The client's local state under `<data_dir>/client/`, so tasks survive an agent restart.
//!
//! ```text
//! <data_dir>/client/
//!   node-id                      the node's UUID, made once
//!   secret-id
//!   allocs/<alloc_id>/alloc.json          the allocation as last received
//!   allocs/<alloc_id>/task-<name>.json    the task's TaskState, the driver's TaskHandle,
//!                                         the host's own HostRecord of the task and each
//!                                         task hook's state by hook name
//! ```
//!
//! Decision: one small JSON file per allocation and per task, each replaced atomically (write a
//! temporary file, then `rename`) by one writer thread off the async runtime, which keeps only
//! each file's latest bytes while it is busy (`state_writer.rs`), rather than redb. Each task runner writes only its own file,
//! so there is no shared transaction and no lock; a redb database takes an exclusive file lock,
//! which would stop a second client in the same process (a restart in tests, or an agent whose
//! previous instance is still shutting down) from opening the state. The files are human-readable
//! for debugging. Writes are not fsynced: they survive the agent's crash or SIGKILL (the page
//! cache survives the process), not a power loss — after which the tasks are gone too.
//!
//! **Invariant:** a reader never sees a half-written file.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state_writer::{StateWriter, Written};
use crate::driver_host::{HostRecord, TaskHandle};
use crate::structs::{Allocation, TaskState};

/// What a task runner persists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskRunnerState {
    pub task_state: TaskState,
    /// The running task's driver handle (the driver's opaque state and what the host waits on);
    /// `None` when it is not running.
    pub handle: Option<TaskHandle>,
    /// What the host itself recorded of the running task (its processes and their start
    /// times), kept apart from the driver's handle: after a restart the host re-registers the
    /// task's things from this record, never from driver state.
    #[serde(default)]
    pub host_record: HostRecord,
    /// Each task hook's state by hook name (Nomad: `LocalState.Hooks`), so a restored runner
    /// hands hooks back what they kept and skips prestart hooks that are done.
    #[serde(default)]
    pub hooks: BTreeMap<String, HookState>,
}

/// What the runner keeps of one task hook (Nomad: `state.HookState`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HookState {
    /// The hook's prestart work is complete for the life of the allocation.
    #[serde(default)]
    pub prestart_done: bool,
    /// The environment variables the hook's prestart contributed, re-applied when it is skipped.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The hook's own small value, handed back on its next run.
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

/// An allocation and its tasks, as read back at start-up.
#[derive(Debug, Clone)]
pub struct PersistedAlloc {
    pub alloc: Allocation,
    pub tasks: Vec<(String, TaskRunnerState)>,
}

/// The client's state directory.
#[derive(Debug, Clone)]
pub struct StateDb {
    root: PathBuf,
    writer: StateWriter,
}

impl StateDb {
    /// Opens (creating) the state directory, by default `<data_dir>/client`, and starts its
    /// writer thread.
    pub fn open(state_dir: &Path) -> io::Result<StateDb> {
        let root = state_dir.to_path_buf();
        std::fs::create_dir_all(root.join("allocs"))?;
        Ok(StateDb {
            root,
            writer: StateWriter::start()?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The node's ID, made and stored on first use (Nomad: `client-id` in the data dir).
    pub fn node_id(&self) -> io::Result<String> {
        self.stable_uuid("node-id")
    }

    /// The node's secret, made (a random v4 UUID) and stored on first use, readable by the
    /// agent's user only: it is the node's proof of identity to the servers.
    pub fn secret_id(&self) -> io::Result<String> {
        self.stable_uuid("secret-id")
    }

    fn stable_uuid(&self, file: &str) -> io::Result<String> {
        let path = self.root.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
            Ok(_) => self.make_uuid(&path),
            Err(err) if err.kind() == io::ErrorKind::NotFound => self.make_uuid(&path),
            Err(err) => Err(err),
        }
    }

    /// Both IDs are written owner-only: the node ID is no secret, but the one rule keeps
    /// the secret's file from ever being readable by others.
    fn make_uuid(&self, path: &Path) -> io::Result<String> {
        let id = crate::structs::new_uuid();
        write_atomic_private(path, id.as_bytes())?;
        Ok(id)
    }

    fn alloc_dir(&self, alloc_id: &str) -> PathBuf {
        self.root.join("allocs").join(alloc_id)
    }

    /// Queues the allocation's file; a failure to write it is logged by the writer.
    pub fn put_alloc(&self, alloc: &Allocation) -> io::Result<Written> {
        let dir = self.alloc_dir(alloc.id.as_str());
        Ok(self.writer.put(&dir, "alloc.json", to_json(alloc)?))
    }

    /// Queues the task's file; wait on the answer where the task must not go on before it is
    /// on disk.
    pub fn put_task(
        &self,
        alloc_id: &str,
        task: &str,
        state: &TaskRunnerState,
    ) -> io::Result<Written> {
        let dir = self.alloc_dir(alloc_id);
        Ok(self
            .writer
            .put(&dir, &format!("task-{task}.json"), to_json(state)?))
    }

    /// Queues the removal of the allocation's files, those still queued included.
    pub fn delete_alloc(&self, alloc_id: &str) -> Written {
        self.writer.delete(&self.alloc_dir(alloc_id))
    }

    /// Everything queued so far: wait on it to know it is on disk.
    pub fn flushed(&self) -> Written {
        self.writer.flushed()
    }

    /// Every persisted allocation, once what this handle's writer has queued is written;
    /// unreadable entries are logged and skipped.
    pub fn load_allocs(&self) -> Vec<PersistedAlloc> {
        self.writer.flushed().wait_blocking();
        let mut allocs = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.root.join("allocs")) else {
            return allocs;
        };
        for entry in entries.flatten() {
            let dir = entry.path();
            let alloc: Allocation = match read_json(&dir.join("alloc.json")) {
                Ok(alloc) => alloc,
                Err(err) => {
                    tracing::warn!(path = %dir.display(), error = %err, "skipping unreadable allocation state");
                    continue;
                }
            };
            let mut tasks = Vec::new();
            for task_entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = task_entry.file_name().to_string_lossy().into_owned();
                let Some(task) = name
                    .strip_prefix("task-")
                    .and_then(|rest| rest.strip_suffix(".json"))
                else {
                    continue;
                };
                match read_json::<TaskRunnerState>(&task_entry.path()) {
                    Ok(state) => tasks.push((task.to_owned(), state)),
                    Err(err) => {
                        tracing::warn!(path = %task_entry.path().display(), error = %err, "skipping unreadable task state");
                    }
                }
            }
            allocs.push(PersistedAlloc { alloc, tasks });
        }
        allocs
    }
}

fn to_json<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(io::Error::other)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<T> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(io::Error::other)
}

/// Writes `bytes` to a sibling temporary file and renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// As [`write_atomic`], the file readable and writable by its owner only (mode 0600) from its
/// creation on.
fn write_atomic_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    // A stale temporary file may carry other permissions; start afresh.
    match std::fs::remove_file(&tmp) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::TaskStateValue;

    #[test]
    fn allocations_and_task_handles_round_trip() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = StateDb::open(dir.path())?;
        let node_id = db.node_id()?;
        assert_eq!(StateDb::open(dir.path())?.node_id()?, node_id);
        let secret_id = db.secret_id()?;
        assert_ne!(secret_id, node_id);
        assert_eq!(StateDb::open(dir.path())?.secret_id()?, secret_id);
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secret-id"))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "the node secret is the owner's only");
        }
        let alloc = Allocation {
            id: "a1".into(),
            name: "job.group[0]".to_owned(),
            ..Allocation::default()
        };
        db.put_alloc(&alloc)?;
        let state = TaskRunnerState {
            task_state: TaskState {
                state: TaskStateValue::Running,
                ..TaskState::default()
            },
            handle: Some(TaskHandle {
                driver: "raw_exec".to_owned(),
                id: "a1/web".to_owned(),
                driver_state: vec![1, 2, 3],
                wait_on: crate::driver_host::WaitOn::Process(42),
            }),
            host_record: HostRecord {
                processes: vec![crate::driver_host::ProcessRecord {
                    pid: 42,
                    start_time: 1234,
                }],
            },
            hooks: BTreeMap::from([(
                "artifacts".to_owned(),
                HookState {
                    prestart_done: true,
                    env: BTreeMap::from([("K".to_owned(), "v".to_owned())]),
                    data: Some(serde_json::json!({ "fetched": [0] })),
                },
            )]),
        };
        db.put_task("a1", "web", &state)?;
        let loaded = db.load_allocs();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].alloc, alloc);
        let tasks: BTreeMap<_, _> = loaded[0].tasks.iter().cloned().collect();
        assert_eq!(tasks.get("web"), Some(&state));
        db.delete_alloc("a1");
        assert!(db.load_allocs().is_empty());
        Ok(())
    }

    /// A task file written before hooks kept state reads back with none: every prestart hook
    /// runs again rather than the file being skipped.
    #[test]
    fn a_task_file_without_hook_states_reads_back() -> io::Result<()> {
        let state: TaskRunnerState =
            serde_json::from_str(r#"{"task_state": {"State": "running"}, "handle": null}"#)
                .map_err(io::Error::other)?;
        assert_eq!(state.task_state.state, TaskStateValue::Running);
        assert!(state.hooks.is_empty());
        Ok(())
    }
}
