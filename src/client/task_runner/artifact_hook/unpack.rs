//! Unpacking a fetched archive (`.tar.gz`/`.tgz`, `.tar`, `.zip`, single-file `.gz`) beneath a
//! directory, with go-getter's rules for which file names are archives.
//!
//! **Invariant:** the archive is untrusted (the job submitter writes it). Every entry is written
//! through [`crate::allocfs`] beneath the unpack root: an entry naming an absolute path or
//! climbing out with `..` is refused, no write goes through a symbolic link (one planted by an
//! earlier entry included), a symbolic link entry is created only when its target stays beneath
//! the root, a hard link entry becomes a copy of a file already unpacked, devices and FIFOs are
//! refused, setuid/setgid/sticky bits and ownership are dropped, and the client's
//! `decompression_file_count_limit` and `decompression_size_limit` are enforced on the entries
//! created and the bytes really written (never on what a header claims).

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use super::{ArtifactError, ArtifactLimits};
use crate::allocfs::{OpenOptions, RelPath, Root};

/// The archive formats unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Tar,
    TarGz,
    Zip,
    /// One gzip-compressed file.
    Gz,
}

impl ArchiveKind {
    fn label(self) -> &'static str {
        match self {
            ArchiveKind::Tar | ArchiveKind::TarGz => "tar",
            ArchiveKind::Zip => "zip",
            ArchiveKind::Gz => "gzip",
        }
    }
}

/// go-getter's archive extensions, longest first; the ones without a kind are recognised but
/// not unpacked by caravan.
const EXTENSIONS: &[(&str, Option<ArchiveKind>)] = &[
    ("tar.gz", Some(ArchiveKind::TarGz)),
    ("tar.bz2", None),
    ("tar.xz", None),
    ("tar.zst", None),
    ("tgz", Some(ArchiveKind::TarGz)),
    ("tbz2", None),
    ("txz", None),
    ("tzst", None),
    ("tar", Some(ArchiveKind::Tar)),
    ("zip", Some(ArchiveKind::Zip)),
    ("bz2", None),
    ("xz", None),
    ("zst", None),
    ("gz", Some(ArchiveKind::Gz)),
];

/// What to do with a fetched file named `name`: `options { archive = ... }` (`false` keeps the
/// file as is, an extension forces that format) or else the name's extension decides.
/// `Ok(None)`: not an archive.
pub fn archive_kind(
    option: Option<&str>,
    name: &str,
) -> Result<Option<ArchiveKind>, ArtifactError> {
    let (extension, forced) = match option {
        Some("false") => return Ok(None),
        Some(forced) if !forced.is_empty() && forced != "true" => (forced.to_owned(), true),
        _ => (name.to_ascii_lowercase(), false),
    };
    for (suffix, kind) in EXTENSIONS {
        let matches = if forced {
            extension == *suffix
        } else {
            extension.ends_with(&format!(".{suffix}"))
        };
        if matches {
            return kind.map(Some).ok_or_else(|| {
                ArtifactError::Source(format!(
                    "unpacking .{suffix} archives is not supported; set options {{ archive = false }} to fetch the file as is"
                ))
            });
        }
    }
    if forced {
        return Err(ArtifactError::Source(format!(
            "unknown archive format {extension:?} in options {{ archive }}"
        )));
    }
    Ok(None)
}

/// The name a single-file `.gz` unpacks to: `name` without its extension.
pub fn gz_output_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.strip_suffix(".gz") {
        Some(stem) if !stem.is_empty() => name[..stem.len()].to_owned(),
        _ => name.to_owned(),
    }
}

/// What is left of the limits while unpacking one archive.
struct Budget {
    kind: ArchiveKind,
    files: u64,
    file_limit: u64,
    bytes: u64,
    size_limit: u64,
}

impl Budget {
    fn new(kind: ArchiveKind, limits: &ArtifactLimits) -> Budget {
        Budget {
            kind,
            files: 0,
            file_limit: limits.decompression_file_count_limit,
            bytes: 0,
            size_limit: limits.decompression_size_limit,
        }
    }

    /// Counts one more entry created.
    fn entry(&mut self) -> Result<(), ArtifactError> {
        self.files += 1;
        if self.files > self.file_limit {
            return Err(ArtifactError::TooManyFiles {
                kind: self.kind.label(),
                count: self.files,
                limit: self.file_limit,
            });
        }
        Ok(())
    }

    /// Copies `reader` into the new regular file `path` (permissions `mode` without the special
    /// bits), counting the bytes written against the size limit.
    fn write_file(
        &mut self,
        root: &Root,
        path: &RelPath,
        reader: &mut dyn Read,
        mode: u32,
    ) -> Result<(), ArtifactError> {
        self.entry()?;
        create_parent(root, path)?;
        let mode = match mode & 0o777 {
            0 => 0o644,
            bits => bits | 0o600,
        };
        let mut file = root.open_file(path, OpenOptions::write_truncate())?;
        let left = self.size_limit.saturating_sub(self.bytes);
        let written = io::copy(&mut reader.take(left.saturating_add(1)), &mut file)?;
        self.bytes = self.bytes.saturating_add(written);
        if self.bytes > self.size_limit {
            return Err(ArtifactError::TooLarge {
                kind: self.kind.label(),
                limit: self.size_limit,
            });
        }
        root.set_mode(path, mode)?;
        Ok(())
    }

    fn dir(&mut self, root: &Root, path: &RelPath) -> Result<(), ArtifactError> {
        self.entry()?;
        root.create_dir_all(path, 0o755)?;
        Ok(())
    }

