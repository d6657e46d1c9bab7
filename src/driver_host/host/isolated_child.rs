//! The child side of `host-isolated`: `clone(2)` into new namespaces, then mounts, chroot,
//! capability bounding set, signals, user and `execve`, in that order. [`default_signals`] gives
//! `host-process`'s children the same signal reset.
//!
//! Invariant: everything the child uses is prepared by the parent in a [`Plan`] (C strings,
//! pointer arrays, open descriptors), because the child of a multi-threaded process may only make
//! async-signal-safe calls: it allocates nothing and calls only raw system calls through `libc`.
//! A step that fails writes `(step, index, errno)` to a close-on-exec pipe and exits 127; a
//! successful `execve` closes the pipe, so the parent reads either an error or end-of-file.
//!
//! The one module of the agent besides the precompiled-driver loader that allows `unsafe`: a
//! process cannot enter new PID namespaces and a chroot from safe Rust without a helper process
//! (`pre_exec` and `clone` are `unsafe` whatever wraps them). Each block says what it relies on.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// What the child does, prepared by the parent.
pub(crate) struct Plan {
    pub new_pid: bool,
    pub new_ipc: bool,
    /// `cgroup.procs` of each hierarchy, opened for writing: the child writes `0` (itself).
    pub cgroup_procs: Vec<OwnedFd>,
    /// Bind mounts: source, target (absolute, beneath the task directory), read-only.
    pub binds: Vec<(CString, CString, bool)>,
    /// Where `/proc` and `/dev` go, beneath the task directory.
    pub proc_dir: CString,
    pub dev_dir: CString,
    /// Device nodes bound into the fresh `/dev`: the node's, the file created for it.
    pub devices: Vec<(CString, CString)>,
    /// Symlinks created in `/dev`: target, link.
    pub dev_links: Vec<(CString, CString)>,
    pub root: CString,
    /// Capabilities dropped from the bounding set.
    pub drop_caps: Vec<libc::c_ulong>,
    /// uid and gid; `None` keeps the agent's.
    pub ids: Option<(u32, u32)>,
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// Paths tried in order with `execve` (PATH lookup inside the chroot).
    pub candidates: Vec<CString>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
}

/// The steps, for the parent's message (index into this table).
const STEPS: [&str; 14] = [
    "join the task's cgroup",
    "make the mount namespace private",
    "bind-mount",
    "remount read-only",
    "mount /proc",
    "mount /dev",
    "create a device node",
    "bind a device node",
    "chroot into the task directory",
    "drop a capability from the bounding set",
    "set the user",
    "start a new session",
    "redirect standard streams",
    "execute the command",
];

/// Why a child failed, as the parent reports it.
pub(crate) fn describe(step: u32, index: u32, errno: i32, plan: &Plan) -> String {
    let what = STEPS
        .get(usize::try_from(step).unwrap_or(usize::MAX))
        .copied()
        .unwrap_or("an unknown step");
    let index = usize::try_from(index).unwrap_or(usize::MAX);
    let detail = match step {
        2 | 3 => plan
            .binds
            .get(index)
            .map(|(source, target, _)| {
                format!(
                    " {} on {}",
                    source.to_string_lossy(),
                    target.to_string_lossy()
                )
            })
            .unwrap_or_default(),
        13 => plan
            .argv
            .first()
            .map(|command| format!(" {}", command.to_string_lossy()))
            .unwrap_or_default(),
        _ => String::new(),
    };
    format!(
        "cannot {what}{detail}: {}",
        std::io::Error::from_raw_os_error(errno)
    )
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|string| string.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Starts the child; returns its pid in the agent's PID namespace.
pub(crate) fn start(plan: &Plan) -> Result<u32, String> {
    let argv = null_terminated(&plan.argv);
    let envp = null_terminated(&plan.envp);
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just created and are owned here only.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut flags = libc::CLONE_NEWNS;
    if plan.new_pid {
        flags |= libc::CLONE_NEWPID;
    }
    if plan.new_ipc {
        flags |= libc::CLONE_NEWIPC;
    }
    let flags = libc::c_ulong::try_from(flags | libc::SIGCHLD)
        .map_err(|_| String::from("clone flags out of range"))?;
    // SAFETY: a fork-like clone (no new stack, no shared memory); the child runs only `child`,
    // which makes async-signal-safe system calls on data prepared above and never returns.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid == 0 {
        // SAFETY: see above; `child` ends in execve or _exit.
        unsafe { child(plan, &argv, &envp, write_end.as_raw_fd()) }
    }
    if pid < 0 {
        return Err(format!(
            "clone into new namespaces: {}",
            std::io::Error::last_os_error()
        ));
    }
    drop(write_end);
    let pid = u32::try_from(pid).map_err(|_| format!("clone returned {pid}"))?;
    let mut report = [0u8; 12];
    let mut read = 0;
    while read < report.len() {
        // SAFETY: reading into the unfilled part of `report`.
        let n = unsafe {
            libc::read(
                read_end.as_raw_fd(),
                report[read..].as_mut_ptr().cast(),
                report.len() - read,
            )
        };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            break;
        }
        read += usize::try_from(n).unwrap_or(0);
    }
    if read == 0 {
        return Ok(pid);
    }
    // The child failed before execve: reap it and say why.
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
    if read < report.len() {
        return Err(String::from("the isolated child failed before execve"));
    }
    let word = |at: usize| [report[at], report[at + 1], report[at + 2], report[at + 3]];
    let step = u32::from_ne_bytes(word(0));
    let index = u32::from_ne_bytes(word(4));
    let errno = i32::from_ne_bytes(word(8));
    Err(describe(step, index, errno, plan))
}

