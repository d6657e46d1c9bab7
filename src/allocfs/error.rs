//! [`AllocFsError`]: why an operation beneath an allocation directory was refused or failed,
//! always naming the path (relative to the root it was resolved under).

use std::io;
use std::path::PathBuf;

/// An operation beneath a [`super::Root`] that did not happen, and why.
#[derive(Debug, thiserror::Error)]
pub enum AllocFsError {
    /// The path is absolute or climbs above the root with `..`.
    #[error("{path:?} leaves {root}")]
    Escapes { path: String, root: PathBuf },
    /// A component of the path (the last one included) is a symbolic link. Links under an
    /// allocation may have been planted by task code, so the host never follows them.
    #[error("{path:?} under {root}: a symbolic link is in the way; links are never followed here")]
    Symlink { path: String, root: PathBuf },
    #[error("{path:?} under {root}: not found")]
    NotFound { path: String, root: PathBuf },
    /// A component that must be a directory is not one.
    #[error("{path:?} under {root}: not a directory")]
    NotADirectory { path: String, root: PathBuf },
    /// The path names a FIFO, device or socket where a regular file (or directory) was needed.
    #[error("{path:?} under {root}: not a regular file")]
    NotRegular { path: String, root: PathBuf },
    #[error("{path:?} under {root}: larger than {limit} bytes")]
    TooLarge {
        path: String,
        root: PathBuf,
        limit: u64,
    },
    /// The operation needs a name but the path is the root itself.
    #[error("{path:?}: the root {root} itself cannot be {operation}")]
    IsRoot {
        path: String,
        root: PathBuf,
        operation: &'static str,
    },
    #[error("{path:?} under {root}: {source}")]
    Io {
        path: String,
        root: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl AllocFsError {
    /// True when the path (or a directory on it) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, AllocFsError::NotFound { .. })
    }

    /// True when the operation was refused because it would have left the root or followed a
    /// symbolic link.
    pub fn is_refused(&self) -> bool {
        matches!(
            self,
            AllocFsError::Escapes { .. } | AllocFsError::Symlink { .. }
        )
    }

    /// The error as an `io::Error` of a matching kind, for callers that speak `io`.
    pub fn into_io(self) -> io::Error {
        let kind = match &self {
            AllocFsError::NotFound { .. } => io::ErrorKind::NotFound,
            AllocFsError::Escapes { .. } | AllocFsError::Symlink { .. } => {
                io::ErrorKind::PermissionDenied
            }
            AllocFsError::NotADirectory { .. } => io::ErrorKind::NotADirectory,
            AllocFsError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, self)
    }
}

impl From<AllocFsError> for io::Error {
    fn from(err: AllocFsError) -> io::Error {
        err.into_io()
    }
}
