//! Hostile archives built in the tests: each rule of `unpack.rs` has one that breaks it.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use tar::EntryType;

use super::*;

/// One tar entry: raw name bytes (unchecked, as an attacker writes them), type, contents or
/// link target, mode.
struct Entry<'a>(&'a str, EntryType, &'a [u8], u32);

fn tar_of(entries: &[Entry<'_>]) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for Entry(name, kind, data, mode) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(*mode);
        let body: &[u8] = if kind.is_symlink() || kind.is_hard_link() {
            header.set_link_name(std::str::from_utf8(data).map_err(io::Error::other)?)?;
            &[]
        } else {
            data
        };
        header.set_size(body.len() as u64);
        header.set_cksum();
        builder.append(&header, body)?;
    }
    builder.into_inner()
}

fn gz(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data)?;
    encoder.finish()
}

/// A scratch dir with `dest/` (the unpack root) beside `outside/` (what must stay untouched).
struct Scratch {
    dir: tempfile::TempDir,
    root: Root,
}

impl Scratch {
    fn new() -> io::Result<Scratch> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("outside"))?;
        std::fs::write(dir.path().join("outside/victim"), "untouched")?;
        let root = Root::create(dir.path().join("dest"))?;
        Ok(Scratch { dir, root })
    }

    fn unpack(
        &self,
        kind: ArchiveKind,
        bytes: &[u8],
        limits: &ArtifactLimits,
    ) -> Result<(), ArtifactError> {
        let path = self.dir.path().join("archive");
        std::fs::write(&path, bytes)?;
        let output = RelPath::parse("single").map_err(|_| ArtifactError::Source("p".into()))?;
        unpack(
            kind,
            std::fs::File::open(&path)?,
            &self.root,
            &output,
            limits,
        )
    }

    fn dest(&self, name: &str) -> PathBuf {
        self.dir.path().join("dest").join(name)
    }

    fn outside_untouched(&self) -> bool {
        std::fs::read_to_string(self.dir.path().join("outside/victim"))
            .ok()
            .as_deref()
            == Some("untouched")
            && std::fs::read_dir(self.dir.path().join("outside"))
                .map(|entries| entries.count() == 1)
                .unwrap_or(false)
            && !self.dir.path().join("evil").exists()
    }
}

use std::path::PathBuf;

#[test]
fn a_plain_tar_gz_lands_with_its_modes_and_without_special_bits() -> Result<(), ArtifactError> {
    let scratch = Scratch::new()?;
    let archive = tar_of(&[
        Entry("bin/", EntryType::Directory, b"", 0o755),
        Entry("bin/tool", EntryType::Regular, b"#!/bin/sh\n", 0o4755),
        Entry("README", EntryType::Regular, b"read me", 0o2644),
        Entry("bin/copy", EntryType::Link, b"bin/tool", 0o644),
        Entry("bin/alias", EntryType::Symlink, b"tool", 0o777),
        Entry("docs/up", EntryType::Symlink, b"../README", 0o777),
    ])?;
    scratch.unpack(
        ArchiveKind::TarGz,
        &gz(&archive)?,
        &ArtifactLimits::default(),
    )?;
    let tool = std::fs::metadata(scratch.dest("bin/tool"))?;
    assert_eq!(tool.permissions().mode() & 0o7777, 0o755);
    assert_eq!(
        std::fs::metadata(scratch.dest("README"))?
            .permissions()
            .mode()
            & 0o7777,
        0o644
    );
    // The hard link is a copy, the symbolic links stay inside.
    assert_eq!(std::fs::read(scratch.dest("bin/copy"))?, b"#!/bin/sh\n");
    assert!(!std::fs::symlink_metadata(scratch.dest("bin/copy"))?.is_symlink());
    assert_eq!(
        std::fs::read_link(scratch.dest("bin/alias"))?,
        Path::new("tool")
    );
    assert_eq!(std::fs::read_to_string(scratch.dest("docs/up"))?, "read me");
    Ok(())
}

