//! Opening a [`RelPath`] beneath a directory fd without following any symbolic link:
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` where the kernel has it (Linux 5.6+), else a
//! walk that opens one name at a time with `O_NOFOLLOW` from the previous directory's fd. Both
//! are race-free: nothing is checked by path and then opened again.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use super::path::RelPath;

/// 0: not probed yet, 1: openat2 works, 2: the kernel (or a seccomp filter) lacks it.
static OPENAT2: AtomicU8 = AtomicU8::new(0);

/// Flags every directory on the way is opened with.
pub(super) const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Opens `path` beneath `dir` with `flags` (`O_NOFOLLOW` and `O_CLOEXEC` are always added).
pub(super) fn open_beneath(
    dir: BorrowedFd<'_>,
    path: &RelPath,
    flags: OFlag,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    if path.is_root() {
        return nix::fcntl::openat(dir, ".", flags & !OFlag::O_CREAT & !OFlag::O_EXCL, mode);
    }
    if OPENAT2.load(Ordering::Relaxed) != 2 {
        match open_with_openat2(dir, path, flags, mode) {
            Err(Errno::ENOSYS) | Err(Errno::EPERM) if OPENAT2.load(Ordering::Relaxed) == 0 => {
                OPENAT2.store(2, Ordering::Relaxed);
            }
            result => {
                OPENAT2.store(1, Ordering::Relaxed);
                return result;
            }
        }
    }
    open_by_walking(dir, path, flags, mode)
}

fn open_with_openat2(
    dir: BorrowedFd<'_>,
    path: &RelPath,
    flags: OFlag,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let mut how = OpenHow::new().flags(flags).resolve(
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_SYMLINKS
            | ResolveFlag::RESOLVE_NO_MAGICLINKS,
    );
    // openat2 refuses a mode without O_CREAT.
    if flags.contains(OFlag::O_CREAT) {
        how = how.mode(mode);
    }
    let relative = path.to_path_buf();
    // EAGAIN: a concurrent rename or mount raced the lookup; the kernel asks to try again.
    let mut attempts = 0;
    loop {
        match nix::fcntl::openat2(dir, &relative, how) {
            Err(Errno::EAGAIN) if attempts < 8 => attempts += 1,
            result => return result,
        }
    }
}

/// The fallback: each directory opened with `O_NOFOLLOW | O_DIRECTORY` from its parent's fd.
pub(super) fn open_by_walking(
    dir: BorrowedFd<'_>,
    path: &RelPath,
    flags: OFlag,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let Some((last, parents)) = path.names().split_last() else {
        return nix::fcntl::openat(dir, ".", flags, mode);
    };
    let mut current: Option<OwnedFd> = None;
    for name in parents {
        let at = current.as_ref().map_or(dir, |fd| fd.as_fd());
        current = Some(nix::fcntl::openat(
            at,
            name.as_os_str(),
            DIR_FLAGS,
            Mode::empty(),
        )?);
    }
    let at = current.as_ref().map_or(dir, |fd| fd.as_fd());
    nix::fcntl::openat(at, last.as_os_str(), flags, mode)
}
