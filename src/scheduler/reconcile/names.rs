//! Allocation names `<job>.<group>[<index>]`: which indexes are taken, which to use next.
//!
//! New allocations take the lowest free indexes below the count first, so a group scaled down and
//! up again reuses its names; a scale-down stops the highest indexes.
//!
//! Nomad: `scheduler/reconciler/allocs.go` `allocNameIndex`.

use std::collections::BTreeSet;

use crate::structs::Allocation;

#[derive(Clone, Debug)]
pub struct NameIndex {
    job_id: String,
    task_group: String,
    count: u32,
    used: BTreeSet<u32>,
    /// Every index below this one is used or handed out.
    cursor: u32,
}

impl NameIndex {
    pub fn new<'a>(
        job_id: &str,
        task_group: &str,
        count: u32,
        in_use: impl IntoIterator<Item = &'a Allocation>,
    ) -> Self {
        Self {
            job_id: job_id.to_owned(),
            task_group: task_group.to_owned(),
            count,
            used: in_use.into_iter().filter_map(Allocation::index).collect(),
            cursor: 0,
        }
    }

    /// `n` fresh names, lowest free indexes first.
    pub fn next(&mut self, n: usize) -> Vec<String> {
        (0..n).map_while(|_| self.next_name()).collect()
    }

    /// The next fresh name, lowest free index first; `None` once every `u32` index is taken.
    pub fn next_name(&mut self) -> Option<String> {
        loop {
            let candidate = self.cursor;
            self.cursor = self.cursor.checked_add(1)?;
            // Indexes below the cursor are never offered again, so the used set need not grow.
            if !self.used.remove(&candidate) {
                return Some(Allocation::make_name(
                    &self.job_id,
                    &self.task_group,
                    candidate,
                ));
            }
        }
    }

    pub fn count(&self) -> u32 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(name: &str) -> Allocation {
        Allocation {
            name: name.to_owned(),
            ..Allocation::default()
        }
    }

    #[test]
    fn reuses_lowest_free_indexes() {
        let existing = [
            alloc("web.api[0]"),
            alloc("web.api[2]"),
            alloc("web.api[5]"),
        ];
        let mut names = NameIndex::new("web", "api", 4, existing.iter());
        assert_eq!(names.next(3), ["web.api[1]", "web.api[3]", "web.api[4]"]);
        assert_eq!(names.next(1), ["web.api[6]"]);
        assert_eq!(names.count(), 4);
    }
}
