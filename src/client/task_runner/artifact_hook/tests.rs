//! The hook's tests: sources, destinations and modes, checksums, limits, git, and its state.

use super::*;

fn allowed(dirs: &[PathBuf]) -> ArtifactSettings {
    ArtifactSettings {
        file_allowlist: dirs.to_vec(),
        limits: ArtifactLimits::default(),
    }
}

#[tokio::test]
async fn file_sources_land_in_local() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let source = dir.path().join("tool.sh");
    std::fs::write(&source, "echo hi")?;
    let task_dir = dir.path().join("task");
    let artifacts = [
        TaskArtifact {
            getter_source: format!("file://{}", source.display()),
            ..TaskArtifact::default()
        },
        TaskArtifact {
            getter_source: format!("file://{}", source.display()),
            relative_dest: "local/bin/run.sh".to_owned(),
            getter_mode: "file".to_owned(),
            ..TaskArtifact::default()
        },
    ];
    let allowlist = [dir.path().to_path_buf()];
    run(&task_dir, &artifacts, &allowed(&allowlist))
        .await
        .map_err(std::io::Error::other)?;
    assert_eq!(
        std::fs::read_to_string(task_dir.join("local/tool.sh"))?,
        "echo hi"
    );
    assert_eq!(
        std::fs::read_to_string(task_dir.join("local/bin/run.sh"))?,
        "echo hi"
    );
    let escape = [TaskArtifact {
        getter_source: format!("file://{}", source.display()),
        relative_dest: "../../x".to_owned(),
        ..TaskArtifact::default()
    }];
    assert!(run(&task_dir, &escape, &allowed(&allowlist)).await.is_err());
    Ok(())
}

/// `file:///secret` is refused unless its directory is allowed, and a link inside an allowed
/// directory (or in the task's destination) is never followed.
#[tokio::test]
async fn file_sources_only_from_allowed_directories() -> std::io::Result<()> {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let dir = tempfile::tempdir()?;
    let secret_dir = dir.path().join("secret-dir");
    std::fs::create_dir(&secret_dir)?;
    let secret = secret_dir.join("secret");
    std::fs::write(&secret, "top secret")?;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600))?;
    let allowed = dir.path().join("allowed");
    std::fs::create_dir(&allowed)?;
    symlink(&secret, allowed.join("via-link"))?;
    let task_dir = dir.path().join("task");
    let fetch_one = |source: String| {
        let task_dir = task_dir.clone();
        let allowed = allowed.clone();
        async move {
            let artifacts = [TaskArtifact {
                getter_source: source,
                ..TaskArtifact::default()
            }];
            run(&task_dir, &artifacts, &self::allowed(&[allowed])).await
        }
    };
    for source in [
        format!("file://{}", secret.display()),
        format!("file://{}/../secret-dir/secret", allowed.display()),
        format!("file://{}/via-link", allowed.display()),
    ] {
        let err = fetch_one(source.clone()).await.expect_err("refused");
        assert!(
            err.contains("file_allowlist") || err.contains("symbolic link"),
            "{source}: {err}"
        );
    }
    assert!(
        run(
            &task_dir,
            &[TaskArtifact {
                getter_source: format!("file://{}", secret.display()),
                ..TaskArtifact::default()
            }],
            &self::allowed(&[])
        )
        .await
        .is_err_and(|err| err.contains("empty"))
    );
    // A destination planted as a link to the outside is replaced, not written through.
    std::fs::create_dir_all(task_dir.join("local"))?;
    std::fs::write(allowed.join("tool"), "tool")?;
    symlink(&secret, task_dir.join("local/tool"))?;
    fetch_one(format!("file://{}/tool", allowed.display()))
        .await
        .map_err(std::io::Error::other)?;
    assert_eq!(std::fs::read_to_string(&secret)?, "top secret");
    assert!(!std::fs::symlink_metadata(task_dir.join("local/tool"))?.is_symlink());
    assert!(!task_dir.join("local/secret").exists());
    Ok(())
}