    /// A symbolic link entry: created only when `target` is relative and, climbing with its
    /// leading `..` from the link's own (real) directory and then only descending, stays
    /// beneath the root. A `..` after a name is refused: the name may itself be a link.
    fn symlink(&mut self, root: &Root, path: &RelPath, target: &[u8]) -> Result<(), ArtifactError> {
        let target = Path::new(OsStr::from_bytes(target));
        let depth = path.names().len().saturating_sub(1);
        let mut climbs = 0;
        let mut descended = false;
        let mut inside = !target.as_os_str().is_empty();
        for component in target.components() {
            match component {
                Component::ParentDir if !descended => climbs += 1,
                Component::CurDir => {}
                Component::Normal(_) => descended = true,
                _ => inside = false,
            }
        }
        if !inside || climbs > depth {
            return Err(entry_error(
                path,
                format!(
                    "symbolic link to {} points outside the destination",
                    target.display()
                ),
            ));
        }
        self.entry()?;
        create_parent(root, path)?;
        if root.exists(path)? {
            root.remove(path)?;
        }
        root.symlink(target, path)?;
        Ok(())
    }

    /// A hard link entry: a copy of the regular file `target` unpacked before (never followed
    /// through a link).
    fn hard_link(
        &mut self,
        root: &Root,
        path: &RelPath,
        target: &[u8],
    ) -> Result<(), ArtifactError> {
        let target_path = entry_path(target)?;
        let mut source = root
            .open_file(&target_path, OpenOptions::read())
            .map_err(|err| entry_error(path, format!("hard link target: {err}")))?;
        let mode = root.metadata(&target_path)?.mode;
        self.write_file(root, path, &mut source, mode)
    }
}

fn create_parent(root: &Root, path: &RelPath) -> Result<(), ArtifactError> {
    if let Some((parent, _)) = path.split_last() {
        root.create_dir_all(&parent, 0o755)?;
    }
    Ok(())
}

fn entry_error(path: &RelPath, reason: String) -> ArtifactError {
    ArtifactError::Entry {
        entry: path.to_string(),
        reason,
    }
}

/// An entry's name as a path beneath the root; absolute names and names that climb out are
/// refused, not rewritten.
fn entry_path(name: &[u8]) -> Result<RelPath, ArtifactError> {
    let path = Path::new(OsStr::from_bytes(name));
    RelPath::parse(path).map_err(|problem| ArtifactError::Entry {
        entry: path.display().to_string(),
        reason: format!("{problem:?}: the entry would land outside the destination"),
    })
}

/// Unpacks the archive `file` of `kind` beneath `root`. For [`ArchiveKind::Gz`] the one file
/// is written at `gz_output` (a path beneath `root`).
pub fn unpack(
    kind: ArchiveKind,
    file: std::fs::File,
    root: &Root,
    gz_output: &RelPath,
    limits: &ArtifactLimits,
) -> Result<(), ArtifactError> {
    let mut budget = Budget::new(kind, limits);
    match kind {
        ArchiveKind::Tar => unpack_tar(io::BufReader::new(file), root, &mut budget),
        ArchiveKind::TarGz => unpack_tar(
            flate2::read::GzDecoder::new(io::BufReader::new(file)),
            root,
            &mut budget,
        ),
        ArchiveKind::Zip => unpack_zip(file, root, &mut budget),
        ArchiveKind::Gz => {
            let mut decoder = flate2::read::MultiGzDecoder::new(io::BufReader::new(file));
            budget.write_file(root, gz_output, &mut decoder, 0o644)
        }
    }
}

fn unpack_tar(reader: impl Read, root: &Root, budget: &mut Budget) -> Result<(), ArtifactError> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry_path(&entry.path_bytes())?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        if path.is_root() {
            if kind.is_dir() {
                continue;
            }
            return Err(entry_error(
                &path,
                "names the destination itself".to_owned(),
            ));
        }
        if kind.is_dir() {
            budget.dir(root, &path)?;
        } else if kind.is_file() || kind.is_contiguous() {
            let mode = entry.header().mode().unwrap_or(0o644);
            budget.write_file(root, &path, &mut entry, mode)?;
        } else if kind.is_symlink() {
            let target = entry.link_name_bytes().unwrap_or_default().into_owned();
            budget.symlink(root, &path, &target)?;
        } else if kind.is_hard_link() {
            let target = entry.link_name_bytes().unwrap_or_default().into_owned();
            budget.hard_link(root, &path, &target)?;
        } else {
            return Err(entry_error(
                &path,
                format!("a {kind:?} entry; only files, directories and links are unpacked"),
            ));
        }
    }
    Ok(())
}

fn unpack_zip(file: std::fs::File, root: &Root, budget: &mut Budget) -> Result<(), ArtifactError> {
    let mut archive = zip::ZipArchive::new(file).map_err(zip_error)?;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(zip_error)?;
        let path = entry_path(entry.name_raw())?;
        if path.is_root() {
            continue;
        }
        if entry.is_dir() {
            budget.dir(root, &path)?;
        } else if entry.is_symlink() {
            let mut target = Vec::new();
            (&mut entry).take(4097).read_to_end(&mut target)?;
            if target.len() > 4096 {
                return Err(entry_error(&path, "link target too long".to_owned()));
            }
            budget.symlink(root, &path, &target)?;
        } else {
            let mode = entry.unix_mode().unwrap_or(0o644);
            budget.write_file(root, &path, &mut entry, mode)?;
        }
    }
    Ok(())
}

fn zip_error(err: zip::result::ZipError) -> ArtifactError {
    ArtifactError::Archive(format!("zip: {err}"))
}

#[cfg(test)]
mod tests;
