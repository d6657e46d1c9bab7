//! Hook `artifact`: fetches each `artifact { source, destination, mode }` into the task dir
//! before the task starts. Nomad: `client/allocrunner/taskrunner/artifact_hook.go` (go-getter).
//!
//! Supported sources: `file://` (a file or a directory, copied) and `http://` (downloaded with
//! reqwest). `https://` needs a TLS backend the build does not enable yet and fails with a clear
//! error; archives are not unpacked. The destination is relative to the task dir (default
//! `local/`); in mode `file` it names the file, otherwise it is a directory that receives the
//! source's base name.

//! **Invariant:** a `file://` source is read only from beneath a directory the operator allows
//! (`client { artifact { file_allowlist = [...] } }`), and neither the source nor the destination
//! is ever reached through a symbolic link: both go through [`crate::allocfs`].

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::events;
use super::hooks::{HookError, HookFuture, Prestart, PrestartRequest, PrestartResponse, TaskHook};
use crate::allocfs::{OpenOptions, RelPath, Root};
use crate::structs::{TaskArtifact, TaskEvent};

pub const NAME: &str = "artifacts";

/// Fetches every artifact; the error names the failing source. `file_allowlist` lists the
/// directories `file://` sources may come from.
#[cfg(test)]
pub async fn run(
    task_dir: &Path,
    artifacts: &[TaskArtifact],
    file_allowlist: &[PathBuf],
) -> Result<(), String> {
    for artifact in artifacts {
        fetch_one(task_dir, artifact, file_allowlist).await?;
    }
    Ok(())
}

async fn fetch_one(
    task_dir: &Path,
    artifact: &TaskArtifact,
    file_allowlist: &[PathBuf],
) -> Result<(), String> {
    fetch(task_dir, artifact, file_allowlist)
        .await
        .map_err(|err| {
            format!(
                "failed to download artifact {:?}: {err}",
                artifact.getter_source
            )
        })
}

/// An artifact's identity in the hook's state: a digest of its whole block, so a changed block
/// is a different artifact (Nomad keys by `TaskArtifact.Hash`).
fn artifact_key(artifact: &TaskArtifact) -> String {
    use sha2::{Digest, Sha256};
    let encoded = serde_json::to_vec(artifact).unwrap_or_default();
    hex::encode(&Sha256::digest(&encoded)[..16])
}

/// What the hook keeps: the artifacts fetched so far, so a retry after a partial failure does
/// not fetch them again.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Fetched {
    fetched: BTreeSet<String>,
}

/// The `artifacts` hook: fetches what is not yet fetched, then reports `done`, so the
/// artifacts are fetched once per allocation, not again on a task restart or an agent restart.
#[derive(Debug, Clone, Default)]
pub struct ArtifactHook {
    pub file_allowlist: Vec<PathBuf>,
}

impl TaskHook for ArtifactHook {
    fn name(&self) -> &'static str {
        NAME
    }

    fn as_prestart(&self) -> Option<&dyn Prestart> {
        Some(self)
    }
}

impl Prestart for ArtifactHook {
    fn prestart<'a>(
        &'a self,
        req: &'a PrestartRequest<'a>,
        resp: &'a mut PrestartResponse,
    ) -> HookFuture<'a> {
        Box::pin(async move {
            let artifacts = &req.task.artifacts;
            if artifacts.is_empty() {
                resp.done = true;
                return Ok(());
            }
            let mut state = req.previous::<Fetched>().unwrap_or_default();
            req.events.emit(events::new(
                TaskEvent::DOWNLOADING_ARTIFACTS,
                "Client is downloading artifacts",
            ));
            for artifact in artifacts {
                let key = artifact_key(artifact);
                if state.fetched.contains(&key) {
                    continue;
                }
                if let Err(err) = fetch_one(req.task_dir, artifact, &self.file_allowlist).await {
                    // Keep what was fetched: the retry starts from the first missing one.
                    resp.set_state(&state)?;
                    let mut event = events::new(TaskEvent::FAILED_ARTIFACT_DOWNLOAD, err.clone());
                    event.message = err.clone();
                    return Err(HookError::new(err).with_event(event));
                }
                state.fetched.insert(key);
            }
            resp.set_state(&state)?;
            resp.done = true;
            Ok(())
        })
    }
}

/// The destination beneath the task dir: in mode `file` the file itself, otherwise a directory
/// that receives `base_name`.
fn destination(artifact: &TaskArtifact, base_name: &str) -> Result<RelPath, String> {
    let relative = if artifact.relative_dest.is_empty() {
        "local/"
    } else {
        artifact.relative_dest.as_str()
    };
    let dest = RelPath::parse_rooted(relative)
        .map_err(|_| format!("destination {relative:?} escapes the task directory"))?;
    if artifact.getter_mode == "file" {
        Ok(dest)
    } else {
        Ok(dest.join_name(std::ffi::OsStr::new(base_name)))
    }
}

