//! Hook `logs`: where a task's stdout and stderr go, capped per the task's
//! `logs { max_files, max_file_size }`.
//!
//! Each stream goes through a FIFO, `alloc/logs/.<task>.<stream>.fifo`, read by a log collector
//! (`log_collector.rs`, Nomad's logmon) that writes `<task>.<stream>.N` files of at most
//! `max_file_size` and keeps at most `max_files`, as the task writes: the cap holds whatever the
//! writer's speed (a writer faster than the disk blocks on the FIFO; nothing is copied on a
//! timer). Numbering is Nomad's: `.0` is the first file, the highest index the newest, so the
//! logs API reads them in index order.
//!
//! The host-side hand-off: [`prepare`] makes the FIFOs and makes sure collectors read them;
//! [`open_sink`] gives a host capability the write end for task X (drivers that take a path get
//! [`sink_path`] today); [`stop`] ends the collectors when the task is dead for good.
//! Everything under `alloc/logs/` is reached through [`crate::allocfs`]: a FIFO, lock or log
//! file a task replaced by a symbolic link is removed and recreated, never followed.
//!
//! Tasks that live inside the agent ([`lives_in_agent`]: WASI workloads) get neither: the host
//! writes their output into the same rotated files, buffered.
//!
//! Nomad: `client/allocrunner/taskrunner/logmon_hook.go`.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::hooks::{
    HookError, HookFuture, Prestart, PrestartRequest, PrestartResponse, Stop, StopRequest, TaskHook,
};
use super::log_collector::{self, CollectorArgs, CollectorMode};
pub use crate::allocfs::log_files::{RotationConfig, file_name, log_indexes};
use crate::allocfs::{AllocFsError, RelPath, Root};
use crate::client::alloc_runner::alloc_dir::AllocDir;
use crate::structs::LogConfig;

pub const NAME: &str = "logs";

/// The streams a task has.
pub const STREAMS: [&str; 2] = ["stdout", "stderr"];

impl RotationConfig {
    pub fn from_log_config(log_config: Option<&LogConfig>) -> RotationConfig {
        let mut config = log_config.cloned().unwrap_or_default();
        config.fill_defaults();
        RotationConfig {
            max_files: usize::try_from(config.max_files.max(1)).unwrap_or(1),
            max_file_size: u64::try_from(config.max_file_size_mb.max(1)).unwrap_or(1) << 20,
        }
    }
}

/// The FIFO a task's stream is written to.
pub fn fifo_name(task: &str, stream: &str) -> String {
    format!(".{task}.{stream}.fifo")
}

/// The lock its collector holds.
pub fn lock_name(task: &str, stream: &str) -> String {
    format!(".{task}.{stream}.lock")
}

/// The path of the FIFO, for drivers that are handed a path.
pub fn sink_path(logs_dir: &Path, task: &str, stream: &str) -> PathBuf {
    logs_dir.join(fifo_name(task, stream))
}

fn one_name(name: &str) -> io::Result<RelPath> {
    RelPath::parse(name)
        .ok()
        .filter(|path| path.names().len() == 1)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name:?} is not one path component"),
            )
        })
}

fn logs_root(alloc_dir: &AllocDir) -> io::Result<Root> {
    let root = alloc_dir.open_root()?;
    Ok(root.create_dir_all(
        &RelPath::parse("alloc/logs").map_err(|_| io::ErrorKind::InvalidInput)?,
        0o755,
    )?)
}

/// Whether the tasks of `driver` live inside the agent: the `wasm` driver's WASI workloads, whose
/// output the host writes into the rotated files itself (`driver_host::host::task_log`) and
/// which end with the agent, so they need no FIFO and no collector outliving the agent (with
/// 10,000 tasks, 20,000 collector processes).
pub fn lives_in_agent(driver: &str) -> bool {
    driver == "wasm"
}

/// Makes the task's FIFOs (replacing anything else a task left under their names) and makes
/// sure a collector reads each; idempotent, so it runs before every start and on recovery.
pub fn prepare(
    alloc_dir: &AllocDir,
    task: &str,
    config: RotationConfig,
    mode: &CollectorMode,
) -> io::Result<()> {
    let logs = logs_root(alloc_dir)?;
    for stream in STREAMS {
        let fifo = one_name(&fifo_name(task, stream))?;
        match logs.make_fifo(&fifo, 0o622) {
            Err(AllocFsError::Symlink { .. } | AllocFsError::NotRegular { .. }) => {
                logs.remove(&fifo)?;
                logs.make_fifo(&fifo, 0o622)?;
            }
            other => other?,
        }
        let args = CollectorArgs {
            alloc_dir: alloc_dir.root().to_path_buf(),
            task: task.to_owned(),
            stream: stream.to_owned(),
            config,
        };
        log_collector::ensure_running(&args, mode)?;
    }
    Ok(())
}

