//! Capability `host-isolated`: Nomad's `exec` isolation on the host side (Nomad:
//! drivers/shared/executor/executor_linux.go): new mount, PID and IPC namespaces, the task
//! directory as a chroot populated by read-only bind mounts of the plugin config's `chroot_env`,
//! the task's user, a capability bounding set within `allow_caps`, and a cgroup holding the
//! task's memory and CPU limits. The task's host volumes are bound in the chroot at their
//! destinations (read-only where recorded so), after `chroot_env` and `alloc`.
//!
//! Invariant: every limit and path comes from the host's record of the task (the call's
//! [`TaskScope`]) and the operator's plugin config, never from the driver: the driver chooses the
//! command, its arguments and environment, and asks for modes and capabilities the host checks.
//! The process enters the same [`ProcessTable`](super::process::ProcessTable) as `host-process`
//! spawns (keyed by task, checked by start time), with its [`Cgroup`] attached: the host's wait
//! reports an OOM kill from the cgroup's own counter, and reaping a task kills its whole cgroup.
//!
//! The mount points are prepared beneath the task directory without following a symlink (a
//! previous run of the task could have planted one); the mounts themselves happen inside the
//! child's new mount namespace, made private first, so nothing reaches the node's mount table.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::driver_host::bindings::caravan::driver::host_isolated::{
    Host, IsolatedExit, IsolatedRequest, IsolatedStats, IsolationSupport,
};
use crate::driver_host::bindings::caravan::driver::host_process::ProcessExit;
use crate::driver_host::host::isolated_child::{self, Plan};
use crate::driver_host::host::open_task_log;
use crate::driver_host::host::process::{
    self, Child, DEFAULT_PATH, UserPolicy, exit_of, parse_signal, target_pid,
};
use crate::driver_host::instance::CallState;
use crate::driver_host::types::TaskScope;

/// Nomad's `DefaultChrootEnv` (client/config/config.go): host path to path in the chroot.
pub(crate) const DEFAULT_CHROOT_ENV: [(&str, &str); 8] = [
    ("/bin", "/bin"),
    ("/etc", "/etc"),
    ("/lib", "/lib"),
    ("/lib32", "/lib32"),
    ("/lib64", "/lib64"),
    ("/run/resolvconf", "/run/resolvconf"),
    ("/sbin", "/sbin"),
    ("/usr", "/usr"),
];

/// Nomad's default `allow_caps` for exec (drivers/exec/driver.go, `capabilities.NomadDefaults`).
pub(crate) const DEFAULT_ALLOW_CAPS: [&str; 13] = [
    "audit_write",
    "chown",
    "dac_override",
    "fowner",
    "fsetid",
    "kill",
    "mknod",
    "net_bind_service",
    "setfcap",
    "setgid",
    "setpcap",
    "setuid",
    "sys_chroot",
];

/// Linux capability names by number (capability.h), without `CAP_`, lower case.
const CAP_NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// The device nodes a task's `/dev` holds.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// How long the host waits for a killed cgroup to empty before removing it.
const CGROUP_DRAIN: Duration = Duration::from_secs(10);

/// The operator's isolation settings: the plugin config of the calling driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IsolationConfig {
    /// Host path to path inside the chroot.
    pub chroot_env: BTreeMap<String, String>,
    pub allow_caps: Vec<String>,
    pub pid_host_allowed: bool,
    pub ipc_host_allowed: bool,
}

