//! Capability `host-process`: native processes for drivers such as raw_exec.
//!
//! Every process starts in its own process group (pgid = pid) with a cleared environment (only
//! what the driver passes), stdin from /dev/null, stdout and stderr appended to the task's log
//! files. A reaper task per child records its exit in the [`ProcessTable`]; any number of calls
//! can wait for it (a task's `wait-task` and a `stop-task` at the same time).
//!
//! Scope: a call acts only on the processes of its own task (see [`ProcessTable::authorize`]).
//!
//! After an agent restart a task's process is no longer the agent's child: `wait` then polls
//! /proc until the pid is gone and reports an unknown exit status, as Nomad does for
//! re-attached tasks it cannot reap.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::driver_host::bindings::caravan::driver::host_process::{
    ExecOutput, ExecRequest, Host, ProcessExit, ProcessStats, SpawnRequest,
};
use crate::driver_host::host::bounded;
use crate::driver_host::instance::CallState;

/// The PATH a process gets when the task's environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How often `wait` looks at a process that is not the agent's child.
const FOREIGN_POLL: Duration = Duration::from_millis(50);
/// Linux reports CPU times in USER_HZ, fixed at 100 for userspace.
const MS_PER_CLOCK_TICK: u64 = 10;
/// Most output `exec` returns per stream.
const MAX_EXEC_OUTPUT: u64 = 1 << 20;
/// Finished children kept for late waiters before the table prunes them.
const KEEP_FINISHED: usize = 4096;

/// A child started through `host-process`, for the task whose call started it.
#[derive(Clone)]
struct Child {
    task_dir: Option<PathBuf>,
    exit: watch::Receiver<Option<ProcessExit>>,
}

/// The agent's children started through `host-process`, with their exits once known.
#[derive(Default)]
pub(crate) struct ProcessTable {
    children: Mutex<HashMap<u32, Child>>,
}

impl ProcessTable {
    fn insert(&self, pid: u32, child: Child) {
        let mut children = self
            .children
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if children.len() >= KEEP_FINISHED {
            children.retain(|_, child| child.exit.borrow().is_none());
        }
        children.insert(pid, child);
    }

    fn get(&self, pid: u32) -> Option<Child> {
        let children = self
            .children
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        children.get(&pid).cloned()
    }

    /// Whether a call for `task_dir` may act on `pid`: a child started for the same task, or,
    /// after an agent restart, a running process whose working directory is inside the task
    /// directory. A driver cannot reach the processes of other tasks or of the system.
    pub(crate) fn authorize(&self, pid: u32, task_dir: Option<&Path>) -> Result<(), String> {
        if let Some(child) = self.get(pid) {
            return if child.task_dir.as_deref() == task_dir {
                Ok(())
            } else {
                Err(format!("pid {pid} belongs to another task"))
            };
        }
        if !is_alive(pid) {
            return Ok(());
        }
        let inside = task_dir
            .and_then(|dir| dir.canonicalize().ok())
            .is_some_and(|dir| {
                std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(&dir))
            });
        if inside {
            Ok(())
        } else {
            Err(format!("pid {pid} was not started for this task"))
        }
    }

    /// Starts a process; returns its pid (also its process group id).
    pub(crate) fn spawn(
        &self,
        request: &SpawnRequest,
        task_dir: Option<&Path>,
    ) -> Result<u32, String> {
        let cwd = Path::new(&request.cwd);
        if !cwd.is_absolute() {
            return Err(format!("cwd {:?} is not absolute", request.cwd));
        }
        let program = program_path(&request.command, cwd);
        let stdout = open_log(&request.stdout_path)?;
        let stderr = open_log(&request.stderr_path)?;
        let mut command = tokio::process::Command::new(&program);
        command
            .args(&request.args)
            .env_clear()
            .envs(request.env.iter().map(|(key, value)| (key, value)))
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        if !request.env.iter().any(|(key, _)| key == "PATH") {
            command.env("PATH", DEFAULT_PATH);
        }
        let mut child = command
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", program.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| String::from("the process exited before its pid was read"))?;
        let (sender, receiver) = watch::channel(None);
        self.insert(
            pid,
            Child {
                task_dir: task_dir.map(Path::to_path_buf),
                exit: receiver,
            },
        );
        tokio::spawn(async move {
            let exit = match child.wait().await {
                Ok(status) => exit_of(status),
                Err(err) => ProcessExit {
                    exit_code: -1,
                    signal: 0,
                    detail: Some(format!("wait failed: {err}")),
                },
            };
            tracing::debug!(
                pid,
                exit_code = exit.exit_code,
                signal = exit.signal,
                "process exited"
            );
            let _ = sender.send(Some(exit));
        });
        Ok(pid)
    }

    /// Waits for `pid` to exit; `Ok(None)` when `timeout` passed first.
    pub(crate) async fn wait(
        &self,
        pid: u32,
        timeout: Option<Duration>,
    ) -> Result<Option<ProcessExit>, String> {
        let waiting = async {
            match self.get(pid) {
                Some(Child { mut exit, .. }) => exit
                    .wait_for(Option::is_some)
                    .await
                    .map(|exit| exit.clone())
                    .map_err(|_| format!("the reaper of pid {pid} is gone")),
                None => {
                    while is_alive(pid) {
                        tokio::time::sleep(FOREIGN_POLL).await;
                    }
                    Ok(Some(ProcessExit {
                        exit_code: -1,
                        signal: 0,
                        detail: Some(format!(
                            "pid {pid} is not a child of this agent (recovered after a restart): its exit status is unknown"
                        )),
                    }))
                }
            }
        };
        match timeout {
            None => waiting.await,
            Some(timeout) => tokio::time::timeout(timeout, waiting)
                .await
                .unwrap_or(Ok(None)),
        }
    }
}

