//! Capability `host-process`: native processes for drivers such as raw_exec.
//!
//! Every process starts in its own process group (pgid = pid), every signal at its default
//! disposition and none blocked, with a cleared environment (only what the driver passes), stdin
//! from /dev/null, stdout and stderr appended to the task's own log files (from the call's
//! [`TaskScope`](crate::driver_host::TaskScope), never from the driver), its working directory opened beneath the task directory without following symlinks (and
//! entered through `/proc/self/fd/N`, so the check cannot race), as the task's user under the
//! operator's policy ([`UserPolicy`]). A reaper task per child records its exit in the
//! [`ProcessTable`]; any number of waiters can wait for it (the host's own wait for the task and a
//! `stop-task` at the same time).
//!
//! Scope: the table is keyed by pid and records the task id and start time (/proc/PID/stat field
//! 22) of each process; a call acts only on the processes of its own task, and never on a pid
//! whose start time changed (a reused pid). There is no fallback: a pid the table does not list
//! for the task is refused. After an agent restart the client gives the host its own persisted
//! [`HostRecord`](crate::driver_host::HostRecord) and [`ProcessTable::adopt`] re-registers the
//! processes whose start time still matches; their exit status is then unknown (not our
//! children), as Nomad reports for re-attached tasks it cannot reap.
//!
//! What it cannot do, said honestly: the spawned program is native code running as the task's
//! user; the scope covers the calls the driver makes, not what that program does.

use std::collections::HashMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, User};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::driver_host::bindings::caravan::driver::host_process::{
    ExecOutput, ExecRequest, Host, ProcessExit, ProcessStats, SpawnRequest,
};
use crate::driver_host::host::isolated_child::default_signals;
use crate::driver_host::host::{RawExit, bounded, fd_path, open_beneath, open_task_log};
use crate::driver_host::instance::CallState;
use crate::driver_host::types::{ProcessRecord, TaskScope};

/// The PATH a process gets when the task's environment has none.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How often the host looks at a re-adopted process that is not the agent's child.
const FOREIGN_POLL: Duration = Duration::from_millis(250);
/// Linux reports CPU times in USER_HZ, fixed at 100 for userspace.
const MS_PER_CLOCK_TICK: u64 = 10;
/// Most output `exec` returns per stream.
const MAX_EXEC_OUTPUT: u64 = 1 << 20;
/// Finished children kept for late waiters before the table prunes them.
const KEEP_FINISHED: usize = 4096;

/// A process started through `host-process`, for the task whose call started it.
#[derive(Clone)]
pub(crate) struct Child {
    pub(crate) task_id: Arc<str>,
    pub(crate) start_time: u64,
    pub(crate) exit: watch::Receiver<Option<ProcessExit>>,
    /// The cgroup of an isolated process (`host-isolated`): OOM record, kill of the whole tree.
    pub(crate) cgroup: Option<Arc<crate::driver_host::host::isolated::Cgroup>>,
}

impl Child {
    pub(crate) fn running(&self) -> bool {
        self.exit.borrow().is_none()
    }
}

/// The agent's processes started through `host-process`, by pid, with their task and exit.
#[derive(Default)]
pub(crate) struct ProcessTable {
    children: Mutex<HashMap<u32, Child>>,
}

/// Who a task's processes run as: the plugin config's `user_denylist` (default `["root"]`,
/// Nomad's `user.denylist`) refuses a job's `user`; `default_user` is the user of tasks without
/// one (default: the agent's own user, as Nomad's raw_exec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserPolicy {
    pub denylist: Vec<String>,
    pub default_user: Option<String>,
}