/// The hook keeps what it fetched: after a failure the retry fetches only what is missing,
/// then reports `done`.
#[tokio::test]
async fn the_hook_keeps_what_it_fetched_and_reports_done() -> std::io::Result<()> {
    use super::super::hooks::HookEvents;
    use crate::client::alloc_runner::alloc_dir::AllocDir;
    use crate::structs::{Allocation, Task};
    let dir = tempfile::tempdir()?;
    let first = dir.path().join("first");
    let second = dir.path().join("second");
    std::fs::write(&first, "one")?;
    let task = Task {
        artifacts: [&first, &second]
            .iter()
            .map(|source| TaskArtifact {
                getter_source: format!("file://{}", source.display()),
                ..TaskArtifact::default()
            })
            .collect(),
        ..Task::default()
    };
    let hook = ArtifactHook {
        settings: allowed(&[dir.path().to_path_buf()]),
        facts: Arc::default(),
    };
    let alloc = Allocation::default();
    let alloc_dir = AllocDir::new(dir.path(), "alloc");
    let task_dir = dir.path().join("task");
    let (events, mut received) = HookEvents::channel();
    let env = std::collections::BTreeMap::new();
    let run_with = |previous: Option<serde_json::Value>| {
        let (hook, alloc, task, alloc_dir, task_dir, env, events) =
            (&hook, &alloc, &task, &alloc_dir, &task_dir, &env, &events);
        async move {
            let req = PrestartRequest {
                alloc,
                task,
                alloc_dir,
                task_dir,
                fs_isolation: crate::driver_host::FsIsolation::None,
                env,
                previous_state: previous.as_ref(),
                recovering: false,
                events,
            };
            let mut resp = PrestartResponse::default();
            let result = hook.prestart(&req, &mut resp).await;
            (result, resp)
        }
    };
    let (result, resp) = run_with(None).await;
    let err = result.expect_err("the second source is missing");
    assert_eq!(
        err.event().map(|event| event.event_type.as_str()),
        Some(TaskEvent::FAILED_ARTIFACT_DOWNLOAD)
    );
    assert!(!resp.done);
    let kept = resp.state.clone();
    assert_eq!(
        kept.as_ref()
            .and_then(|state| state["fetched"].as_array())
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        received.try_recv().map(|event| event.event_type).ok(),
        Some(TaskEvent::DOWNLOADING_ARTIFACTS.to_owned())
    );
    // The first source is gone too: only the second is fetched on the retry.
    std::fs::remove_file(&first)?;
    std::fs::write(&second, "two")?;
    let (result, resp) = run_with(kept).await;
    result.map_err(std::io::Error::other)?;
    assert!(resp.done);
    assert_eq!(
        std::fs::read_to_string(task_dir.join("local/first"))?,
        "one"
    );
    assert_eq!(
        std::fs::read_to_string(task_dir.join("local/second"))?,
        "two"
    );
    Ok(())
}

