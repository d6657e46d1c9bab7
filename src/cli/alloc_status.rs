//! `caravan alloc status`: an allocation's header, addresses, and per task its resources and
//! events, newest first, as Nomad prints them.
//!
//! Nomad: `command/alloc_status.go`.

use std::process::ExitCode;

use serde_json::Value;

use super::AllocStatusArgs;
use super::api_client::{ApiClient, ObjectKind, block_on, i64_of, str_of};
use super::format::{format_nanos, go_duration, kv, parse_rfc3339, short_id, table, time_ago};
use super::output::outln;

pub fn run(args: &AllocStatusArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let alloc = read_alloc(&client, &args.alloc_id).await?;
        let verbose = args.verbose;
        outln!("{}", header(&alloc, verbose))?;
        if args.short {
            outln!()?;
            outln!("{}", tasks_summary(&alloc))?;
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(addresses) = addresses_table(&alloc) {
            outln!()?;
            outln!("Allocation Addresses:")?;
            outln!("{addresses}")?;
        }
        if let Some(checks) = checks_table(&client, &alloc).await {
            outln!()?;
            outln!("Nomad Service Checks:")?;
            outln!("{checks}")?;
        }
        let stats = if str_of(&alloc, "ClientStatus") == "running" {
            client
                .get(&format!(
                    "/v1/client/allocation/{}/stats",
                    str_of(&alloc, "ID")
                ))
                .await
                .ok()
        } else {
            None
        };
        for task_name in task_names(&alloc) {
            let Some(state) = alloc.pointer(&format!("/TaskStates/{}", pointer_escape(&task_name)))
            else {
                continue;
            };
            outln!()?;
            outln!("Task \"{task_name}\" is \"{}\"", str_of(state, "State"))?;
            outln!("Task Resources:")?;
            outln!("{}", task_resources(&alloc, &task_name, stats.as_ref()))?;
            if args.stats
                && let Some(task_stats) = stats
                    .as_ref()
                    .and_then(|s| s.pointer(&format!("/Tasks/{}", pointer_escape(&task_name))))
            {
                outln!()?;
                outln!("Memory Stats")?;
                outln!(
                    "{}",
                    table(
                        &["RSS"],
                        &[vec![bytes(i64_of(
                            task_stats
                                .pointer("/ResourceUsage/MemoryStats")
                                .unwrap_or(&Value::Null),
                            "RSS"
                        ))]]
                    )
                )?;
                outln!()?;
                outln!("CPU Stats")?;
                let cpu = task_stats
                    .pointer("/ResourceUsage/CpuStats")
                    .unwrap_or(&Value::Null);
                outln!(
                    "{}",
                    table(
                        &["System Mode", "User Mode", "Total Ticks"],
                        &[vec![
                            format!(
                                "{:.2}%",
                                cpu.get("SystemMode").and_then(Value::as_f64).unwrap_or(0.0) / 1e9
                            ),
                            format!(
                                "{:.2}%",
                                cpu.get("UserMode").and_then(Value::as_f64).unwrap_or(0.0) / 1e9
                            ),
                            format!(
                                "{:.0}",
                                cpu.get("TotalTicks").and_then(Value::as_f64).unwrap_or(0.0)
                            ),
                        ]]
                    )
                )?;
            }
            outln!()?;
            outln!("Task Events:")?;
            outln!("{}", task_events_block(state))?;
            outln!()?;
            outln!("Recent Events:")?;
            outln!("{}", recent_events(state))?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves an allocation ID prefix and reads the whole allocation.
pub async fn read_alloc(client: &ApiClient, prefix: &str) -> anyhow::Result<Value> {
    if prefix.len() < 2 {
        anyhow::bail!("Alloc ID must contain at least two characters.");
    }
    let stub = client.resolve(ObjectKind::Alloc, prefix).await?;
    client
        .get(&format!("/v1/allocation/{}", str_of(&stub, "ID")))
        .await
        .map_err(|err| anyhow::anyhow!("Error querying allocation: {err}"))
}

/// The allocation's tasks, in the order its group lists them.
pub fn task_names(alloc: &Value) -> Vec<String> {
    let group = str_of(alloc, "TaskGroup");
    let from_job: Vec<String> = alloc
        .pointer("/Job/TaskGroups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|tg| str_of(tg, "Name") == group)
        .flat_map(|tg| {
            tg.get("Tasks")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .map(|task| str_of(&task, "Name").to_owned())
        .collect();
    if !from_job.is_empty() {
        return from_job;
    }
    alloc
        .get("TaskStates")
        .and_then(Value::as_object)
        .map(|states| states.keys().cloned().collect())
        .unwrap_or_default()
}

fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn header(alloc: &Value, verbose: bool) -> String {
    let time = |field: &str| {
        let nanos = i64_of(alloc, field);
        if verbose {
            format_nanos(nanos)
        } else {
            time_ago(nanos)
        }
    };
    let modified = if i64_of(alloc, "ModifyTime") > 0 {
        time("ModifyTime")
    } else {
        time("CreateTime")
    };
    let mut pairs = vec![
        ("ID", short_id(str_of(alloc, "ID"), verbose)),
        ("Eval ID", short_id(str_of(alloc, "EvalID"), verbose)),
        ("Name", str_of(alloc, "Name").to_owned()),
        ("Node ID", short_id(str_of(alloc, "NodeID"), verbose)),
        ("Node Name", str_of(alloc, "NodeName").to_owned()),
        ("Job ID", str_of(alloc, "JobID").to_owned()),
        (
            "Job Version",
            alloc
                .pointer("/Job/Version")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .to_string(),
        ),
        ("Client Status", str_of(alloc, "ClientStatus").to_owned()),
        (
            "Client Description",
            str_of(alloc, "ClientDescription").to_owned(),
        ),
        ("Desired Status", str_of(alloc, "DesiredStatus").to_owned()),
        (
            "Desired Description",
            str_of(alloc, "DesiredDescription").to_owned(),
        ),
        ("Created", time("CreateTime")),
        ("Modified", modified),
    ];
    let deployment_id = str_of(alloc, "DeploymentID");
    if !deployment_id.is_empty() {
        pairs.push(("Deployment ID", short_id(deployment_id, verbose)));
        let health = match alloc
            .pointer("/DeploymentStatus/Healthy")
            .and_then(Value::as_bool)
        {
            Some(true) => "healthy",
            Some(false) => "unhealthy",
            None => "unset",
        };
        pairs.push(("Deployment Health", health.to_owned()));
    }
    let followup = str_of(alloc, "FollowupEvalID");
    if !followup.is_empty() {
        pairs.push(("Follow-up Evaluation", short_id(followup, verbose)));
    }
    let next = str_of(alloc, "NextAllocation");
    if !next.is_empty() {
        pairs.push(("Replacement Alloc ID", short_id(next, verbose)));
    }
    let previous = str_of(alloc, "PreviousAllocation");
    if !previous.is_empty() {
        pairs.push(("Previous Allocation", short_id(previous, verbose)));
    }
    kv(&pairs)
}

/// `Nomad Service Checks:` from the client's latest check results, when the allocation runs and
/// has checks (Nomad: `formatAllocNomadServiceChecks`).
async fn checks_table(client: &ApiClient, alloc: &Value) -> Option<String> {
    if str_of(alloc, "ClientStatus") != "running" {
        return None;
    }
    let results = client
        .get(&format!(
            "/v1/client/allocation/{}/checks",
            str_of(alloc, "ID")
        ))
        .await
        .ok()?;
    let mut rows: Vec<Vec<String>> = results
        .as_object()?
        .values()
        .map(|result| {
            let task = str_of(result, "Task");
            vec![
                str_of(result, "Service").to_owned(),
                if task.is_empty() {
                    "(group)".to_owned()
                } else {
                    task.to_owned()
                },
                str_of(result, "Check").to_owned(),
                str_of(result, "Mode").to_owned(),
                str_of(result, "Status").to_owned(),
            ]
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    rows.sort();
    Some(table(&["Service", "Task", "Name", "Mode", "Status"], &rows))
}

/// `Allocation Addresses:` rows from the allocation's shared ports.
fn addresses_table(alloc: &Value) -> Option<String> {
    let group = str_of(alloc, "TaskGroup");
    let reserved: Vec<String> = alloc
        .pointer("/Job/TaskGroups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|tg| str_of(tg, "Name") == group)
        .flat_map(|tg| {
            tg.get("Networks")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|network| {
            network
                .get("ReservedPorts")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .map(|port| str_of(&port, "Label").to_owned())
        .collect();
    let ports = alloc
        .pointer("/AllocatedResources/Shared/Ports")
        .and_then(Value::as_array)
        .filter(|ports| !ports.is_empty())?;
    let rows: Vec<Vec<String>> = ports
        .iter()
        .map(|port| {
            let label = str_of(port, "Label");
            let address = format!("{}:{}", str_of(port, "HostIP"), i64_of(port, "Value"));
            let address = match i64_of(port, "To") {
                to if to > 0 => format!("{address} -> {to}"),
                _ => address,
            };
            let dynamic = if reserved.iter().any(|name| name == label) {
                "no"
            } else {
                "yes"
            };
            vec![format!("*{label}"), dynamic.to_owned(), address]
        })
        .collect();
    Some(table(&["Label", "Dynamic", "Address"], &rows))
}

fn task_resources(alloc: &Value, task: &str, stats: Option<&Value>) -> String {
    let resources = alloc
        .pointer(&format!(
            "/AllocatedResources/Tasks/{}",
            pointer_escape(task)
        ))
        .cloned()
        .unwrap_or(Value::Null);
    let cpu = resources
        .pointer("/Cpu/CpuShares")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let memory = resources
        .pointer("/Memory/MemoryMB")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let disk = alloc
        .pointer("/AllocatedResources/Shared/DiskMB")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let usage = stats
        .and_then(|stats| stats.pointer(&format!("/Tasks/{}/ResourceUsage", pointer_escape(task))));
    let (cpu_text, memory_text) = match usage {
        Some(usage) => {
            let ticks = usage
                .pointer("/CpuStats/TotalTicks")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            let rss = usage
                .pointer("/MemoryStats/RSS")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            (
                format!("{}/{cpu} MHz", ticks.round() as i64),
                format!("{}/{memory} MiB", bytes(rss)),
            )
        }
        None => (format!("{cpu} MHz"), format!("{memory} MiB")),
    };
    let mut text = table(
        &["CPU", "Memory", "Disk", "Addresses"],
        &[vec![
            cpu_text,
            memory_text,
            format!("{disk} MiB"),
            String::new(),
        ]],
    );
    // Nomad prints no placeholder for a task without addresses.
    text = text.replace("  <none>", "");
    text
}

/// Bytes in binary units, as Go's `humanize.IBytes`: `6.3 MiB`.
pub fn bytes(count: i64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = count as f64;
    let mut unit_idx = 0;
    while value >= 1024.0 && unit_idx + 1 < units.len() {
        value /= 1024.0;
        unit_idx += 1;
    }
    if unit_idx == 0 {
        format!("{count} B")
    } else if value < 10.0 {
        format!("{value:.1} {}", units[unit_idx])
    } else {
        format!("{value:.0} {}", units[unit_idx])
    }
}

fn task_events_block(state: &Value) -> String {
    let time = |field: &str| match str_of(state, field) {
        "" => "N/A".to_owned(),
        text => format_nanos(parse_rfc3339(text)),
    };
    let finished = if str_of(state, "State") == "dead" {
        time("FinishedAt")
    } else {
        "N/A".to_owned()
    };
    kv(&[
        ("Started At", time("StartedAt")),
        ("Finished At", finished),
        ("Total Restarts", i64_of(state, "Restarts").to_string()),
        ("Last Restart", time("LastRestart")),
    ])
}

fn recent_events(state: &Value) -> String {
    let mut events = state
        .get("Events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    events.sort_by_key(|event| std::cmp::Reverse(i64_of(event, "Time")));
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|event| {
            vec![
                format_nanos(i64_of(event, "Time")),
                str_of(event, "Type").to_owned(),
                event_description(event),
            ]
        })
        .collect();
    table(&["Time", "Type", "Description"], &rows)
}

/// What Nomad shows for an event: its display message, or one built from its fields
/// (Nomad: `TaskEvent.PopulateEventDisplayMessage`).
pub fn event_description(event: &Value) -> String {
    let display = str_of(event, "DisplayMessage");
    if !display.is_empty() {
        return display.to_owned();
    }
    let message = str_of(event, "Message");
    match str_of(event, "Type") {
        "Received" => "Task received by client".to_owned(),
        "Started" => "Task started by client".to_owned(),
        "Terminated" => {
            let mut text = format!("Exit Code: {}", i64_of(event, "ExitCode"));
            if i64_of(event, "Signal") != 0 {
                text.push_str(&format!(", Signal: {}", i64_of(event, "Signal")));
            }
            if !message.is_empty() {
                text.push_str(&format!(", Exit Message: {message:?}"));
            }
            text
        }
        "Restarting" => {
            let mut text = format!(
                "Task restarting in {}",
                go_duration(i64_of(event, "StartDelay"))
            );
            let reason = str_of(event, "RestartReason");
            if !reason.is_empty() && reason != "Restart within policy" {
                text = format!("{reason} - {text}");
            }
            text
        }
        "Killing" => format!(
            "Sent interrupt. Waiting {} before force killing",
            go_duration(i64_of(event, "KillTimeout"))
        ),
        "Killed" => match str_of(event, "KillError") {
            "" => "Task successfully killed".to_owned(),
            error => error.to_owned(),
        },
        "Driver Failure" => str_of(event, "DriverError").to_owned(),
        "Not Restarting" => match str_of(event, "RestartReason") {
            "" => "Task exceeded restart policy".to_owned(),
            reason => reason.to_owned(),
        },
        _ => message.to_owned(),
    }
}

/// `-short`: one line per task with its last event.
fn tasks_summary(alloc: &Value) -> String {
    let rows: Vec<Vec<String>> = task_names(alloc)
        .into_iter()
        .filter_map(|name| {
            let state = alloc.pointer(&format!("/TaskStates/{}", pointer_escape(&name)))?;
            let last = state
                .get("Events")
                .and_then(Value::as_array)
                .and_then(|events| events.iter().max_by_key(|event| i64_of(event, "Time")))
                .cloned()
                .unwrap_or(Value::Null);
            Some(vec![
                name,
                str_of(state, "State").to_owned(),
                str_of(&last, "Type").to_owned(),
                format_nanos(i64_of(&last, "Time")),
            ])
        })
        .collect();
    format!(
        "Tasks\n{}",
        table(&["Name", "State", "Last Event", "Time"], &rows)
    )
}
