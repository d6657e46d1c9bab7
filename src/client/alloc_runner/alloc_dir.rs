//! The allocation directory, laid out as Nomad's (`client/allocdir`):
//!
//! ```text
//! <data_dir>/alloc/<alloc_id>/
//!   alloc/            shared by the group's tasks (NOMAD_ALLOC_DIR)
//!     logs/           <task>.stdout.N, <task>.stderr.N
//!     tmp/  data/
//!   <task>/           the task dir: the driver's working directory
//!     local/          NOMAD_TASK_DIR
//!     secrets/        NOMAD_SECRETS_DIR (mode 0700)
//!     tmp/
//! ```
//!
//! **Invariant:** every path handed out is under the allocation's root; [`AllocDir::resolve`]
//! refuses user paths that would leave it. Everything the host creates, changes or removes under
//! the root goes through [`crate::allocfs`] beneath an fd of the root, so a symbolic link planted
//! by a task (`secrets -> /etc`) is refused, never followed.

use std::io;
use std::path::{Component, Path, PathBuf};

use crate::allocfs::{RelPath, Root};

/// What the operator lets the host do with files on tasks' behalf.
#[derive(Debug, Clone, Default)]
pub struct TaskFilesConfig {
    /// `client { artifact { file_allowlist = [...] } }`: the directories `file://` artifact
    /// sources may be read from; empty refuses every `file://` source.
    pub artifact_file_allowlist: Vec<PathBuf>,
    /// `client { artifact { ... } }`: the limits on what one artifact may fetch and unpack.
    pub artifact_limits: crate::client::task_runner::artifact_hook::ArtifactLimits,
    /// Where log collectors run.
    pub log_collector: crate::client::task_runner::log_collector::CollectorMode,
}

/// One allocation's directory tree.
#[derive(Debug, Clone)]
pub struct AllocDir {
    root: PathBuf,
}

impl AllocDir {
    /// The directory of `alloc_id` under `alloc_root` (the client's `alloc_dir`, by default
    /// `<data_dir>/alloc`).
    pub fn new(alloc_root: &Path, alloc_id: &str) -> AllocDir {
        AllocDir {
            root: alloc_root.join(alloc_id),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The shared `alloc/` directory.
    pub fn shared_dir(&self) -> PathBuf {
        self.root.join("alloc")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("alloc").join("logs")
    }

    pub fn task_dir(&self, task: &str) -> PathBuf {
        self.root.join(task)
    }

    /// The allocation's root, opened (it must exist: see [`AllocDir::build`]).
    pub fn open_root(&self) -> io::Result<Root> {
        Ok(Root::open(&self.root)?)
    }

    /// Creates `alloc/{logs,tmp,data}`; idempotent.
    pub fn build(&self) -> io::Result<()> {
        let root = Root::create(&self.root)?;
        for sub in ["alloc/logs", "alloc/tmp", "alloc/data"] {
            root.create_dir_all(&RelPath::parse(sub).map_err(invalid)?, 0o755)?;
        }
        Ok(())
    }

    /// Creates `<task>/{local,secrets,tmp}` beneath the root without following a link a task
    /// may have planted in their place; idempotent. `secrets/` gets mode 0700.
    pub fn build_task_dir(&self, task: &str) -> io::Result<PathBuf> {
        // The name is checked before anything is touched: a task dir is exactly one plain
        // component below the allocation's root.
        let task_rel = RelPath::parse(task).map_err(invalid)?;
        if task_rel.names().len() != 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("task name {task:?} is not one path component"),
            ));
        }
        let root = self.open_root()?;
        for sub in ["local", "secrets", "tmp"] {
            let dir = task_rel.join_name(std::ffi::OsStr::new(sub));
            root.create_dir_all(&dir, 0o755)?;
        }
        root.set_mode(&task_rel.join_name(std::ffi::OsStr::new("secrets")), 0o700)?;
        Ok(self.task_dir(task))
    }

    /// Removes the whole tree; links inside are removed, never followed.
    pub fn destroy(&self) -> io::Result<()> {
        let root = match Root::open(&self.root) {
            Ok(root) => root,
            Err(err) if err.is_not_found() => return Ok(()),
            Err(err) => return Err(err.into()),
        };
        root.clear()?;
        match std::fs::remove_dir(&self.root) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    /// A user-supplied relative path (`alloc/logs/web.stdout.0`, `/web/local`) inside the
    /// allocation dir; `None` if it would leave it.
    pub fn resolve(&self, relative: &str) -> Option<PathBuf> {
        resolve_under(&self.root, relative)
    }
}