/// A server on 127.0.0.1 answering each `(path, body)`; a body under `/stream/` is sent in
/// chunks with no length.
async fn serve(routes: Vec<(&'static str, Vec<u8>)>) -> std::io::Result<String> {
    let mut router = axum::Router::new();
    for (path, body) in routes {
        let streamed = path.starts_with("/stream/");
        router = router.route(
            path,
            axum::routing::get(move || {
                let body = body.clone();
                async move {
                    if streamed {
                        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                            body.chunks(1024).map(|chunk| Ok(chunk.to_vec())).collect();
                        axum::body::Body::from_stream(futures::stream::iter(chunks))
                    } else {
                        axum::body::Body::from(body)
                    }
                }
            }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(format!("http://{address}"))
}

fn tar_gz(files: &[(&str, &[u8])]) -> std::io::Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, *data)?;
    }
    builder.into_inner()?.finish()
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

fn artifact(source: String, dest: &str, mode: &str, options: &[(&str, &str)]) -> TaskArtifact {
    TaskArtifact {
        getter_source: source,
        relative_dest: dest.to_owned(),
        getter_mode: mode.to_owned(),
        getter_options: options
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
        ..TaskArtifact::default()
    }
}

/// Downloads land by mode: archives unpacked into the destination (merged with what is there),
/// plain files under their name or, in mode `file`, at the destination itself; a good checksum
/// passes, a wrong one fails naming both digests and places nothing; nothing is left staged.
#[tokio::test]
async fn http_downloads_checksums_archives_and_modes() -> std::io::Result<()> {
    let archive = tar_gz(&[("app/run.sh", b"echo run\n"), ("app/conf/a.txt", b"a")])?;
    let plain = b"plain text\n".to_vec();
    let base = serve(vec![
        ("/app.tar.gz", archive.clone()),
        ("/notes.txt", plain.clone()),
        ("/stream/big.bin", vec![7u8; 64 * 1024]),
    ])
    .await?;
    let dir = tempfile::tempdir()?;
    let task_dir = dir.path().join("task");
    std::fs::create_dir_all(task_dir.join("local/app"))?;
    std::fs::write(task_dir.join("local/app/kept"), "kept")?;
    let good = format!("sha256:{}", sha256_hex(&archive));
    let artifacts = [
        artifact(
            format!("{base}/app.tar.gz"),
            "",
            "any",
            &[("checksum", &good)],
        ),
        artifact(format!("{base}/notes.txt"), "local/etc/", "dir", &[]),
        artifact(
            format!("{base}/notes.txt"),
            "local/renamed.txt",
            "file",
            &[],
        ),
        artifact(
            format!("{base}/app.tar.gz"),
            "local/raw",
            "any",
            &[("archive", "false")],
        ),
    ];
    run(&task_dir, &artifacts, &allowed(&[]))
        .await
        .map_err(std::io::Error::other)?;
    let read = |path: &str| std::fs::read(task_dir.join(path));
    assert_eq!(read("local/app/run.sh")?, b"echo run\n");
    assert_eq!(read("local/app/conf/a.txt")?, b"a");
    assert_eq!(read("local/app/kept")?, b"kept");
    assert_eq!(read("local/etc/notes.txt")?, plain);
    assert_eq!(read("local/renamed.txt")?, plain);
    assert_eq!(read("local/raw/app.tar.gz")?, archive);
    let wrong = format!("sha256:{}", sha256_hex(b"something else"));
    let err = run(
        &task_dir,
        &[artifact(
            format!("{base}/notes.txt"),
            "local/bad",
            "any",
            &[("checksum", &wrong)],
        )],
        &allowed(&[]),
    )
    .await
    .expect_err("wrong checksum");
    assert!(err.contains("checksums did not match"), "{err}");
    assert!(
        err.contains(&sha256_hex(&plain)) && err.contains(&wrong),
        "{err}"
    );
    assert!(!task_dir.join("local/bad").exists());
    // The same check on a query-string checksum, go-getter's other spelling.
    let err = run(
        &task_dir,
        &[artifact(
            format!("{base}/notes.txt?checksum={wrong}"),
            "local/bad",
            "any",
            &[],
        )],
        &allowed(&[]),
    )
    .await
    .expect_err("wrong checksum in the URL");
    assert!(err.contains("checksums did not match"), "{err}");
    // http_max_size: by the announced length, and by the bytes of a body with none.
    let small = ArtifactSettings {
        file_allowlist: Vec::new(),
        limits: ArtifactLimits {
            http_max_size: 10_000,
            ..ArtifactLimits::default()
        },
    };
    for path in ["/app.tar.gz", "/stream/big.bin"] {
        let big = if path == "/app.tar.gz" { 100 } else { 10_000 };
        let limits = ArtifactSettings {
            limits: ArtifactLimits {
                http_max_size: big,
                ..small.limits.clone()
            },
            ..small.clone()
        };
        let err = run(
            &task_dir,
            &[artifact(format!("{base}{path}"), "local/big", "any", &[])],
            &limits,
        )
        .await
        .expect_err("too large");
        assert!(err.contains("http_max_size"), "{path}: {err}");
    }
    assert!(!task_dir.join("local/big").exists());
    let err = run(
        &task_dir,
        &[artifact(format!("{base}/missing"), "", "any", &[])],
        &allowed(&[]),
    )
    .await
    .expect_err("404");
    assert!(err.contains("bad response code: 404"), "{err}");
    let leftovers: Vec<_> = std::fs::read_dir(&task_dir)?
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with(".caravan-artifact")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    Ok(())
}

/// `file://` archives unpack too, their checksum is checked, and a link planted in the
/// destination is replaced rather than written through.
#[tokio::test]
async fn file_archives_unpack_without_following_planted_links() -> std::io::Result<()> {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir()?;
    let source_dir = dir.path().join("src");
    std::fs::create_dir(&source_dir)?;
    let archive = tar_gz(&[("config.txt", b"from the archive")])?;
    std::fs::write(source_dir.join("bundle.tgz"), &archive)?;
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "untouched")?;
    let task_dir = dir.path().join("task");
    std::fs::create_dir_all(task_dir.join("local"))?;
    symlink(&victim, task_dir.join("local/config.txt"))?;
    let source = format!("file://{}/bundle.tgz", source_dir.display());
    let checksum = format!("sha256:{}", sha256_hex(&archive));
    run(
        &task_dir,
        &[artifact(
            source.clone(),
            "",
            "any",
            &[("checksum", &checksum)],
        )],
        &allowed(std::slice::from_ref(&source_dir)),
    )
    .await
    .map_err(std::io::Error::other)?;
    assert_eq!(std::fs::read_to_string(&victim)?, "untouched");
    assert_eq!(
        std::fs::read_to_string(task_dir.join("local/config.txt"))?,
        "from the archive"
    );
    let err = run(
        &task_dir,
        &[artifact(source.clone(), "", "file", &[])],
        &allowed(std::slice::from_ref(&source_dir)),
    )
    .await
    .expect_err("an archive in mode file");
    assert!(err.contains("mode \"file\""), "{err}");
    Ok(())
}

/// A local repository cloned with the `git` binary (ref checked out, depth honoured), only
/// from an allowed directory; `sshkey` is refused with a clear error.
#[tokio::test]
async fn git_sources_clone_from_allowed_local_repositories() -> std::io::Result<()> {
    if which_git().is_none() {
        eprintln!("skipped: no git binary on PATH");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let repos = dir.path().join("repos");
    let repo = repos.join("tool");
    make_repo(&repo)?;
    let task_dir = dir.path().join("task");
    let source = format!("git::file://{}", repo.display());
    run(
        &task_dir,
        &[
            artifact(source.clone(), "local/head", "any", &[]),
            artifact(source.clone(), "local/v1", "any", &[("ref", "v1")]),
            artifact(
                source.clone(),
                "local/shallow",
                "dir",
                &[("ref", "main"), ("depth", "1")],
            ),
        ],
        &allowed(std::slice::from_ref(&repos)),
    )
    .await
    .map_err(std::io::Error::other)?;
    assert_eq!(
        std::fs::read_to_string(task_dir.join("local/head/VERSION"))?,
        "2\n"
    );
    assert_eq!(
        std::fs::read_to_string(task_dir.join("local/v1/VERSION"))?,
        "1\n"
    );
    assert_eq!(
        std::fs::read_to_string(task_dir.join("local/shallow/VERSION"))?,
        "2\n"
    );
    assert!(task_dir.join("local/head/.git").is_dir());
    for (source, options, expected) in [
        (source.clone(), vec![("sshkey", "AAAA")], "sshkey"),
        (
            format!("git::file://{}", dir.path().join("elsewhere").display()),
            vec![],
            "file_allowlist",
        ),
        (
            format!("git::file://{}/../tool", repos.join("x").display()),
            vec![],
            "",
        ),
        (
            "git::ssh://example.invalid/r.git".to_owned(),
            vec![],
            "not supported",
        ),
    ] {
        let err = run(
            &task_dir,
            &[artifact(source.clone(), "local/refused", "any", &options)],
            &allowed(std::slice::from_ref(&repos)),
        )
        .await;
        if expected.is_empty() {
            // `x/../tool` is `tool`, inside the allowed directory.
            err.map_err(std::io::Error::other)?;
        } else {
            let err = err.expect_err("refused");
            assert!(err.contains(expected), "{source}: {err}");
        }
    }
    Ok(())
}

fn which_git() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("git"))
            .find(|candidate| candidate.is_file())
    })
}

