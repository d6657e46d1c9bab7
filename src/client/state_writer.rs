//! The client state's one writer: a dedicated thread that writes the state files off the async
//! runtime, each file's latest bytes only (Nomad's `boltdb` batches its writes the same way).
//!
//! ```text
//!  task/alloc runners ─ put(dir, file, bytes) / delete(dir) ─► pending, per directory
//!                                                                 │ (a later put replaces an
//!                                                                 │  earlier one; a delete
//!                                                                 │  drops the puts before it)
//!  caller ◄─ Written::wait ◄─ done = n ◄── writer thread: take all pending, apply, repeat
//! ```
//!
//! Stopping 10,000 tasks makes about three writes per task in a second or two; written inline
//! by every runner they held the runtime's workers in the file system, and most of them were
//! replaced by the next state of the same file within milliseconds.
//!
//! **Invariant:** per directory the files read back as if every write had been done in the order
//! it was asked for: a later state is never overwritten by an earlier one, and a delete after a
//! put wins. Each file is replaced atomically ([`super::state::write_atomic`]), so a reader never
//! sees a half-written file. A caller that must not go on before its write is done (a task's
//! handle before the task is reported started) waits on the [`Written`] it was given.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::watch;

/// A handle on the writer thread; the thread drains what is pending and ends once every clone
/// is dropped.
#[derive(Clone)]
pub struct StateWriter {
    shared: Arc<Shared>,
    _open: Arc<OpenWhileHeld>,
}

impl fmt::Debug for StateWriter {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queue = self.shared.lock_queue();
        formatter
            .debug_struct("StateWriter")
            .field("submitted", &queue.submitted)
            .field("pending_dirs", &queue.pending.len())
            .finish()
    }
}

/// One asked-for write: [`Written::wait`] returns once it (or a later write that replaced it) is
/// on disk, or failed and was logged.
pub struct Written {
    seq: u64,
    shared: Arc<Shared>,
}

impl fmt::Debug for Written {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Written")
            .field("seq", &self.seq)
            .finish()
    }
}

impl Written {
    /// Waits without blocking the runtime.
    pub async fn wait(self) {
        let mut done = self.shared.done_watch.subscribe();
        let _ = done.wait_for(|done| *done >= self.seq).await;
    }

