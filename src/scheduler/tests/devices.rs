//! Device requests through the generic scheduler: feasibility, instance assignment, failures.

use super::mock;
use super::{config, harness_with};
use crate::structs::{
    Attribute, Constraint, Job, JobId, Node, NodeDevice, NodeDeviceResource, RequestedDevice,
};

/// `node-0` has no devices; `node-1` has `caravan-test/gpu/sim-80g` with instances
/// `sim-0`, `sim-1` healthy and `sim-2` unhealthy.
fn nodes() -> Vec<Node> {
    let mut with_devices = mock::node(1);
    let mut group = NodeDeviceResource {
        vendor: "caravan-test".to_owned(),
        device_type: "gpu".to_owned(),
        name: "sim-80g".to_owned(),
        instances: [("sim-0", true), ("sim-1", true), ("sim-2", false)]
            .into_iter()
            .map(|(id, healthy)| NodeDevice {
                id: id.to_owned(),
                healthy,
                ..NodeDevice::default()
            })
            .collect(),
        ..NodeDeviceResource::default()
    };
    group
        .attributes
        .insert("memory".to_owned(), Attribute::int(81920, "MiB"));
    with_devices.node_resources.devices = vec![group];
    vec![mock::node(0), with_devices]
}

fn job_asking(id: &str, device: RequestedDevice) -> Job {
    let mut job = mock::job(1);
    job.id = JobId::from(id);
    if let Some(resources) = job.task_groups[0].tasks[0].resources.as_mut() {
        resources.devices = vec![device];
    }
    job
}

fn gpus(count: u64) -> RequestedDevice {
    RequestedDevice {
        name: "caravan-test/gpu".to_owned(),
        count: Some(count),
        ..RequestedDevice::default()
    }
}

#[test]
fn devices_go_where_they_are_with_distinct_healthy_instances() {
    let (mut harness, job) = harness_with(nodes(), job_asking("train", gpus(2)));
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    let placed = harness.placed();
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0].node_name, "node-1");
    let devices = &placed[0].allocated_resources.tasks["server"].devices;
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].name, "sim-80g");
    assert_eq!(devices[0].device_ids, ["sim-0", "sim-1"]);
    let metric = placed[0].metrics.as_ref().expect("metrics");
    assert_eq!(metric.constraint_filtered.get("missing devices"), Some(&1));

    // Both healthy instances are taken: the next ask is exhausted, and says so as Nomad does.
    let other = harness.state.upsert_job(job_asking("other", gpus(1)));
    harness
        .process(&config(), &mock::eval(&other, "eval-2"))
        .expect("scheduling succeeds");
    assert_eq!(harness.placed().len(), 1, "nothing more placed");
    let eval = harness.last_eval().expect("eval updated");
    let failed = eval.failed_tg_allocs.get("web").expect("web failed");
    assert_eq!(
        failed
            .dimension_exhausted
            .get("devices: no devices match request"),
        Some(&1)
    );
}

#[test]
fn more_than_any_node_has_and_unmet_constraints_filter_the_nodes() {
    for device in [
        gpus(3),
        RequestedDevice {
            constraints: vec![Constraint {
                l_target: "${device.attr.memory}".to_owned(),
                operand: ">=".to_owned(),
                r_target: "81 GiB".to_owned(),
            }],
            ..gpus(1)
        },
    ] {
        let (mut harness, job) = harness_with(nodes(), job_asking("train", device));
        harness
            .process(&config(), &mock::eval(&job, "eval-1"))
            .expect("scheduling succeeds");
        assert!(harness.placed().is_empty());
        let eval = harness.last_eval().expect("eval updated");
        let failed = eval.failed_tg_allocs.get("web").expect("web failed");
        assert_eq!(failed.constraint_filtered.get("missing devices"), Some(&2));
    }
    let within = RequestedDevice {
        constraints: vec![Constraint {
            l_target: "${device.attr.memory}".to_owned(),
            operand: ">=".to_owned(),
            r_target: "40 GiB".to_owned(),
        }],
        ..gpus(1)
    };
    let (mut harness, job) = harness_with(nodes(), job_asking("train", within));
    harness
        .process(&config(), &mock::eval(&job, "eval-1"))
        .expect("scheduling succeeds");
    assert_eq!(harness.placed().len(), 1, "80 GiB >= 40 GiB");
}