fn invalid(problem: crate::allocfs::PathProblem) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{problem:?}"))
}

/// `relative` joined under `base` lexically, refusing `..` that climbs out of `base`.
pub fn resolve_under(base: &Path, relative: &str) -> Option<PathBuf> {
    let mut path = base.to_path_buf();
    let mut depth = 0usize;
    for component in Path::new(relative).components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if depth == 0 {
                    return None;
                }
                depth -= 1;
                path.pop();
            }
            Component::Normal(part) => {
                depth += 1;
                path.push(part);
            }
        }
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_dirs_stay_under_the_allocation() -> io::Result<()> {
        let data = tempfile::tempdir()?;
        let alloc_dir = AllocDir::new(&data.path().join("alloc"), "a1");
        for name in ["..", ".", "", "a/b", "/etc", "../../x"] {
            let error = alloc_dir.build_task_dir(name).expect_err(name);
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
        assert!(!data.path().join("alloc/local").exists());
        Ok(())
    }

    #[test]
    fn builds_nomads_layout() -> io::Result<()> {
        let data = tempfile::tempdir()?;
        let alloc_dir = AllocDir::new(&data.path().join("alloc"), "a1");
        alloc_dir.build()?;
        alloc_dir.build_task_dir("web")?;
        for sub in [
            "alloc/logs",
            "alloc/tmp",
            "alloc/data",
            "web/local",
            "web/secrets",
            "web/tmp",
        ] {
            assert!(data.path().join("alloc/a1").join(sub).is_dir(), "{sub}");
        }
        Ok(())
    }

    #[test]
    fn planted_links_are_not_followed_on_restart() -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let data = tempfile::tempdir()?;
        let outside = data.path().join("outside");
        std::fs::create_dir(&outside)?;
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o755))?;
        let alloc_dir = AllocDir::new(&data.path().join("alloc"), "a1");
        alloc_dir.build()?;
        alloc_dir.build_task_dir("web")?;
        // A task replaces its secrets/ by a link to a directory outside, then restarts.
        let secrets = alloc_dir.task_dir("web").join("secrets");
        std::fs::remove_dir(&secrets)?;
        std::os::unix::fs::symlink(&outside, &secrets)?;
        let err = alloc_dir.build_task_dir("web").expect_err("refused");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let mode = std::fs::metadata(&outside)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "the outside directory was not chmodded");
        // Destroying the allocation removes the link, not the outside directory.
        std::fs::write(outside.join("keep"), "x")?;
        alloc_dir.destroy()?;
        assert!(!alloc_dir.root().exists());
        assert_eq!(std::fs::read_to_string(outside.join("keep"))?, "x");
        Ok(())
    }

    #[test]
    fn user_paths_stay_inside() {
        let alloc_dir = AllocDir::new(Path::new("/d/alloc"), "a1");
        assert_eq!(
            alloc_dir.resolve("/alloc/logs/../logs/x"),
            Some(PathBuf::from("/d/alloc/a1/alloc/logs/x"))
        );
        assert_eq!(alloc_dir.resolve("../../etc/passwd"), None);
        assert_eq!(alloc_dir.resolve("web/../../a2"), None);
        assert_eq!(alloc_dir.resolve("/"), Some(PathBuf::from("/d/alloc/a1")));
    }
}