/// The allowed directory `source` lies beneath, and its path relative to it.
fn allowed_source(source: &str, file_allowlist: &[PathBuf]) -> Result<(Root, RelPath), String> {
    let source_path = Path::new(source);
    if !source_path.is_absolute() {
        return Err("a file:// source must be an absolute path".to_owned());
    }
    let normalized = RelPath::parse_rooted(source_path)
        .map_err(|_| "the source path is not valid".to_owned())?;
    let normalized = Path::new("/").join(normalized.to_path_buf());
    for allowed in file_allowlist {
        if let Ok(rest) = normalized.strip_prefix(allowed) {
            let root = Root::open(allowed).map_err(|err| err.to_string())?;
            let relative = RelPath::parse(rest).map_err(|_| "the source path is not valid")?;
            return Ok((root, relative));
        }
    }
    Err(format!(
        "file:// sources are refused outside the client's artifact file_allowlist ({})",
        if file_allowlist.is_empty() {
            "empty".to_owned()
        } else {
            file_allowlist
                .iter()
                .map(|dir| dir.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    ))
}

async fn fetch(
    task_dir: &Path,
    artifact: &TaskArtifact,
    file_allowlist: &[PathBuf],
) -> Result<(), String> {
    let source = artifact.getter_source.as_str();
    if let Some(path) = source.strip_prefix("file://") {
        let (source_root, source_rel) = allowed_source(path, file_allowlist)?;
        let base_name = source_rel
            .names()
            .last()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "artifact".to_owned());
        let dest = destination(artifact, &base_name)?;
        let task_dir = task_dir.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let task_root = Root::create(&task_dir)?;
            copy_recursively(&source_root, &source_rel, &task_root, &dest)
        })
        .await
        .map_err(|err| err.to_string())?
        .map_err(|err| err.to_string())
    } else if source.starts_with("http://") {
        let url_path = source
            .split(['?', '#'])
            .next()
            .unwrap_or(source)
            .trim_end_matches('/');
        let base_name = url_path
            .rsplit('/')
            .next()
            .filter(|name| !name.is_empty() && !name.contains(':'))
            .unwrap_or("artifact")
            .to_owned();
        let dest = destination(artifact, &base_name)?;
        let client = reqwest::Client::new();
        let mut request = client.get(source);
        for (name, value) in &artifact.getter_headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|err| err.to_string())?;
        if !response.status().is_success() {
            return Err(format!("bad response code: {}", response.status().as_u16()));
        }
        let bytes = response.bytes().await.map_err(|err| err.to_string())?;
        let task_dir = task_dir.to_path_buf();
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            let task_root = Root::create(&task_dir)?;
            if let Some((parent, _)) = dest.split_last() {
                task_root.create_dir_all(&parent, 0o755)?;
            }
            Ok(task_root.write(&dest, &bytes)?)
        })
        .await
        .map_err(|err| err.to_string())?
        .map_err(|err| err.to_string())
    } else if source.starts_with("https://") {
        Err("https sources are not supported yet (no TLS backend in this build)".to_owned())
    } else {
        Err("unsupported source scheme: expected file:// or http://".to_owned())
    }
}

/// Copies a file or directory tree from beneath one root to beneath another, following no link
/// on either side.
fn copy_recursively(
    from_root: &Root,
    from: &RelPath,
    to_root: &Root,
    to: &RelPath,
) -> io::Result<()> {
    if from_root.metadata(from)?.is_dir() {
        to_root.create_dir_all(to, 0o755)?;
        for entry in from_root.list(from)? {
            copy_recursively(
                from_root,
                &from.join_name(&entry.name),
                to_root,
                &to.join_name(&entry.name),
            )?;
        }
        Ok(())
    } else {
        if let Some((parent, _)) = to.split_last() {
            to_root.create_dir_all(&parent, 0o755)?;
        }
        let mut source = from_root.open_file(from, OpenOptions::read())?;
        let mut dest = to_root.open_file(to, OpenOptions::write_truncate())?;
        io::copy(&mut source, &mut dest).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        run(&task_dir, &artifacts, &allowlist)
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
        assert!(run(&task_dir, &escape, &allowlist).await.is_err());
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
                run(&task_dir, &artifacts, &[allowed]).await
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
                &[]
            )
            .await
            .is_err_and(|err| err.contains("empty"))
        );
        // A destination planted as a link to the outside is not written through.
        std::fs::create_dir_all(task_dir.join("local"))?;
        std::fs::write(allowed.join("tool"), "tool")?;
        symlink(&secret, task_dir.join("local/tool"))?;
        assert!(
            fetch_one(format!("file://{}/tool", allowed.display()))
                .await
                .is_err()
        );
        assert_eq!(std::fs::read_to_string(&secret)?, "top secret");
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
            file_allowlist: vec![dir.path().to_path_buf()],
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
}
