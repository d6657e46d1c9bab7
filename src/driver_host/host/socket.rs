//! Capability `host-socket`: one request over a unix socket in the call's task directory (a VM's
//! monitor or guest agent socket; the qemu driver's graceful shutdown).
//!
//! Invariant: the socket is resolved beneath the task directory of the call's [`TaskScope`] (the
//! client's record) through [`crate::allocfs`], no symbolic link followed on the way or in its
//! place, and must be a socket; the host then connects to the inode it opened, through
//! `/proc/self/fd/N` of its `O_PATH` descriptor, so a name swapped after the check reaches
//! nothing else. The absolute path must fit a socket address (107 bytes), as it had to when the
//! task's program bound it. Connecting and writing are bounded by the host call timeout, the
//! reply by the driver's `reply-timeout-ms` (at most [`MAX_REPLY_TIMEOUT`]); the reply is capped
//! at [`MAX_REPLY_BYTES`].
//!
//! [`TaskScope`]: crate::driver_host::TaskScope

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::allocfs::{AllocFsError, Root};
use crate::driver_host::bindings::caravan::driver::host_socket::{Host, SocketRequest};
use crate::driver_host::host::fd_path;
use crate::driver_host::host::fs::check_path;
use crate::driver_host::instance::CallState;

/// Longest absolute socket path: `sun_path` holds 108 bytes with the terminating NUL.
pub(crate) const MAX_SOCKET_PATH: usize = 107;
/// Most bytes of a reply returned.
pub(crate) const MAX_REPLY_BYTES: usize = 64 << 10;
/// Longest reply wait a driver may ask for.
pub(crate) const MAX_REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens the socket `path` beneath `task_dir`, checked as the capability says.
fn open_socket(task_dir: &Path, path: &str) -> Result<std::os::fd::OwnedFd, String> {
    let relative = check_path(path)?;
    if relative.is_root() {
        return Err(format!("{path:?}: name a socket in the task directory"));
    }
    let absolute = task_dir.join(relative.to_path_buf());
    let length = absolute.as_os_str().as_bytes().len();
    if length > MAX_SOCKET_PATH {
        return Err(format!(
            "socket path {} is {length} bytes, over the {MAX_SOCKET_PATH} a unix socket address holds",
            absolute.display()
        ));
    }
    let root = Root::open(task_dir).map_err(|err| err.to_string())?;
    root.open_socket(&relative).map_err(|err| match err {
        AllocFsError::NotRegular { .. } => format!("{path:?} is not a socket"),
        other => other.to_string(),
    })
}

