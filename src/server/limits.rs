//! Limits on the work one request can cause: how many groups a job has, how many tasks a group
//! has, how many allocations a job asks for in all, how large a job and a request body are.
//!
//! A job over a limit is refused at the door (register and plan) with a 400 that names the limit
//! and its `server { ... }` setting, before anything is written or scheduled. The defaults are
//! far above what real jobs use and far below what takes an agent down.

use crate::structs::Job;

/// The limits, set in the agent's `server` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobLimits {
    /// `server.job_max_task_groups`: task groups in one job.
    pub max_task_groups: usize,
    /// `server.job_max_tasks_per_group`: tasks in one group.
    pub max_tasks_per_group: usize,
    /// `server.job_max_placements`: the sum of the groups' counts, the most allocations one
    /// evaluation of the job can place.
    pub max_placements: u64,
    /// `server.job_max_size`: bytes of the job as JSON.
    pub max_job_bytes: usize,
    /// `server.max_request_body_size`: bytes of any request body.
    pub max_request_body_bytes: usize,
}

impl Default for JobLimits {
    fn default() -> Self {
        Self {
            max_task_groups: 100,
            max_tasks_per_group: 100,
            max_placements: 100_000,
            max_job_bytes: 4 << 20,
            max_request_body_bytes: 8 << 20,
        }
    }
}

impl JobLimits {
    /// Checks `job` against the limits; the error names the limit and its setting.
    pub fn check(&self, job: &Job) -> Result<(), String> {
        if job.task_groups.len() > self.max_task_groups {
            return Err(format!(
                "job has {} task groups; the limit is {} (server.job_max_task_groups)",
                job.task_groups.len(),
                self.max_task_groups
            ));
        }
        for group in &job.task_groups {
            if group.tasks.len() > self.max_tasks_per_group {
                return Err(format!(
                    "task group {:?} has {} tasks; the limit is {} (server.job_max_tasks_per_group)",
                    group.name,
                    group.tasks.len(),
                    self.max_tasks_per_group
                ));
            }
        }
        let placements: u64 = job
            .task_groups
            .iter()
            .map(|group| u64::try_from(group.count).unwrap_or(0))
            .fold(0, u64::saturating_add);
        if placements > self.max_placements {
            return Err(format!(
                "job asks for {placements} allocations in all (the sum of its groups' counts); the limit is {} (server.job_max_placements)",
                self.max_placements
            ));
        }
        let size = job_size(job, self.max_job_bytes);
        if size > self.max_job_bytes {
            return Err(format!(
                "job is larger than the limit of {} bytes as JSON (server.job_max_size)",
                self.max_job_bytes
            ));
        }
        Ok(())
    }
}

/// The size of `job` as JSON, counted without building the text and stopping once past `limit`.
fn job_size(job: &Job, limit: usize) -> usize {
    struct Counter {
        bytes: usize,
        limit: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.bytes = self.bytes.saturating_add(buf.len());
            if self.bytes > self.limit {
                return Err(std::io::Error::other("over the limit"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter { bytes: 0, limit };
    // An error is only ever the counter's "over the limit".
    let _ = serde_json::to_writer(&mut counter, job);
    counter.bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::{Task, TaskGroup};

    fn job(groups: usize, tasks: usize, count: i32) -> Job {
        Job {
            id: "web".into(),
            task_groups: (0..groups)
                .map(|group_idx| TaskGroup {
                    name: format!("g{group_idx}"),
                    count,
                    tasks: (0..tasks)
                        .map(|task_idx| Task {
                            name: format!("t{task_idx}"),
                            ..Task::default()
                        })
                        .collect(),
                    ..TaskGroup::default()
                })
                .collect(),
            ..Job::default()
        }
    }

    #[test]
    fn each_limit_is_named_when_exceeded() {
        let limits = JobLimits {
            max_task_groups: 3,
            max_tasks_per_group: 2,
            max_placements: 10,
            max_job_bytes: 8192,
            max_request_body_bytes: 1 << 20,
        };
        assert_eq!(limits.check(&job(3, 2, 3)), Ok(()));
        let cases = [
            (
                job(4, 1, 1),
                "job has 4 task groups; the limit is 3 (server.job_max_task_groups)",
            ),
            (
                job(1, 3, 1),
                "task group \"g0\" has 3 tasks; the limit is 2 (server.job_max_tasks_per_group)",
            ),
            (
                job(1, 1, 1_000_000_000),
                "job asks for 1000000000 allocations in all (the sum of its groups' counts); the limit is 10 (server.job_max_placements)",
            ),
        ];
        for (job, expected) in cases {
            assert_eq!(limits.check(&job), Err(expected.to_owned()));
        }
        let mut big = job(1, 1, 1);
        big.meta.insert("blob".to_owned(), "x".repeat(9000));
        assert_eq!(
            limits.check(&big),
            Err(
                "job is larger than the limit of 8192 bytes as JSON (server.job_max_size)"
                    .to_owned()
            )
        );
    }
}
