//! Hook `dispatch_payload`: writes a dispatched job's payload to the task's
//! `dispatch_payload { file }`, beneath `local/`, before the task starts. Nomad:
//! `client/allocrunner/taskrunner/dispatch_hook.go`.
//!
//! **Invariant:** the payload and the file name are the job submitter's: the file is written
//! through [`crate::allocfs`], so a name that escapes `local/` is refused and no symbolic link
//! the task planted is followed.

use std::path::Path;

use super::hooks::{HookError, HookFuture, Prestart, PrestartRequest, PrestartResponse, TaskHook};
use crate::allocfs::{RelPath, Root};

pub const NAME: &str = "dispatch_payload";

/// Writes `payload` to `local/<file>` beneath `task_dir`, creating the directories on the way.
pub fn write_payload(task_dir: &Path, file: &str, payload: &[u8]) -> Result<(), String> {
    let path = RelPath::parse(Path::new("local").join(file))
        .ok()
        .filter(|path| path.names().len() > 1)
        .ok_or_else(|| format!("dispatch payload file {file:?} escapes the task's local dir"))?;
    let root = Root::open(task_dir).map_err(|err| err.to_string())?;
    if let Some((parent, _)) = path.split_last() {
        root.create_dir_all(&parent, 0o775)
            .map_err(|err| format!("failed to create the payload's directory: {err}"))?;
    }
    root.write(&path, payload)
        .map_err(|err| format!("failed to write the dispatch payload: {err}"))
}

/// The `dispatch_payload` hook.
#[derive(Debug, Default)]
pub struct DispatchHook;

impl TaskHook for DispatchHook {
    fn name(&self) -> &'static str {
        NAME
    }

    fn as_prestart(&self) -> Option<&dyn Prestart> {
        Some(self)
    }
}

impl Prestart for DispatchHook {
    fn prestart<'a>(
        &'a self,
        req: &'a PrestartRequest<'a>,
        resp: &'a mut PrestartResponse,
    ) -> HookFuture<'a> {
        Box::pin(async move {
            let payload = req
                .alloc
                .job
                .as_ref()
                .map(|job| job.payload.clone())
                .unwrap_or_default();
            let Some(config) = req.task.dispatch_payload.as_ref() else {
                resp.done = true;
                return Ok(());
            };
            if payload.is_empty() || config.file.is_empty() {
                resp.done = true;
                return Ok(());
            }
            let task_dir = req.task_dir.to_owned();
            let file = config.file.clone();
            tokio::task::spawn_blocking(move || write_payload(&task_dir, &file, &payload))
                .await
                .map_err(|err| HookError::new(err.to_string()))?
                .map_err(HookError::fatal)?;
            resp.done = true;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::write_payload;

    #[test]
    fn writes_beneath_local_and_refuses_escapes() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        std::fs::create_dir(dir.path().join("local")).map_err(|err| err.to_string())?;
        write_payload(dir.path(), "in/put.txt", b"hello")?;
        assert_eq!(
            std::fs::read(dir.path().join("local/in/put.txt")).map_err(|err| err.to_string())?,
            b"hello"
        );
        for bad in ["../escape", "/etc/passwd", "", "a/../../b"] {
            assert!(
                write_payload(dir.path(), bad, b"x").is_err(),
                "{bad:?} is refused"
            );
        }
        // A link the task planted in local/ is not followed.
        let outside = tempfile::tempdir().map_err(|err| err.to_string())?;
        std::os::unix::fs::symlink(outside.path(), dir.path().join("local/link"))
            .map_err(|err| err.to_string())?;
        assert!(write_payload(dir.path(), "link/file", b"x").is_err());
        assert!(!outside.path().join("file").exists());
        Ok(())
    }
}
