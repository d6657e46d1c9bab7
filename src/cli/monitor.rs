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

use serde_json::Value;

use super::api_client::{ApiClient, i64_of, str_of};
use super::format::{now_rfc3339, short_id, table};
use super::output::outln;

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
        let reply = client
            .get_blocking(&format!("/v1/evaluation/{eval_id}"), index, BLOCKING_WAIT)
            .await
            .map_err(|err| anyhow::anyhow!("Error reading evaluation: {err}"))?;
        index = reply.index.max(index);
        let eval = reply.body;
        let now = now_rfc3339();
        if !printed_trigger {
            printed_trigger = true;
            print_trigger(&eval, &now, config)?;
        }
        let allocs = client
            .get(&format!("/v1/evaluation/{eval_id}/allocations"))
            .await
            .unwrap_or(Value::Null);
        for alloc in allocs.as_array().into_iter().flatten() {
            let alloc_id = str_of(alloc, "ID").to_owned();
            if !seen_allocs.insert(alloc_id.clone()) {
                continue;
            }
            if i64_of(alloc, "CreateIndex") < i64_of(&eval, "CreateIndex") {
                continue;
            }
            outln!(
                "    {now}: Allocation \"{}\" created: node \"{}\", group \"{}\"",
                id(&alloc_id),
                id(str_of(alloc, "NodeID")),
                str_of(alloc, "TaskGroup")
            )?;
        }
        let deployment_id = str_of(&eval, "DeploymentID");
        if !deployment_id.is_empty() && !printed_deployment {
            printed_deployment = true;
            outln!(
                "    {now}: Evaluation within deployment: \"{}\"",
                id(deployment_id)
            )?;
        }
        let status = str_of(&eval, "Status").to_owned();
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
        let next_eval = str_of(&eval, "NextEval");
        if status == "complete" && !next_eval.is_empty() {
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
        if matches!(
            status.as_str(),
            "complete" | "failed" | "canceled" | "cancelled"
        ) {
            return finish(&eval, &status, config);
        }
    }
}

fn print_trigger(eval: &Value, now: &str, config: MonitorConfig) -> anyhow::Result<()> {
    let triggered_by = str_of(eval, "TriggeredBy");
    match triggered_by {
        "node-update" | "node-drain" => outln!(
            "    {now}: Evaluation triggered by node \"{}\"",
            short_id(str_of(eval, "NodeID"), config.verbose)
        )?,
        "alloc-stop" | "alloc-failure" | "job-register" | "job-deregister" | "periodic-job"
        | "rolling-update" | "deployment-watcher" | "" => outln!(
            "    {now}: Evaluation triggered by job \"{}\"",
            str_of(eval, "JobID")
        )?,
        other => outln!(
            "    {now}: Evaluation triggered by job \"{}\" ({other})",
            str_of(eval, "JobID")
        )?,
    }
    Ok(())
}

