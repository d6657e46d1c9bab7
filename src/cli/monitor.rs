//! Nomad's evaluation monitor, shared by `job run`, `job stop`, `alloc stop` and `eval status
//! -monitor`: it follows one evaluation with blocking queries and prints each change, then
//! explains placements that failed.
//!
//! ```text
//! ==> <time>: Monitoring evaluation "1a2b3c4d"
//!     <time>: Evaluation triggered by job "example"
//!     <time>: Allocation "5e6f7a8b" created: node "9c0d1e2f", group "cache"
//!     <time>: Evaluation status changed: "pending" -> "complete"
//! ==> <time>: Evaluation "1a2b3c4d" finished with status "complete"
//! ```
//!
//! Nomad: `command/monitor.go`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::format::{now_rfc3339, short_id, table};
use super::output::outln;
use crate::api::client::{ApiClient, encode};
use crate::api::types::allocs::AllocListStub;
use crate::structs::{AllocMetric, Deployment, DeploymentStatus, EvalStatus, Evaluation};

/// How long one blocking query waits before asking again.
const BLOCKING_WAIT: Duration = Duration::from_secs(30);

/// How long the deployment monitor waits for a deployment to finish before printing where it is.
const DEPLOYMENT_PATIENCE: Duration = Duration::from_secs(20);

/// What a monitor shows and how it ends.
#[derive(Clone, Copy, Debug, Default)]
pub struct MonitorConfig {
    /// Full IDs instead of 8-character ones.
    pub verbose: bool,
}

/// Follows evaluation `eval_id` until it finishes. Returns the exit code Nomad gives: 0, or 2
/// when allocations could not all be placed, or 1 when the evaluation failed.
pub async fn monitor_eval(
    client: &ApiClient,
    eval_id: &str,
    config: MonitorConfig,
) -> anyhow::Result<u8> {
    let id = |full: &str| short_id(full, config.verbose);
    let mut eval_id = eval_id.to_owned();
    outln!(
        "==> {}: Monitoring evaluation \"{}\"",
        now_rfc3339(),
        id(&eval_id)
    )?;
    let mut seen_allocs: BTreeSet<String> = BTreeSet::new();
    let mut last_status = String::new();
    let mut printed_trigger = false;
    let mut printed_deployment = false;
    let mut index = 0;
    loop {
        let (eval, meta): (Evaluation, _) = client
            .blocking(&format!("/v1/evaluation/{eval_id}"), index, BLOCKING_WAIT)
            .await
            .map_err(|err| anyhow::anyhow!("Error reading evaluation: {err}"))?;
        index = meta.last_index.max(index);
        let now = now_rfc3339();
        if !printed_trigger {
            printed_trigger = true;
            print_trigger(&eval, &now, config)?;
        }
        let allocs: Vec<AllocListStub> = client
            .get(&format!("/v1/evaluation/{eval_id}/allocations"))
            .await
            .unwrap_or_default();
        for alloc in &allocs {
            if !seen_allocs.insert(alloc.id.clone()) {
                continue;
            }
            if alloc.create_index < eval.create_index {
                continue;
            }
            outln!(
                "    {now}: Allocation \"{}\" created: node \"{}\", group \"{}\"",
                id(&alloc.id),
                id(&alloc.node_id),
                alloc.task_group
            )?;
        }
        if let Some(deployment_id) = eval.deployment_id.as_deref().filter(|id| !id.is_empty())
            && !printed_deployment
        {
            printed_deployment = true;
            outln!(
                "    {now}: Evaluation within deployment: \"{}\"",
                id(deployment_id)
            )?;
        }
        let status = eval.status.to_string();
        if status != last_status {
            if !last_status.is_empty() || status != "pending" {
                let from = if last_status.is_empty() {
                    "pending"
                } else {
                    &last_status
                };
                if from != status {
                    outln!("    {now}: Evaluation status changed: \"{from}\" -> \"{status}\"")?;
                }
            }
            last_status = status.clone();
        }
        if eval.status == EvalStatus::Complete
            && let Some(next_eval) = eval.next_eval.as_deref().filter(|id| !id.is_empty())
        {
            outln!(
                "==> {now}: Monitoring next evaluation \"{}\" in {}",
                id(next_eval),
                "0s"
            )?;
            eval_id = next_eval.to_owned();
            index = 0;
            last_status.clear();
            printed_trigger = false;
            continue;
        }
        if eval.status.is_terminal() {
            return finish(&eval, &status, config);
        }
    }
}

