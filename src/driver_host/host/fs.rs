//! Capability `host-fs`: files inside the current call's task directory, nothing else.
//!
//! Invariant: a path is relative, has no `..`, and after resolving symlinks still lies inside the
//! task directory; calls without a task directory (info, fingerprint) fail.

use std::path::{Component, Path, PathBuf};

use crate::driver_host::bindings::caravan::driver::host_fs::Host;
use crate::driver_host::host::bounded;
use crate::driver_host::instance::CallState;

/// Largest file `read-file` returns.
const MAX_READ_BYTES: u64 = 16 << 20;

/// Resolves `path` inside `task_dir`, refusing anything that could leave it.
pub(crate) fn resolve(task_dir: Option<&Path>, path: &str) -> Result<PathBuf, String> {
    let task_dir = task_dir.ok_or_else(|| String::from("this call has no task directory"))?;
    let relative = Path::new(path);
    if relative.is_absolute() {
        return Err(format!(
            "{path:?}: absolute paths are refused; paths are relative to the task directory"
        ));
    }
    if relative
        .components()
        .any(|component| !matches!(component, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!("{path:?}: `..` is refused"));
    }
    let joined = task_dir.join(relative);
    // Symlinks: the deepest existing ancestor must still be inside the task directory.
    let root = task_dir
        .canonicalize()
        .map_err(|err| format!("task directory {}: {err}", task_dir.display()))?;
    let existing = joined
        .ancestors()
        // `symlink_metadata`, not `exists`: a dangling symlink must be resolved (and fail), not
        // skipped, or a write would follow it out of the task directory.
        .find(|ancestor| ancestor.symlink_metadata().is_ok())
        .unwrap_or(task_dir);
    let real = existing
        .canonicalize()
        .map_err(|err| format!("{path:?}: {err}"))?;
    if !real.starts_with(&root) {
        return Err(format!("{path:?} leaves the task directory"));
    }
    Ok(joined)
}

fn io_error(path: &str) -> impl FnOnce(std::io::Error) -> String + '_ {
    move |err| format!("{path:?}: {err}")
}

impl Host for CallState {
    async fn read_file(&mut self, path: String) -> Result<Vec<u8>, String> {
        let full = resolve(self.task_dir.as_deref(), &path)?;
        bounded(self, "read-file", async {
            let metadata = tokio::fs::metadata(&full).await.map_err(io_error(&path))?;
            if metadata.len() > MAX_READ_BYTES {
                return Err(format!("{path:?}: larger than {MAX_READ_BYTES} bytes"));
            }
            tokio::fs::read(&full).await.map_err(io_error(&path))
        })
        .await
    }

    async fn write_file(&mut self, path: String, contents: Vec<u8>) -> Result<(), String> {
        let full = resolve(self.task_dir.as_deref(), &path)?;
        bounded(self, "write-file", async {
            tokio::fs::write(&full, contents)
                .await
                .map_err(io_error(&path))
        })
        .await
    }

    async fn exists(&mut self, path: String) -> bool {
        resolve(self.task_dir.as_deref(), &path).is_ok_and(|full| full.exists())
    }

    async fn create_dir(&mut self, path: String) -> Result<(), String> {
        let full = resolve(self.task_dir.as_deref(), &path)?;
        bounded(self, "create-dir", async {
            tokio::fs::create_dir_all(&full)
                .await
                .map_err(io_error(&path))
        })
        .await
    }

    async fn list_dir(&mut self, path: String) -> Result<Vec<String>, String> {
        let full = resolve(self.task_dir.as_deref(), &path)?;
        bounded(self, "list-dir", async {
            let mut entries = tokio::fs::read_dir(&full).await.map_err(io_error(&path))?;
            let mut names = Vec::new();
            while let Some(entry) = entries.next_entry().await.map_err(io_error(&path))? {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
            names.sort();
            Ok(names)
        })
        .await
    }

    async fn remove(&mut self, path: String) -> Result<(), String> {
        let full = resolve(self.task_dir.as_deref(), &path)?;
        let names_an_entry = Path::new(&path)
            .components()
            .any(|component| matches!(component, Component::Normal(_)));
        if !names_an_entry {
            return Err(String::from("the task directory itself cannot be removed"));
        }
        bounded(self, "remove", async {
            let metadata = tokio::fs::symlink_metadata(&full)
                .await
                .map_err(io_error(&path))?;
            if metadata.is_dir() {
                tokio::fs::remove_dir_all(&full)
                    .await
                    .map_err(io_error(&path))
            } else {
                tokio::fs::remove_file(&full).await.map_err(io_error(&path))
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_task_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("local")).expect("mkdir");
        let task_dir = Some(dir.path());
        assert_eq!(
            resolve(task_dir, "local/app.wasm").expect("inside"),
            dir.path().join("local/app.wasm")
        );
        assert!(resolve(task_dir, "/etc/passwd").is_err());
        assert!(resolve(task_dir, "local/../../etc").is_err());
        assert!(resolve(None, "local").is_err());
        std::os::unix::fs::symlink("/etc", dir.path().join("escape")).expect("symlink");
        std::os::unix::fs::symlink("/nonexistent/x", dir.path().join("dangling")).expect("symlink");
        assert!(
            resolve(task_dir, "dangling").is_err(),
            "a dangling symlink is not followed"
        );
        let err = resolve(task_dir, "escape/passwd").expect_err("symlink out");
        assert!(err.contains("leaves the task directory"), "{err}");
    }
}
