//! git sources (`git::<url>`, or an http(s) URL ending in `.git`): `git clone` run as a process
//! (no shell) into a fresh directory, `--depth` from `options { depth }`, `options { ref }`
//! checked out, the whole within the client's `git_timeout`, with `GIT_TERMINAL_PROMPT=0` so a
//! private repository fails rather than waits for a password. `options { sshkey }` is refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::ArtifactError;

/// The git source in `source` (`git::` stripped), if it is one.
pub fn git_url(source: &str) -> Option<&str> {
    if let Some(url) = source.strip_prefix("git::") {
        return Some(url);
    }
    let path = source.split(['?', '#']).next().unwrap_or(source);
    ((source.starts_with("https://") || source.starts_with("http://")) && path.ends_with(".git"))
        .then_some(source)
}

/// The options that shape the clone.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GitOptions {
    pub reference: Option<String>,
    pub depth: Option<u32>,
}

impl GitOptions {
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<GitOptions, ArtifactError> {
        if options.contains_key("sshkey") {
            return Err(ArtifactError::Source(
                "options { sshkey } is not supported: caravan clones over https, http or an allowed file:// path".to_owned(),
            ));
        }
        let reference = options
            .get("ref")
            .filter(|value| !value.is_empty())
            .cloned();
        if reference
            .as_deref()
            .is_some_and(|value| value.starts_with('-'))
        {
            return Err(ArtifactError::Source(
                "a git ref must not start with '-'".to_owned(),
            ));
        }
        let depth = options
            .get("depth")
            .map(|value| {
                value.parse::<u32>().map_err(|_| {
                    ArtifactError::Source(format!("options {{ depth }} {value:?} is not a number"))
                })
            })
            .transpose()?
            .filter(|depth| *depth > 0);
        Ok(GitOptions { reference, depth })
    }
}

/// Clones `url` into `dest` (a directory that must not exist yet) and checks out the ref.
pub async fn clone(
    url: &str,
    options: &GitOptions,
    dest: &Path,
    timeout: Duration,
) -> Result<(), ArtifactError> {
    let work = async {
        let mut args: Vec<String> = vec!["clone".to_owned(), "--quiet".to_owned()];
        if let Some(depth) = options.depth {
            args.push(format!("--depth={depth}"));
            // A shallow clone only has the branch or tag it was asked for.
            if let Some(reference) = &options.reference {
                args.push(format!("--branch={reference}"));
            }
        }
        args.push("--".to_owned());
        args.push(url.to_owned());
        args.push(dest.display().to_string());
        run_git(&args, None).await?;
        if let (Some(reference), None) = (&options.reference, options.depth) {
            run_git(
                &[
                    "checkout".to_owned(),
                    "--quiet".to_owned(),
                    reference.clone(),
                    "--".to_owned(),
                ],
                Some(dest),
            )
            .await?;
        }
        Ok(())
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ArtifactError::GitTimeout { timeout })?
}

async fn run_git(args: &[String], dir: Option<&Path>) -> Result<(), ArtifactError> {
    let mut command = tokio::process::Command::new("git");
    command
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "")
        .env("SSH_ASKPASS", "")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.output().await.map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            ArtifactError::Git(
                "git sources need a `git` binary on the client's PATH; none was found".to_owned(),
            )
        } else {
            ArtifactError::Git(format!("running git: {err}"))
        }
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(ArtifactError::Git(format!(
            "git {} failed ({}): {}",
            args.first().map(String::as_str).unwrap_or_default(),
            output.status,
            stderr.trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_sources_and_options() {
        assert_eq!(git_url("git::https://h/r"), Some("https://h/r"));
        assert_eq!(
            git_url("https://h/r.git?ref=v1"),
            Some("https://h/r.git?ref=v1")
        );
        assert_eq!(git_url("https://h/r.tar.gz"), None);
        let options = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            GitOptions::from_options(&options(&[("ref", "v1"), ("depth", "1")])).ok(),
            Some(GitOptions {
                reference: Some("v1".to_owned()),
                depth: Some(1)
            })
        );
        for bad in [
            options(&[("sshkey", "AAAA")]),
            options(&[("ref", "--upload-pack=x")]),
            options(&[("depth", "x")]),
        ] {
            assert!(GitOptions::from_options(&bad).is_err(), "{bad:?}");
        }
    }
}