    /// Waits on this thread (start-up, tests).
    pub fn wait_blocking(self) {
        let mut done = self.shared.lock_done();
        while *done < self.seq {
            done = self
                .shared
                .done_changed
                .wait(done)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

struct Shared {
    queue: Mutex<Queue>,
    work: Condvar,
    /// The sequence number of the last write done, for blocking waiters ...
    done: Mutex<u64>,
    done_changed: Condvar,
    /// ... and for async ones.
    done_watch: watch::Sender<u64>,
}

impl Shared {
    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_done(&self) -> MutexGuard<'_, u64> {
        self.done
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Default)]
struct Queue {
    pending: HashMap<PathBuf, DirWrites>,
    /// The sequence number of the last write asked for.
    submitted: u64,
    /// False once every [`StateWriter`] is gone: the thread drains and ends.
    open: bool,
    /// Tests hold the thread back to see what coalesces.
    #[cfg(test)]
    paused: bool,
}

impl Queue {
    fn has_work(&self) -> bool {
        #[cfg(test)]
        if self.paused && self.open {
            return false;
        }
        !self.pending.is_empty()
    }
}

/// What is pending for one directory, applied in this order.
#[derive(Debug, Default)]
struct DirWrites {
    /// Remove the directory and everything in it first.
    delete: bool,
    /// Then write each file's latest bytes.
    files: BTreeMap<String, Vec<u8>>,
}

/// Closes the queue when the last [`StateWriter`] clone drops.
struct OpenWhileHeld(Arc<Shared>);

impl Drop for OpenWhileHeld {
    fn drop(&mut self) {
        self.0.lock_queue().open = false;
        self.0.work.notify_one();
    }
}

impl StateWriter {
    /// Starts the writer thread.
    pub fn start() -> io::Result<StateWriter> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                open: true,
                ..Queue::default()
            }),
            work: Condvar::new(),
            done: Mutex::new(0),
            done_changed: Condvar::new(),
            done_watch: watch::Sender::new(0),
        });
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("caravan-state-writer".to_owned())
            .spawn(move || write_until_closed(&thread_shared))?;
        Ok(StateWriter {
            _open: Arc::new(OpenWhileHeld(Arc::clone(&shared))),
            shared,
        })
    }

    /// Replaces `dir/file` with `bytes`, creating `dir` as needed.
    pub fn put(&self, dir: &Path, file: &str, bytes: Vec<u8>) -> Written {
        self.submit(dir, |writes| {
            writes.files.insert(file.to_owned(), bytes);
        })
    }

    /// Removes `dir` and everything in it, the puts asked for before included.
    pub fn delete(&self, dir: &Path) -> Written {
        self.submit(dir, |writes| {
            writes.files.clear();
            writes.delete = true;
        })
    }

    /// Everything asked for so far: wait on it to know it is done.
    pub fn flushed(&self) -> Written {
        Written {
            seq: self.shared.lock_queue().submitted,
            shared: Arc::clone(&self.shared),
        }
    }

    fn submit(&self, dir: &Path, change: impl FnOnce(&mut DirWrites)) -> Written {
        let seq = {
            let mut queue = self.shared.lock_queue();
            change(queue.pending.entry(dir.to_path_buf()).or_default());
            queue.submitted += 1;
            queue.submitted
        };
        self.shared.work.notify_one();
        Written {
            seq,
            shared: Arc::clone(&self.shared),
        }
    }
}