fn print_trigger(eval: &Evaluation, now: &str, config: MonitorConfig) -> anyhow::Result<()> {
    match eval.triggered_by.as_str() {
        "node-update" | "node-drain" => outln!(
            "    {now}: Evaluation triggered by node \"{}\"",
            short_id(eval.node_id.as_deref().unwrap_or_default(), config.verbose)
        )?,
        "alloc-stop" | "alloc-failure" | "job-register" | "job-deregister" | "periodic-job"
        | "rolling-update" | "deployment-watcher" | "" => {
            outln!("    {now}: Evaluation triggered by job \"{}\"", eval.job_id)?
        }
        other => outln!(
            "    {now}: Evaluation triggered by job \"{}\" ({other})",
            eval.job_id
        )?,
    }
    Ok(())
}

fn finish(eval: &Evaluation, status: &str, config: MonitorConfig) -> anyhow::Result<u8> {
    let now = now_rfc3339();
    let eval_id = short_id(&eval.id, config.verbose);
    let failed = Some(&eval.failed_tg_allocs).filter(|failed| !failed.is_empty());
    match failed {
        None => {
            outln!("==> {now}: Evaluation \"{eval_id}\" finished with status \"{status}\"")?;
        }
        Some(failed) => {
            outln!(
                "==> {now}: Evaluation \"{eval_id}\" finished with status \"{status}\" but failed to place all allocations:"
            )?;
            for (group, metric) in failed {
                for line in failed_placement_lines(group, metric) {
                    outln!("    {line}")?;
                }
            }
            if let Some(blocked) = eval.blocked_eval.as_deref().filter(|id| !id.is_empty()) {
                outln!(
                    "    Evaluation \"{}\" waiting for additional capacity to place remainder",
                    short_id(blocked, config.verbose)
                )?;
            }
        }
    }
    Ok(if status == "failed" {
        1
    } else if failed.is_some() {
        2
    } else {
        0
    })
}

/// Nomad's explanation of one group's failed placements (`formatAllocMetrics`).
pub fn failed_placement_lines(group: &str, metric: &AllocMetric) -> Vec<String> {
    let coalesced = metric.coalesced_failures + 1;
    let plural = if coalesced == 1 { "" } else { "s" };
    let mut lines = vec![format!(
        "Task Group \"{group}\" (failed to place {coalesced} allocation{plural}):"
    )];
    lines.extend(alloc_metric_lines(metric));
    lines
}

/// Why nodes were filtered or exhausted, one `  * ...` line each (Nomad's `formatAllocMetrics`).
pub fn alloc_metric_lines(metric: &AllocMetric) -> Vec<String> {
    let mut lines = Vec::new();
    if metric.nodes_evaluated == 0 {
        lines.push("  * No nodes were eligible for evaluation".to_owned());
    }
    for (class, count) in &metric.class_filtered {
        lines.push(format!(
            "  * Class {class:?}: {count} nodes excluded by filter"
        ));
    }
    for (constraint, count) in &metric.constraint_filtered {
        lines.push(format!(
            "  * Constraint {constraint:?}: {count} nodes excluded by filter"
        ));
    }
    let exhausted = metric.nodes_exhausted;
    if exhausted > 0 {
        lines.push(format!("  * Resources exhausted on {exhausted} nodes"));
    }
    for (class, count) in &metric.class_exhausted {
        lines.push(format!("  * Class {class:?} exhausted on {count} nodes"));
    }
    for (dimension, count) in &metric.dimension_exhausted {
        lines.push(format!(
            "  * Dimension {dimension:?} exhausted on {count} nodes"
        ));
    }
    for quota in &metric.quota_exhausted {
        lines.push(format!("  * Quota limit hit {quota:?}"));
    }
    lines
}