/// The `logs` hook: prestart makes the FIFOs and their collectors (on recovery too, so
/// collectors that ran on the previous agent's threads start again); stop ends them.
#[derive(Debug, Clone, Default)]
pub struct LogsHook {
    pub mode: CollectorMode,
}

impl TaskHook for LogsHook {
    fn name(&self) -> &'static str {
        NAME
    }

    fn as_prestart(&self) -> Option<&dyn Prestart> {
        Some(self)
    }

    fn as_stop(&self) -> Option<&dyn Stop> {
        Some(self)
    }
}

impl Prestart for LogsHook {
    fn prestart<'a>(
        &'a self,
        req: &'a PrestartRequest<'a>,
        _resp: &'a mut PrestartResponse,
    ) -> HookFuture<'a> {
        let rotation = RotationConfig::from_log_config(req.task.log_config.as_ref());
        let alloc_dir = req.alloc_dir.clone();
        let task = req.task.name.clone();
        let mode = self.mode.clone();
        let in_agent = lives_in_agent(&req.task.driver);
        Box::pin(async move {
            if in_agent {
                return tokio::task::spawn_blocking(move || logs_root(&alloc_dir).map(drop))
                    .await
                    .map_err(|err| HookError::new(err.to_string()))?
                    .map_err(|err| {
                        HookError::new(format!("failed to set up the logs directory: {err}"))
                    });
            }
            tokio::task::spawn_blocking(move || prepare(&alloc_dir, &task, rotation, &mode))
                .await
                .map_err(|err| HookError::new(err.to_string()))?
                .map_err(|err| HookError::new(format!("failed to set up log collection: {err}")))
        })
    }
}

impl Stop for LogsHook {
    fn stop<'a>(&'a self, req: &'a StopRequest<'a>) -> HookFuture<'a> {
        Box::pin(async move {
            stop(req.alloc_dir, &req.task.name)
                .map_err(|err| HookError::new(format!("failed to stop log collectors: {err}")))
        })
    }
}

/// The write end of a task's stream, for host code that hands it to the task (a process's
/// stdout, a WASI workload's stdout, a container log follower). Fails rather than blocks when
/// no collector reads it. The host capabilities still open [`sink_path`] as drivers name it;
/// this is the call they switch to when the host, not the driver, picks a task's log sink.
#[allow(dead_code)]
pub fn open_sink(alloc_dir: &AllocDir, task: &str, stream: &str) -> io::Result<File> {
    let logs = logs_root(alloc_dir)?;
    Ok(File::from(
        logs.open_fifo(&one_name(&fifo_name(task, stream))?, false)?,
    ))
}