impl IsolationConfig {
    pub(crate) fn from_plugin_config(
        config: Option<&serde_json::Value>,
    ) -> Result<IsolationConfig, String> {
        let mut isolation = IsolationConfig {
            chroot_env: DEFAULT_CHROOT_ENV
                .iter()
                .map(|(host, chroot)| ((*host).to_owned(), (*chroot).to_owned()))
                .collect(),
            allow_caps: DEFAULT_ALLOW_CAPS
                .iter()
                .map(|cap| (*cap).to_owned())
                .collect(),
            pid_host_allowed: false,
            ipc_host_allowed: false,
        };
        let Some(object) = config.and_then(serde_json::Value::as_object) else {
            return Ok(isolation);
        };
        if let Some(value) = object.get("chroot_env") {
            let map = value
                .as_object()
                .ok_or_else(|| format!("chroot_env: expected a map of paths, got {value}"))?;
            isolation.chroot_env = map
                .iter()
                .map(|(host, chroot)| {
                    chroot
                        .as_str()
                        .map(|chroot| (host.clone(), chroot.to_owned()))
                        .ok_or_else(|| {
                            format!("chroot_env: {host:?}: expected a path, got {chroot}")
                        })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(value) = object.get("allow_caps") {
            isolation.allow_caps = value
                .as_array()
                .and_then(|caps| {
                    caps.iter()
                        .map(|cap| cap.as_str().map(normalize_cap))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| {
                    format!("allow_caps: expected a list of capabilities, got {value}")
                })?;
        }
        for (key, allowed) in [
            ("default_pid_mode", &mut isolation.pid_host_allowed),
            ("default_ipc_mode", &mut isolation.ipc_host_allowed),
        ] {
            match object.get(key).map(|value| value.as_str()) {
                None | Some(Some("private")) => {}
                Some(Some("host")) => *allowed = true,
                Some(other) => {
                    return Err(format!(
                        "{key}: expected \"private\" or \"host\", got {other:?}"
                    ));
                }
            }
        }
        Ok(isolation)
    }
}

/// `CAP_NET_RAW`, `cap_net_raw` and `net_raw` all name `net_raw`.
pub(crate) fn normalize_cap(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    lower.strip_prefix("cap_").unwrap_or(&lower).to_owned()
}

/// The cap numbers to drop so that only `keep` remain in the bounding set; refuses a name that
/// is unknown or not in `allowed` ("all" in `allowed` allows every capability).
pub(crate) fn caps_to_drop(
    keep: &[String],
    allowed: &[String],
    last_cap: usize,
) -> Result<Vec<libc::c_ulong>, String> {
    let all_allowed = allowed.iter().any(|cap| cap == "all");
    let mut kept = Vec::new();
    for name in keep {
        let name = normalize_cap(name);
        let number = CAP_NAMES
            .iter()
            .position(|known| *known == name)
            .ok_or_else(|| format!("unknown capability {name:?}"))?;
        if !all_allowed && !allowed.contains(&name) {
            return Err(format!(
                "capability {name:?} is not in the plugin's allow_caps: refused"
            ));
        }
        kept.push(number);
    }
    Ok((0..=last_cap)
        .filter(|cap| !kept.contains(cap))
        .filter_map(|cap| libc::c_ulong::try_from(cap).ok())
        .collect())
}

/// Which cgroup hierarchy holds the memory controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CgroupMode {
    /// Unified hierarchy at this mount point.
    V2(PathBuf),
    /// Legacy hierarchies: the memory and cpu mount points.
    V1 {
        memory: PathBuf,
        cpu: Option<PathBuf>,
    },
    None,
}

impl CgroupMode {
    /// Detects as Nomad does: a unified hierarchy with the memory controller, else v1's memory.
    pub(crate) fn detect() -> CgroupMode {
        let root = Path::new("/sys/fs/cgroup");
        for candidate in [root.to_path_buf(), root.join("unified")] {
            let controllers =
                std::fs::read_to_string(candidate.join("cgroup.controllers")).unwrap_or_default();
            if controllers.split_whitespace().any(|name| name == "memory") {
                return CgroupMode::V2(candidate);
            }
        }
        let memory = root.join("memory");
        if memory.join("memory.limit_in_bytes").exists() {
            let cpu = root.join("cpu");
            return CgroupMode::V1 {
                memory,
                cpu: cpu.join("cpu.shares").exists().then_some(cpu),
            };
        }
        CgroupMode::None
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            CgroupMode::V2(_) => "v2",
            CgroupMode::V1 { .. } => "v1",
            CgroupMode::None => "none",
        }
    }
}

/// The agent's own cgroup in the v1 hierarchy of `controller` (from /proc/self/cgroup).
fn own_v1_path(controller: &str) -> PathBuf {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    cgroups
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            controllers
                .split(',')
                .any(|name| name == controller)
                .then(|| PathBuf::from(path.trim_start_matches('/')))
        })
        .next()
        .unwrap_or_default()
}

