//! Unit tests of `allocfs`: every operation refuses a planted symbolic link (to a secret 0600
//! file or directory outside the root) and leaves the secret unread, unwritten and untouched.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    root: Root,
    root_path: PathBuf,
    secret: PathBuf,
    secret_dir: PathBuf,
}

const SECRET: &str = "top secret\n";

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_dir = dir.path().join("outside");
    std::fs::create_dir(&secret_dir).expect("mkdir outside");
    let secret = secret_dir.join("secret");
    std::fs::write(&secret, SECRET).expect("write secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let root_path = dir.path().join("alloc");
    std::fs::create_dir_all(root_path.join("logs")).expect("mkdir alloc");
    let root = Root::open(&root_path).expect("open root");
    Fixture {
        _dir: dir,
        root,
        root_path,
        secret,
        secret_dir,
    }
}

impl Fixture {
    fn assert_secret_untouched(&self) {
        assert_eq!(
            std::fs::read_to_string(&self.secret).expect("read secret"),
            SECRET
        );
        let mode = std::fs::metadata(&self.secret)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&self.secret_dir)
            .expect("stat")
            .permissions()
            .mode();
        assert_ne!(dir_mode & 0o777, 0o777, "outside dir chmodded");
        let names: Vec<_> = std::fs::read_dir(&self.secret_dir)
            .expect("ls")
            .flatten()
            .map(|entry| entry.file_name())
            .collect();
        assert_eq!(names, ["secret"], "nothing created outside");
    }

    fn rel(&self, path: &str) -> RelPath {
        self.root.rel(path).expect("relative path")
    }
}

#[test]
fn paths_normalise_and_refuse_escapes() {
    assert_eq!(
        RelPath::parse("a/./b/../c").expect("ok").to_path_buf(),
        Path::new("a/c")
    );
    assert_eq!(RelPath::parse("/etc"), Err(PathProblem::Absolute));
    assert_eq!(RelPath::parse("a/../.."), Err(PathProblem::ClimbsAbove));
    assert_eq!(
        RelPath::parse_rooted("/alloc/logs")
            .expect("ok")
            .to_path_buf(),
        Path::new("alloc/logs")
    );
    assert!(RelPath::parse_rooted("/").expect("ok").is_root());
}

#[test]
fn files_round_trip_beneath_the_root() -> Result<(), AllocFsError> {
    let fx = fixture();
    fx.root.create_dir_all(&fx.rel("web/local/deep"), 0o755)?;
    fx.root.write(&fx.rel("web/local/deep/conf"), b"x=1")?;
    assert_eq!(fx.root.read(&fx.rel("web/local/deep/conf"), 100)?, b"x=1");
    let names: Vec<_> = fx
        .root
        .list(&fx.rel("web/local"))?
        .into_iter()
        .map(|entry| entry.name)
        .collect();
    assert_eq!(names, ["deep"]);
    fx.root.set_mode(&fx.rel("web/local"), 0o700)?;
    assert_eq!(fx.root.metadata(&fx.rel("web/local"))?.mode, 0o700);
    fx.root
        .rename(&fx.rel("web/local/deep/conf"), &fx.rel("web/conf2"))?;
    assert!(fx.root.exists(&fx.rel("web/conf2"))?);
    assert!(matches!(
        fx.root.read(&fx.rel("web/conf2"), 1),
        Err(AllocFsError::TooLarge { .. })
    ));
    fx.root.remove(&fx.rel("web"))?;
    assert!(!fx.root.exists(&fx.rel("web"))?);
    assert!(matches!(
        fx.root.remove(&RelPath::root()),
        Err(AllocFsError::IsRoot { .. })
    ));
    Ok(())
}

#[test]
fn a_planted_file_link_is_never_followed() {
    let fx = fixture();
    symlink(&fx.secret, fx.root_path.join("logs/t.stdout.7")).expect("plant");
    let planted = fx.rel("logs/t.stdout.7");
    let err = fx.root.read(&planted, 1 << 20).expect_err("read refused");
    assert!(matches!(err, AllocFsError::Symlink { .. }), "{err}");
    assert!(err.to_string().contains("t.stdout.7"), "{err}");
    for options in [OpenOptions::write_truncate(), OpenOptions::append()] {
        let err = fx
            .root
            .open_file(&planted, options)
            .expect_err("write refused");
        assert!(err.is_refused(), "{err}");
    }
    assert!(fx.root.write(&planted, b"pwned").is_err());
    assert!(fx.root.set_mode(&planted, 0o666).is_err());
    assert_eq!(
        fx.root.metadata(&planted).expect("lstat").kind,
        FileKind::Symlink
    );
    // Renaming and removing act on the link itself.
    fx.root
        .rename(&planted, &fx.rel("logs/t.stdout.8"))
        .expect("rename link");
    fx.root
        .remove(&fx.rel("logs/t.stdout.8"))
        .expect("remove link");
    fx.assert_secret_untouched();
}