/// `command` as run from `cwd`: a relative path with a `/` is relative to `cwd`, a bare name is
/// looked up in PATH.
fn program_path(command: &str, cwd: &Path) -> PathBuf {
    let path = Path::new(command);
    if command.contains('/') && path.is_relative() {
        cwd.join(path)
    } else {
        path.to_path_buf()
    }
}

fn open_log(path: &str) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|err| format!("cannot open log file {path:?}: {err}"))
}

fn exit_of(status: std::process::ExitStatus) -> ProcessExit {
    match (status.code(), status.signal()) {
        (Some(code), _) => ProcessExit {
            exit_code: code,
            signal: 0,
            detail: None,
        },
        (None, Some(signal)) => ProcessExit {
            exit_code: -1,
            signal,
            detail: None,
        },
        (None, None) => ProcessExit {
            exit_code: -1,
            signal: 0,
            detail: Some(format!("unexpected status {status}")),
        },
    }
}

/// Parses `SIGTERM`, `TERM`, `term` or `15`.
pub(crate) fn parse_signal(name: &str) -> Result<Signal, String> {
    let name = name.trim();
    if let Ok(number) = name.parse::<i32>() {
        return Signal::try_from(number).map_err(|_| format!("unknown signal {name:?}"));
    }
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&full).map_err(|_| format!("unknown signal {name:?}"))
}

/// Refuses pids whose signalling would hit the agent or the whole system.
fn target_pid(pid: u32) -> Result<Pid, String> {
    let raw = i32::try_from(pid).map_err(|_| format!("pid {pid} out of range"))?;
    if raw <= 1 || pid == std::process::id() {
        return Err(format!("pid {pid} is not a task's process"));
    }
    Ok(Pid::from_raw(raw))
}

/// Whether `pid` runs (a zombie does not).
pub(crate) fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => parse_stat(&stat).is_some_and(|fields| fields.state != 'Z'),
        Err(_) => false,
    }
}

/// The fields of /proc/PID/stat that stats need.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StatFields {
    pub state: char,
    pub pgrp: u32,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
}

/// Parses /proc/PID/stat; the command name may contain spaces and parentheses, so fields are
/// counted after the last `)`.
pub(crate) fn parse_stat(stat: &str) -> Option<StatFields> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) pgrp(5) ... utime(14) stime(15), numbered as in proc(5).
    Some(StatFields {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        utime_ticks: fields.get(11)?.parse().ok()?,
        stime_ticks: fields.get(12)?.parse().ok()?,
    })
}

