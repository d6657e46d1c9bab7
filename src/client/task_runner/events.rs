//! Task events with Nomad's types and display messages (Nomad: `structs.NewTaskEvent` and
//! `client/allocrunner/taskrunner/task_runner.go`'s `populateTaskEventDisplayMessage`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::driver_host::ExitResult;
use crate::structs::TaskEvent;
use crate::structs::duration::format_go_duration;

/// Unix nanoseconds now.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| i64::try_from(since.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 now, as Nomad's API gives task times.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

pub fn new(event_type: &str, display_message: impl Into<String>) -> TaskEvent {
    TaskEvent {
        event_type: event_type.to_owned(),
        time: now_nanos(),
        display_message: display_message.into(),
        ..TaskEvent::default()
    }
}

pub fn received() -> TaskEvent {
    new(TaskEvent::RECEIVED, "Task received by client")
}

pub fn task_setup() -> TaskEvent {
    let mut event = new(TaskEvent::TASK_SETUP, "Building Task Directory");
    event.message = "Building Task Directory".to_owned();
    event
}

pub fn started() -> TaskEvent {
    new(TaskEvent::STARTED, "Task started by client")
}

pub fn terminated(exit: &ExitResult) -> TaskEvent {
    let mut display = format!("Exit Code: {}", exit.exit_code);
    if exit.signal != 0 {
        display.push_str(&format!(", Signal: {}", exit.signal));
    }
    if exit.oom_killed {
        display.push_str(", OOM Killed");
    }
    if let Some(message) = &exit.err {
        display.push_str(&format!(", Exit Message: {message:?}"));
    }
    let mut event = new(TaskEvent::TERMINATED, display);
    event.exit_code = exit.exit_code;
    event.signal = exit.signal;
    event.message = exit.err.clone().unwrap_or_default();
    event
        .details
        .insert("exit_code".to_owned(), exit.exit_code.to_string());
    event
        .details
        .insert("signal".to_owned(), exit.signal.to_string());
    event
        .details
        .insert("oom_killed".to_owned(), exit.oom_killed.to_string());
    event
}

pub fn restarting(delay: Duration, reason: &str) -> TaskEvent {
    let mut event = new(
        TaskEvent::RESTARTING,
        format!("Task restarting in {}", format_go_duration(delay)),
    );
    event.start_delay = i64::try_from(delay.as_nanos()).unwrap_or(i64::MAX);
    event.restart_reason = reason.to_owned();
    event
        .details
        .insert("restart_reason".to_owned(), reason.to_owned());
    event
}

pub fn not_restarting(reason: &str) -> TaskEvent {
    let mut event = new(TaskEvent::NOT_RESTARTING, reason);
    event.restart_reason = reason.to_owned();
    event.fails_task = true;
    event
}

pub fn killing(timeout: Duration) -> TaskEvent {
    let mut event = new(
        TaskEvent::KILLING,
        format!(
            "Sent interrupt. Waiting {} before force killing",
            format_go_duration(timeout)
        ),
    );
    event.kill_timeout = i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX);
    event
}

pub fn killed(error: Option<String>) -> TaskEvent {
    match error {
        None => new(TaskEvent::KILLED, "Task successfully killed"),
        Some(error) => {
            let mut event = new(
                TaskEvent::KILLED,
                format!("Task killed with error: {error}"),
            );
            event.kill_error = error;
            event
        }
    }
}

pub fn driver_failure(error: &str) -> TaskEvent {
    let mut event = new(TaskEvent::DRIVER_FAILURE, error);
    event.driver_error = error.to_owned();
    event
}

pub fn sibling_failed(sibling: &str) -> TaskEvent {
    let mut event = new(
        TaskEvent::SIBLING_FAILED,
        format!("Task's sibling {sibling:?} failed"),
    );
    event
        .details
        .insert("failed_sibling".to_owned(), sibling.to_owned());
    event
}

/// The group's `max_run_duration` ran out: the task is killed and fails.
pub fn max_run_duration_exceeded(limit: Duration) -> TaskEvent {
    let mut event = new(
        TaskEvent::MAX_RUN_DURATION_EXCEEDED,
        format!(
            "Task exceeded the group's max_run_duration of {}",
            crate::structs::duration::format_go_duration(limit)
        ),
    );
    event.fails_task = true;
    event
}

pub fn leader_dead() -> TaskEvent {
    new("Leader Task Dead", "Leader Task in Group dead")
}

pub fn main_tasks_dead() -> TaskEvent {
    new("Main Tasks Dead", "Main tasks in the group died")
}

pub fn restart_signaled() -> TaskEvent {
    new(TaskEvent::RESTART_SIGNAL, "User requested restart")
}

pub fn signaling(signal: &str) -> TaskEvent {
    let mut event = new(TaskEvent::SIGNALING, "Task being sent a signal");
    event.details.insert("signal".to_owned(), signal.to_owned());
    event
}

/// Nomad's `TaskHookFailed` event type.
pub const TASK_HOOK_FAILED: &str = "Task hook failed";

/// A hook failed: Nomad's `emitHookError`, the message naming the hook.
pub fn hook_failed(hook: &str, error: &str) -> TaskEvent {
    let message = format!("{hook}: {error}");
    let mut event = new(TASK_HOOK_FAILED, message.clone());
    event.message = message;
    event
}

/// Nomad's `TaskHookMessage` event type.
pub const TASK_HOOK_MESSAGE: &str = "Task hook message";

/// A template with `change_mode = "restart"` (or an `env` template) rendered new content: the
/// task restarts (Nomad's `handleTemplateRerenders`).
pub fn template_restart() -> TaskEvent {
    new(
        TaskEvent::RESTART_SIGNAL,
        "Template with change_mode restart re-rendered",
    )
}

/// A template with `change_mode = "signal"` rendered new content: the task gets `signal`.
pub fn template_signal(signal: &str) -> TaskEvent {
    let mut event = signaling(signal);
    event.display_message = "Template re-rendered".to_owned();
    event
}

/// A `change_script` ran and exited 0.
pub fn template_script_ran(command: &str, args: &[String], exit_code: i32) -> TaskEvent {
    new(
        TASK_HOOK_MESSAGE,
        format!(
            "Template successfully ran script {command} with arguments: {args:?}. Exit code: \
             {exit_code}"
        ),
    )
}

/// A `change_script` failed (could not run, or exited non-zero): a `Task hook failed` event;
/// with `fail_on_error` it kills the task and fails it.
pub fn template_script_failed(message: String, fail_on_error: bool) -> TaskEvent {
    let mut event = new(TASK_HOOK_FAILED, message.clone());
    event.message = message;
    event.fails_task = fail_on_error;
    event
}