/// Removes the empty cgroups a previous agent process left in `parent` (those of tasks it
/// re-adopted after a restart, which ended without a reaper of this process): names carry the
/// agent's pid, so only cgroups of agent processes that are gone are touched, and a cgroup with
/// processes cannot be removed.
fn sweep_stale(parent: &Path) {
    let this = std::process::id().to_string();
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let mut fields = name.rsplit('.');
        let (Some(_seq), Some(agent)) = (fields.next(), fields.next()) else {
            continue;
        };
        // Another agent still running (tests run several on one node) keeps its cgroups.
        let gone = agent
            .parse::<u32>()
            .is_ok_and(|pid| !Path::new("/proc").join(pid.to_string()).exists());
        if agent != this && gone && entry.path().is_dir() {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

/// A task's cgroup (one directory per hierarchy).
#[derive(Debug)]
pub(crate) struct Cgroup {
    v2: bool,
    /// The directories, the memory one first.
    dirs: Vec<PathBuf>,
    oom: AtomicBool,
}

static CGROUP_SEQ: AtomicU64 = AtomicU64::new(0);

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|err| format!("write {value} to {}: {err}", path.display()))
}

impl Cgroup {
    /// Creates the task's cgroup with its memory limits (bytes; soft 0 for none) and CPU shares.
    pub(crate) fn create(
        mode: &CgroupMode,
        task_id: &str,
        hard: Option<u64>,
        soft: Option<u64>,
        cpu_shares: u32,
    ) -> Result<Cgroup, String> {
        let name: String = task_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '.'
                }
            })
            .collect();
        let name = format!(
            "{name}.{}.{}",
            std::process::id(),
            CGROUP_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let made = |dir: &Path| -> Result<(), String> {
            if let Some(parent) = dir.parent() {
                sweep_stale(parent);
            }
            std::fs::create_dir_all(dir)
                .map_err(|err| format!("create cgroup {}: {err}", dir.display()))
        };
        let shares = cpu_shares.max(2);
        match mode {
            CgroupMode::None => Err(String::from(
                "no cgroup hierarchy with the memory controller on this node",
            )),
            CgroupMode::V2(root) => {
                let parent = root.join("caravan.slice");
                made(&parent)?;
                // Controllers for the children of the root and of caravan.slice; already
                // enabled ones are no error.
                let _ = write(&root.join("cgroup.subtree_control"), "+memory +cpu");
                let _ = write(&parent.join("cgroup.subtree_control"), "+memory +cpu");
                let dir = parent.join(&name);
                made(&dir)?;
                let cgroup = Cgroup {
                    v2: true,
                    dirs: vec![dir.clone()],
                    oom: AtomicBool::new(false),
                };
                if let Some(hard) = hard {
                    write(&dir.join("memory.max"), &hard.to_string())?;
                    let _ = write(&dir.join("memory.swap.max"), "0");
                }
                if let Some(soft) = soft {
                    write(&dir.join("memory.low"), &soft.to_string())?;
                }
                // Nomad's conversion of shares (2..262144) to a weight (1..10000).
                let weight = 1 + (u64::from(shares) - 2) * 9999 / 262_142;
                let _ = write(&dir.join("cpu.weight"), &weight.min(10_000).to_string());
                Ok(cgroup)
            }
            CgroupMode::V1 { memory, cpu } => {
                let memory_dir = memory
                    .join(own_v1_path("memory"))
                    .join("caravan")
                    .join(&name);
                made(&memory_dir)?;
                let mut cgroup = Cgroup {
                    v2: false,
                    dirs: vec![memory_dir.clone()],
                    oom: AtomicBool::new(false),
                };
                if let Some(hard) = hard {
                    write(&memory_dir.join("memory.limit_in_bytes"), &hard.to_string())?;
                    // With swap accounting, swap counts against the same limit.
                    let memsw = memory_dir.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        let _ = write(&memsw, &hard.to_string());
                    }
                }
                if let Some(soft) = soft {
                    write(
                        &memory_dir.join("memory.soft_limit_in_bytes"),
                        &soft.to_string(),
                    )?;
                }
                if let Some(cpu) = cpu {
                    let cpu_dir = cpu.join(own_v1_path("cpu")).join("caravan").join(&name);
                    made(&cpu_dir)?;
                    cgroup.dirs.push(cpu_dir.clone());
                    write(&cpu_dir.join("cpu.shares"), &shares.to_string())?;
                }
                Ok(cgroup)
            }
        }
    }

    /// `cgroup.procs` of each directory, opened for the child to join.
    fn procs_files(&self) -> Result<Vec<OwnedFd>, String> {
        self.dirs
            .iter()
            .map(|dir| {
                let path = dir.join("cgroup.procs");
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map(OwnedFd::from)
                    .map_err(|err| format!("open {}: {err}", path.display()))
            })
            .collect()
    }

    /// How many processes the kernel's OOM killer killed in the cgroup.
    fn oom_kills(&self) -> u64 {
        let Some(dir) = self.dirs.first() else {
            return 0;
        };
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        std::fs::read_to_string(dir.join(file))
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix("oom_kill "))
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Whether a process of the cgroup was OOM-killed (recorded when the task ended).
    pub(crate) fn oom_killed(&self) -> bool {
        self.oom.load(Ordering::Acquire) || self.oom_kills() > 0
    }

    fn pids(&self) -> Vec<i32> {
        self.dirs
            .iter()
            .flat_map(|dir| {
                std::fs::read_to_string(dir.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|line| line.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect()
    }

    /// SIGKILLs every process of the cgroup.
    pub(crate) fn kill_all(&self) {
        if self.v2
            && let Some(dir) = self.dirs.first()
            && write(&dir.join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        for pid in self.pids() {
            if pid > 1 && pid != i32::try_from(std::process::id()).unwrap_or(0) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }

    /// After the task's process ended: records OOM kills, kills what is left, removes the cgroup.
    fn finish(&self) {
        self.oom.store(self.oom_kills() > 0, Ordering::Release);
        let deadline = Instant::now() + CGROUP_DRAIN;
        loop {
            self.kill_all();
            if self.pids().is_empty() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for dir in &self.dirs {
            if let Err(err) = std::fs::remove_dir(dir) {
                tracing::warn!(cgroup = %dir.display(), error = %err, "cannot remove a task's cgroup");
            }
        }
    }
}

/// What this node supports.
pub(crate) fn support() -> IsolationSupport {
    let namespaces = ["pid", "mnt", "ipc"]
        .iter()
        .all(|ns| Path::new("/proc/self/ns").join(ns).exists());
    IsolationSupport {
        root: nix::unistd::geteuid().is_root(),
        namespaces,
        cgroups: CgroupMode::detect().name().to_owned(),
    }
}

fn cstring(bytes: &[u8]) -> Result<CString, String> {
    CString::new(bytes)
        .map_err(|_| format!("{:?} contains a NUL byte", String::from_utf8_lossy(bytes)))
}

/// Creates `relative` beneath `root` as a directory (or an empty file), refusing a symlink on
/// the way or at the end; returns the absolute path.
fn mount_point(root: &Path, relative: &str, directory: bool) -> Result<PathBuf, String> {
    let mut path = root.to_path_buf();
    let components: Vec<&str> = relative
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    if components.is_empty() || components.contains(&"..") {
        return Err(format!(
            "chroot path {relative:?}: name a path beneath the chroot's root"
        ));
    }
    for (index, part) in components.iter().enumerate() {
        path.push(part);
        let last = index + 1 == components.len();
        match std::fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                return Err(format!(
                    "{} is a symlink: refused as a mount point",
                    path.display()
                ));
            }
            Ok(_) => {}
            Err(_) if last && !directory => {
                std::fs::File::create(&path)
                    .map_err(|err| format!("create {}: {err}", path.display()))?;
            }
            Err(_) => std::fs::create_dir(&path)
                .map_err(|err| format!("create {}: {err}", path.display()))?,
        }
    }
    Ok(path)
}

/// Gives the task's user its `local` and `tmp` directories (as Nomad gives exec tasks theirs),
/// never through a symlink a previous run could have left in their place.
fn give_task_dirs(root: &Path, uid: u32, gid: u32) -> Result<(), String> {
    for name in ["local", "tmp"] {
        let dir = root.join(name);
        match std::fs::symlink_metadata(&dir) {
            Ok(metadata) if metadata.is_dir() => {
                std::os::unix::fs::lchown(&dir, Some(uid), Some(gid))
                    .map_err(|err| format!("chown {}: {err}", dir.display()))?;
            }
            Ok(_) => return Err(format!("{} is not a directory: refused", dir.display())),
            Err(_) => {}
        }
    }
    Ok(())
}

/// Prepares the child's [`Plan`] (mount points, descriptors, strings).
fn plan(
    request: &IsolatedRequest,
    scope: &TaskScope,
    config: &IsolationConfig,
    ids: Option<(u32, u32)>,
    cgroup: &Cgroup,
) -> Result<Plan, String> {
    let root = &scope.task_dir;
    let mut binds = Vec::new();
    for (host, chroot) in &config.chroot_env {
        let Ok(metadata) = std::fs::metadata(host) else {
            continue;
        };
        let target = mount_point(root, chroot, metadata.is_dir())?;
        binds.push((
            cstring(host.as_bytes())?,
            cstring(target.as_os_str().as_bytes())?,
            true,
        ));
    }
    if let Some((uid, gid)) = ids {
        give_task_dirs(root, uid, gid)?;
    }
    let shared = scope.alloc_dir.join("alloc");
    if shared.is_dir() {
        let target = mount_point(root, "alloc", true)?;
        binds.push((
            cstring(shared.as_os_str().as_bytes())?,
            cstring(target.as_os_str().as_bytes())?,
            false,
        ));
    }
    for volume in &scope.volumes {
        let metadata = std::fs::metadata(&volume.host_path)
            .map_err(|err| format!("host volume {}: {err}", volume.host_path.display()))?;
        let target = mount_point(root, &volume.task_path, metadata.is_dir())?;
        binds.push((
            cstring(volume.host_path.as_os_str().as_bytes())?,
            cstring(target.as_os_str().as_bytes())?,
            volume.read_only,
        ));
    }
    let proc_dir = mount_point(root, "proc", true)?;
    let dev_dir = mount_point(root, "dev", true)?;
    let devices = DEVICES
        .iter()
        .filter(|name| Path::new("/dev").join(name).exists())
        .map(|name| {
            Ok((
                cstring(format!("/dev/{name}").as_bytes())?,
                cstring(dev_dir.join(name).as_os_str().as_bytes())?,
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let dev_links = [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ]
    .iter()
    .map(|(target, link)| {
        Ok((
            cstring(target.as_bytes())?,
            cstring(dev_dir.join(link).as_os_str().as_bytes())?,
        ))
    })
    .collect::<Result<Vec<_>, String>>()?;
    let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or(CAP_NAMES.len() - 1)
        .min(CAP_NAMES.len() - 1);
    let drop_caps = caps_to_drop(&request.caps, &config.allow_caps, last_cap)?;
    let path_env = request
        .env
        .iter()
        .find(|(key, _)| key == "PATH")
        .map_or(DEFAULT_PATH, |(_, value)| value.as_str());
    let candidates = if request.command.contains('/') {
        vec![cstring(
            format!("/{}", request.command.trim_start_matches('/')).as_bytes(),
        )?]
    } else {
        path_env
            .split(':')
            .filter(|dir| dir.starts_with('/'))
            .map(|dir| {
                cstring(format!("{}/{}", dir.trim_end_matches('/'), request.command).as_bytes())
            })
            .collect::<Result<_, _>>()?
    };
    let mut envp: Vec<CString> = request
        .env
        .iter()
        .map(|(key, value)| cstring(format!("{key}={value}").as_bytes()))
        .collect::<Result<_, _>>()?;
    if !request.env.iter().any(|(key, _)| key == "PATH") {
        envp.push(cstring(format!("PATH={DEFAULT_PATH}").as_bytes())?);
    }
    let argv = std::iter::once(&request.command)
        .chain(&request.args)
        .map(|arg| cstring(arg.as_bytes()))
        .collect::<Result<_, _>>()?;
    let stdin = std::fs::File::open("/dev/null").map_err(|err| format!("/dev/null: {err}"))?;
    Ok(Plan {
        new_pid: mode(&request.pid_mode, "pid_mode", config.pid_host_allowed)?,
        new_ipc: mode(&request.ipc_mode, "ipc_mode", config.ipc_host_allowed)?,
        cgroup_procs: cgroup.procs_files()?,
        binds,
        proc_dir: cstring(proc_dir.as_os_str().as_bytes())?,
        dev_dir: cstring(dev_dir.as_os_str().as_bytes())?,
        devices,
        dev_links,
        root: cstring(root.as_os_str().as_bytes())?,
        drop_caps,
        ids,
        stdin: OwnedFd::from(stdin),
        stdout: OwnedFd::from(open_task_log(scope, &scope.stdout_path)?),
        stderr: OwnedFd::from(open_task_log(scope, &scope.stderr_path)?),
        candidates,
        argv,
        envp,
    })
}

/// Whether a namespace is private (`true`) for the requested mode.
fn mode(requested: &str, key: &str, host_allowed: bool) -> Result<bool, String> {
    match requested {
        "" | "private" => Ok(true),
        "host" if host_allowed => Ok(false),
        "host" => Err(format!(
            "{key} \"host\" is not allowed by the plugin config (default_{key} = \"host\" allows it)"
        )),
        other => Err(format!(
            "{key}: expected \"private\" or \"host\", got {other:?}"
        )),
    }
}

/// Starts an isolated process for the task of `scope`; returns its pid.
pub(crate) fn spawn(
    table: &process::ProcessTable,
    request: &IsolatedRequest,
    scope: &TaskScope,
    config: &IsolationConfig,
    policy: &UserPolicy,
) -> Result<u32, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err(String::from(
            "isolated processes need an agent running as root",
        ));
    }
    let ids = policy.resolve(scope.user.as_deref())?;
    let hard = scope.memory_limit_bytes();
    let soft = (scope.resources.memory_max_mb > 0 && scope.resources.memory_mb > 0)
        .then(|| u64::from(scope.resources.memory_mb) << 20);
    let cgroup = Arc::new(Cgroup::create(
        &CgroupMode::detect(),
        &scope.task_id,
        hard,
        soft,
        scope.resources.cpu_mhz,
    )?);
    let started =
        plan(request, scope, config, ids, &cgroup).and_then(|plan| isolated_child::start(&plan));
    let pid = match started {
        Ok(pid) => pid,
        Err(err) => {
            cgroup.finish();
            return Err(err);
        }
    };
    let start_time = process::start_time(pid).unwrap_or(0);
    let (sender, receiver) = watch::channel(None);
    table.insert(
        pid,
        Child {
            task_id: Arc::from(scope.task_id.as_str()),
            start_time,
            exit: receiver,
            cgroup: Some(Arc::clone(&cgroup)),
        },
    );
    // A plain thread: a blocking wait must not hold the runtime's shutdown.
    let reaper = std::thread::Builder::new()
        .name(format!("isolated-{pid}"))
        .spawn(move || {
            let raw = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
            let exit = loop {
                match nix::sys::wait::waitpid(raw, None) {
                    Ok(status) => break status_exit(status),
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(err) => {
                        break ProcessExit {
                            exit_code: -1,
                            signal: 0,
                            detail: Some(format!("wait failed: {err}")),
                        };
                    }
                }
            };
            cgroup.finish();
            tracing::debug!(
                pid,
                exit_code = exit.exit_code,
                signal = exit.signal,
                "isolated process exited"
            );
            let _ = sender.send(Some(exit));
        });
    if let Err(err) = reaper {
        return Err(format!("cannot start the reaper of pid {pid}: {err}"));
    }
    Ok(pid)
}

fn status_exit(status: nix::sys::wait::WaitStatus) -> ProcessExit {
    use std::os::unix::process::ExitStatusExt;
    match status {
        nix::sys::wait::WaitStatus::Exited(_, code) => {
            exit_of(std::process::ExitStatus::from_raw(code << 8))
        }
        nix::sys::wait::WaitStatus::Signaled(_, signal, _) => ProcessExit {
            exit_code: -1,
            signal: signal as i32,
            detail: None,
        },
        other => ProcessExit {
            exit_code: -1,
            signal: 0,
            detail: Some(format!("unexpected wait status {other:?}")),
        },
    }
}

impl CallState {
    fn isolated_scope(&self) -> Result<Arc<TaskScope>, String> {
        self.scope
            .clone()
            .ok_or_else(|| String::from("isolated calls need a task: this call concerns none"))
    }
}

impl Host for CallState {
    async fn isolated_support(&mut self) -> IsolationSupport {
        let _timer = self.host_timer();
        support()
    }

    async fn spawn_isolated(&mut self, request: IsolatedRequest) -> Result<u32, String> {
        let _timer = self.host_timer();
        let scope = self.isolated_scope()?;
        let plugin = self.runtime.plugins.get(&*self.driver);
        let config = IsolationConfig::from_plugin_config(plugin)?;
        let mut policy = UserPolicy::from_plugin_config(plugin)?;
        if policy.default_user.is_none() {
            policy.default_user = Some(String::from("nobody"));
        }
        let runtime = Arc::clone(&self.runtime);
        tokio::task::spawn_blocking(move || {
            spawn(&runtime.processes, &request, &scope, &config, &policy)
        })
        .await
        .map_err(|err| format!("isolated spawn failed: {err}"))?
    }

    async fn signal_isolated(&mut self, pid: u32, signal: String) -> Result<(), String> {
        let _timer = self.host_timer();
        let signal = parse_signal(&signal)?;
        let scope = self.isolated_scope()?;
        if self
            .runtime
            .processes
            .authorize_live(pid, &scope.task_id)?
            .is_none()
        {
            return Err(format!("pid {pid} has exited"));
        }
        nix::sys::signal::killpg(target_pid(pid)?, signal)
            .map_err(|err| format!("killpg {pid} {signal}: {err}"))
    }

    async fn kill_isolated(&mut self, pid: u32) -> Result<(), String> {
        let _timer = self.host_timer();
        let scope = self.isolated_scope()?;
        let child = self.runtime.processes.authorize(pid, &scope.task_id)?;
        match &child.cgroup {
            Some(cgroup) => cgroup.kill_all(),
            // Recovered after an agent restart: the session the host recorded.
            None if child.running() => {
                let _ =
                    nix::sys::signal::killpg(target_pid(pid)?, nix::sys::signal::Signal::SIGKILL);
            }
            None => {}
        }
        Ok(())
    }

    async fn wait_isolated(
        &mut self,
        pid: u32,
        timeout_ms: u64,
    ) -> Result<Option<IsolatedExit>, String> {
        let _timer = self.host_timer();
        let scope = self.isolated_scope()?;
        let cgroup = self
            .runtime
            .processes
            .authorize(pid, &scope.task_id)?
            .cgroup;
        let exit = self
            .runtime
            .processes
            .wait(pid, &scope.task_id, Some(Duration::from_millis(timeout_ms)))
            .await?;
        Ok(exit.map(|exit| IsolatedExit {
            exit_code: exit.exit_code,
            signal: exit.signal,
            oom_killed: cgroup.is_some_and(|cgroup| cgroup.oom_killed()),
            detail: exit.detail,
        }))
    }

    async fn is_alive_isolated(&mut self, pid: u32) -> bool {
        let _timer = self.host_timer();
        self.isolated_scope().is_ok_and(|scope| {
            matches!(
                self.runtime.processes.authorize_live(pid, &scope.task_id),
                Ok(Some(_))
            )
        })
    }

    async fn stats_isolated(&mut self, pid: u32) -> Result<IsolatedStats, String> {
        let _timer = self.host_timer();
        let scope = self.isolated_scope()?;
        self.runtime.processes.authorize(pid, &scope.task_id)?;
        let stats = tokio::task::spawn_blocking(move || process::group_stats(pid))
            .await
            .map_err(|err| format!("stats failed: {err}"))??;
        Ok(IsolatedStats {
            timestamp_ms: stats.timestamp_ms,
            cpu_user_ms: stats.cpu_user_ms,
            cpu_system_ms: stats.cpu_system_ms,
            memory_rss_bytes: stats.memory_rss_bytes,
            pids: stats.pids,
        })
    }
}

#[cfg(test)]
mod tests;
