//! The allocation's client status, derived from its task states as Nomad does
//! (`client/allocrunner/alloc_runner.go` `getClientStatus`): any failed task makes it failed,
//! else any running task running, else any pending task pending, else complete.

use std::collections::BTreeMap;

use crate::structs::{AllocClientStatus, TaskState, TaskStateValue};

/// The status and Nomad's description of it.
pub fn client_status(tasks: &BTreeMap<String, TaskState>) -> (AllocClientStatus, &'static str) {
    let mut pending = false;
    let mut running = false;
    let mut dead = false;
    let mut failed = false;
    for state in tasks.values() {
        match state.state {
            TaskStateValue::Pending => pending = true,
            TaskStateValue::Running => running = true,
            TaskStateValue::Dead if state.failed => failed = true,
            TaskStateValue::Dead => dead = true,
        }
    }
    if failed {
        (AllocClientStatus::Failed, "Failed tasks")
    } else if running {
        (AllocClientStatus::Running, "Tasks are running")
    } else if pending {
        (AllocClientStatus::Pending, "No tasks have started")
    } else if dead {
        (AllocClientStatus::Complete, "All tasks have completed")
    } else {
        (AllocClientStatus::Pending, "No tasks have started")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(states: &[(TaskStateValue, bool)], expected: AllocClientStatus) {
        let tasks: BTreeMap<String, TaskState> = states
            .iter()
            .enumerate()
            .map(|(idx, (state, failed))| {
                (
                    format!("t{idx}"),
                    TaskState {
                        state: *state,
                        failed: *failed,
                        ..TaskState::default()
                    },
                )
            })
            .collect();
        assert_eq!(client_status(&tasks).0, expected, "{states:?}");
    }

    #[test]
    fn derives_status_from_task_states() {
        use AllocClientStatus::*;
        use TaskStateValue::{Dead, Pending as P, Running as R};
        check(&[], Pending);
        check(&[(P, false)], Pending);
        check(&[(P, false), (R, false)], Running);
        check(&[(Dead, false), (R, false)], Running);
        check(&[(Dead, false), (P, false)], Pending);
        check(&[(Dead, false), (Dead, false)], Complete);
        check(&[(Dead, true), (R, false)], Failed);
        check(&[(Dead, false), (Dead, true)], Failed);
    }
}
