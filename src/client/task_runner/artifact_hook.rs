//! Hook `artifact`: fetches each `artifact { source, destination, mode, options }` into the task
//! dir before the task starts. Nomad: `client/allocrunner/taskrunner/artifact_hook.go` (go-getter).
//!
//! Sources: `http://` and `https://` (streamed to a file, `http.rs`), `file://` (a file or a
//! directory, copied, only from the operator's `file_allowlist`) and git (`git::<url>` or an
//! http(s) URL ending `.git`, cloned by the `git` binary, `git.rs`). Each artifact is fetched
//! into a fresh staging directory in the task dir, its `options { checksum }` checked
//! (`checksum.rs`), archives unpacked there (`unpack.rs`, unless `options { archive = false }`),
//! and only then moved into the destination. The destination is relative to the task dir
//! (default `local/`): mode `file` names the file itself; otherwise it is a directory that
//! receives a fetched file under its own name, or the contents of an archive, a directory or a
//! repository. The client's `artifact` block sets the limits (`ArtifactLimits`, Nomad's names
//! and defaults); exceeding one fails the artifact with an error naming it. As in Nomad, the
//! source, each option and header and the destination are interpolated first against the task's
//! environment and the node (`${NOMAD_ALLOC_ID}`, `${attr.kernel.name}`, `${meta.x}`); the
//! hook's state keys each artifact by its block as written.
//!
//! **Invariant:** every file is created through [`crate::allocfs`] beneath the task dir (never
//! through a symbolic link), a `file://` source (git's included) is read only from beneath a
//! directory the operator allows (`client { artifact { file_allowlist = [...] } }`), and a
//! fetched archive is treated as hostile (see `unpack.rs`).

mod checksum;
mod git;
mod http;
mod unpack;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::env_hook::{NodeFacts, TaskPaths, build_env, interpolate};
use super::events;
use super::hooks::{HookError, HookFuture, Prestart, PrestartRequest, PrestartResponse, TaskHook};
use crate::allocfs::{AllocFsError, OpenOptions, RelPath, Root};
use crate::structs::{TaskArtifact, TaskEvent};

pub const NAME: &str = "artifacts";

/// The client's `artifact` block, parsed (Nomad's names and defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactLimits {
    /// `http_read_timeout`: a download must complete within this.
    pub http_read_timeout: Duration,
    /// `http_max_size`: bytes one download may have.
    pub http_max_size: u64,
    /// `decompression_size_limit`: bytes one archive may unpack to.
    pub decompression_size_limit: u64,
    /// `decompression_file_count_limit`: entries one archive may unpack to.
    pub decompression_file_count_limit: u64,
    /// `git_timeout`: a clone (and checkout) must complete within this.
    pub git_timeout: Duration,
}