/// The task is dead for good: removes its FIFOs, so its collectors drain and exit.
pub fn stop(alloc_dir: &AllocDir, task: &str) -> io::Result<()> {
    let logs = match logs_root(alloc_dir) {
        Ok(logs) => logs,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    for stream in STREAMS {
        match logs.remove(&one_name(&fifo_name(task, stream))?) {
            Err(err) if !err.is_not_found() => return Err(err.into()),
            _ => {}
        }
    }
    Ok(())
}

/// The task's regular log files of `stream`, oldest first, as names in `logs`.
#[cfg(test)]
pub fn log_files(logs: &Root, task: &str, stream: &str) -> Vec<String> {
    log_indexes(logs, task, stream, true)
        .into_iter()
        .map(|index| file_name(task, stream, index))
        .collect()
}

/// Opens `alloc/logs` of an allocation for reading.
pub fn open_logs_dir(alloc_dir: &AllocDir) -> io::Result<Root> {
    let root = alloc_dir.open_root()?;
    Ok(root.subdir(&RelPath::parse("alloc/logs").map_err(|_| io::ErrorKind::InvalidInput)?)?)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::allocfs::log_files::Rotator;

    fn names(logs: &Root, task: &str, stream: &str) -> Vec<String> {
        log_files(logs, task, stream)
    }

    #[test]
    fn rotates_as_it_writes_and_keeps_max_files() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let logs = Root::open(dir.path())?;
        let config = RotationConfig {
            max_files: 3,
            max_file_size: 10,
        };
        let mut rotator = Rotator::open(logs.clone(), "web", "stdout", config)?;
        rotator.write(b"aaaaaaaaaabbbbbbbbbbcc")?;
        rotator.write(b"ccccccccdddddddddde")?;
        rotator.write(b"ee")?;
        assert_eq!(
            names(&logs, "web", "stdout"),
            ["web.stdout.2", "web.stdout.3", "web.stdout.4"]
        );
        let contents: Vec<String> = names(&logs, "web", "stdout")
            .iter()
            .map(|name| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default())
            .collect();
        assert_eq!(contents, ["cccccccccc", "dddddddddd", "eee"]);
        // A new rotator (a restarted collector) continues the newest file.
        let mut again = Rotator::open(logs.clone(), "web", "stdout", config)?;
        again.write(b"f")?;
        assert_eq!(
            std::fs::read_to_string(dir.path().join("web.stdout.4"))?,
            "eeef"
        );
        Ok(())
    }

    /// A task turned `t.stderr.0` into a link to a host file: the collector removes the link
    /// and writes a fresh file; the host file is neither read, written nor truncated.
    #[test]
    fn a_planted_log_link_is_never_followed() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "secret")?;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600))?;
        let logs_dir = dir.path().join("logs");
        std::fs::create_dir(&logs_dir)?;
        symlink(&secret, logs_dir.join("t.stderr.0"))?;
        symlink(&secret, logs_dir.join("t.stderr.1"))?;
        let logs = Root::open(&logs_dir)?;
        assert_eq!(log_files(&logs, "t", "stderr"), Vec::<String>::new());
        let config = RotationConfig {
            max_files: 1,
            max_file_size: 4,
        };
        let mut rotator = Rotator::open(logs.clone(), "t", "stderr", config)?;
        rotator.write(b"0123456789")?;
        assert_eq!(std::fs::read_to_string(&secret)?, "secret");
        assert_eq!(
            std::fs::metadata(&secret)?.permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(log_files(&logs, "t", "stderr"), ["t.stderr.2"]);
        assert!(logs_dir.join("t.stderr.0").symlink_metadata().is_err());
        Ok(())
    }

    #[test]
    fn a_collector_caps_a_fast_writer_and_stops_with_its_fifo() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let alloc_dir = AllocDir::new(dir.path(), "a1");
        alloc_dir.build()?;
        let config = RotationConfig {
            max_files: 2,
            max_file_size: 64 << 10,
        };
        prepare(&alloc_dir, "t", config, &CollectorMode::Thread)?;
        // A second prepare finds the collectors running and starts none.
        prepare(&alloc_dir, "t", config, &CollectorMode::Thread)?;
        let mut sink = open_sink(&alloc_dir, "t", "stdout")?;
        let chunk = vec![b'x'; 32 << 10];
        for _ in 0..256 {
            sink.write_all(&chunk)?;
        }
        drop(sink);
        let logs = open_logs_dir(&alloc_dir)?;
        let total = |logs: &Root| -> u64 {
            log_files(logs, "t", "stdout")
                .iter()
                .filter_map(|name| std::fs::metadata(alloc_dir.logs_dir().join(name)).ok())
                .map(|metadata| metadata.len())
                .sum()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while log_indexes(&logs, "t", "stdout", true).last() != Some(&127) {
            assert!(Instant::now() < deadline, "collector did not catch up");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            log_files(&logs, "t", "stdout"),
            ["t.stdout.126", "t.stdout.127"]
        );
        assert_eq!(total(&logs), 128 << 10);
        stop(&alloc_dir, "t")?;
        // With its FIFO gone the collector exits and releases its lock.
        let lock = alloc_dir.logs_dir().join(lock_name("t", "stdout"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let file = std::fs::OpenOptions::new().write(true).open(&lock)?;
            if nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "collector did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(open_sink(&alloc_dir, "t", "stdout").is_err());
        Ok(())
    }

    #[test]
    fn limits_come_from_the_logs_block_in_megabytes() {
        let config = RotationConfig::from_log_config(Some(&LogConfig {
            max_files: 3,
            max_file_size_mb: 2,
            disabled: false,
        }));
        assert_eq!(config.max_files, 3);
        assert_eq!(config.max_file_size, 2 << 20);
        assert_eq!(RotationConfig::from_log_config(None).max_files, 10);
    }
}