fn write_until_closed(shared: &Shared) {
    loop {
        let (batch, upto) = {
            let mut queue = shared.lock_queue();
            while !queue.has_work() && queue.open {
                queue = shared
                    .work
                    .wait(queue)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            if !queue.has_work() {
                return;
            }
            (std::mem::take(&mut queue.pending), queue.submitted)
        };
        for (dir, writes) in batch {
            apply(&dir, writes);
        }
        *shared.lock_done() = upto;
        shared.done_changed.notify_all();
        shared.done_watch.send_replace(upto);
    }
}

/// Applies one directory's writes; a failure is logged, as an inline write's was.
fn apply(dir: &Path, writes: DirWrites) {
    if writes.delete {
        match std::fs::remove_dir_all(dir) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                tracing::warn!(path = %dir.display(), error = %err, "failed to remove client state");
            }
            _ => {}
        }
    }
    if writes.files.is_empty() {
        return;
    }
    if let Err(err) = std::fs::create_dir_all(dir) {
        tracing::error!(path = %dir.display(), error = %err, "failed to persist client state");
        return;
    }
    for (file, bytes) in writes.files {
        let path = dir.join(file);
        if let Err(err) = super::state::write_atomic(&path, &bytes) {
            tracing::error!(path = %path.display(), error = %err, "failed to persist client state");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    fn pause(writer: &StateWriter, paused: bool) {
        writer.shared.lock_queue().paused = paused;
        writer.shared.work.notify_one();
    }

    #[test]
    fn pending_puts_of_a_file_coalesce_into_its_latest_bytes() -> io::Result<()> {
        let root = tempfile::tempdir()?;
        let dir = root.path().join("a1");
        let writer = StateWriter::start()?;
        pause(&writer, true);
        for n in 0..100 {
            writer.put(&dir, "task-web.json", format!("{n}").into_bytes());
        }
        writer.put(&dir, "alloc.json", b"alloc".to_vec());
        {
            let queue = writer.shared.lock_queue();
            let pending = &queue.pending[&dir];
            assert_eq!(pending.files.len(), 2, "one entry per file");
            assert_eq!(pending.files["task-web.json"], b"99");
            assert_eq!(queue.submitted, 101);
        }
        pause(&writer, false);
        writer.flushed().wait_blocking();
        assert_eq!(read(&dir.join("task-web.json")).as_deref(), Some("99"));
        assert_eq!(read(&dir.join("alloc.json")).as_deref(), Some("alloc"));
        // No temporary file is left beside them.
        let mut names: Vec<String> = std::fs::read_dir(&dir)?
            .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<_>>()?;
        names.sort();
        assert_eq!(names, ["alloc.json", "task-web.json"]);
        Ok(())
    }

    #[test]
    fn writes_in_successive_batches_keep_their_order() -> io::Result<()> {
        let root = tempfile::tempdir()?;
        let dir = root.path().join("a1");
        let writer = StateWriter::start()?;
        for n in 0..200 {
            writer.put(&dir, "task-web.json", format!("{n}").into_bytes());
        }
        writer.flushed().wait_blocking();
        assert_eq!(read(&dir.join("task-web.json")).as_deref(), Some("199"));
        Ok(())
    }

    #[test]
    fn a_delete_after_puts_wins_and_a_put_after_a_delete_comes_back() -> io::Result<()> {
        let root = tempfile::tempdir()?;
        let writer = StateWriter::start()?;
        let gone = root.path().join("gone");
        let back = root.path().join("back");
        writer.put(&gone, "alloc.json", b"1".to_vec());
        writer.put(&back, "alloc.json", b"1".to_vec());
        writer.put(&back, "task-old.json", b"1".to_vec());
        writer.flushed().wait_blocking();
        // Queued together, as one batch.
        pause(&writer, true);
        writer.put(&gone, "task-web.json", b"2".to_vec());
        writer.delete(&gone);
        writer.put(&back, "task-new.json", b"2".to_vec());
        writer.delete(&back);
        writer.put(&back, "alloc.json", b"2".to_vec());
        pause(&writer, false);
        writer.flushed().wait_blocking();
        assert!(!gone.exists(), "the delete came after the put");
        assert_eq!(read(&back.join("alloc.json")).as_deref(), Some("2"));
        assert!(
            !back.join("task-old.json").exists(),
            "written before the delete"
        );
        assert!(
            !back.join("task-new.json").exists(),
            "queued before the delete"
        );
        Ok(())
    }

    #[tokio::test]
    async fn waiting_on_a_write_returns_once_it_is_on_disk() -> io::Result<()> {
        let root = tempfile::tempdir()?;
        let writer = StateWriter::start()?;
        let dir = root.path().join("a1");
        for n in 0..50 {
            let written = writer.put(&dir, &format!("task-{n}.json"), b"{}".to_vec());
            written.wait().await;
            assert!(dir.join(format!("task-{n}.json")).exists(), "write {n}");
        }
        writer.delete(&dir).wait().await;
        assert!(!dir.exists());
        Ok(())
    }

    #[tokio::test]
    async fn a_wait_does_not_return_while_its_write_is_pending() -> io::Result<()> {
        let root = tempfile::tempdir()?;
        let writer = StateWriter::start()?;
        let dir = root.path().join("a1");
        pause(&writer, true);
        let written = writer.put(&dir, "alloc.json", b"{}".to_vec());
        let waited = tokio::time::timeout(std::time::Duration::from_millis(200), written.wait());
        assert!(waited.await.is_err(), "returned before the write");
        pause(&writer, false);
        writer.flushed().wait().await;
        assert!(dir.join("alloc.json").exists());
        Ok(())
    }

    #[test]
    fn the_thread_drains_what_is_pending_when_the_last_handle_drops() -> io::Result<()> {
        let root = tempfile::tempdir()?;
        let writer = StateWriter::start()?;
        let dir = root.path().join("a1");
        let written = writer.put(&dir, "alloc.json", b"last".to_vec());
        drop(writer);
        written.wait_blocking();
        assert_eq!(read(&dir.join("alloc.json")).as_deref(), Some("last"));
        Ok(())
    }
}
