//! Hook `task_dir`: builds the task's `local/`, `secrets/` and `tmp/` (idempotent, so it runs
//! again before every restart and on recovery, mending what a task removed). Its state records
//! that the directory was built, so "Building Task Directory" is announced once per task, as
//! Nomad's does. Nomad: `client/allocrunner/taskrunner/task_dir_hook.go`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::events;
use super::hooks::{HookError, HookFuture, Prestart, PrestartRequest, PrestartResponse, TaskHook};
use crate::client::alloc_runner::alloc_dir::AllocDir;

pub const NAME: &str = "task_dir";

pub fn run(alloc_dir: &AllocDir, task: &str) -> Result<PathBuf, String> {
    alloc_dir
        .build()
        .and_then(|()| alloc_dir.build_task_dir(task))
        .map_err(|err| format!("failed to build task directory for {task:?}: {err}"))
}

/// What the hook keeps.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Built {
    built: bool,
}

/// The `task_dir` hook.
#[derive(Debug, Default)]
pub struct TaskDirHook;

impl TaskHook for TaskDirHook {
    fn name(&self) -> &'static str {
        NAME
    }

    fn as_prestart(&self) -> Option<&dyn Prestart> {
        Some(self)
    }
}

impl Prestart for TaskDirHook {
    fn prestart<'a>(
        &'a self,
        req: &'a PrestartRequest<'a>,
        resp: &'a mut PrestartResponse,
    ) -> HookFuture<'a> {
        Box::pin(async move {
            let built = req.previous::<Built>().unwrap_or_default().built;
            if !built {
                req.events.emit(events::task_setup());
            }
            let alloc_dir = req.alloc_dir.clone();
            let task = req.task.name.clone();
            let task_dir = tokio::task::spawn_blocking(move || run(&alloc_dir, &task))
                .await
                .map_err(|err| HookError::new(err.to_string()))?
                .map_err(HookError::new)?;
            if task_dir != req.task_dir {
                return Err(HookError::new(format!(
                    "task directory {} is not the task's own {}",
                    task_dir.display(),
                    req.task_dir.display()
                )));
            }
            resp.set_state(&Built { built: true })
        })
    }
}
