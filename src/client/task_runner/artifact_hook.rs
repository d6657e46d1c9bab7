//! Hook `artifact`: fetches each `artifact { source, destination, mode }` into the task dir
//! before the task starts. Nomad: `client/allocrunner/taskrunner/artifact_hook.go` (go-getter).
//!
//! Supported sources: `file://` (a file or a directory, copied) and `http://` (downloaded with
//! reqwest). `https://` needs a TLS backend the build does not enable yet and fails with a clear
//! error; archives are not unpacked. The destination is relative to the task dir (default
//! `local/`); in mode `file` it names the file, otherwise it is a directory that receives the
//! source's base name.

use std::path::{Path, PathBuf};

use crate::client::alloc_runner::alloc_dir::resolve_under;
use crate::structs::TaskArtifact;

pub const NAME: &str = "artifacts";

/// Fetches every artifact; the error names the failing source.
pub async fn run(task_dir: &Path, artifacts: &[TaskArtifact]) -> Result<(), String> {
    for artifact in artifacts {
        fetch(task_dir, artifact).await.map_err(|err| {
            format!(
                "failed to download artifact {:?}: {err}",
                artifact.getter_source
            )
        })?;
    }
    Ok(())
}

fn destination(
    task_dir: &Path,
    artifact: &TaskArtifact,
    base_name: &str,
) -> Result<PathBuf, String> {
    let relative = if artifact.relative_dest.is_empty() {
        "local/"
    } else {
        artifact.relative_dest.as_str()
    };
    let dest = resolve_under(task_dir, relative)
        .ok_or_else(|| format!("destination {relative:?} escapes the task directory"))?;
    if artifact.getter_mode == "file" {
        Ok(dest)
    } else {
        Ok(dest.join(base_name))
    }
}

async fn fetch(task_dir: &Path, artifact: &TaskArtifact) -> Result<(), String> {
    let source = artifact.getter_source.as_str();
    if let Some(path) = source.strip_prefix("file://") {
        let source_path = Path::new(path);
        let base_name = source_path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "artifact".to_owned());
        let dest = destination(task_dir, artifact, &base_name)?;
        copy_recursively(source_path, &dest).map_err(|err| err.to_string())
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
        let dest = destination(task_dir, artifact, &base_name)?;
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
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|err| err.to_string())?;
        }
        std::fs::write(&dest, &bytes).map_err(|err| err.to_string())
    } else if source.starts_with("https://") {
        Err("https sources are not supported yet (no TLS backend in this build)".to_owned())
    } else {
        Err("unsupported source scheme: expected file:// or http://".to_owned())
    }
}

fn copy_recursively(from: &Path, to: &Path) -> std::io::Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_recursively(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from, to).map(|_| ())
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
        run(&task_dir, &artifacts)
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
        assert!(run(&task_dir, &escape).await.is_err());
        Ok(())
    }
}
