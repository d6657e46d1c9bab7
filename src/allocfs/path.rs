//! [`RelPath`]: a path beneath a root, normalised lexically to plain names only.
//!
//! `..` is resolved against the names before it, which is exact here because the layer never
//! follows a symbolic link: with no link on the way, `a/b/..` is `a`. A `..` that would climb
//! above the root, an absolute path and a NUL byte are refused.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// A normalised path beneath a root: zero or more plain names (zero names is the root itself).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RelPath {
    names: Vec<OsString>,
}

/// Why a path is not a [`RelPath`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    Absolute,
    ClimbsAbove,
    Nul,
}

impl RelPath {
    /// Parses a relative path; absolute paths are refused.
    pub fn parse(path: impl AsRef<Path>) -> Result<RelPath, PathProblem> {
        let path = path.as_ref();
        if path.is_absolute() {
            return Err(PathProblem::Absolute);
        }
        RelPath::parse_components(path)
    }

    /// Parses a path whose leading `/` means the root (as the `/v1/client/fs` routes take them).
    pub fn parse_rooted(path: impl AsRef<Path>) -> Result<RelPath, PathProblem> {
        RelPath::parse_components(path.as_ref())
    }

    fn parse_components(path: &Path) -> Result<RelPath, PathProblem> {
        if path.as_os_str().as_bytes().contains(&0) {
            return Err(PathProblem::Nul);
        }
        let mut names = Vec::new();
        for component in path.components() {
            match component {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    if names.pop().is_none() {
                        return Err(PathProblem::ClimbsAbove);
                    }
                }
                Component::Normal(name) => names.push(name.to_os_string()),
            }
        }
        Ok(RelPath { names })
    }

    /// The root itself.
    pub fn root() -> RelPath {
        RelPath::default()
    }

    pub fn is_root(&self) -> bool {
        self.names.is_empty()
    }

    pub fn names(&self) -> &[OsString] {
        &self.names
    }

    /// The last name and the path of its directory; `None` for the root.
    pub fn split_last(&self) -> Option<(RelPath, &OsStr)> {
        let (last, parent) = self.names.split_last()?;
        Some((
            RelPath {
                names: parent.to_vec(),
            },
            last.as_os_str(),
        ))
    }

    /// This path with `name` appended (`name` must be one plain name).
    pub fn join_name(&self, name: &OsStr) -> RelPath {
        let mut names = self.names.clone();
        names.push(name.to_os_string());
        RelPath { names }
    }

    /// As a relative `PathBuf` (`.` for the root), for system calls and messages.
    pub fn to_path_buf(&self) -> PathBuf {
        if self.names.is_empty() {
            return PathBuf::from(".");
        }
        self.names.iter().collect()
    }
}

impl std::fmt::Display for RelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_path_buf().display())
    }
}