/// After a service job's evaluation: shows the job's latest deployment, waiting a bounded time
/// for it to finish (Nomad's deployment monitor waits until it does).
pub async fn monitor_deployment(
    client: &ApiClient,
    job_id: &str,
    job_modify_index: u64,
    config: MonitorConfig,
) -> anyhow::Result<()> {
    let path = format!("/v1/job/{}/deployment", encode(job_id));
    let deadline = Instant::now() + DEPLOYMENT_PATIENCE;
    let mut index = 0;
    let mut announced = false;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let reply = client
            .blocking::<Option<Deployment>>(&path, index, remaining.min(BLOCKING_WAIT))
            .await;
        let Ok((Some(deployment), meta)) = reply else {
            return Ok(());
        };
        index = meta.last_index.max(index);
        // A deployment of an earlier version of the job is not this run's.
        if deployment.job_modify_index != job_modify_index {
            return Ok(());
        }
        if !announced {
            announced = true;
            outln!(
                "==> {}: Monitoring deployment \"{}\"",
                now_rfc3339(),
                short_id(&deployment.id, config.verbose)
            )?;
        }
        if deployment.status != DeploymentStatus::Running || remaining.is_zero() {
            outln!("{}", deployment_block(&deployment, config.verbose, true))?;
            return Ok(());
        }
    }
}

/// A deployment as Nomad's monitor and `job status` print it.
pub fn deployment_block(deployment: &Deployment, verbose: bool, with_header: bool) -> String {
    let status = deployment.status.to_string();
    let mark = match status.as_str() {
        "successful" => "✓",
        "running" => "⠙",
        _ => "!",
    };
    let mut text = String::new();
    if with_header {
        text.push_str(&format!(
            "  {mark} Deployment \"{}\" {status}\n\n    {}\n",
            short_id(&deployment.id, verbose),
            now_rfc3339()
        ));
        for line in super::format::kv(&[
            ("ID", short_id(&deployment.id, verbose)),
            ("Job ID", deployment.job_id.to_string()),
            ("Job Version", deployment.job_version.to_string()),
            ("Status", status.clone()),
            ("Description", deployment.status_description.clone()),
        ])
        .lines()
        {
            text.push_str(&format!("    {line}\n"));
        }
        text.push_str("    \n    Deployed\n");
        for line in deployed_table(deployment).lines() {
            text.push_str(&format!("    {line}\n"));
        }
        text.pop();
    } else {
        text.push_str(&super::format::kv(&[
            ("ID", short_id(&deployment.id, verbose)),
            ("Status", status.clone()),
            ("Description", deployment.status_description.clone()),
        ]));
        text.push_str("\n\nDeployed\n");
        text.push_str(&deployed_table(deployment));
    }
    text
}

fn deployed_table(deployment: &Deployment) -> String {
    let rows: Vec<Vec<String>> = deployment
        .task_groups
        .iter()
        .map(|(group, state)| {
            vec![
                group.clone(),
                state.desired_total.to_string(),
                state.placed_allocs.to_string(),
                state.healthy_allocs.to_string(),
                state.unhealthy_allocs.to_string(),
                state.require_progress_by.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "Task Group",
            "Desired",
            "Placed",
            "Healthy",
            "Unhealthy",
            "Progress Deadline",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::failed_placement_lines;
    use crate::structs::AllocMetric;

    #[test]
    fn failed_placements_read_as_nomad_prints_them() {
        let metric = AllocMetric {
            nodes_evaluated: 1,
            nodes_exhausted: 1,
            dimension_exhausted: [("memory".to_owned(), 1)].into(),
            coalesced_failures: 0,
            ..AllocMetric::default()
        };
        assert_eq!(
            failed_placement_lines("cache", &metric),
            [
                "Task Group \"cache\" (failed to place 1 allocation):",
                "  * Resources exhausted on 1 nodes",
                "  * Dimension \"memory\" exhausted on 1 nodes",
            ]
        );
        let filtered = AllocMetric {
            nodes_evaluated: 0,
            constraint_filtered: [("${attr.kernel.name} = windows".to_owned(), 2)].into(),
            coalesced_failures: 2,
            ..AllocMetric::default()
        };
        assert_eq!(
            failed_placement_lines("web", &filtered),
            [
                "Task Group \"web\" (failed to place 3 allocations):",
                "  * No nodes were eligible for evaluation",
                "  * Constraint \"${attr.kernel.name} = windows\": 2 nodes excluded by filter",
            ]
        );
    }
}