fn rss_bytes(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// CPU and memory of the process group led by `pid` (its whole tree unless a descendant left
/// the group on purpose).
pub(crate) fn group_stats(pid: u32) -> Result<ProcessStats, String> {
    let mut stats = ProcessStats {
        timestamp_ms: now_ms(),
        cpu_user_ms: 0,
        cpu_system_ms: 0,
        memory_rss_bytes: 0,
        pids: Vec::new(),
    };
    let entries = std::fs::read_dir("/proc").map_err(|err| format!("/proc: {err}"))?;
    for entry in entries.flatten() {
        let Some(candidate) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{candidate}/stat")) else {
            continue;
        };
        let Some(fields) = parse_stat(&stat) else {
            continue;
        };
        if fields.pgrp != pid && candidate != pid {
            continue;
        }
        stats.cpu_user_ms += fields.utime_ticks * MS_PER_CLOCK_TICK;
        stats.cpu_system_ms += fields.stime_ticks * MS_PER_CLOCK_TICK;
        stats.memory_rss_bytes += rss_bytes(candidate);
        stats.pids.push(candidate);
    }
    if stats.pids.is_empty() {
        return Err(format!("no process in group {pid}"));
    }
    stats.pids.sort_unstable();
    Ok(stats)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

async fn read_capped(stream: Option<impl tokio::io::AsyncRead + Unpin>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(stream) = stream {
        let _ = stream.take(MAX_EXEC_OUTPUT).read_to_end(&mut bytes).await;
    }
    bytes
}

/// Runs a command to completion, killing it after `timeout_ms`.
async fn exec(request: ExecRequest) -> Result<ExecOutput, String> {
    let cwd = PathBuf::from(&request.cwd);
    let program = program_path(&request.command, &cwd);
    let mut command = tokio::process::Command::new(&program);
    command
        .args(&request.args)
        .env_clear()
        .envs(request.env.iter().map(|(key, value)| (key, value)))
        .current_dir(&cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if !request.env.iter().any(|(key, _)| key == "PATH") {
        command.env("PATH", DEFAULT_PATH);
    }
    let mut child = command
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", program.display()))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let run = async {
        let (stdout, stderr, status) =
            tokio::join!(read_capped(stdout), read_capped(stderr), child.wait());
        let status = status.map_err(|err| format!("wait: {err}"))?;
        Ok(ExecOutput {
            exit_code: exit_of(status).exit_code,
            stdout,
            stderr,
        })
    };
    match tokio::time::timeout(Duration::from_millis(request.timeout_ms), run).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "{} timed out after {} ms",
            request.command, request.timeout_ms
        )),
    }
}

impl Host for CallState {
    async fn spawn(&mut self, request: SpawnRequest) -> Result<u32, String> {
        let _timer = self.host_timer();
        self.runtime
            .processes
            .spawn(&request, self.task_dir.as_deref())
    }

    async fn wait(
        &mut self,
        pid: u32,
        timeout_ms: Option<u64>,
    ) -> Result<Option<ProcessExit>, String> {
        let _timer = self.host_timer();
        self.runtime
            .processes
            .authorize(pid, self.task_dir.as_deref())?;
        self.runtime
            .processes
            .wait(pid, timeout_ms.map(Duration::from_millis))
            .await
    }

    async fn signal(&mut self, pid: u32, signal: String) -> Result<(), String> {
        let _timer = self.host_timer();
        let signal = parse_signal(&signal)?;
        self.runtime
            .processes
            .authorize(pid, self.task_dir.as_deref())?;
        kill(target_pid(pid)?, signal).map_err(|err| format!("kill {pid} {signal}: {err}"))
    }

    async fn signal_group(&mut self, pid: u32, signal: String) -> Result<(), String> {
        let _timer = self.host_timer();
        let signal = parse_signal(&signal)?;
        self.runtime
            .processes
            .authorize(pid, self.task_dir.as_deref())?;
        killpg(target_pid(pid)?, signal).map_err(|err| format!("killpg {pid} {signal}: {err}"))
    }

    async fn is_alive(&mut self, pid: u32) -> bool {
        let _timer = self.host_timer();
        is_alive(pid)
    }

    async fn stats(&mut self, pid: u32) -> Result<ProcessStats, String> {
        self.runtime
            .processes
            .authorize(pid, self.task_dir.as_deref())?;
        bounded(self, "stats", async { group_stats(pid) }).await
    }

    async fn exec(&mut self, request: ExecRequest) -> Result<ExecOutput, String> {
        let _timer = self.host_timer();
        exec(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_in_every_spelling() {
        assert_eq!(parse_signal("SIGTERM"), Ok(Signal::SIGTERM));
        assert_eq!(parse_signal("term"), Ok(Signal::SIGTERM));
        assert_eq!(parse_signal("9"), Ok(Signal::SIGKILL));
        assert!(parse_signal("SIGNOPE").is_err());
    }

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let stat =
            "4242 (sh (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 100 1000 200";
        let fields = parse_stat(stat).expect("parse");
        assert_eq!(
            fields,
            StatFields {
                state: 'S',
                pgrp: 4242,
                utime_ticks: 7,
                stime_ticks: 3
            }
        );
    }

    #[test]
    fn the_agent_and_init_cannot_be_signalled() {
        assert!(target_pid(1).is_err());
        assert!(target_pid(std::process::id()).is_err());
        assert!(target_pid(4242).is_ok());
    }

    #[test]
    fn relative_commands_with_a_slash_are_relative_to_the_task_dir() {
        let cwd = Path::new("/alloc/task");
        assert_eq!(
            program_path("./run.sh", cwd),
            PathBuf::from("/alloc/task/./run.sh")
        );
        assert_eq!(program_path("sh", cwd), PathBuf::from("sh"));
        assert_eq!(program_path("/bin/sh", cwd), PathBuf::from("/bin/sh"));
    }
}
