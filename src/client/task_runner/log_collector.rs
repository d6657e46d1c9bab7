//! The log collector (Nomad's logmon): reads one stream of one task from a FIFO in the
//! allocation's `alloc/logs/` and writes it through `<task>.<stream>.N` files of at most
//! `max_file_size` bytes, keeping at most `max_files` of them, whatever the writer's speed.
//!
//! ```text
//!  task ──write──► alloc/logs/.<task>.<stream>.fifo ──read (blocking thread)──► Rotator
//!                                                            <task>.<stream>.N  (N grows; the
//!                                                            oldest beyond max_files removed)
//! ```
//!
//! The collector opens the FIFO read-write, so writers never block on open and it never sees
//! end-of-file between a task's restarts; it stops when the host removes the FIFO (the task is
//! dead for good, see `logs_hook::stop`) or the allocation directory goes, after draining what
//! is buffered. A `flock` on `.<task>.<stream>.lock` makes it one collector per stream.
//!
//! Where it runs ([`CollectorMode`]): the agent runs it as a small separate process of the
//! caravan binary (`caravan logmon`, its own process group), so it outlives the agent and a task
//! keeps writing while the agent restarts; the next agent finds the lock held and leaves it be.
//! Embedders without the binary (the library's tests) run it on a thread of their own process.
//!
//! The disk cap is exact: at most `max_files` files of at most `max_file_size` bytes, written
//! through `crate::allocfs`, so a file a task replaced by a symbolic link is removed (the link,
//! not its target) and recreated, never followed, copied or truncated.
//! Nomad: `client/logmon/logmon.go`, `client/lib/fifo`, `client/logmon/logging/rotator.go`.

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::poll::{PollFd, PollFlags, PollTimeout};

use super::logs_hook;
use crate::allocfs::OpenOptions;
use crate::allocfs::log_files::{RotationConfig, Rotator, name_path, open_logs_dir};

/// How often the collector checks, while idle or busy, that its FIFO is still wanted.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// The FIFO's kernel buffer; larger means fewer wake-ups for a fast writer.
const PIPE_BYTES: i32 = 1 << 20;
/// Read buffer.
const READ_BYTES: usize = 256 << 10;
/// How long the host waits for a new collector to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// What a collector process prints once it holds its FIFO (or found another collector).
const READY_LINE: &str = "ready";

/// Where collectors run.
#[derive(Debug, Clone, Default)]
pub enum CollectorMode {
    /// On a thread of this process: stops with it.
    #[default]
    Thread,
    /// As `<exe> logmon ...`, a process that outlives the agent.
    Process(PathBuf),
}

/// The caravan binary, once its entry point has said it runs as one.
static COLLECTOR_EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

impl CollectorMode {
    /// Called by the binary's `agent` command: agents in this process run collectors as
    /// processes of `exe` (a library embedding the client, tests included, keeps threads).
    pub fn use_process_by_default(exe: PathBuf) {
        let _ = COLLECTOR_EXE.set(exe);
    }

    /// The mode agents of this process use.
    pub fn default_for_agents() -> CollectorMode {
        COLLECTOR_EXE.get().map_or(CollectorMode::Thread, |exe| {
            CollectorMode::Process(exe.clone())
        })
    }
}

/// One collector's job.
#[derive(Debug, Clone)]
pub struct CollectorArgs {
    /// The allocation's directory (`<alloc_root>/<alloc_id>`).
    pub alloc_dir: PathBuf,
    pub task: String,
    pub stream: String,
    pub config: RotationConfig,
}

/// Makes sure a collector serves `args`' FIFO (which must exist), starting one if none holds
/// the lock; returns once one is ready to read.
pub fn ensure_running(args: &CollectorArgs, mode: &CollectorMode) -> io::Result<()> {
    match mode {
        CollectorMode::Thread => {
            let (ready_tx, ready_rx) = mpsc::sync_channel(1);
            let thread_args = args.clone();
            std::thread::Builder::new()
                .name(format!("logmon-{}-{}", args.task, args.stream))
                .spawn(move || {
                    if let Err(err) = run(&thread_args, || {
                        let _ = ready_tx.send(());
                    }) {
                        tracing::warn!(task = %thread_args.task, stream = %thread_args.stream, error = %err, "log collector failed");
                    }
                })?;
            ready_rx.recv_timeout(READY_TIMEOUT).map_err(|_| {
                io::Error::other(format!(
                    "log collector for {}.{} did not start",
                    args.task, args.stream
                ))
            })
        }
        CollectorMode::Process(exe) => {
            let mut child = std::process::Command::new(exe)
                .arg("logmon")
                .arg("--alloc-dir")
                .arg(&args.alloc_dir)
                .arg("--task")
                .arg(&args.task)
                .arg("--stream")
                .arg(&args.stream)
                .arg("--max-files")
                .arg(args.config.max_files.to_string())
                .arg("--max-file-size")
                .arg(args.config.max_file_size.to_string())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                // Its own process group: a Ctrl-C or group kill aimed at the agent spares it.
                .process_group(0)
                .spawn()?;
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| io::Error::other("log collector has no stdout"))?;
            let (line_tx, line_rx) = mpsc::sync_channel(1);
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = io::BufReader::new(stdout).read_line(&mut line);
                let _ = line_tx.send(line);
            });
            reap_when_it_exits(child);
            match line_rx.recv_timeout(READY_TIMEOUT) {
                Ok(line) if line.trim() == READY_LINE => Ok(()),
                _ => Err(io::Error::other(format!(
                    "log collector process for {}.{} did not start",
                    args.task, args.stream
                ))),
            }
        }
    }
}

