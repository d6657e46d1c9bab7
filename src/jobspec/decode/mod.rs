//! Decoding the blocks of a job file into `structs::Job`, one file per level of the job.
//!
//! ```text
//! job ──► group ──► task
//!  │        │         ├─ config (free-form), resources, logs, lifecycle, template, artifact, ...
//!  │        ├─ network/port, volume, ephemeral_disk, service/check
//!  └────────┴─ constraint, affinity, spread, meta, update, restart, reschedule, migrate
//! ```
//!
//! Invariant: decoding fills only what the file says, into a `structs::JobSubmission` (the same
//! type an API body decodes into); Nomad's defaults come only from `JobSubmission::into_job`.
//! Invariant: every decoded block and argument records its field path and position, so that a
//! validation error can be reported at the line that caused it.

mod config;
mod group;
mod job;
mod network;
mod placement;
mod policy;
mod service;
mod spec;
mod specs;
mod task;

use std::cell::RefCell;
use std::collections::BTreeMap;

pub(crate) use job::decode_job;

use super::error::Location;
use super::eval::Evaluator;

/// Decoding state shared by every block reader: the evaluator and the positions of decoded fields.
pub(crate) struct Decoder<'src> {
    pub eval: Evaluator<'src>,
    positions: RefCell<BTreeMap<String, usize>>,
}

impl<'src> Decoder<'src> {
    pub fn new(eval: Evaluator<'src>) -> Self {
        Self {
            eval,
            positions: RefCell::new(BTreeMap::new()),
        }
    }

    /// Records that the field at `path` was written at `offset` (the first writer wins, so a
    /// job-level default never hides the group that set the field).
    pub fn mark(&self, path: &str, offset: usize) {
        self.positions
            .borrow_mut()
            .entry(path.to_owned())
            .or_insert(offset);
    }

    /// Where the field at `path` (a `Job::validate` path) was written: the field itself if known,
    /// else the closest enclosing block, else the start of the file.
    pub fn location_of(&self, path: &str) -> Location {
        let positions = self.positions.borrow();
        let mut candidate = path;
        loop {
            if let Some(offset) = positions.get(candidate) {
                return self.eval.source.location(*offset);
            }
            match candidate.rfind(['.', '[']) {
                Some(cut) => candidate = &candidate[..cut],
                None => break,
            }
        }
        let job_offset = positions.get("").copied().unwrap_or(0);
        self.eval.source.location(job_offset)
    }
}
