//! Reserved cores (`resources { cores }`) through the generic scheduler: distinct cores per
//! allocation, their MHz counted, exhaustion named "cores".

use super::mock;
use super::{config, harness_with};
use crate::structs::{Job, JobId, Node};

/// Two nodes of 4 cores at 1000 MHz each, every core reservable.
fn nodes() -> Vec<Node> {
    (0..2)
        .map(|idx| {
            let mut node = mock::node(idx);
            node.node_resources.cpu.reservable_cpu_cores = vec![0, 1, 2, 3];
            node
        })
        .collect()
}

/// `count` allocations whose one task reserves `cores` cores (and asks no MHz, as a job file
/// with `cores` does).
fn job_reserving(id: &str, count: i32, cores: i32) -> Job {
    let mut job = mock::job(count);
    job.id = JobId::from(id);
    if let Some(resources) = job.task_groups[0].tasks[0].resources.as_mut() {
        resources.cpu = 0;
        resources.cores = cores;
    }
    job
}

#[test]
fn allocations_get_distinct_cores_worth_their_mhz_until_none_are_left() {
    let (mut harness, job) = harness_with(nodes(), job_reserving("pinned", 4, 2));
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    let placed = harness.placed();
    assert_eq!(
        placed.len(),
        4,
        "8 cores over two nodes hold four 2-core asks"
    );
    let mut by_node: std::collections::BTreeMap<&str, Vec<u32>> = Default::default();
    for alloc in &placed {
        let cpu = &alloc.allocated_resources.tasks["server"].cpu;
        assert_eq!(cpu.reserved_cores.len(), 2, "{cpu:?}");
        assert_eq!(cpu.cpu_shares, 2000, "two cores of a 4000 MHz, 4-core node");
        by_node
            .entry(alloc.node_name.as_str())
            .or_default()
            .extend(&cpu.reserved_cores);
    }
    for cores in by_node.values_mut() {
        cores.sort_unstable();
        assert_eq!(*cores, [0, 1, 2, 3], "no core given twice on a node");
    }

    // Every core is taken: one more core is exhausted in dimension "cores", as Nomad says.
    let other = harness.state.upsert_job(job_reserving("other", 1, 1));
    harness
        .process(&config(), &mock::eval(&other, "eval-2"))
        .expect("scheduling succeeds");
    assert_eq!(harness.placed().len(), 4, "nothing more placed");
    let eval = harness.last_eval().expect("eval updated");
    let failed = eval.failed_tg_allocs.get("web").expect("web failed");
    assert_eq!(failed.dimension_exhausted.get("cores"), Some(&2));
}

#[test]
fn cores_no_node_has_are_never_placed() {
    let (mut harness, job) = harness_with(nodes(), job_reserving("big", 1, 5));
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    assert!(harness.placed().is_empty());
    let eval = harness.last_eval().expect("eval updated");
    let failed = eval.failed_tg_allocs.get("web").expect("web failed");
    assert_eq!(failed.dimension_exhausted.get("cores"), Some(&2));
}