/// Collector processes the agent started, reaped by one thread as they exit: no zombie is left
/// while the agent lives, and no thread waits on each.
fn reap_when_it_exits(child: std::process::Child) {
    static REAPER: std::sync::OnceLock<Option<mpsc::Sender<std::process::Child>>> =
        std::sync::OnceLock::new();
    let reaper = REAPER.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<std::process::Child>();
        std::thread::Builder::new()
            .name(String::from("logmon-reaper"))
            .spawn(move || {
                let mut children = Vec::new();
                loop {
                    match receiver.recv_timeout(CHECK_INTERVAL) {
                        Ok(child) => children.push(child),
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                    children.retain_mut(|child| matches!(child.try_wait(), Ok(None)));
                }
            })
            .ok()
            .map(|_| sender)
    });
    let refused = match reaper {
        Some(sender) => sender.send(child).err().map(|returned| returned.0),
        None => Some(child),
    };
    // No reaper thread: wait on this one from a thread of its own, as before.
    if let Some(mut child) = refused {
        std::thread::spawn(move || child.wait());
    }
}

/// `caravan logmon`: runs one collector in this process, printing [`READY_LINE`] on stdout when
/// ready (then stdout is closed: the agent that reads it may go away).
pub fn run_process(args: &CollectorArgs) -> io::Result<()> {
    run(args, || {
        let mut stdout = io::stdout().lock();
        let _ = writeln!(stdout, "{READY_LINE}");
        let _ = stdout.flush();
        // Point stdout at /dev/null so nothing later can hit a closed pipe.
        if let Ok(null) = File::options().write(true).open("/dev/null") {
            let _ = nix::unistd::dup2_stdout(null.as_fd());
        }
    })
}

/// Runs a collector until its FIFO is removed; `ready` is called once it reads (or once it
/// knows another collector holds the stream).
pub fn run(args: &CollectorArgs, ready: impl FnOnce()) -> io::Result<()> {
    let logs = open_logs_dir(&args.alloc_dir)?;
    let fifo_path = name_path(&logs_hook::fifo_name(&args.task, &args.stream))?;
    let fifo = logs.open_fifo(&fifo_path, true)?;
    let lock_file = logs.open_file(
        &name_path(&logs_hook::lock_name(&args.task, &args.stream))?,
        OpenOptions {
            write: true,
            create: true,
            mode: 0o600,
            ..OpenOptions::default()
        },
    )?;
    let _lock = match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((_, Errno::EWOULDBLOCK)) => {
            // Another collector serves this stream.
            ready();
            return Ok(());
        }
        Err((_, errno)) => return Err(errno.into()),
    };
    let fifo_inode = logs.inode(&fifo_path)?;
    let _ = nix::fcntl::fcntl(&fifo, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_BYTES));
    let mut rotator = Rotator::open(logs.clone(), &args.task, &args.stream, args.config)?;
    ready();
    let mut buffer = vec![0u8; READ_BYTES];
    let mut last_check = Instant::now();
    loop {
        let readable = {
            let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, PollTimeout::from(1000u16)) {
                Ok(ready_count) => ready_count > 0,
                Err(Errno::EINTR) => false,
                Err(errno) => return Err(errno.into()),
            }
        };
        if readable {
            match nix::unistd::read(&fifo, &mut buffer) {
                Ok(0) => {}
                Ok(n) => rotator.write(&buffer[..n])?,
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Err(errno) => return Err(errno.into()),
            }
        }
        if last_check.elapsed() >= CHECK_INTERVAL {
            last_check = Instant::now();
            let wanted = logs
                .inode(&fifo_path)
                .is_ok_and(|inode| inode == fifo_inode);
            if !wanted {
                drain(&fifo, &mut rotator, &mut buffer)?;
                return Ok(());
            }
        }
    }
}

/// Reads what is still buffered in the FIFO without waiting for more.
fn drain(fifo: &OwnedFd, rotator: &mut Rotator, buffer: &mut [u8]) -> io::Result<()> {
    let flags = nix::fcntl::fcntl(fifo, nix::fcntl::FcntlArg::F_GETFL)?;
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(fifo, nix::fcntl::FcntlArg::F_SETFL(flags))?;
    loop {
        match nix::unistd::read(fifo, buffer) {
            Ok(0) | Err(Errno::EAGAIN) => return Ok(()),
            Ok(n) => rotator.write(&buffer[..n])?,
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
}
