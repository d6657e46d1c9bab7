//! `caravan eval status|list`: evaluations and why their placements failed.
//!
//! Nomad: `command/eval_status.go`, `command/eval_list.go`.

use std::process::ExitCode;

use super::block_on;
use super::format::{format_nanos, kv, short_id, table, time_ago};
use super::monitor::{self, MonitorConfig};
use super::output::outln;
use super::resolve;
use super::{EvalStatusArgs, ListArgs, ListCommandArgs};
use crate::structs::{AllocMetric, Evaluation};

pub fn status(args: &EvalStatusArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        if args.eval_id.len() < 2 {
            anyhow::bail!("Eval ID must contain at least two characters.");
        }
        let eval_id = resolve::eval(&client, &args.eval_id).await?.id;
        if args.monitor {
            let config = MonitorConfig {
                verbose: args.verbose,
            };
            return Ok(ExitCode::from(
                monitor::monitor_eval(&client, &eval_id, config).await?,
            ));
        }
        let eval: Evaluation = client
            .get(&format!("/v1/evaluation/{eval_id}"))
            .await
            .map_err(|err| anyhow::anyhow!("Error querying evaluation: {err}"))?;
        if args.output.printed(&eval)? {
            return Ok(ExitCode::SUCCESS);
        }
        outln!("{}", eval_block(&eval, args.verbose))?;
        if let Some(failed) = failed_groups(&eval) {
            outln!()?;
            outln!("==> Failed Placements")?;
            for (group, metric) in failed {
                for line in monitor::failed_placement_lines(group, metric) {
                    outln!("{line}")?;
                }
            }
            if let Some(blocked) = eval.blocked_eval.as_deref().filter(|id| !id.is_empty()) {
                outln!(
                    "\nEvaluation {:?} waiting for additional capacity to place remainder",
                    short_id(blocked, args.verbose)
                )?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn failed_groups(eval: &Evaluation) -> Option<&std::collections::BTreeMap<String, AllocMetric>> {
    Some(&eval.failed_tg_allocs).filter(|failed| !failed.is_empty())
}

fn eval_block(eval: &Evaluation, verbose: bool) -> String {
    let time = |nanos: i64| {
        if verbose {
            format_nanos(nanos)
        } else {
            time_ago(nanos)
        }
    };
    let mut pairs = vec![
        ("ID", short_id(&eval.id, verbose)),
        ("Create Time", time(eval.create_time)),
        ("Modify Time", time(eval.modify_time)),
        ("Status", eval.status.to_string()),
        ("Status Description", status_description(eval)),
        ("Type", eval.eval_type.to_string()),
        ("TriggeredBy", eval.triggered_by.clone()),
    ];
    match eval.node_id.as_deref().filter(|id| !id.is_empty()) {
        None => pairs.push(("Job ID", eval.job_id.to_string())),
        Some(node_id) => pairs.push(("Node ID", short_id(node_id, verbose))),
    }
    if let Some(deployment_id) = eval.deployment_id.as_deref().filter(|id| !id.is_empty()) {
        pairs.push(("Deployment ID", short_id(deployment_id, verbose)));
    }
    pairs.push(("Namespace", eval.namespace.clone()));
    pairs.push(("Priority", eval.priority.to_string()));
    pairs.push((
        "Placement Failures",
        failed_groups(eval).is_some().to_string(),
    ));
    kv(&pairs)
}

fn status_description(eval: &Evaluation) -> String {
    if eval.status_description.is_empty() {
        eval.status.to_string()
    } else {
        eval.status_description.clone()
    }
}

pub fn list(args: &ListCommandArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let (mut evals, meta): (Vec<Evaluation>, _) = client
            .get_with_meta(&args.list.path("/v1/evaluations"))
            .await
            .map_err(|err| anyhow::anyhow!("Error querying evaluations: {err}"))?;
        if args.output.printed(&evals)? {
            return Ok(ExitCode::SUCCESS);
        }
        if evals.is_empty() {
            outln!("No evals found")?;
            return Ok(ExitCode::SUCCESS);
        }
        evals.sort_by_key(|eval| std::cmp::Reverse(eval.create_index));
        outln!("{}", evals_table(&evals, false))?;
        if let Some(hint) = ListArgs::next_page_hint(meta.next_token.as_deref()) {
            outln!("{hint}")?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `ID  Priority  Triggered By  Job ID  Namespace  Node ID  Status  Placement Failures`.
pub fn evals_table(evals: &[Evaluation], verbose: bool) -> String {
    let rows: Vec<Vec<String>> = evals
        .iter()
        .map(|eval| {
            vec![
                short_id(&eval.id, verbose),
                eval.priority.to_string(),
                eval.triggered_by.clone(),
                eval.job_id.to_string(),
                eval.namespace.clone(),
                short_id(eval.node_id.as_deref().unwrap_or_default(), verbose),
                eval.status.to_string(),
                failed_groups(eval).is_some().to_string(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "Priority",
            "Triggered By",
            "Job ID",
            "Namespace",
            "Node ID",
            "Status",
            "Placement Failures",
        ],
        &rows,
    )
}
