//! Hook `task_dir`: builds the task's `local/`, `secrets/` and `tmp/` (idempotent, so it runs
//! again before every restart). Nomad: `client/allocrunner/taskrunner/task_dir_hook.go`.

use std::path::PathBuf;

use crate::client::alloc_runner::alloc_dir::AllocDir;

pub const NAME: &str = "task_dir";

pub fn run(alloc_dir: &AllocDir, task: &str) -> Result<PathBuf, String> {
    alloc_dir
        .build()
        .and_then(|()| alloc_dir.build_task_dir(task))
        .map_err(|err| format!("failed to build task directory for {task:?}: {err}"))
}
