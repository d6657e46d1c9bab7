//! `allocfs`: the one way host code touches anything under an allocation directory.
//!
//! Task code writes under its allocation (a container, a WASI workload, a raw_exec process), so
//! any name there may have been replaced by a symbolic link, a FIFO or a directory at any moment.
//! A [`Root`] holds an open fd of a directory; every operation resolves its path *beneath* that
//! fd without following a single symbolic link (`openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`
//! where the kernel has it, else an `O_NOFOLLOW` walk one name at a time, see `resolve.rs`) and
//! then acts on the fd it got, or on one name in the fd of its parent (`unlinkat`, `mkdirat`,
//! `renameat`, `fstatat(AT_SYMLINK_NOFOLLOW)`), so there is no check-then-use race.
//!
//! **Invariant:** nothing here follows a symbolic link below the root, leaves the root, or opens
//! a FIFO or device as if it were a file; every refusal is an [`AllocFsError`] naming the path.
//! The root's own path is the operator's (trusted) and is opened as given.
//! **Boundary:** a leaf module: std, nix, libc and thiserror only.

mod error;
pub mod log_files;
mod path;
mod resolve;
#[cfg(test)]
mod tests;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::unistd::UnlinkatFlags;

pub use error::AllocFsError;
pub use path::{PathProblem, RelPath};

/// An open directory; paths given to its methods are resolved beneath it.
#[derive(Debug, Clone)]
pub struct Root {
    fd: Arc<OwnedFd>,
    path: PathBuf,
}

/// How [`Root::open_file`] opens a file (std's `OpenOptions`, plus the mode of a new file).
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    pub read: bool,
    pub write: bool,
    pub append: bool,
    pub create: bool,
    pub create_new: bool,
    pub truncate: bool,
    /// Mode of a created file (the process umask applies); 0 means 0o644.
    pub mode: u32,
}

impl OpenOptions {
    pub fn read() -> OpenOptions {
        OpenOptions {
            read: true,
            ..OpenOptions::default()
        }
    }

    /// Write from the start, creating the file and truncating what was there.
    pub fn write_truncate() -> OpenOptions {
        OpenOptions {
            write: true,
            create: true,
            truncate: true,
            ..OpenOptions::default()
        }
    }

    /// Append, creating the file if missing.
    pub fn append() -> OpenOptions {
        OpenOptions {
            write: true,
            append: true,
            create: true,
            ..OpenOptions::default()
        }
    }

    fn flags(&self) -> OFlag {
        let mut flags = match (self.read, self.write || self.append) {
            (true, true) => OFlag::O_RDWR,
            (false, true) => OFlag::O_WRONLY,
            _ => OFlag::O_RDONLY,
        };
        if self.append {
            flags |= OFlag::O_APPEND;
        }
        if self.create_new {
            flags |= OFlag::O_CREAT | OFlag::O_EXCL;
        } else if self.create {
            flags |= OFlag::O_CREAT;
        }
        if self.truncate {
            flags |= OFlag::O_TRUNC;
        }
        // A FIFO planted where a file was expected must not block the host; it is refused below.
        flags | OFlag::O_NONBLOCK | OFlag::O_NOCTTY
    }
}

/// What a path beneath a root is, never looking through a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// `lstat` of a path beneath a root.
#[derive(Debug, Clone, Copy)]
pub struct Metadata {
    pub kind: FileKind,
    pub len: u64,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub modified: SystemTime,
}

impl Metadata {
    fn from_stat(stat: &FileStat) -> Metadata {
        let format = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
        let kind = if format == SFlag::S_IFREG {
            FileKind::File
        } else if format == SFlag::S_IFDIR {
            FileKind::Dir
        } else if format == SFlag::S_IFLNK {
            FileKind::Symlink
        } else {
            FileKind::Other
        };
        let seconds = u64::try_from(stat.st_mtime).unwrap_or(0);
        let nanos = u32::try_from(stat.st_mtime_nsec).unwrap_or(0);
        Metadata {
            kind,
            len: u64::try_from(stat.st_size).unwrap_or(0),
            mode: stat.st_mode & 0o7777,
            modified: SystemTime::UNIX_EPOCH + std::time::Duration::new(seconds, nanos),
        }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Dir
    }

    pub fn is_file(&self) -> bool {
        self.kind == FileKind::File
    }
}

/// One entry of [`Root::list`].
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: OsString,
    pub metadata: Metadata,
}