#[test]
fn a_planted_directory_link_is_never_followed() {
    let fx = fixture();
    symlink(&fx.secret_dir, fx.root_path.join("local")).expect("plant absolute");
    std::fs::create_dir(fx.root_path.join("web")).expect("mkdir");
    symlink("../../outside", fx.root_path.join("web/secrets")).expect("plant relative");
    for through in ["local", "web/secrets"] {
        let conf = fx.rel(&format!("{through}/secret"));
        assert!(fx.root.read(&conf, 1 << 20).is_err(), "{through}: read");
        assert!(fx.root.write(&conf, b"pwned").is_err(), "{through}: write");
        assert!(
            fx.root
                .write(&fx.rel(&format!("{through}/new")), b"x")
                .is_err()
        );
        let err = fx
            .root
            .create_dir_all(&fx.rel(&format!("{through}/sub")), 0o755)
            .expect_err("mkdir refused");
        assert!(matches!(err, AllocFsError::Symlink { .. }), "{err}");
        assert!(fx.root.set_mode(&fx.rel(through), 0o777).is_err());
        assert!(fx.root.list(&fx.rel(through)).is_err(), "{through}: list");
        assert!(
            fx.root.subdir(&fx.rel(through)).is_err(),
            "{through}: subdir"
        );
        assert!(fx.root.remove(&conf).is_err(), "{through}: remove inside");
    }
    // Removing the tree removes the links, not what they point to.
    fx.root.clear().expect("clear");
    assert!(fx.root.list(&RelPath::root()).expect("ls").is_empty());
    fx.assert_secret_untouched();
}

#[test]
fn the_walk_fallback_refuses_links_too() {
    let fx = fixture();
    symlink(&fx.secret_dir, fx.root_path.join("logs/dir")).expect("plant");
    symlink(&fx.secret, fx.root_path.join("logs/file")).expect("plant");
    for path in ["logs/dir/secret", "logs/file"] {
        let err = resolve::open_by_walking(
            fx.root.as_fd(),
            &fx.rel(path),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )
        .expect_err("walk refuses the link");
        // ELOOP for a link at the end, ENOTDIR for one on the way (`O_DIRECTORY`).
        assert!(
            matches!(err, nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR),
            "{path}: {err}"
        );
    }
    std::fs::write(fx.root_path.join("logs/plain"), "ok").expect("write");
    assert!(
        resolve::open_by_walking(
            fx.root.as_fd(),
            &fx.rel("logs/plain"),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )
        .is_ok()
    );
    fx.assert_secret_untouched();
}

#[test]
fn a_fifo_is_not_opened_as_a_file() {
    let fx = fixture();
    nix::unistd::mkfifo(
        &fx.root_path.join("logs/t.stdout.0"),
        Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    let path = fx.rel("logs/t.stdout.0");
    // Neither blocks: a reader would wait forever for a writer, a writer gets ENXIO.
    assert!(matches!(
        fx.root.read(&path, 10),
        Err(AllocFsError::NotRegular { .. })
    ));
    assert!(fx.root.write(&path, b"x").is_err());
}

#[test]
fn the_fd_path_names_the_opened_directory() -> Result<(), AllocFsError> {
    let fx = fixture();
    let web = fx.root.create_dir_all(&fx.rel("web"), 0o755)?;
    web.write(&fx.rel("hello"), b"hi")?;
    // Swap `web` for a link after it was opened: the fd path still names the real directory.
    std::fs::rename(fx.root_path.join("web"), fx.root_path.join("web.old")).map_err(|source| {
        AllocFsError::Io {
            path: "web".into(),
            root: fx.root_path.clone(),
            source,
        }
    })?;
    symlink(&fx.secret_dir, fx.root_path.join("web")).expect("plant");
    let through_fd = std::fs::read_to_string(web.fd_path().join("hello")).expect("read via fd");
    assert_eq!(through_fd, "hi");
    fx.assert_secret_untouched();
    Ok(())
}