fn finish(eval: &Value, status: &str, config: MonitorConfig) -> anyhow::Result<u8> {
    let now = now_rfc3339();
    let eval_id = short_id(str_of(eval, "ID"), config.verbose);
    let failed = eval
        .get("FailedTGAllocs")
        .and_then(Value::as_object)
        .filter(|failed| !failed.is_empty());
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
            let blocked = str_of(eval, "BlockedEval");
            if !blocked.is_empty() {
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
pub fn failed_placement_lines(group: &str, metric: &Value) -> Vec<String> {
    let coalesced = i64_of(metric, "CoalescedFailures") + 1;
    let plural = if coalesced == 1 { "" } else { "s" };
    let mut lines = vec![format!(
        "Task Group \"{group}\" (failed to place {coalesced} allocation{plural}):"
    )];
    let nodes_evaluated = i64_of(metric, "NodesEvaluated");
    if nodes_evaluated == 0 {
        lines.push("  * No nodes were eligible for evaluation".to_owned());
    }
    let counted = |field: &str| -> Vec<(String, i64)> {
        metric
            .get(field)
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(name, count)| (name.clone(), count.as_i64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    };
    for (class, count) in counted("ClassFiltered") {
        lines.push(format!(
            "  * Class {class:?}: {count} nodes excluded by filter"
        ));
    }
    for (constraint, count) in counted("ConstraintFiltered") {
        lines.push(format!(
            "  * Constraint {constraint:?}: {count} nodes excluded by filter"
        ));
    }
    let exhausted = i64_of(metric, "NodesExhausted");
    if exhausted > 0 {
        lines.push(format!("  * Resources exhausted on {exhausted} nodes"));
    }
    for (class, count) in counted("ClassExhausted") {
        lines.push(format!("  * Class {class:?} exhausted on {count} nodes"));
    }
    for (dimension, count) in counted("DimensionExhausted") {
        lines.push(format!(
            "  * Dimension {dimension:?} exhausted on {count} nodes"
        ));
    }
    for quota in metric
        .get("QuotaExhausted")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
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
    let path = format!("/v1/job/{}/deployment", super::api_client::encode(job_id));
    let deadline = Instant::now() + DEPLOYMENT_PATIENCE;
    let mut index = 0;
    let mut announced = false;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let reply = match client
            .get_blocking(&path, index, remaining.min(BLOCKING_WAIT))
            .await
        {
            Ok(reply) => reply,
            Err(_) => return Ok(()),
        };
        index = reply.index.max(index);
        let deployment = reply.body;
        // A deployment of an earlier version of the job is not this run's.
        if deployment.is_null() || i64_of(&deployment, "JobModifyIndex") as u64 != job_modify_index
        {
            return Ok(());
        }
        if !announced {
            announced = true;
            outln!(
                "==> {}: Monitoring deployment \"{}\"",
                now_rfc3339(),
                short_id(str_of(&deployment, "ID"), config.verbose)
            )?;
        }
        let status = str_of(&deployment, "Status");
        if status != "running" || remaining.is_zero() {
            outln!("{}", deployment_block(&deployment, config.verbose, true))?;
            return Ok(());
        }
    }
}

/// A deployment as Nomad's monitor and `job status` print it.
pub fn deployment_block(deployment: &Value, verbose: bool, with_header: bool) -> String {
    let status = str_of(deployment, "Status");
    let mark = match status {
        "successful" => "✓",
        "running" => "⠙",
        _ => "!",
    };
    let mut text = String::new();
    if with_header {
        text.push_str(&format!(
            "  {mark} Deployment \"{}\" {status}\n\n    {}\n",
            short_id(str_of(deployment, "ID"), verbose),
            now_rfc3339()
        ));
        for line in super::format::kv(&[
            ("ID", short_id(str_of(deployment, "ID"), verbose)),
            ("Job ID", str_of(deployment, "JobID").to_owned()),
            ("Job Version", i64_of(deployment, "JobVersion").to_string()),
            ("Status", status.to_owned()),
            (
                "Description",
                str_of(deployment, "StatusDescription").to_owned(),
            ),
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
            ("ID", short_id(str_of(deployment, "ID"), verbose)),
            ("Status", status.to_owned()),
            (
                "Description",
                str_of(deployment, "StatusDescription").to_owned(),
            ),
        ]));
        text.push_str("\n\nDeployed\n");
        text.push_str(&deployed_table(deployment));
    }
    text
}

fn deployed_table(deployment: &Value) -> String {
    let rows: Vec<Vec<String>> = deployment
        .get("TaskGroups")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(group, state)| {
            vec![
                group.clone(),
                i64_of(state, "DesiredTotal").to_string(),
                i64_of(state, "PlacedAllocs").to_string(),
                i64_of(state, "HealthyAllocs").to_string(),
                i64_of(state, "UnhealthyAllocs").to_string(),
                str_of(state, "RequireProgressBy").to_owned(),
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
    use serde_json::json;

    use super::failed_placement_lines;

    #[test]
    fn failed_placements_read_as_nomad_prints_them() {
        let metric = json!({
            "NodesEvaluated": 1,
            "NodesExhausted": 1,
            "DimensionExhausted": { "memory": 1 },
            "CoalescedFailures": 0,
        });
        assert_eq!(
            failed_placement_lines("cache", &metric),
            [
                "Task Group \"cache\" (failed to place 1 allocation):",
                "  * Resources exhausted on 1 nodes",
                "  * Dimension \"memory\" exhausted on 1 nodes",
            ]
        );
        let filtered = json!({
            "NodesEvaluated": 0,
            "ConstraintFiltered": { "${attr.kernel.name} = windows": 2 },
            "CoalescedFailures": 2,
        });
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
