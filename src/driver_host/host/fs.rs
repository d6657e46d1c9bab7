//! Capability `host-fs`: files inside the current call's task directory, nothing else.
//!
//! Invariant: a path is relative and has no `..` (refused at the front door, with a message the
//! driver can act on), and every operation then goes through [`crate::allocfs`] beneath an fd of
//! the task directory: no symbolic link under it is ever followed, so a link planted (or swapped
//! in concurrently) by task code cannot take a read or write outside. Calls without a task
//! directory (info, fingerprint) fail.

use std::path::{Component, Path};

use crate::allocfs::{RelPath, Root};
use crate::driver_host::bindings::caravan::driver::host_fs::Host;
use crate::driver_host::host::bounded;
use crate::driver_host::instance::CallState;

/// Largest file `read-file` returns.
const MAX_READ_BYTES: u64 = 16 << 20;

/// Checks `path` as the driver gave it: relative, no `..`.
pub(crate) fn check_path(path: &str) -> Result<RelPath, String> {
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
    RelPath::parse(relative).map_err(|problem| format!("{path:?}: {problem:?}"))
}

/// The task directory of this call and `path` beneath it.
fn open(task_dir: Option<&Path>, path: &str) -> Result<(Root, RelPath), String> {
    let task_dir = task_dir.ok_or_else(|| String::from("this call has no task directory"))?;
    let relative = check_path(path)?;
    let root = Root::open(task_dir).map_err(|err| err.to_string())?;
    Ok((root, relative))
}

/// Runs a blocking file operation beneath the task directory off the async threads.
async fn blocking<T: Send + 'static>(
    operation: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(operation)
        .await
        .map_err(|err| format!("file operation failed: {err}"))?
}

impl Host for CallState {
    async fn read_file(&mut self, path: String) -> Result<Vec<u8>, String> {
        let (root, relative) = open(self.task_dir.as_deref(), &path)?;
        bounded(
            self,
            "read-file",
            blocking(move || {
                root.read(&relative, MAX_READ_BYTES)
                    .map_err(|err| err.to_string())
            }),
        )
        .await
    }

    async fn write_file(&mut self, path: String, contents: Vec<u8>) -> Result<(), String> {
        let (root, relative) = open(self.task_dir.as_deref(), &path)?;
        bounded(
            self,
            "write-file",
            blocking(move || {
                root.write(&relative, &contents)
                    .map_err(|err| err.to_string())
            }),
        )
        .await
    }

    async fn exists(&mut self, path: String) -> bool {
        let Ok((root, relative)) = open(self.task_dir.as_deref(), &path) else {
            return false;
        };
        // A link is reported as absent: nothing in this interface can use it.
        blocking(move || {
            Ok(root
                .metadata(&relative)
                .is_ok_and(|metadata| metadata.kind != crate::allocfs::FileKind::Symlink))
        })
        .await
        .unwrap_or(false)
    }

    async fn create_dir(&mut self, path: String) -> Result<(), String> {
        let (root, relative) = open(self.task_dir.as_deref(), &path)?;
        bounded(
            self,
            "create-dir",
            blocking(move || {
                root.create_dir_all(&relative, 0o755)
                    .map(drop)
                    .map_err(|err| err.to_string())
            }),
        )
        .await
    }

    async fn list_dir(&mut self, path: String) -> Result<Vec<String>, String> {
        let (root, relative) = open(self.task_dir.as_deref(), &path)?;
        bounded(
            self,
            "list-dir",
            blocking(move || {
                let entries = root.list(&relative).map_err(|err| err.to_string())?;
                Ok(entries
                    .into_iter()
                    .map(|entry| entry.name.to_string_lossy().into_owned())
                    .collect())
            }),
        )
        .await
    }

    async fn remove(&mut self, path: String) -> Result<(), String> {
        let (root, relative) = open(self.task_dir.as_deref(), &path)?;
        if relative.is_root() {
            return Err(String::from("the task directory itself cannot be removed"));
        }
        bounded(
            self,
            "remove",
            blocking(move || root.remove(&relative).map_err(|err| err.to_string())),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[test]
    fn paths_stay_inside_the_task_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("local")).expect("mkdir");
        let task_dir = Some(dir.path());
        let (root, relative) = open(task_dir, "local/app.wasm").expect("inside");
        assert_eq!(
            root.display_path(&relative),
            dir.path().join("local/app.wasm")
        );
        assert!(open(task_dir, "/etc/passwd").is_err());
        assert!(open(task_dir, "local/../../etc").is_err());
        assert!(open(None, "local").is_err());
        symlink("/etc", dir.path().join("escape")).expect("symlink");
        symlink("/nonexistent/x", dir.path().join("dangling")).expect("symlink");
        let (root, dangling) = open(task_dir, "dangling").expect("parses");
        assert!(
            root.write(&dangling, b"x").is_err(),
            "a dangling link is not followed"
        );
        let (root, escape) = open(task_dir, "escape/passwd").expect("parses");
        let err = root.read(&escape, 1 << 20).expect_err("symlink out");
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }

    /// The race: a thread swaps `local/out` between a directory and a link to an
    /// outside directory 4,000 times while the host writes through it; nothing lands outside.
    #[test]
    fn writes_never_land_outside_under_a_concurrent_swapper() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).expect("mkdir");
        let secret = outside.join("target");
        std::fs::write(&secret, "secret").expect("write");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let task_dir = dir.path().join("task");
        std::fs::create_dir_all(task_dir.join("local/out")).expect("mkdir");
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let stop = Arc::clone(&stop);
            let local = task_dir.join("local");
            let outside = outside.clone();
            std::thread::spawn(move || {
                let mut swaps = 0u32;
                while swaps < 4_000 && !stop.load(Ordering::Relaxed) {
                    // Real directory <-> link to the outside, by rename so each state is whole.
                    let _ = std::fs::remove_file(local.join("link"));
                    let _ = symlink(&outside, local.join("link"));
                    let _ = std::fs::rename(local.join("out"), local.join("real"));
                    let _ = std::fs::rename(local.join("link"), local.join("out"));
                    let _ = std::fs::rename(local.join("out"), local.join("link"));
                    let _ = std::fs::rename(local.join("real"), local.join("out"));
                    swaps += 1;
                }
                swaps
            })
        };
        let mut attempts = 0u32;
        while !swapper.is_finished() {
            let (root, relative) = open(Some(&task_dir), "local/out/target").expect("path");
            let _ = root.write(&relative, b"pwned");
            let _ = root.read(&relative, 1 << 20);
            attempts += 1;
        }
        stop.store(true, Ordering::Relaxed);
        assert_eq!(swapper.join().expect("swapper"), 4_000);
        assert!(attempts > 0);
        assert_eq!(std::fs::read_to_string(&secret).expect("secret"), "secret");
        let names: Vec<_> = std::fs::read_dir(&outside)
            .expect("ls")
            .flatten()
            .map(|entry| entry.file_name())
            .collect();
        assert_eq!(names, ["target"]);
    }
}