#[test]
fn entries_leaving_the_destination_are_refused() -> io::Result<()> {
    for name in [
        "../evil",
        "../outside/victim",
        "a/../../evil",
        "/tmp/evil-absolute",
    ] {
        let scratch = Scratch::new()?;
        let archive = tar_of(&[Entry(name, EntryType::Regular, b"pwned", 0o644)])?;
        let err = scratch
            .unpack(ArchiveKind::Tar, &archive, &ArtifactLimits::default())
            .expect_err(name);
        assert!(
            err.to_string().contains("outside the destination"),
            "{name}: {err}"
        );
        assert!(scratch.outside_untouched(), "{name}");
        assert!(!Path::new("/tmp/evil-absolute").exists());
    }
    Ok(())
}

#[test]
fn links_pointing_outside_are_refused_and_never_written_through() -> io::Result<()> {
    let hostile: [&[Entry<'_>]; 6] = [
        &[Entry("l", EntryType::Symlink, b"../outside", 0o777)],
        &[Entry("l", EntryType::Symlink, b"/etc", 0o777)],
        // `x` is `.`: `a/b/../../x/..` is inside by the letter but the root's parent in fact.
        &[
            Entry("x", EntryType::Symlink, b".", 0o777),
            Entry("a/b/esc", EntryType::Symlink, b"../../x/..", 0o777),
        ],
        &[Entry("h", EntryType::Link, b"../outside/victim", 0o644)],
        // A link planted inside, then a file written "through" it, or over it.
        &[
            Entry("sub/", EntryType::Directory, b"", 0o755),
            Entry("in", EntryType::Symlink, b"sub", 0o777),
            Entry("in/victim", EntryType::Regular, b"pwned", 0o644),
        ],
        &[
            Entry("f", EntryType::Symlink, b"sub-file", 0o777),
            Entry("f", EntryType::Regular, b"pwned", 0o644),
        ],
    ];
    for entries in hostile {
        let scratch = Scratch::new()?;
        let result = scratch.unpack(
            ArchiveKind::Tar,
            &tar_of(entries)?,
            &ArtifactLimits::default(),
        );
        assert!(result.is_err(), "{}", entries.len());
        assert!(scratch.outside_untouched());
        assert!(!scratch.dest("sub/victim").exists());
        assert!(!scratch.dest("sub-file").exists());
    }
    // The same from a zip: a symbolic link to an absolute path.
    let scratch = Scratch::new()?;
    let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    zip.add_symlink("l", "/etc/passwd", zip::write::SimpleFileOptions::default())
        .map_err(io::Error::other)?;
    let bytes = zip.finish().map_err(io::Error::other)?.into_inner();
    let err = scratch
        .unpack(ArchiveKind::Zip, &bytes, &ArtifactLimits::default())
        .expect_err("zip link");
    assert!(err.to_string().contains("points outside"), "{err}");
    assert!(!scratch.dest("l").exists());
    Ok(())
}

#[test]
fn devices_and_fifos_are_refused() -> io::Result<()> {
    for kind in [EntryType::Char, EntryType::Block, EntryType::Fifo] {
        let scratch = Scratch::new()?;
        let archive = tar_of(&[Entry("dev", kind, b"", 0o666)])?;
        let err = scratch
            .unpack(ArchiveKind::Tar, &archive, &ArtifactLimits::default())
            .expect_err("special file");
        assert!(
            err.to_string()
                .contains("only files, directories and links"),
            "{err}"
        );
        assert!(std::fs::symlink_metadata(scratch.dest("dev")).is_err());
    }
    Ok(())
}

#[test]
fn the_file_count_and_size_limits_hold_while_unpacking() -> io::Result<()> {
    let limits = ArtifactLimits {
        decompression_file_count_limit: 3,
        decompression_size_limit: 1000,
        ..ArtifactLimits::default()
    };
    let names: Vec<String> = (0..5).map(|n| format!("f{n}")).collect();
    let many: Vec<Entry<'_>> = names
        .iter()
        .map(|name| Entry(name, EntryType::Regular, b"x", 0o644))
        .collect();
    let scratch = Scratch::new()?;
    let err = scratch
        .unpack(ArchiveKind::Tar, &tar_of(&many)?, &limits)
        .expect_err("too many");
    assert!(
        err.to_string().contains("decompression_file_count_limit"),
        "{err}"
    );
    assert!(!scratch.dest("f3").exists());

    // A compressed bomb: a few hundred bytes that unpack to a MiB. The bytes really written
    // are counted, and writing stops just past the limit.
    let zeros = vec![0u8; 1 << 20];
    let scratch = Scratch::new()?;
    let err = scratch
        .unpack(ArchiveKind::Gz, &gz(&zeros)?, &limits)
        .expect_err("gz bomb");
    assert!(
        err.to_string().contains("decompression_size_limit"),
        "{err}"
    );
    assert!(std::fs::metadata(scratch.dest("single"))?.len() <= 1001);
    let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    zip.start_file("big", zip::write::SimpleFileOptions::default())
        .map_err(io::Error::other)?;
    zip.write_all(&zeros)?;
    let bytes = zip.finish().map_err(io::Error::other)?.into_inner();
    assert!(bytes.len() < 10_000);
    let scratch = Scratch::new()?;
    let err = scratch
        .unpack(ArchiveKind::Zip, &bytes, &limits)
        .expect_err("zip bomb");
    assert!(
        err.to_string().contains("decompression_size_limit"),
        "{err}"
    );
    // Two files under the size each, over it together.
    let half = vec![b'a'; 600];
    let archive = tar_of(&[
        Entry("a", EntryType::Regular, &half, 0o644),
        Entry("b", EntryType::Regular, &half, 0o644),
    ])?;
    let scratch = Scratch::new()?;
    assert!(scratch.unpack(ArchiveKind::Tar, &archive, &limits).is_err());
    Ok(())
}

#[test]
fn zip_entries_leaving_the_destination_are_refused() -> io::Result<()> {
    let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    zip.start_file("ok.txt", zip::write::SimpleFileOptions::default())
        .map_err(io::Error::other)?;
    zip.write_all(b"fine")?;
    let good = zip.finish().map_err(io::Error::other)?.into_inner();
    let scratch = Scratch::new()?;
    scratch
        .unpack(ArchiveKind::Zip, &good, &ArtifactLimits::default())
        .map_err(io::Error::other)?;
    assert_eq!(std::fs::read_to_string(scratch.dest("ok.txt"))?, "fine");
    for name in ["../evil", "/evil"] {
        let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .map_err(io::Error::other)?;
        zip.write_all(b"pwned")?;
        let bytes = zip.finish().map_err(io::Error::other)?.into_inner();
        let scratch = Scratch::new()?;
        assert!(
            scratch
                .unpack(ArchiveKind::Zip, &bytes, &ArtifactLimits::default())
                .is_err(),
            "{name}"
        );
        assert!(scratch.outside_untouched());
    }
    Ok(())
}

#[test]
fn archive_kinds_follow_go_getter_names_and_the_archive_option() -> Result<(), ArtifactError> {
    assert_eq!(archive_kind(None, "app.tar.gz")?, Some(ArchiveKind::TarGz));
    assert_eq!(archive_kind(None, "APP.TGZ")?, Some(ArchiveKind::TarGz));
    assert_eq!(archive_kind(None, "app.tar")?, Some(ArchiveKind::Tar));
    assert_eq!(archive_kind(None, "app.zip")?, Some(ArchiveKind::Zip));
    assert_eq!(archive_kind(None, "app.gz")?, Some(ArchiveKind::Gz));
    assert_eq!(archive_kind(None, "app.sh")?, None);
    assert_eq!(archive_kind(Some("false"), "app.tar.gz")?, None);
    assert_eq!(
        archive_kind(Some("zip"), "download")?,
        Some(ArchiveKind::Zip)
    );
    assert!(archive_kind(None, "app.tar.xz").is_err());
    assert!(archive_kind(Some("rar"), "app").is_err());
    assert_eq!(gz_output_name("notes.txt.gz"), "notes.txt");
    Ok(())
}