impl Root {
    /// Opens the directory at `path` (the operator's or the host's own path: followed as given).
    pub fn open(path: impl AsRef<Path>) -> Result<Root, AllocFsError> {
        let path = path.as_ref().to_path_buf();
        let fd = nix::fcntl::open(
            &path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| error_at(&path, &RelPath::root(), errno))?;
        Ok(Root {
            fd: Arc::new(fd),
            path,
        })
    }

    /// Creates the directory at `path` and its parents if missing (host-chosen path), then opens
    /// it.
    pub fn create(path: impl AsRef<Path>) -> Result<Root, AllocFsError> {
        let path = path.as_ref();
        std::fs::create_dir_all(path).map_err(|source| AllocFsError::Io {
            path: ".".to_owned(),
            root: path.to_path_buf(),
            source,
        })?;
        Root::open(path)
    }

    /// The root's path, for messages and for handing to code that takes paths.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root's directory fd.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// A path naming this very directory through its fd (`/proc/self/fd/N`), valid while this
    /// `Root` (or a clone) lives in this process: for things that take a path (a child's working
    /// directory set before `exec`, a WASI preopen) so they get the directory that was opened,
    /// whatever was renamed or linked since.
    pub fn fd_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// The host path of `path` beneath the root, for messages and logs only.
    pub fn display_path(&self, path: &RelPath) -> PathBuf {
        if path.is_root() {
            self.path.clone()
        } else {
            self.path.join(path.to_path_buf())
        }
    }

    /// Parses a relative user path beneath this root.
    pub fn rel(&self, path: impl AsRef<Path>) -> Result<RelPath, AllocFsError> {
        let path = path.as_ref();
        RelPath::parse(path).map_err(|_| AllocFsError::Escapes {
            path: path.display().to_string(),
            root: self.path.clone(),
        })
    }

    /// Parses a path whose leading `/` is the root.
    pub fn rel_rooted(&self, path: impl AsRef<Path>) -> Result<RelPath, AllocFsError> {
        let path = path.as_ref();
        RelPath::parse_rooted(path).map_err(|_| AllocFsError::Escapes {
            path: path.display().to_string(),
            root: self.path.clone(),
        })
    }

    fn error(&self, path: &RelPath, errno: Errno) -> AllocFsError {
        // `O_DIRECTORY | O_NOFOLLOW` on a link says ENOTDIR: say "symbolic link" when one is on
        // the way. Diagnosis only; the operation has already failed.
        if errno == Errno::ENOTDIR && self.has_symlink_on(path) {
            return error_at(&self.path, path, Errno::ELOOP);
        }
        error_at(&self.path, path, errno)
    }