impl UserPolicy {
    pub(crate) fn from_plugin_config(
        config: Option<&serde_json::Value>,
    ) -> Result<UserPolicy, String> {
        let mut policy = UserPolicy {
            denylist: vec![String::from("root")],
            default_user: None,
        };
        let Some(object) = config.and_then(serde_json::Value::as_object) else {
            return Ok(policy);
        };
        if let Some(value) = object.get("user_denylist") {
            policy.denylist = value
                .as_array()
                .and_then(|names| {
                    names
                        .iter()
                        .map(|name| name.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| {
                    format!("user_denylist: expected a list of user names, got {value}")
                })?;
        }
        if let Some(value) = object.get("default_user") {
            policy.default_user = Some(
                value
                    .as_str()
                    .filter(|name| !name.is_empty())
                    .ok_or_else(|| format!("default_user: expected a user name, got {value}"))?
                    .to_owned(),
            );
        }
        Ok(policy)
    }

    /// The uid and gid a task's process runs as; `None`: the agent's own user.
    pub(crate) fn resolve(&self, task_user: Option<&str>) -> Result<Option<(u32, u32)>, String> {
        let Some(name) = task_user
            .filter(|name| !name.is_empty())
            .or(self.default_user.as_deref())
        else {
            return Ok(None);
        };
        if self.denylist.iter().any(|denied| denied == name) {
            return Err(format!(
                "user {name:?} is in the plugin's user_denylist: refused"
            ));
        }
        let user = User::from_name(name)
            .map_err(|err| format!("user {name:?}: {err}"))?
            .ok_or_else(|| format!("user {name:?} does not exist on this node"))?;
        let (uid, gid) = (user.uid.as_raw(), user.gid.as_raw());
        let agent = nix::unistd::geteuid().as_raw();
        if uid == agent {
            return Ok(None);
        }
        if agent != 0 {
            return Err(format!(
                "cannot run the task as user {name:?}: the agent does not run as root"
            ));
        }
        Ok(Some((uid, gid)))
    }
}

impl ProcessTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Child>> {
        self.children
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn insert(&self, pid: u32, child: Child) {
        let mut children = self.lock();
        if children.len() >= KEEP_FINISHED {
            children.retain(|_, child| child.running());
        }
        children.insert(pid, child);
    }

    /// The table's entry for `pid` if it belongs to `task_id`; anything else is refused (another
    /// task's process, a system process, a pid the host never started). There is no fallback.
    pub(crate) fn authorize(&self, pid: u32, task_id: &str) -> Result<Child, String> {
        match self.lock().get(&pid) {
            Some(child) if *child.task_id == *task_id => Ok(child.clone()),
            _ => Err(format!("pid {pid} is not a process of this task: refused")),
        }
    }

    /// Like [`ProcessTable::authorize`], for a call about to signal `pid`: it must still run and
    /// still be the process the host recorded (same start time).
    pub(crate) fn authorize_live(&self, pid: u32, task_id: &str) -> Result<Option<Child>, String> {
        let child = self.authorize(pid, task_id)?;
        if !child.running() || start_time(pid) != Some(child.start_time) {
            return Ok(None);
        }
        Ok(Some(child))
    }

    /// The running processes of a task, for the client to persist (its [`HostRecord`]).
    ///
    /// [`HostRecord`]: crate::driver_host::HostRecord
    pub(crate) fn records(&self, task_id: &str) -> Vec<ProcessRecord> {
        let mut records: Vec<ProcessRecord> = self
            .lock()
            .iter()
            .filter(|(_, child)| *child.task_id == *task_id && child.running())
            .map(|(pid, child)| ProcessRecord {
                pid: *pid,
                start_time: child.start_time,
            })
            .collect();
        records.sort_by_key(|record| record.pid);
        records
    }

    /// Re-registers a task's processes from the client's record after an agent restart: each one
    /// still running with the recorded start time (a reused pid has another) becomes the task's
    /// again; the others are skipped. Returns how many were adopted.
    pub(crate) fn adopt(&self, task_id: &str, records: &[ProcessRecord]) -> usize {
        let task_id: Arc<str> = Arc::from(task_id);
        let mut adopted = 0;
        for record in records {
            if self.lock().contains_key(&record.pid) {
                continue;
            }
            if start_time(record.pid) != Some(record.start_time) || !is_alive(record.pid) {
                continue;
            }
            let (sender, receiver) = watch::channel(None);
            self.insert(
                record.pid,
                Child {
                    task_id: Arc::clone(&task_id),
                    start_time: record.start_time,
                    exit: receiver,
                    cgroup: None,
                },
            );
            let ProcessRecord {
                pid,
                start_time: started,
            } = *record;
            tokio::spawn(async move {
                while is_alive(pid) && start_time(pid) == Some(started) {
                    tokio::time::sleep(FOREIGN_POLL).await;
                }
                let _ = sender.send(Some(ProcessExit {
                    exit_code: -1,
                    signal: 0,
                    detail: Some(format!(
                        "pid {pid} is not a child of this agent (recovered after a restart): its exit status is unknown"
                    )),
                }));
            });
            adopted += 1;
        }
        adopted
    }

    /// SIGKILLs the process groups of a task's running processes; returns how many.
    pub(crate) fn reap(&self, task_id: &str) -> usize {
        let pids: Vec<(u32, u64, Option<Arc<_>>)> = self
            .lock()
            .iter()
            .filter(|(_, child)| *child.task_id == *task_id && child.running())
            .map(|(pid, child)| (*pid, child.start_time, child.cgroup.clone()))
            .collect();
        let mut reaped = 0;
        for (pid, started, cgroup) in pids {
            if let Some(cgroup) = cgroup {
                cgroup.kill_all();
            }
            if start_time(pid) != Some(started) {
                continue;
            }
            if let Ok(target) = target_pid(pid)
                && killpg(target, Signal::SIGKILL).is_ok()
            {
                reaped += 1;
            }
        }
        reaped
    }

    /// Starts a process of the task of `scope`; returns its pid (also its process group id).
    pub(crate) fn spawn(
        &self,
        request: &SpawnRequest,
        scope: &TaskScope,
        policy: &UserPolicy,
    ) -> Result<u32, String> {
        let cwd = open_beneath(&scope.task_dir, &request.cwd, true)
            .map_err(|err| format!("cwd: {err}"))?;
        let user = policy.resolve(scope.user.as_deref())?;
        let stdout = open_task_log(scope, &scope.stdout_path)?;
        let stderr = open_task_log(scope, &scope.stderr_path)?;
        let mut command = tokio::process::Command::new(&request.command);
        command
            .args(&request.args)
            .env_clear()
            .envs(request.env.iter().map(|(key, value)| (key, value)))
            // The child enters the directory this process opened and checked: a symlink planted
            // after the check cannot redirect it.
            .current_dir(fd_path(&cwd))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        default_signals(command.as_std_mut());
        if let Some((uid, gid)) = user {
            command.as_std_mut().uid(uid).gid(gid);
        }
        if !request.env.iter().any(|(key, _)| key == "PATH") {
            command.env("PATH", DEFAULT_PATH);
        }
        let mut child = command
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", request.command))?;
        drop(cwd);
        let pid = child
            .id()
            .ok_or_else(|| String::from("the process exited before its pid was read"))?;
        // The child is not reaped before its reaper below runs, so its stat is there.
        let started = start_time(pid).unwrap_or(0);
        let (sender, receiver) = watch::channel(None);
        self.insert(
            pid,
            Child {
                task_id: Arc::from(scope.task_id.as_str()),
                start_time: started,
                exit: receiver,
                cgroup: None,
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

    /// Waits for the task's process `pid` to exit; `Ok(None)` when `timeout` passed first.
    pub(crate) async fn wait(
        &self,
        pid: u32,
        task_id: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<ProcessExit>, String> {
        let mut exit = self.authorize(pid, task_id)?.exit;
        let waiting = async {
            exit.wait_for(Option::is_some)
                .await
                .map(|exit| exit.clone())
                .map_err(|_| format!("the reaper of pid {pid} is gone"))
        };
        match timeout {
            None => waiting.await,
            Some(timeout) => tokio::time::timeout(timeout, waiting)
                .await
                .unwrap_or(Ok(None)),
        }
    }

    /// The host's own wait for a task whose life is process `pid`.
    pub(crate) async fn wait_task(&self, pid: u32, task_id: &str) -> Result<RawExit, String> {
        let cgroup = self.authorize(pid, task_id)?.cgroup;
        let exit = self
            .wait(pid, task_id, None)
            .await?
            .ok_or_else(|| format!("wait for pid {pid} ended without an exit"))?;
        Ok(RawExit {
            exit_code: exit.exit_code,
            signal: exit.signal,
            oom_killed: cgroup.is_some_and(|cgroup| cgroup.oom_killed()),
            detail: exit.detail,
        })
    }
}

pub(crate) fn exit_of(status: std::process::ExitStatus) -> ProcessExit {
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
pub(crate) fn target_pid(pid: u32) -> Result<Pid, String> {
    let raw = i32::try_from(pid).map_err(|_| format!("pid {pid} out of range"))?;
    if raw <= 1 || pid == std::process::id() {
        return Err(format!("pid {pid} is not a task's process"));
    }
    Ok(Pid::from_raw(raw))
}

/// When `pid` started (/proc/PID/stat field 22, clock ticks after boot); `None` when gone.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat).map(|fields| fields.start_time)
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
    pub start_time: u64,
}

/// Parses /proc/PID/stat; the command name may contain spaces and parentheses, so fields are
/// counted after the last `)`.
pub(crate) fn parse_stat(stat: &str) -> Option<StatFields> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) pgrp(5) ... utime(14) stime(15) ... starttime(22),
    // numbered as in proc(5).
    Some(StatFields {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        utime_ticks: fields.get(11)?.parse().ok()?,
        stime_ticks: fields.get(12)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
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

/// Runs a command of the task to completion (beneath its directory, as its user), killing it
/// after `timeout_ms`.
async fn exec(
    request: ExecRequest,
    scope: &TaskScope,
    policy: &UserPolicy,
) -> Result<ExecOutput, String> {
    let cwd =
        open_beneath(&scope.task_dir, &request.cwd, true).map_err(|err| format!("cwd: {err}"))?;
    let user = policy.resolve(scope.user.as_deref())?;
    let mut command = tokio::process::Command::new(&request.command);
    command
        .args(&request.args)
        .env_clear()
        .envs(request.env.iter().map(|(key, value)| (key, value)))
        .current_dir(fd_path(&cwd))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    default_signals(command.as_std_mut());
    if let Some((uid, gid)) = user {
        command.as_std_mut().uid(uid).gid(gid);
    }
    if !request.env.iter().any(|(key, _)| key == "PATH") {
        command.env("PATH", DEFAULT_PATH);
    }
    let mut child = command
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", request.command))?;
    drop(cwd);
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

/// The agent's PATH directories.
pub(crate) fn agent_path() -> Vec<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    std::env::split_paths(&path).collect()
}

fn is_executable_file(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// The executables named `prefix*` in the first directory of `dirs` that has any, sorted.
pub(crate) fn find_programs(dirs: &[std::path::PathBuf], prefix: &str) -> Vec<String> {
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name.starts_with(prefix) && is_executable_file(&dir.join(name)))
            .collect();
        if !names.is_empty() {
            names.sort();
            return names;
        }
    }
    Vec::new()
}

/// Runs `command` (a bare name from the agent's PATH) as `probe` says.
pub(crate) async fn probe(
    command: &str,
    args: &[String],
    timeout: Duration,
    policy: &UserPolicy,
    dirs: &[std::path::PathBuf],
) -> Result<ExecOutput, String> {
    if command.is_empty() || command.contains('/') {
        return Err(format!(
            "probe {command:?}: name a program in the agent's PATH (no `/`)"
        ));
    }
    let program = dirs
        .iter()
        .map(|dir| dir.join(command))
        .find(|candidate| is_executable_file(candidate))
        .ok_or_else(|| format!("probe: {command} is not in the agent's PATH"))?;
    let user = policy.resolve(None)?;
    let path_env = std::env::join_paths(dirs).map_err(|err| format!("PATH: {err}"))?;
    let mut child = tokio::process::Command::new(&program);
    child
        .args(args)
        .env_clear()
        .env("PATH", path_env)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some((uid, gid)) = user {
        child.as_std_mut().uid(uid).gid(gid);
    }
    let mut child = child
        .spawn()
        .map_err(|err| format!("cannot start {command}: {err}"))?;
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
    tokio::time::timeout(timeout, run)
        .await
        .unwrap_or_else(|_| Err(format!("{command} timed out after {timeout:?}")))
}

impl CallState {
    /// The task of this call: process calls need one.
    fn process_scope(&self) -> Result<Arc<TaskScope>, String> {
        self.scope
            .clone()
            .ok_or_else(|| String::from("process calls need a task: this call concerns none"))
    }

    fn user_policy(&self) -> Result<UserPolicy, String> {
        UserPolicy::from_plugin_config(self.runtime.plugins.get(&*self.driver))
    }
}

impl Host for CallState {
    async fn spawn(&mut self, request: SpawnRequest) -> Result<u32, String> {
        let _timer = self.host_timer();
        let scope = self.process_scope()?;
        if !scope.volumes.is_empty() {
            // A plain process sees the node's filesystem: it cannot be given a volume where the
            // task asked, and must not run as if it had been.
            return Err(String::from(
                "the task mounts host volumes, which a host-process process cannot be given",
            ));
        }
        let policy = self.user_policy()?;
        self.runtime.processes.spawn(&request, &scope, &policy)
    }

    async fn wait(&mut self, pid: u32, timeout_ms: u64) -> Result<Option<ProcessExit>, String> {
        let _timer = self.host_timer();
        let scope = self.process_scope()?;
        self.runtime
            .processes
            .wait(pid, &scope.task_id, Some(Duration::from_millis(timeout_ms)))
            .await
    }

    async fn signal(&mut self, pid: u32, signal: String) -> Result<(), String> {
        let _timer = self.host_timer();
        let signal = parse_signal(&signal)?;
        let scope = self.process_scope()?;
        if self
            .runtime
            .processes
            .authorize_live(pid, &scope.task_id)?
            .is_none()
        {
            return Err(format!("pid {pid} has exited"));
        }
        kill(target_pid(pid)?, signal).map_err(|err| format!("kill {pid} {signal}: {err}"))
    }

    async fn signal_group(&mut self, pid: u32, signal: String) -> Result<(), String> {
        let _timer = self.host_timer();
        let signal = parse_signal(&signal)?;
        let scope = self.process_scope()?;
        // Also after the leader exited: its group id cannot be reused while members remain.
        self.runtime.processes.authorize(pid, &scope.task_id)?;
        killpg(target_pid(pid)?, signal).map_err(|err| format!("killpg {pid} {signal}: {err}"))
    }

    async fn is_alive(&mut self, pid: u32) -> bool {
        let _timer = self.host_timer();
        self.process_scope().is_ok_and(|scope| {
            matches!(
                self.runtime.processes.authorize_live(pid, &scope.task_id),
                Ok(Some(_))
            )
        })
    }

    async fn stats(&mut self, pid: u32) -> Result<ProcessStats, String> {
        let scope = self.process_scope()?;
        self.runtime.processes.authorize(pid, &scope.task_id)?;
        bounded(self, "stats", async { group_stats(pid) }).await
    }

    async fn exec(&mut self, request: ExecRequest) -> Result<ExecOutput, String> {
        let _timer = self.host_timer();
        let scope = self.process_scope()?;
        let policy = self.user_policy()?;
        exec(request, &scope, &policy).await
    }

    async fn find_programs(&mut self, prefix: String) -> Vec<String> {
        let _timer = self.host_timer();
        if prefix.is_empty() || prefix.contains('/') {
            return Vec::new();
        }
        let dirs = agent_path();
        tokio::task::spawn_blocking(move || find_programs(&dirs, &prefix))
            .await
            .unwrap_or_default()
    }

    async fn probe(
        &mut self,
        command: String,
        args: Vec<String>,
        timeout_ms: u64,
    ) -> Result<ExecOutput, String> {
        let _timer = self.host_timer();
        let policy = self.user_policy()?;
        let timeout = Duration::from_millis(timeout_ms).min(self.host_call_timeout);
        probe(&command, &args, timeout, &policy, &agent_path()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_in_the_first_path_directory_that_has_any() -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        let (empty, first, second) = (
            dir.path().join("empty"),
            dir.path().join("first"),
            dir.path().join("second"),
        );
        for (path, names) in [
            (&empty, &["other"][..]),
            (
                &first,
                &[
                    "qemu-system-x86_64",
                    "qemu-system-i386",
                    "qemu-system-notexec",
                ],
            ),
            (&second, &["qemu-system-aarch64"]),
        ] {
            std::fs::create_dir(path).map_err(|err| err.to_string())?;
            for name in names {
                let file = path.join(name);
                std::fs::write(&file, b"#!/bin/sh\n").map_err(|err| err.to_string())?;
                let mode = if name.ends_with("notexec") {
                    0o644
                } else {
                    0o755
                };
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))
                    .map_err(|err| err.to_string())?;
            }
        }
        let dirs = [dir.path().join("missing"), empty, first, second];
        assert_eq!(
            find_programs(&dirs, "qemu-system-"),
            ["qemu-system-i386", "qemu-system-x86_64"]
        );
        assert!(find_programs(&dirs, "nothing-").is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn probe_runs_a_program_from_path_and_refuses_paths() -> Result<(), String> {
        let policy = UserPolicy {
            denylist: Vec::new(),
            default_user: None,
        };
        let output = probe(
            "sh",
            &[String::from("-c"), String::from("echo $PWD; echo err >&2")],
            Duration::from_secs(10),
            &policy,
            &agent_path(),
        )
        .await?;
        assert_eq!(output.exit_code, 0);
        assert_eq!(output.stdout, b"/\n");
        assert_eq!(output.stderr, b"err\n");
        for command in ["/bin/sh", "./sh", ""] {
            let err = probe(command, &[], Duration::from_secs(1), &policy, &agent_path())
                .await
                .expect_err(command);
            assert!(err.contains("no `/`"), "{command}: {err}");
        }
        let err = probe(
            "sh",
            &[String::from("-c"), String::from("sleep 5")],
            Duration::from_millis(100),
            &policy,
            &agent_path(),
        )
        .await
        .expect_err("timeout");
        assert!(err.contains("timed out"), "{err}");
        Ok(())
    }

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
                stime_ticks: 3,
                start_time: 100
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
    fn user_policies_default_to_the_agent_user_and_deny_root() {
        let policy = UserPolicy::from_plugin_config(None).expect("default");
        assert_eq!(policy.resolve(None), Ok(None));
        let err = policy.resolve(Some("root")).expect_err("root is denied");
        assert!(err.contains("user_denylist"), "{err}");
        let err = policy
            .resolve(Some("no-such-user-caravan"))
            .expect_err("unknown user");
        assert!(err.contains("does not exist"), "{err}");
        let policy = UserPolicy::from_plugin_config(Some(&serde_json::json!({
            "user_denylist": [],
            "default_user": "root",
        })))
        .expect("configured");
        assert_eq!(policy.default_user.as_deref(), Some("root"));
        // root as the default user: only an agent running as root may switch to it.
        if nix::unistd::geteuid().is_root() {
            assert_eq!(policy.resolve(None), Ok(None));
        } else {
            assert!(policy.resolve(None).is_err());
        }
        assert!(
            UserPolicy::from_plugin_config(Some(&serde_json::json!({"user_denylist": "root"})))
                .is_err()
        );
    }

    #[tokio::test]
    async fn pids_belong_to_the_task_that_spawned_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let alloc = dir.path();
        std::fs::create_dir_all(alloc.join("web/local")).expect("task dir");
        std::fs::create_dir_all(alloc.join("alloc/logs")).expect("logs");
        let scope = TaskScope::new(
            "a1",
            "web",
            alloc,
            alloc.join("alloc/logs/web.stdout.0"),
            alloc.join("alloc/logs/web.stderr.0"),
        );
        let table = ProcessTable::default();
        let policy = UserPolicy::from_plugin_config(None).expect("policy");
        let request = |cwd: &str| SpawnRequest {
            command: String::from("/bin/sh"),
            args: vec![String::from("-c"), String::from("pwd; sleep 30")],
            env: Vec::new(),
            cwd: cwd.to_owned(),
        };
        for bad in ["/", "..", "local/../.."] {
            assert!(
                table.spawn(&request(bad), &scope, &policy).is_err(),
                "{bad}"
            );
        }
        std::os::unix::fs::symlink("/", alloc.join("web/escape")).expect("symlink");
        let err = table
            .spawn(&request("escape"), &scope, &policy)
            .expect_err("symlink cwd");
        assert!(err.contains("symbolic link"), "{err}");
        let pid = table
            .spawn(&request("local"), &scope, &policy)
            .expect("spawn");
        // Its output lands in the task's log, from its working directory beneath the task dir.
        let log = alloc.join("alloc/logs/web.stdout.0");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&log).is_ok_and(|out| out.trim_end().ends_with("web/local"))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                std::fs::read_to_string(&log)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(table.authorize(pid, "a1/web").is_ok());
        assert!(table.authorize(pid, "a1/other").is_err());
        assert!(table.authorize(std::process::id(), "a1/web").is_err());
        let records = table.records("a1/web");
        assert_eq!(records.len(), 1);
        assert_eq!(Some(records[0].start_time), start_time(pid));
        // A record whose start time does not match (a reused pid) is never adopted.
        let other = ProcessTable::default();
        let stale = ProcessRecord {
            pid,
            start_time: records[0].start_time + 1,
        };
        assert_eq!(other.adopt("a1/web", &[stale]), 0);
        assert_eq!(other.adopt("a1/web", &records), 1);
        assert!(other.authorize(pid, "a1/web").is_ok());
        assert_eq!(table.reap("a1/other"), 0);
        assert_eq!(table.reap("a1/web"), 1);
        let exit = table
            .wait(pid, "a1/web", Some(Duration::from_secs(10)))
            .await
            .expect("wait")
            .expect("exited");
        assert_eq!(exit.signal, 9);
    }
}