/// Connects, writes `request.message`, reads the reply as the WIT says.
async fn exchange(
    fd: std::os::fd::OwnedFd,
    request: &SocketRequest,
    host_timeout: Duration,
) -> Result<Vec<u8>, String> {
    let path = &request.path;
    let mut stream = tokio::time::timeout(host_timeout, UnixStream::connect(fd_path(&fd)))
        .await
        .map_err(|_| format!("connecting to {path:?} timed out after {host_timeout:?}"))?
        .map_err(|err| format!("cannot connect to {path:?}: {err}"))?;
    drop(fd);
    tokio::time::timeout(host_timeout, stream.write_all(&request.message))
        .await
        .map_err(|_| format!("writing to {path:?} timed out after {host_timeout:?}"))?
        .map_err(|err| format!("cannot write to {path:?}: {err}"))?;
    let reply_timeout = Duration::from_millis(request.reply_timeout_ms).min(MAX_REPLY_TIMEOUT);
    let mut reply = Vec::new();
    if reply_timeout.is_zero() {
        return Ok(reply);
    }
    let until = request.reply_until.as_slice();
    let reading = async {
        let mut buffer = [0u8; 4096];
        loop {
            let read = stream
                .read(&mut buffer)
                .await
                .map_err(|err| format!("cannot read the reply from {path:?}: {err}"))?;
            if read == 0 {
                return Ok::<bool, String>(true);
            }
            let room = MAX_REPLY_BYTES.saturating_sub(reply.len());
            reply.extend_from_slice(&buffer[..read.min(room)]);
            if (!until.is_empty() && contains(&reply, until)) || reply.len() >= MAX_REPLY_BYTES {
                return Ok(true);
            }
        }
    };
    let complete = match tokio::time::timeout(reply_timeout, reading).await {
        Ok(result) => result?,
        Err(_) => false,
    };
    if !complete && !until.is_empty() {
        return Err(format!(
            "no reply containing {:?} from {path:?} within {reply_timeout:?} (read {:?})",
            String::from_utf8_lossy(until),
            String::from_utf8_lossy(&reply)
        ));
    }
    Ok(reply)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

impl Host for CallState {
    async fn request(&mut self, request: SocketRequest) -> Result<Vec<u8>, String> {
        let _timer = self.host_timer();
        let task_dir = self
            .task_dir
            .clone()
            .ok_or_else(|| String::from("socket calls need a task: this call concerns none"))?;
        let path = request.path.clone();
        let fd = tokio::task::spawn_blocking(move || open_socket(&task_dir, &path))
            .await
            .map_err(|err| format!("socket lookup failed: {err}"))??;
        let result = exchange(fd, &request, self.host_call_timeout).await;
        tracing::debug!(
            driver = %self.driver,
            path = %request.path,
            ok = result.is_ok(),
            "socket request"
        );
        result
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::fs::symlink;
    use std::os::unix::net::UnixListener;

    use super::*;

    fn request(path: &str, message: &str, until: &str, timeout_ms: u64) -> SocketRequest {
        SocketRequest {
            path: path.to_owned(),
            message: message.as_bytes().to_vec(),
            reply_until: until.as_bytes().to_vec(),
            reply_timeout_ms: timeout_ms,
        }
    }

    /// A line server: a greeting, then each line it reads echoed back upper-cased; `silent` ones
    /// never answer.
    fn serve(listener: UnixListener) {
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut writer = stream.try_clone().expect("clone");
                    let _ = writer.write_all(b"hello\n");
                    for line in BufReader::new(stream).lines().map_while(Result::ok) {
                        if line != "silent" {
                            let _ =
                                writer.write_all(format!("{}\n", line.to_uppercase()).as_bytes());
                        }
                    }
                });
            }
        });
    }

    #[tokio::test]
    async fn a_request_gets_its_reply_and_a_silent_peer_times_out() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        let task_dir = dir.path().join("task");
        std::fs::create_dir(&task_dir).map_err(|err| err.to_string())?;
        serve(UnixListener::bind(task_dir.join("qa.sock")).map_err(|err| err.to_string())?);
        let timeout = Duration::from_secs(5);

        let req = request("qa.sock", "ping\n", "PING\n", 5_000);
        let reply = exchange(open_socket(&task_dir, "qa.sock")?, &req, timeout).await?;
        assert_eq!(reply, b"hello\nPING\n");

        let req = request("./qa.sock", "silent\n", "\n\n", 200);
        let err = exchange(open_socket(&task_dir, "./qa.sock")?, &req, timeout)
            .await
            .expect_err("no reply");
        assert!(err.contains("no reply containing"), "{err}");

        // No terminator: whatever arrives within the timeout; none: send only.
        let req = request("qa.sock", "x\n", "", 300);
        let reply = exchange(open_socket(&task_dir, "qa.sock")?, &req, timeout).await?;
        assert_eq!(reply, b"hello\nX\n");
        let req = request("qa.sock", "x\n", "", 0);
        assert!(
            exchange(open_socket(&task_dir, "qa.sock")?, &req, timeout)
                .await?
                .is_empty()
        );
        Ok(())
    }

    #[test]
    fn sockets_outside_links_non_sockets_and_long_paths_are_refused() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        let task_dir = dir.path().join("task");
        std::fs::create_dir(&task_dir).map_err(|err| err.to_string())?;
        let _outside =
            UnixListener::bind(dir.path().join("outside.sock")).map_err(|err| err.to_string())?;
        let _inside =
            UnixListener::bind(task_dir.join("qm.sock")).map_err(|err| err.to_string())?;
        symlink(dir.path().join("outside.sock"), task_dir.join("link.sock"))
            .map_err(|err| err.to_string())?;
        symlink(dir.path(), task_dir.join("up")).map_err(|err| err.to_string())?;
        std::fs::write(task_dir.join("file"), b"x").map_err(|err| err.to_string())?;

        open_socket(&task_dir, "qm.sock")?;
        for (path, expected) in [
            ("/tmp/outside.sock", "absolute"),
            ("../outside.sock", "`..`"),
            ("link.sock", "symbolic link"),
            ("up/outside.sock", "symbolic link"),
            ("file", "not a socket"),
            ("", "name a socket"),
            ("missing.sock", "not found"),
        ] {
            let err = open_socket(&task_dir, path).expect_err(path);
            assert!(err.contains(expected), "{path}: {err}");
        }
        let long = "s".repeat(MAX_SOCKET_PATH);
        let err = open_socket(&task_dir, &long).expect_err("long");
        assert!(err.contains("over the 107"), "{err}");
        Ok(())
    }
}