impl Default for ArtifactLimits {
    fn default() -> ArtifactLimits {
        ArtifactLimits {
            http_read_timeout: Duration::from_secs(30 * 60),
            http_max_size: 100_000_000_000,
            decompression_size_limit: 100_000_000_000,
            decompression_file_count_limit: 4096,
            git_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// Why an artifact was not fetched.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The artifact block itself is wrong or asks for what caravan does not do.
    #[error("{0}")]
    Source(String),
    #[error("bad response code: {0}")]
    Status(u16),
    #[error("the download is larger than the client's artifact http_max_size ({limit} bytes)")]
    DownloadTooLarge { limit: u64 },
    #[error(
        "the download did not complete within the client's artifact http_read_timeout ({timeout:?})"
    )]
    HttpTimeout { timeout: Duration },
    #[error("git did not complete within the client's artifact git_timeout ({timeout:?})")]
    GitTimeout { timeout: Duration },
    #[error(
        "{kind} archive contains too many files: {count} > {limit} (the client's artifact decompression_file_count_limit)"
    )]
    TooManyFiles {
        kind: &'static str,
        count: u64,
        limit: u64,
    },
    #[error(
        "{kind} archive larger than limit: over {limit} bytes unpacked (the client's artifact decompression_size_limit)"
    )]
    TooLarge { kind: &'static str, limit: u64 },
    #[error("checksums did not match for {file}: expected {kind}:{expected}, got {kind}:{actual}")]
    Checksum {
        file: String,
        kind: &'static str,
        expected: String,
        actual: String,
    },
    #[error("archive entry {entry:?}: {reason}")]
    Entry { entry: String, reason: String },
    #[error("{0}")]
    Archive(String),
    #[error("{0}")]
    Git(String),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Fs(#[from] AllocFsError),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// What the operator lets artifacts do: where `file://` sources may come from, and the limits.
#[derive(Debug, Clone, Default)]
pub struct ArtifactSettings {
    pub file_allowlist: Vec<PathBuf>,
    pub limits: ArtifactLimits,
}

/// Fetches every artifact; the error names the failing source.
#[cfg(test)]
pub async fn run(
    task_dir: &Path,
    artifacts: &[TaskArtifact],
    settings: &ArtifactSettings,
) -> Result<(), String> {
    for artifact in artifacts {
        fetch_one(task_dir, artifact, settings).await?;
    }
    Ok(())
}

async fn fetch_one(
    task_dir: &Path,
    artifact: &TaskArtifact,
    settings: &ArtifactSettings,
) -> Result<(), String> {
    fetch(task_dir, artifact, settings).await.map_err(|err| {
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
    pub settings: ArtifactSettings,
    /// The node, for `${attr.*}`, `${meta.*}` and `${node.*}` in an artifact's block.
    pub facts: Arc<NodeFacts>,
}

/// `artifact` with every `${...}` in its source, options, headers and destination replaced from
/// `env` and the node (Nomad's `TaskEnv.ReplaceEnv` on the same fields).
fn interpolated(
    artifact: &TaskArtifact,
    env: &BTreeMap<String, String>,
    facts: &NodeFacts,
) -> TaskArtifact {
    let each = |map: &BTreeMap<String, String>| {
        map.iter()
            .map(|(key, value)| (key.clone(), interpolate(value, env, facts)))
            .collect()
    };
    TaskArtifact {
        getter_source: interpolate(&artifact.getter_source, env, facts),
        getter_options: each(&artifact.getter_options),
        getter_headers: each(&artifact.getter_headers),
        relative_dest: interpolate(&artifact.relative_dest, env, facts),
        ..artifact.clone()
    }
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
            // The task's environment as the env hook will give it, over what earlier hooks gave.
            let paths = TaskPaths::for_driver(req.alloc_dir.root(), req.task_dir, req.fs_isolation);
            let mut env = req.env.clone();
            env.extend(build_env(req.alloc, req.task, &self.facts, &paths));
            req.events.emit(events::new(
                TaskEvent::DOWNLOADING_ARTIFACTS,
                "Client is downloading artifacts",
            ));
            for artifact in artifacts {
                let key = artifact_key(artifact);
                if state.fetched.contains(&key) {
                    continue;
                }
                let resolved = interpolated(artifact, &env, &self.facts);
                if let Err(err) = fetch_one(req.task_dir, &resolved, &self.settings).await {
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

/// Where an artifact comes from.
#[derive(Debug)]
enum Source {
    File(PathBuf),
    Http(String),
    Git(String),
}

/// The source and its options; options go-getter takes from the URL's query (`?checksum=`,
/// `?archive=`, `?ref=`, `?depth=`) are taken from there too, the `options` block winning.
fn parse_source(
    artifact: &TaskArtifact,
) -> Result<(Source, BTreeMap<String, String>), ArtifactError> {
    let raw = artifact.getter_source.as_str();
    let mut options = BTreeMap::new();
    if let Some(path) = raw.strip_prefix("file://") {
        options.extend(artifact.getter_options.clone());
        return Ok((Source::File(PathBuf::from(path)), options));
    }
    let (git, raw) = match git::git_url(raw) {
        Some(url) => (true, url),
        None => (false, raw),
    };
    let mut url = reqwest::Url::parse(raw)
        .map_err(|err| ArtifactError::Source(format!("invalid source URL: {err}")))?;
    const TAKEN: [&str; 5] = ["checksum", "archive", "ref", "depth", "sshkey"];
    let (taken, kept): (Vec<_>, Vec<_>) = url
        .query_pairs()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .partition(|(name, _)| TAKEN.contains(&name.as_str()));
    options.extend(taken);
    options.extend(artifact.getter_options.clone());
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    let source = match (git, url.scheme()) {
        (true, "https" | "http") => Source::Git(url.to_string()),
        (true, "file") => Source::Git(url.path().to_owned()),
        (true, scheme) => {
            return Err(ArtifactError::Source(format!(
                "git sources over {scheme} are not supported: use https, http or file"
            )));
        }
        (false, "https" | "http") => Source::Http(url.to_string()),
        (false, scheme) => {
            return Err(ArtifactError::Source(format!(
                "unsupported source scheme {scheme:?}: expected https://, http://, file:// or git::"
            )));
        }
    };
    Ok((source, options))
}

/// The destination beneath the task dir (default `local/`).
fn destination(artifact: &TaskArtifact) -> Result<RelPath, ArtifactError> {
    let relative = if artifact.relative_dest.is_empty() {
        "local/"
    } else {
        artifact.relative_dest.as_str()
    };
    RelPath::parse_rooted(relative).map_err(|_| {
        ArtifactError::Source(format!(
            "destination {relative:?} escapes the task directory"
        ))
    })
}

/// The allowed directory `source` lies beneath, and its path relative to it.
fn allowed_source(
    source: &Path,
    file_allowlist: &[PathBuf],
) -> Result<(Root, RelPath), ArtifactError> {
    if !source.is_absolute() {
        return Err(ArtifactError::Source(
            "a file:// source must be an absolute path".to_owned(),
        ));
    }
    let invalid = |_| ArtifactError::Source("the source path is not valid".to_owned());
    let normalized = RelPath::parse_rooted(source).map_err(invalid)?;
    let normalized = Path::new("/").join(normalized.to_path_buf());
    for allowed in file_allowlist {
        if let Ok(rest) = normalized.strip_prefix(allowed) {
            let root = Root::open(allowed)?;
            let relative = RelPath::parse(rest).map_err(invalid)?;
            return Ok((root, relative));
        }
    }
    Err(ArtifactError::Source(format!(
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
    )))
}

/// What a fetch left in the staging directory.
enum Staged {
    /// A file at `<staging>/download`, named `name` where it came from.
    File { name: String },
    /// A directory tree at `<staging>/tree`.
    Dir,
}

const DOWNLOAD: &str = "download";
const TREE: &str = "tree";
const UNPACKED: &str = "unpacked";

async fn fetch(
    task_dir: &Path,
    artifact: &TaskArtifact,
    settings: &ArtifactSettings,
) -> Result<(), ArtifactError> {
    let (source, options) = parse_source(artifact)?;
    let dest = destination(artifact)?;
    let checksum = options
        .get("checksum")
        .filter(|value| !value.is_empty())
        .map(|value| checksum::Checksum::parse(value))
        .transpose()?;
    let task_root = blocking({
        let task_dir = task_dir.to_path_buf();
        move || Ok(Root::create(&task_dir)?)
    })
    .await?;
    // A fresh staging directory beside what the task sees, gone once the artifact is placed.
    let staging = RelPath::parse(format!(".caravan-artifact-{}", artifact_key(artifact)))
        .map_err(|_| ArtifactError::Source("staging path".to_owned()))?;
    if task_root.exists(&staging)? {
        task_root.remove(&staging)?;
    }
    let staging_root = task_root.create_dir_all(&staging, 0o700)?;
    let result = async {
        let staged = stage(&source, &options, artifact, &staging_root, settings).await?;
        let settings = settings.clone();
        let artifact = artifact.clone();
        let task_root = task_root.clone();
        let staging = staging.clone();
        blocking(move || {
            place(
                &task_root, &staging, staged, &dest, &artifact, &options, checksum, &settings,
            )
        })
        .await
    }
    .await;
    if let Err(err) = task_root.remove(&staging) {
        tracing::warn!(%err, "removing an artifact's staging directory");
    }
    result
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ArtifactError> + Send + 'static,
) -> Result<T, ArtifactError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ArtifactError::Io(io::Error::other(err)))?
}

/// Fetches the source into the staging directory.
async fn stage(
    source: &Source,
    options: &BTreeMap<String, String>,
    artifact: &TaskArtifact,
    staging: &Root,
    settings: &ArtifactSettings,
) -> Result<Staged, ArtifactError> {
    let download = RelPath::parse(DOWNLOAD).map_err(|_| ArtifactError::Source(DOWNLOAD.into()))?;
    let tree = RelPath::parse(TREE).map_err(|_| ArtifactError::Source(TREE.into()))?;
    match source {
        Source::File(path) => {
            let (source_root, source_rel) = allowed_source(path, &settings.file_allowlist)?;
            let name = base_name(&source_rel);
            let staging = staging.clone();
            blocking(move || {
                if source_root.metadata(&source_rel)?.is_dir() {
                    copy_recursively(&source_root, &source_rel, &staging, &tree)?;
                    Ok(Staged::Dir)
                } else {
                    copy_recursively(&source_root, &source_rel, &staging, &download)?;
                    Ok(Staged::File { name })
                }
            })
            .await
        }
        Source::Http(url) => {
            let name = url_base_name(url);
            let file = staging.open_file(
                &download,
                OpenOptions {
                    write: true,
                    create_new: true,
                    mode: 0o600,
                    ..OpenOptions::default()
                },
            )?;
            http::download(
                url,
                &artifact.getter_headers,
                artifact.getter_insecure,
                file,
                &settings.limits,
            )
            .await?;
            Ok(Staged::File { name })
        }
        Source::Git(url) => {
            let git_options = git::GitOptions::from_options(options)?;
            let url = if url.starts_with('/') {
                // A local repository: only from beneath the operator's allowed directories,
                // and never through a link there.
                let (root, rel) = allowed_source(Path::new(url), &settings.file_allowlist)?;
                root.subdir(&rel)?;
                format!("file://{}", root.display_path(&rel).display())
            } else {
                url.clone()
            };
            git::clone(
                &url,
                &git_options,
                &staging.display_path(&tree),
                settings.limits.git_timeout,
            )
            .await?;
            Ok(Staged::Dir)
        }
    }
}

fn base_name(path: &RelPath) -> String {
    path.names()
        .last()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "artifact".to_owned())
}

/// The last name of a URL's path, the name a downloaded file keeps.
fn url_base_name(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|url| {
            url.path_segments()
                .and_then(|mut segments| segments.rfind(|segment| !segment.is_empty()))
                .map(str::to_owned)
        })
        .map(|name| percent_decode(&name))
        .filter(|name| !name.is_empty() && name != "." && name != ".." && !name.contains('/'))
        .unwrap_or_else(|| "artifact".to_owned())
}

fn percent_decode(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(hex) = name.get(index + 1..index + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks the checksum, unpacks an archive, and moves the result into the destination.
#[allow(clippy::too_many_arguments)]
fn place(
    task_root: &Root,
    staging: &RelPath,
    staged: Staged,
    dest: &RelPath,
    artifact: &TaskArtifact,
    options: &BTreeMap<String, String>,
    checksum: Option<checksum::Checksum>,
    settings: &ArtifactSettings,
) -> Result<(), ArtifactError> {
    let mode = artifact.getter_mode.as_str();
    let name = match staged {
        Staged::Dir => {
            if checksum.is_some() {
                return Err(ArtifactError::Source(
                    "options { checksum } needs a file, but the source is a directory".to_owned(),
                ));
            }
            if mode == "file" {
                return Err(ArtifactError::Source(
                    "mode \"file\" needs a file, but the source is a directory".to_owned(),
                ));
            }
            return move_tree(task_root, &staging.join_name(TREE.as_ref()), dest);
        }
        Staged::File { name } => name,
    };
    let download = staging.join_name(DOWNLOAD.as_ref());
    if let Some(checksum) = &checksum {
        let mut file = task_root.open_file(&download, OpenOptions::read())?;
        checksum.verify(&mut file, &name)?;
    }
    let kind = unpack::archive_kind(options.get("archive").map(String::as_str), &name)?;
    match kind {
        None => {
            let target = if mode == "file" {
                dest.clone()
            } else {
                dest.join_name(name.as_ref())
            };
            move_file(task_root, &download, &target)
        }
        Some(unpack::ArchiveKind::Gz) => {
            let output = staging.join_name(UNPACKED.as_ref());
            let file = task_root.open_file(&download, OpenOptions::read())?;
            unpack::unpack(
                unpack::ArchiveKind::Gz,
                file,
                task_root,
                &output,
                &settings.limits,
            )?;
            let target = if mode == "file" {
                dest.clone()
            } else {
                dest.join_name(unpack::gz_output_name(&name).as_ref())
            };
            move_file(task_root, &output, &target)
        }
        Some(kind) => {
            if mode == "file" {
                return Err(ArtifactError::Source(
                    "mode \"file\" cannot hold an unpacked archive: use mode \"any\" or \"dir\", or options { archive = false }".to_owned(),
                ));
            }
            let unpacked = staging.join_name(UNPACKED.as_ref());
            let unpack_root = task_root.create_dir_all(&unpacked, 0o755)?;
            let file = task_root.open_file(&download, OpenOptions::read())?;
            unpack::unpack(kind, file, &unpack_root, &RelPath::root(), &settings.limits)?;
            move_tree(task_root, &unpacked, dest)
        }
    }
}

/// Moves the file `from` to `to` (replacing a file or link there, never following one).
fn move_file(root: &Root, from: &RelPath, to: &RelPath) -> Result<(), ArtifactError> {
    if let Some((parent, _)) = to.split_last() {
        root.create_dir_all(&parent, 0o755)?;
    }
    root.rename(from, to)?;
    Ok(())
}

/// Moves the contents of the directory `from` into the directory `to`, merging into
/// directories already there and replacing anything else of the same name (a link is replaced,
/// never followed).
fn move_tree(root: &Root, from: &RelPath, to: &RelPath) -> Result<(), ArtifactError> {
    root.create_dir_all(to, 0o755)?;
    for entry in root.list(from)? {
        let source = from.join_name(&entry.name);
        let target = to.join_name(&entry.name);
        match root.metadata(&target) {
            Ok(existing) if existing.is_dir() && entry.metadata.is_dir() => {
                move_tree(root, &source, &target)?;
            }
            Ok(_) => {
                root.remove(&target)?;
                root.rename(&source, &target)?;
            }
            Err(err) if err.is_not_found() => root.rename(&source, &target)?,
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
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
mod tests;
