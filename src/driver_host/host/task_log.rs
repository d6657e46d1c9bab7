//! The log sink of a WASI workload: its stdout and stderr written by the host, inside the agent,
//! into the task's rotated log files (`allocfs::log_files`: `alloc/logs/<task>.<stream>.N`, the
//! task's `logs { max_files, max_file_size }`), buffered.
//!
//! A workload lives inside the agent and ends with it, so its streams need no FIFO and no
//! collector outliving the agent (what a native task gets from the client's log collector). A
//! write lands in the stream's buffer; a buffer of [`FLUSH_BYTES`] or more is written out at
//! once, a smaller one by a flush that the first write into an empty buffer schedules
//! [`FLUSH_DELAY`] later. Between flushes a stream holds no descriptor, thread or process: an
//! idle task costs a few hundred bytes here.
//!
//! **Invariant:** the disk cap is the collector's: files are written through the same
//! [`Rotator`], beneath the allocation directory without following a link.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use crate::allocfs::log_files::{RotationConfig, Rotator, open_logs_dir};
use crate::driver_host::types::TaskScope;

/// A buffer this full is written out by the write that filled it.
pub(crate) const FLUSH_BYTES: usize = 64 << 10;
/// How long a smaller buffer waits for more before it is written out.
pub(crate) const FLUSH_DELAY: Duration = Duration::from_millis(100);

/// One stream (stdout or stderr) of one task. Cheap to clone: clones share the buffer.
#[derive(Clone)]
pub(crate) struct TaskLog {
    inner: Arc<Mutex<Stream>>,
}

struct Stream {
    alloc_dir: PathBuf,
    task: String,
    stream: &'static str,
    rotation: RotationConfig,
    buffer: Vec<u8>,
    /// A delayed flush is on its way.
    flush_scheduled: bool,
}

impl Stream {
    /// Writes the buffer out through the task's rotated files.
    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let logs = open_logs_dir(&self.alloc_dir)?;
        let mut rotator = Rotator::open(logs, &self.task, self.stream, self.rotation)?;
        let written = rotator.write(&self.buffer);
        // What could not be written is dropped either way: a buffer never outgrows a write.
        self.buffer.clear();
        written
    }
}

impl TaskLog {
    /// The sink of `stream` (`"stdout"` or `"stderr"`) of the task of `scope`.
    pub(crate) fn new(scope: &TaskScope, stream: &'static str) -> TaskLog {
        TaskLog {
            inner: Arc::new(Mutex::new(Stream {
                alloc_dir: scope.alloc_dir.clone(),
                task: scope.task_name.clone(),
                stream,
                rotation: scope.log_rotation,
                buffer: Vec::new(),
                flush_scheduled: false,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Stream> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes out what is buffered (the workload ended, or a delayed flush is due).
    pub(crate) fn flush(&self) -> io::Result<()> {
        self.lock().flush()
    }

    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let mut stream = self.lock();
        stream.buffer.extend_from_slice(bytes);
        if stream.buffer.len() >= FLUSH_BYTES {
            return stream.flush();
        }
        if !stream.flush_scheduled {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    stream.flush_scheduled = true;
                    let sink = self.clone();
                    runtime.spawn(async move {
                        tokio::time::sleep(FLUSH_DELAY).await;
                        let mut stream = sink.lock();
                        stream.flush_scheduled = false;
                        if let Err(err) = stream.flush() {
                            tracing::debug!(task = %stream.task, stream = stream.stream, error = %err, "workload log lost");
                        }
                    });
                }
                Err(_) => return stream.flush(),
            }
        }
        Ok(())
    }
}

impl IsTerminal for TaskLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for TaskLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl Pollable for TaskLog {
    // The `async_trait` shape of `async fn ready(&mut self) {}`: a sink is always ready.
    fn ready<'life, 'future>(&'life mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'future>>
    where
        'life: 'future,
        Self: 'future,
    {
        Box::pin(std::future::ready(()))
    }
}

impl OutputStream for TaskLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        TaskLog::write(self, &bytes)
            .map_err(|err| StreamError::LastOperationFailed(wasmtime::format_err!(err)))
    }

    fn flush(&mut self) -> StreamResult<()> {
        // A guest's flush makes its lines visible soon, not now: the delayed flush covers it.
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(FLUSH_BYTES)
    }
}

impl AsyncWrite for TaskLog {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(TaskLog::write(&self, buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(TaskLog::flush(&self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(dir: &std::path::Path, rotation: RotationConfig) -> io::Result<TaskScope> {
        std::fs::create_dir_all(dir.join("alloc/logs"))?;
        let mut scope = TaskScope::new(
            "a1",
            "web",
            dir,
            dir.join("alloc/logs/.web.stdout.fifo"),
            dir.join("alloc/logs/.web.stderr.fifo"),
        );
        scope.log_rotation = rotation;
        Ok(scope)
    }

    #[tokio::test]
    async fn small_writes_are_buffered_then_flushed_into_the_rotated_files() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let scope = scope(dir.path(), RotationConfig::default())?;
        let log = TaskLog::new(&scope, "stdout");
        log.write(b"one\n")?;
        log.write(b"two\n")?;
        let file = dir.path().join("alloc/logs/web.stdout.0");
        // Nothing is on disk yet, and no descriptor is held.
        assert!(!file.exists());
        tokio::time::sleep(FLUSH_DELAY * 3).await;
        assert_eq!(std::fs::read_to_string(&file)?, "one\ntwo\n");
        log.write(b"three\n")?;
        log.flush()?;
        assert_eq!(std::fs::read_to_string(&file)?, "one\ntwo\nthree\n");
        Ok(())
    }

    #[tokio::test]
    async fn a_full_buffer_is_written_at_once_within_the_disk_cap() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let rotation = RotationConfig {
            max_files: 2,
            max_file_size: 32 << 10,
        };
        let scope = scope(dir.path(), rotation)?;
        let log = TaskLog::new(&scope, "stderr");
        for _ in 0..8 {
            log.write(&[b'x'; FLUSH_BYTES])?;
        }
        let logs = open_logs_dir(dir.path())?;
        // 512 KiB through 32 KiB files: 16 files written, the newest two kept.
        assert_eq!(
            crate::allocfs::log_files::log_indexes(&logs, "web", "stderr", true),
            [14, 15]
        );
        Ok(())
    }
}
