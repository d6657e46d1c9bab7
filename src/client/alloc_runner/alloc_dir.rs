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
//! refuses user paths that would leave it.

use std::io;
use std::path::{Component, Path, PathBuf};

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

    /// Creates `alloc/{logs,tmp,data}`; idempotent.
    pub fn build(&self) -> io::Result<()> {
        for sub in ["logs", "tmp", "data"] {
            std::fs::create_dir_all(self.shared_dir().join(sub))?;
        }
        Ok(())
    }

    /// Creates `<task>/{local,secrets,tmp}`; idempotent.
    pub fn build_task_dir(&self, task: &str) -> io::Result<PathBuf> {
        // Task names are checked in validation; this holds even for one that slipped past: the
        // task dir is exactly one plain component below the allocation's root.
        let mut components = Path::new(task).components();
        if !matches!(
            (components.next(), components.next()),
            (Some(Component::Normal(_)), None)
        ) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("task name {task:?} is not a single path component"),
            ));
        }
        let task_dir = self.task_dir(task);
        for sub in ["local", "secrets", "tmp"] {
            std::fs::create_dir_all(task_dir.join(sub))?;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            task_dir.join("secrets"),
            std::fs::Permissions::from_mode(0o700),
        )?;
        Ok(task_dir)
    }

    /// Removes the whole tree.
    pub fn destroy(&self) -> io::Result<()> {
        match std::fs::remove_dir_all(&self.root) {
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
