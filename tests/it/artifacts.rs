//! Artifacts end to end on a real `-dev` agent: a job file whose raw_exec task gets a tar.gz
//! (unpacked) and a plain file (mode `file`), both with good sha256 checksums, from an HTTP
//! server on 127.0.0.1, and a tag of a local git repository cloned by the `git` binary from the
//! client's `file_allowlist`; the task `cat`s them into its log. A second job with a wrong
//! checksum fails with the checksum error in `alloc status`'s events.

use std::path::Path;

use sha2::Digest;

use crate::support::dev::Dev;

/// Serves `(path, body)` pairs on 127.0.0.1; the base URL.
async fn serve(routes: Vec<(&'static str, Vec<u8>)>) -> anyhow::Result<String> {
    let mut router = axum::Router::new();
    for (path, body) in routes {
        router = router.route(
            path,
            axum::routing::get(move || {
                let body = body.clone();
                async move { body }
            }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(format!("http://{address}"))
}

fn tar_gz(name: &str, data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, name, data)?;
    Ok(builder.into_inner()?.finish()?)
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// A repository in `repo` whose tag `v1` has `VERSION` = "v1 from git", and `main` a later one.
fn git_repo(repo: &Path) -> anyhow::Result<bool> {
    let git = |args: &[&str]| -> anyhow::Result<bool> {
        let status = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
            .args(args)
            .current_dir(repo)
            .stdout(std::process::Stdio::null())
            .status();
        match status {
            Ok(status) => Ok(status.success()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err.into()),
        }
    };
    std::fs::create_dir_all(repo)?;
    if !git(&["init", "--quiet"])? {
        return Ok(false);
    }
    std::fs::write(repo.join("VERSION"), "v1 from git\n")?;
    anyhow::ensure!(git(&["add", "VERSION"])? && git(&["commit", "--quiet", "-m", "one"])?);
    anyhow::ensure!(git(&["tag", "v1"])?);
    std::fs::write(repo.join("VERSION"), "later\n")?;
    anyhow::ensure!(git(&["commit", "--quiet", "-am", "two"])?);
    Ok(true)
}

/// A batch job `name` whose one raw_exec task "t" has `task_body`, never restarted or
/// rescheduled.
fn batch_job(name: &str, task_body: &str) -> String {
    format!(
        r#"job "{name}" {{
  type = "batch"
  group "g" {{
    restart {{
      attempts = 0
      mode     = "fail"
    }}
    reschedule {{
      attempts  = 0
      unlimited = false
    }}
    task "t" {{
      driver = "raw_exec"
{task_body}    }}
  }}
}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_are_fetched_checked_unpacked_and_cloned() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let archive = tar_gz("app/hello.txt", b"hello from the archive\n")?;
    let notes = b"notes over http\n".to_vec();
    let base = serve(vec![
        ("/app.tar.gz", archive.clone()),
        ("/notes.txt", notes.clone()),
    ])
    .await?;
    let repos = dir.path().join("repos");
    let has_git = git_repo(&repos.join("tool"))?;
    if !has_git {
        eprintln!("git part skipped: no `git` binary on PATH");
    }
    let allowed = repos.clone();
    let dev = Dev::start_with(move |config| {
        config.client.artifact.file_allowlist = Some(vec![allowed]);
    })
    .await?;

    let git_artifact = if has_git {
        format!(
            r#"artifact {{
        source      = "git::file://{}"
        destination = "local/repo"
        options {{
          ref = "v1"
        }}
      }}"#,
            repos.join("tool").display()
        )
    } else {
        String::new()
    };
    let cat_git = if has_git {
        " \"$NOMAD_TASK_DIR/repo/VERSION\""
    } else {
        ""
    };
    let job = dir.path().join("fetch.nomad.hcl");
    std::fs::write(
        &job,
        batch_job(
            "fetch",
            &format!(
                r#"      artifact {{
        source = "{base}/app.tar.gz"
        options {{
          checksum = "{archive_sum}"
        }}
      }}
      artifact {{
        source      = "{base}/notes.txt"
        destination = "local/docs/notes.txt"
        mode        = "file"
        options {{
          checksum = "{notes_sum}"
        }}
      }}
      {git_artifact}
      config {{
        command = "/bin/sh"
        args    = ["-c", "cat \"$NOMAD_TASK_DIR/app/hello.txt\" \"$NOMAD_TASK_DIR/docs/notes.txt\"{cat_git}"]
      }}
"#,
                archive_sum = sha256(&archive),
                notes_sum = sha256(&notes),
                cat_git = cat_git.replace('"', "\\\""),
            ),
        ),
    )?;
    let run = dev
        .cli(&["job", "run", "-detach", &job.display().to_string()])
        .await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let alloc = dev.first_alloc("fetch", "complete").await?;
    let alloc_id = alloc["ID"].as_str().unwrap_or_default().to_owned();
    let logs = dev.cli(&["alloc", "logs", &alloc_id, "t"]).await?;
    let mut expected = "hello from the archive\nnotes over http\n".to_owned();
    if has_git {
        expected.push_str("v1 from git\n");
    }
    assert_eq!(logs.stdout, expected, "{logs:?}");

    // A wrong checksum: the artifact fails and says so in the task's events.
    let bad = dir.path().join("badsum.nomad.hcl");
    let wrong = sha256(b"not the notes");
    std::fs::write(
        &bad,
        batch_job(
            "badsum",
            &format!(
                r#"      artifact {{
        source = "{base}/notes.txt"
        options {{
          checksum = "{wrong}"
        }}
      }}
      config {{
        command = "/bin/true"
      }}
"#
            ),
        ),
    )?;
    let run = dev
        .cli(&["job", "run", "-detach", &bad.display().to_string()])
        .await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let alloc = dev.first_alloc("badsum", "failed").await?;
    let alloc_id = alloc["ID"].as_str().unwrap_or_default().to_owned();
    let status = dev.cli(&["alloc", "status", &alloc_id]).await?;
    assert!(
        status.stdout.contains("Failed Artifact Download"),
        "{status:?}"
    );
    assert!(
        status.stdout.contains("checksums did not match"),
        "{status:?}"
    );
    assert!(status.stdout.contains(&wrong), "{status:?}");
    dev.shutdown().await;
    Ok(())
}