/// A repository with `VERSION` = 1 tagged `v1`, then 2 on `main`.
pub(crate) fn make_repo(repo: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(repo)?;
    let git = |args: &[&str]| -> std::io::Result<()> {
        let status = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.invalid",
                "-c",
                "init.defaultBranch=main",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "tag.gpgsign=false",
            ])
            .args(args)
            .current_dir(repo)
            .stdout(std::process::Stdio::null())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("git {args:?}: {status}")))
        }
    };
    git(&["init", "--quiet"])?;
    std::fs::write(repo.join("VERSION"), "1\n")?;
    git(&["add", "VERSION"])?;
    git(&["commit", "--quiet", "-m", "one"])?;
    git(&["tag", "v1"])?;
    std::fs::write(repo.join("VERSION"), "2\n")?;
    git(&["commit", "--quiet", "-am", "two"])?;
    Ok(())
}

#[tokio::test]
async fn source_and_destination_are_interpolated_from_the_task_env_and_node() -> anyhow::Result<()>
{
    use super::super::hooks::HookEvents;
    use crate::client::alloc_runner::alloc_dir::AllocDir;
    use crate::structs::{Allocation, Task};
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("web-linux.conf"), "conf")?;
    let task = Task {
        name: "web".to_owned(),
        artifacts: vec![TaskArtifact {
            getter_source: format!(
                "file://{}/${{NOMAD_TASK_NAME}}-${{attr.kernel.name}}.conf",
                dir.path().display()
            ),
            relative_dest: "local/${meta.rack}/${NOMAD_ALLOC_INDEX}".to_owned(),
            ..TaskArtifact::default()
        }],
        ..Task::default()
    };
    let mut facts = NodeFacts::default();
    facts
        .node
        .attributes
        .insert("kernel.name".to_owned(), "linux".to_owned());
    facts.node.meta.insert("rack".to_owned(), "r1".to_owned());
    let hook = ArtifactHook {
        settings: allowed(&[dir.path().to_path_buf()]),
        facts: Arc::new(facts),
    };
    let alloc = Allocation {
        name: "app.web[3]".to_owned(),
        ..Allocation::default()
    };
    let alloc_dir = AllocDir::new(dir.path(), "alloc");
    let task_dir = dir.path().join("task");
    let (events, _received) = HookEvents::channel();
    let env = std::collections::BTreeMap::new();
    let req = PrestartRequest {
        alloc: &alloc,
        task: &task,
        alloc_dir: &alloc_dir,
        task_dir: &task_dir,
        fs_isolation: crate::driver_host::FsIsolation::None,
        env: &env,
        previous_state: None,
        recovering: false,
        events: &events,
    };
    let mut resp = PrestartResponse::default();
    hook.prestart(&req, &mut resp).await?;
    assert_eq!(
        std::fs::read_to_string(task_dir.join("local/r1/3/web-linux.conf"))?,
        "conf"
    );
    // The state keys the block as written, so a restart finds it fetched.
    let kept = resp.state.unwrap_or_default();
    assert_eq!(
        kept["fetched"][0].as_str(),
        Some(artifact_key(&task.artifacts[0]).as_str())
    );
    Ok(())
}