    fn has_symlink_on(&self, path: &RelPath) -> bool {
        let mut parent = RelPath::root();
        for name in path.names() {
            let Ok(parent_fd) =
                resolve::open_beneath(self.fd.as_fd(), &parent, resolve::DIR_FLAGS, Mode::empty())
            else {
                return false;
            };
            match nix::sys::stat::fstatat(
                &parent_fd,
                name.as_os_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(stat) if Metadata::from_stat(&stat).kind == FileKind::Symlink => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
            parent = parent.join_name(name);
        }
        false
    }

    fn open_raw(&self, path: &RelPath, flags: OFlag, mode: Mode) -> Result<OwnedFd, AllocFsError> {
        resolve::open_beneath(self.fd.as_fd(), path, flags, mode)
            .map_err(|errno| self.error(path, errno))
    }

    /// The directory at `path` as a root of its own.
    pub fn subdir(&self, path: &RelPath) -> Result<Root, AllocFsError> {
        let fd = self.open_raw(path, resolve::DIR_FLAGS, Mode::empty())?;
        Ok(Root {
            fd: Arc::new(fd),
            path: self.display_path(path),
        })
    }

    /// Opens the regular file at `path`.
    pub fn open_file(&self, path: &RelPath, options: OpenOptions) -> Result<File, AllocFsError> {
        if path.is_root() {
            return Err(AllocFsError::NotRegular {
                path: path.to_string(),
                root: self.path.clone(),
            });
        }
        let mode = if options.mode == 0 {
            0o644
        } else {
            options.mode
        };
        let fd = self.open_raw(path, options.flags(), Mode::from_bits_truncate(mode))?;
        let stat = nix::sys::stat::fstat(&fd).map_err(|errno| self.error(path, errno))?;
        if Metadata::from_stat(&stat).kind != FileKind::File {
            return Err(AllocFsError::NotRegular {
                path: path.to_string(),
                root: self.path.clone(),
            });
        }
        // Back to blocking I/O now that it is known to be a regular file.
        let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL)
            .map_err(|errno| self.error(path, errno))?;
        let flags = OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(flags))
            .map_err(|errno| self.error(path, errno))?;
        Ok(File::from(fd))
    }

    /// Creates a FIFO at `path` (an existing FIFO is kept; anything else there is an error).
    pub fn make_fifo(&self, path: &RelPath, mode: u32) -> Result<(), AllocFsError> {
        let Some((parent, name)) = path.split_last() else {
            return Err(self.not_regular(path));
        };
        let parent_fd = self.open_raw(&parent, resolve::DIR_FLAGS, Mode::empty())?;
        match nix::unistd::mkfifoat(&parent_fd, name, Mode::from_bits_truncate(mode)) {
            Ok(()) => Ok(()),
            Err(Errno::EEXIST) => {
                let stat = nix::sys::stat::fstatat(&parent_fd, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(|errno| self.error(path, errno))?;
                if SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFIFO
                {
                    Ok(())
                } else if Metadata::from_stat(&stat).kind == FileKind::Symlink {
                    Err(self.error(path, Errno::ELOOP))
                } else {
                    Err(self.not_regular(path))
                }
            }
            Err(errno) => Err(self.error(path, errno)),
        }
    }

    /// Opens the FIFO at `path`: read-write for a collector (it never sees end-of-file and
    /// writers never block on open), write-only (failing rather than blocking when no reader is
    /// there) for a writer. Anything but a FIFO is refused.
    pub fn open_fifo(&self, path: &RelPath, reader: bool) -> Result<OwnedFd, AllocFsError> {
        let access = if reader {
            OFlag::O_RDWR
        } else {
            OFlag::O_WRONLY
        };
        let fd = self.open_raw(path, access | OFlag::O_NONBLOCK, Mode::empty())?;
        let stat = nix::sys::stat::fstat(&fd).map_err(|errno| self.error(path, errno))?;
        if SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFIFO {
            return Err(self.not_regular(path));
        }
        let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL)
            .map_err(|errno| self.error(path, errno))?;
        let flags = OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(flags))
            .map_err(|errno| self.error(path, errno))?;
        Ok(fd)
    }

    /// Opens the unix socket at `path` as an `O_PATH` descriptor of the socket's own inode (a link
    /// in its place or on the way is refused, as is anything that is not a socket). Connecting
    /// to `/proc/self/fd/N` of it reaches exactly that socket, whatever the name holds by then.
    pub fn open_socket(&self, path: &RelPath) -> Result<OwnedFd, AllocFsError> {
        if path.is_root() {
            return Err(self.not_regular(path));
        }
        let fd = self.open_raw(path, OFlag::O_PATH, Mode::empty())?;
        let stat = nix::sys::stat::fstat(&fd).map_err(|errno| self.error(path, errno))?;
        match SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFSOCK => Ok(fd),
            SFlag::S_IFLNK => Err(self.error(path, Errno::ELOOP)),
            _ => Err(self.not_regular(path)),
        }
    }

    /// The inode of `path` (not followed), to notice when a name is replaced.
    pub fn inode(&self, path: &RelPath) -> Result<u64, AllocFsError> {
        let Some((parent, name)) = path.split_last() else {
            let stat =
                nix::sys::stat::fstat(self.fd.as_fd()).map_err(|errno| self.error(path, errno))?;
            return Ok(stat.st_ino);
        };
        let parent_fd = self.open_raw(&parent, resolve::DIR_FLAGS, Mode::empty())?;
        let stat = nix::sys::stat::fstatat(&parent_fd, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|errno| self.error(path, errno))?;
        Ok(stat.st_ino)
    }

    fn not_regular(&self, path: &RelPath) -> AllocFsError {
        AllocFsError::NotRegular {
            path: path.to_string(),
            root: self.path.clone(),
        }
    }

    /// Reads the regular file at `path`, refusing one larger than `limit` bytes.
    pub fn read(&self, path: &RelPath, limit: u64) -> Result<Vec<u8>, AllocFsError> {
        let file = self.open_file(path, OpenOptions::read())?;
        let mut contents = Vec::new();
        file.take(limit.saturating_add(1))
            .read_to_end(&mut contents)
            .map_err(|source| self.io(path, source))?;
        if u64::try_from(contents.len()).unwrap_or(u64::MAX) > limit {
            return Err(AllocFsError::TooLarge {
                path: path.to_string(),
                root: self.path.clone(),
                limit,
            });
        }
        Ok(contents)
    }

    /// Creates or truncates the regular file at `path` and writes `contents`.
    pub fn write(&self, path: &RelPath, contents: &[u8]) -> Result<(), AllocFsError> {
        use std::io::Write;
        let mut file = self.open_file(path, OpenOptions::write_truncate())?;
        file.write_all(contents)
            .map_err(|source| self.io(path, source))
    }

    /// `lstat` of `path`: a symbolic link is reported as one, never followed.
    pub fn metadata(&self, path: &RelPath) -> Result<Metadata, AllocFsError> {
        let stat = match path.split_last() {
            None => nix::sys::stat::fstat(self.fd.as_fd()),
            Some((parent, name)) => {
                let parent_fd = self.open_raw(&parent, resolve::DIR_FLAGS, Mode::empty())?;
                nix::sys::stat::fstatat(&parent_fd, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            }
        }
        .map_err(|errno| self.error(path, errno))?;
        Ok(Metadata::from_stat(&stat))
    }

    /// Whether `path` exists (a symbolic link counts as existing).
    pub fn exists(&self, path: &RelPath) -> Result<bool, AllocFsError> {
        match self.metadata(path) {
            Ok(_) => Ok(true),
            Err(err) if err.is_not_found() => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// The entries of the directory at `path` (not `.` and `..`), sorted by name.
    pub fn list(&self, path: &RelPath) -> Result<Vec<DirEntry>, AllocFsError> {
        let dir_fd = self.open_raw(path, resolve::DIR_FLAGS, Mode::empty())?;
        let names = read_names(dir_fd.as_fd()).map_err(|errno| self.error(path, errno))?;
        let mut entries = Vec::with_capacity(names.len());
        for name in names {
            match nix::sys::stat::fstatat(&dir_fd, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) => entries.push(DirEntry {
                    name,
                    metadata: Metadata::from_stat(&stat),
                }),
                // Removed between the listing and the stat.
                Err(Errno::ENOENT) => {}
                Err(errno) => return Err(self.error(&path.join_name(&name), errno)),
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Creates the directory at `path` and every missing one above it with `mode`; a symbolic
    /// link on the way is refused, not followed. Returns the directory as a root.
    pub fn create_dir_all(&self, path: &RelPath, mode: u32) -> Result<Root, AllocFsError> {
        let mode = Mode::from_bits_truncate(mode);
        let mut current: Option<OwnedFd> = None;
        let mut walked = RelPath::root();
        for name in path.names() {
            walked = walked.join_name(name);
            let at = current.as_ref().map_or(self.fd.as_fd(), |fd| fd.as_fd());
            let opened =
                match nix::fcntl::openat(at, name.as_os_str(), resolve::DIR_FLAGS, Mode::empty()) {
                    Err(Errno::ENOENT) => {
                        match nix::sys::stat::mkdirat(at, name.as_os_str(), mode) {
                            Ok(()) | Err(Errno::EEXIST) => {}
                            Err(errno) => return Err(self.error(&walked, errno)),
                        }
                        nix::fcntl::openat(at, name.as_os_str(), resolve::DIR_FLAGS, Mode::empty())
                    }
                    other => other,
                };
            current = Some(opened.map_err(|errno| self.error(&walked, errno))?);
        }
        let fd = match current {
            Some(fd) => fd,
            None => nix::unistd::dup(self.fd.as_fd()).map_err(|errno| self.error(path, errno))?,
        };
        Ok(Root {
            fd: Arc::new(fd),
            path: self.display_path(path),
        })
    }

    /// Creates a symbolic link at `path` holding `target` as given. The link is never followed
    /// here; deciding whether `target` is acceptable is the caller's business.
    pub fn symlink(&self, target: &Path, path: &RelPath) -> Result<(), AllocFsError> {
        let Some((parent, name)) = path.split_last() else {
            return Err(AllocFsError::IsRoot {
                path: path.to_string(),
                root: self.path.clone(),
                operation: "replaced by a link",
            });
        };
        let parent_fd = self.open_raw(&parent, resolve::DIR_FLAGS, Mode::empty())?;
        nix::unistd::symlinkat(target, &parent_fd, name).map_err(|errno| self.error(path, errno))
    }

    /// Sets the permission bits of the file or directory at `path` (never through a link).
    pub fn set_mode(&self, path: &RelPath, mode: u32) -> Result<(), AllocFsError> {
        let fd = self.open_raw(
            path,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
            Mode::empty(),
        )?;
        let stat = nix::sys::stat::fstat(&fd).map_err(|errno| self.error(path, errno))?;
        if !matches!(
            Metadata::from_stat(&stat).kind,
            FileKind::File | FileKind::Dir
        ) {
            return Err(AllocFsError::NotRegular {
                path: path.to_string(),
                root: self.path.clone(),
            });
        }
        nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(mode))
            .map_err(|errno| self.error(path, errno))
    }

    /// Removes the file, symbolic link (not its target) or empty-or-not directory at `path`.
    pub fn remove(&self, path: &RelPath) -> Result<(), AllocFsError> {
        let Some((parent, name)) = path.split_last() else {
            return Err(AllocFsError::IsRoot {
                path: path.to_string(),
                root: self.path.clone(),
                operation: "removed",
            });
        };
        let parent_fd = self.open_raw(&parent, resolve::DIR_FLAGS, Mode::empty())?;
        remove_entry(parent_fd.as_fd(), name).map_err(|errno| self.error(path, errno))
    }

    /// Removes everything inside the root, leaving the root directory itself.
    pub fn clear(&self) -> Result<(), AllocFsError> {
        clear_dir(self.fd.as_fd()).map_err(|errno| self.error(&RelPath::root(), errno))
    }

    /// Renames `from` to `to` (both beneath the root). A link at either end is renamed or
    /// replaced itself, never followed.
    pub fn rename(&self, from: &RelPath, to: &RelPath) -> Result<(), AllocFsError> {
        let ((from_parent, from_name), (to_parent, to_name)) =
            match (from.split_last(), to.split_last()) {
                (Some(from), Some(to)) => (from, to),
                _ => {
                    return Err(AllocFsError::IsRoot {
                        path: from.to_string(),
                        root: self.path.clone(),
                        operation: "renamed",
                    });
                }
            };
        let from_fd = self.open_raw(&from_parent, resolve::DIR_FLAGS, Mode::empty())?;
        let to_fd = self.open_raw(&to_parent, resolve::DIR_FLAGS, Mode::empty())?;
        nix::fcntl::renameat(&from_fd, from_name, &to_fd, to_name)
            .map_err(|errno| self.error(from, errno))
    }

    fn io(&self, path: &RelPath, source: std::io::Error) -> AllocFsError {
        AllocFsError::Io {
            path: path.to_string(),
            root: self.path.clone(),
            source,
        }
    }
}

/// The names in the directory `dir` (its offset is shared, so a fresh fd is opened to read).
fn read_names(dir: BorrowedFd<'_>) -> Result<Vec<OsString>, Errno> {
    let fresh = nix::fcntl::openat(dir, ".", resolve::DIR_FLAGS, Mode::empty())?;
    let mut listing = nix::dir::Dir::from_fd(fresh)?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(names)
}

/// Unlinks `name` in `parent`; a directory (a real one, never a link) is emptied first.
fn remove_entry(parent: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    let stat = nix::sys::stat::fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    if Metadata::from_stat(&stat).kind != FileKind::Dir {
        return nix::unistd::unlinkat(parent, name, UnlinkatFlags::NoRemoveDir);
    }
    match nix::fcntl::openat(parent, name, resolve::DIR_FLAGS, Mode::empty()) {
        Ok(child) => clear_dir(child.as_fd())?,
        // Swapped for a link or file since the stat: remove that instead.
        Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
            return nix::unistd::unlinkat(parent, name, UnlinkatFlags::NoRemoveDir);
        }
        Err(errno) => return Err(errno),
    }
    nix::unistd::unlinkat(parent, name, UnlinkatFlags::RemoveDir)
}

fn clear_dir(dir: BorrowedFd<'_>) -> Result<(), Errno> {
    for name in read_names(dir)? {
        match remove_entry(dir, &name) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

fn error_at(root: &Path, path: &RelPath, errno: Errno) -> AllocFsError {
    let root = root.to_path_buf();
    let path = path.to_string();
    match errno {
        Errno::ELOOP => AllocFsError::Symlink { path, root },
        Errno::EXDEV => AllocFsError::Escapes { path, root },
        Errno::ENOENT => AllocFsError::NotFound { path, root },
        Errno::ENOTDIR => AllocFsError::NotADirectory { path, root },
        // A FIFO with no reader opened for writing with O_NONBLOCK.
        Errno::ENXIO => AllocFsError::NotRegular { path, root },
        errno => AllocFsError::Io {
            path,
            root,
            source: std::io::Error::from(errno),
        },
    }
}