/// Reports a failed step to the parent and exits.
unsafe fn fail(pipe: RawFd, step: u32, index: usize) -> ! {
    // SAFETY: errno location of this thread; write and _exit are async-signal-safe.
    unsafe {
        let errno = *libc::__errno_location();
        let mut report = [0u8; 12];
        report[..4].copy_from_slice(&step.to_ne_bytes());
        report[4..8].copy_from_slice(&(index as u32).to_ne_bytes());
        report[8..].copy_from_slice(&errno.to_ne_bytes());
        libc::write(pipe, report.as_ptr().cast(), report.len());
        libc::_exit(127)
    }
}

/// Linux's highest signal number plus one (`_NSIG`).
const NSIG: libc::c_int = 65;

/// Puts every signal back to its default disposition and empties the signal mask, whatever the
/// agent inherited: an agent under `nohup` ignores SIGHUP, one launched by a background shell
/// ignores SIGINT and SIGQUIT, and `execve` keeps ignored signals ignored, so a task's
/// `change_signal` or trap would do nothing.
///
/// # Safety
/// For the child between fork (or clone) and `execve`: it makes only async-signal-safe calls
/// (`sigaction`, `sigprocmask`) on its own stack.
pub(crate) unsafe fn reset_signals() {
    // SAFETY: a zeroed `sigaction` is SIG_DFL with an empty mask and no flags; the numbers the
    // kernel refuses (KILL, STOP, the C library's reserved ones) just fail.
    unsafe {
        let default: libc::sigaction = std::mem::zeroed();
        for signal in 1..NSIG {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::sigaction(signal, &default, std::ptr::null_mut());
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// Makes the process `command` starts begin with default signal dispositions and an empty
/// signal mask ([`reset_signals`]).
pub(crate) fn default_signals(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the hook runs in the forked child and makes only async-signal-safe calls.
    unsafe {
        command.pre_exec(|| {
            reset_signals();
            Ok(())
        })
    };
}

fn ptr(string: &CStr) -> *const libc::c_char {
    string.as_ptr()
}

/// The child: never returns.
unsafe fn child(
    plan: &Plan,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    pipe: RawFd,
) -> ! {
    // SAFETY: raw system calls on prepared data, as the module says.
    unsafe {
        for fd in &plan.cgroup_procs {
            if libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                fail(pipe, 0, 0);
            }
        }
        let none = std::ptr::null::<libc::c_char>();
        if libc::mount(
            none,
            c"/".as_ptr(),
            none,
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            fail(pipe, 1, 0);
        }
        for (index, (source, target, read_only)) in plan.binds.iter().enumerate() {
            if libc::mount(
                ptr(source),
                ptr(target),
                none,
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ) != 0
            {
                fail(pipe, 2, index);
            }
            if *read_only
                && libc::mount(
                    none,
                    ptr(target),
                    none,
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID,
                    std::ptr::null(),
                ) != 0
            {
                fail(pipe, 3, index);
            }
        }
        if libc::mount(
            c"proc".as_ptr(),
            ptr(&plan.proc_dir),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        ) != 0
        {
            fail(pipe, 4, 0);
        }
        if libc::mount(
            c"tmpfs".as_ptr(),
            ptr(&plan.dev_dir),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            c"mode=755,size=64k".as_ptr().cast(),
        ) != 0
        {
            fail(pipe, 5, 0);
        }
        for (index, (source, target)) in plan.devices.iter().enumerate() {
            let fd = libc::open(
                ptr(target),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o666,
            );
            if fd < 0 {
                fail(pipe, 6, index);
            }
            libc::close(fd);
            if libc::mount(
                ptr(source),
                ptr(target),
                none,
                libc::MS_BIND,
                std::ptr::null(),
            ) != 0
            {
                fail(pipe, 7, index);
            }
        }
        for (target, link) in &plan.dev_links {
            libc::symlink(ptr(target), ptr(link));
        }
        if libc::chroot(ptr(&plan.root)) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
            fail(pipe, 8, 0);
        }
        for (index, cap) in plan.drop_caps.iter().enumerate() {
            if libc::prctl(libc::PR_CAPBSET_DROP, *cap, 0, 0, 0) != 0 {
                fail(pipe, 9, index);
            }
        }
        reset_signals();
        if libc::setsid() < 0 {
            fail(pipe, 11, 0);
        }
        if let Some((uid, gid)) = plan.ids {
            let groups = [gid];
            if libc::setgroups(1, groups.as_ptr()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                fail(pipe, 10, 0);
            }
        }
        for (fd, target) in [(&plan.stdin, 0), (&plan.stdout, 1), (&plan.stderr, 2)] {
            if libc::dup2(fd.as_raw_fd(), target) < 0 {
                fail(pipe, 12, 0);
            }
        }
        for candidate in &plan.candidates {
            libc::execve(ptr(candidate), argv.as_ptr(), envp.as_ptr());
        }
        fail(pipe, 13, 0)
    }
}
