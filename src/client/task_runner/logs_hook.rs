//! Hook `logs`: where a task's stdout and stderr go, and their rotation per the task's
//! `logs { max_files, max_file_size }`.
//!
//! Decision: drivers append to `alloc/logs/<task>.<stream>.0` themselves (the host opens the file
//! with `O_APPEND` and hands it to the process or WASI context). A FIFO read by the agent, as
//! Nomad's logmon does, would tie the task's life to the agent's: a raw_exec task writing after
//! an agent restart would get `SIGPIPE`. With a plain file the task survives the agent, and the
//! agent rotates it *copy-truncate*: when `.0` reaches `max_file_size`, `.N-1` is dropped, every
//! `.i` becomes `.i+1`, `.0` is copied to `.1` and truncated (the writer's `O_APPEND` continues at
//! offset 0). So `.0` is always the newest file and a higher index is older — the reverse of
//! Nomad's order, which the logs API accounts for ([`log_files`] lists oldest first). Output
//! written between the copy and the truncate (microseconds) can be lost.
//!
//! Nomad: `client/logmon/logging/rotator.go`.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::structs::LogConfig;

pub const NAME: &str = "logs";

/// How often the rotator looks at the files' sizes.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Rotation limits of one task's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationConfig {
    /// Files kept per stream, `.0` included.
    pub max_files: usize,
    pub max_file_size: u64,
}

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

/// The file a driver appends to.
pub fn live_path(logs_dir: &Path, task: &str, stream: &str) -> PathBuf {
    logs_dir.join(format!("{task}.{stream}.0"))
}

fn indexed_path(logs_dir: &Path, task: &str, stream: &str, index: usize) -> PathBuf {
    logs_dir.join(format!("{task}.{stream}.{index}"))
}

/// Creates the live files so readers find them before the first output.
pub fn prepare(logs_dir: &Path, task: &str) -> io::Result<()> {
    std::fs::create_dir_all(logs_dir)?;
    for stream in ["stdout", "stderr"] {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(live_path(logs_dir, task, stream))?;
    }
    Ok(())
}

/// Rotates `<task>.<stream>.0` if it has reached the limit; returns whether it did.
pub fn rotate_if_needed(
    logs_dir: &Path,
    task: &str,
    stream: &str,
    config: RotationConfig,
) -> io::Result<bool> {
    let live = live_path(logs_dir, task, stream);
    let size = match std::fs::metadata(&live) {
        Ok(metadata) => metadata.len(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    if size < config.max_file_size {
        return Ok(false);
    }
    if config.max_files > 1 {
        let oldest = indexed_path(logs_dir, task, stream, config.max_files - 1);
        match std::fs::remove_file(&oldest) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        for index in (1..config.max_files - 1).rev() {
            let from = indexed_path(logs_dir, task, stream, index);
            if from.exists() {
                std::fs::rename(&from, indexed_path(logs_dir, task, stream, index + 1))?;
            }
        }
        std::fs::copy(&live, indexed_path(logs_dir, task, stream, 1))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(&live)?
        .set_len(0)?;
    Ok(true)
}

/// A task's log files of `stream`, oldest first (so `.0`, the live file, comes last).
pub fn log_files(logs_dir: &Path, task: &str, stream: &str) -> Vec<PathBuf> {
    let prefix = format!("{task}.{stream}.");
    let mut indexed: Vec<(usize, PathBuf)> = std::fs::read_dir(logs_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let index = name.strip_prefix(&prefix)?.parse::<usize>().ok()?;
            Some((index, entry.path()))
        })
        .collect();
    indexed.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
    indexed.into_iter().map(|(_, path)| path).collect()
}

/// Rotates the task's two streams until aborted (the task runner aborts it when the task ends).
pub fn spawn_rotator(
    logs_dir: PathBuf,
    task: String,
    config: RotationConfig,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(CHECK_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            for stream in ["stdout", "stderr"] {
                if let Err(err) = rotate_if_needed(&logs_dir, &task, stream, config) {
                    tracing::warn!(task = %task, stream, error = %err, "log rotation failed");
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn append(path: &Path, text: &str) -> io::Result<()> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?
            .write_all(text.as_bytes())
    }

    #[test]
    fn rotates_copy_truncate_and_keeps_max_files() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let logs = dir.path();
        let config = RotationConfig {
            max_files: 3,
            max_file_size: 10,
        };
        prepare(logs, "web")?;
        let live = live_path(logs, "web", "stdout");
        // One open writer across every rotation, as a running task holds its file.
        let mut writer = std::fs::OpenOptions::new().append(true).open(&live)?;
        for chunk in ["aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc", "dddddddddd"] {
            writer.write_all(chunk.as_bytes())?;
            assert!(rotate_if_needed(logs, "web", "stdout", config)?);
        }
        writer.write_all(b"eee")?;
        assert!(!rotate_if_needed(logs, "web", "stdout", config)?);
        let files = log_files(logs, "web", "stdout");
        let names: Vec<String> = files
            .iter()
            .map(|path| {
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["web.stdout.2", "web.stdout.1", "web.stdout.0"]);
        let contents: Vec<String> = files
            .iter()
            .map(|path| std::fs::read_to_string(path).unwrap_or_default())
            .collect();
        assert_eq!(contents, ["cccccccccc", "dddddddddd", "eee"]);
        Ok(())
    }

    #[test]
    fn a_single_file_is_truncated() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        append(&live_path(dir.path(), "t", "stderr"), "0123456789ab")?;
        let config = RotationConfig {
            max_files: 1,
            max_file_size: 10,
        };
        assert!(rotate_if_needed(dir.path(), "t", "stderr", config)?);
        assert_eq!(log_files(dir.path(), "t", "stderr").len(), 1);
        assert_eq!(
            std::fs::metadata(live_path(dir.path(), "t", "stderr"))?.len(),
            0
        );
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
