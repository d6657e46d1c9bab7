//! The rotated log files of a task's stream: `<task>.<stream>.N` in the allocation's
//! `alloc/logs/`, each at most `max_file_size` bytes, at most `max_files` kept, the newest with
//! the highest index (Nomad's numbering: `.0` is the first file).
//!
//! Written by the log collector (`client::task_runner::log_collector`, for tasks outside the
//! agent) and by the host's in-agent sink of WASI workloads (`driver_host::host::task_log`); read
//! by the logs API. Every name is reached through [`Root`]: a file a task replaced by a link is
//! removed and recreated, never followed.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::{AllocFsError, FileKind, OpenOptions, RelPath, Root};

/// Rotation limits of one task's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationConfig {
    /// Files kept per stream.
    pub max_files: usize,
    pub max_file_size: u64,
}

impl Default for RotationConfig {
    /// Nomad's defaults: 10 files of 10 MB.
    fn default() -> RotationConfig {
        RotationConfig {
            max_files: 10,
            max_file_size: 10 << 20,
        }
    }
}

/// `<task>.<stream>.<index>`.
pub fn file_name(task: &str, stream: &str, index: u64) -> String {
    format!("{task}.{stream}.{index}")
}

/// The indexes of the task's files of `stream`, ascending (oldest first); with `regular_only`,
/// only regular files (not links or anything else a task may have planted).
pub fn log_indexes(logs: &Root, task: &str, stream: &str, regular_only: bool) -> Vec<u64> {
    let prefix = format!("{task}.{stream}.");
    let mut indexes: Vec<u64> = logs
        .list(&RelPath::root())
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| !regular_only || entry.metadata.kind == FileKind::File)
        .filter_map(|entry| {
            let name = entry.name.to_str()?;
            let index = name.strip_prefix(&prefix)?;
            // Canonical numbers only: `.01` is not file 1.
            let parsed = index.parse::<u64>().ok()?;
            (parsed.to_string() == index).then_some(parsed)
        })
        .collect();
    indexes.sort_unstable();
    indexes
}

/// Opens `<alloc_dir>/alloc/logs` (the allocation directory's path is the operator's; nothing
/// beneath it is followed through a link).
pub fn open_logs_dir(alloc_dir: &Path) -> io::Result<Root> {
    let root = Root::open(alloc_dir)?;
    let logs = RelPath::parse("alloc/logs").map_err(|_| invalid("alloc/logs"))?;
    Ok(root.subdir(&logs)?)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("invalid path {what:?}"),
    )
}

/// One name in the logs directory.
pub fn name_path(name: &str) -> io::Result<RelPath> {
    let path = RelPath::parse(name).map_err(|_| invalid(name))?;
    if path.names().len() != 1 {
        return Err(invalid(name));
    }
    Ok(path)
}

/// Writes a stream through numbered files, each at most `max_file_size`, the newest with the
/// highest index, at most `max_files` kept.
pub struct Rotator {
    logs: Root,
    task: String,
    stream: String,
    config: RotationConfig,
    index: u64,
    size: u64,
    file: File,
}

impl Rotator {
    /// Continues the newest existing file, or starts at index 0.
    pub fn open(
        logs: Root,
        task: &str,
        stream: &str,
        config: RotationConfig,
    ) -> io::Result<Rotator> {
        let index = log_indexes(&logs, task, stream, true)
            .last()
            .copied()
            .unwrap_or(0);
        let path = name_path(&file_name(task, stream, index))?;
        let file = match logs.open_file(&path, OpenOptions::append()) {
            Ok(file) => file,
            // A link, FIFO or directory planted in its place: remove that entry, start afresh.
            Err(AllocFsError::Symlink { .. } | AllocFsError::NotRegular { .. }) => {
                logs.remove(&path)?;
                create_fresh(&logs, &path)?
            }
            Err(err) => return Err(err.into()),
        };
        let size = file.metadata()?.len();
        let rotator = Rotator {
            logs,
            task: task.to_owned(),
            stream: stream.to_owned(),
            config,
            index,
            size,
            file,
        };
        rotator.purge()?;
        Ok(rotator)
    }

    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let room = self.config.max_file_size.saturating_sub(self.size);
            if room == 0 {
                self.rotate()?;
                continue;
            }
            let take = usize::try_from(room).unwrap_or(usize::MAX).min(data.len());
            self.file.write_all(&data[..take])?;
            self.size += take as u64;
            data = &data[take..];
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.index += 1;
        let path = name_path(&file_name(&self.task, &self.stream, self.index))?;
        self.file = create_fresh(&self.logs, &path)?;
        self.size = 0;
        self.purge()
    }

    /// Removes every file of the stream older than the newest `max_files` (links included:
    /// the entry is removed, never what it points to).
    fn purge(&self) -> io::Result<()> {
        let keep_from = (self.index + 1).saturating_sub(self.config.max_files as u64);
        for index in log_indexes(&self.logs, &self.task, &self.stream, false) {
            if index < keep_from {
                let path = name_path(&file_name(&self.task, &self.stream, index))?;
                match self.logs.remove(&path) {
                    Err(err) if !err.is_not_found() => return Err(err.into()),
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// Creates `path` anew (`O_EXCL`, never through a link), removing whatever had the name.
fn create_fresh(logs: &Root, path: &RelPath) -> io::Result<File> {
    let options = OpenOptions {
        write: true,
        append: true,
        create_new: true,
        mode: 0o644,
        ..OpenOptions::default()
    };
    for _ in 0..3 {
        match logs.remove(path) {
            Err(err) if !err.is_not_found() => return Err(err.into()),
            _ => {}
        }
        match logs.open_file(path, options) {
            Ok(file) => return Ok(file),
            // Something was planted between the remove and the create: try again.
            Err(AllocFsError::Io { source, .. })
                if source.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err.into()),
        }
    }
    Err(io::Error::other(format!(
        "cannot create log file {} in {}",
        path,
        logs.path().display()
    )))
}
