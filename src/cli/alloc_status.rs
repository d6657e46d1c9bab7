//! `caravan alloc status`: an allocation's header, addresses, and per task its resources and
//! events, newest first, as Nomad prints them.
//!
//! Nomad: `command/alloc_status.go`.

use std::process::ExitCode;

use super::AllocStatusArgs;
use super::block_on;
use super::format::{
    format_nanos, go_duration, kv, list, parse_rfc3339, short_id, table, time_ago,
};
use super::output::outln;
use super::resolve;
use crate::api::client::ApiClient;
use crate::api::types::client::{AllocResourceUsage, CheckResults};
use crate::structs::{
    AllocClientStatus, Allocation, DeviceGroupStats, TaskEvent, TaskState, TaskStateValue,
};

pub fn run(args: &AllocStatusArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let alloc = read_alloc(&client, &args.alloc_id).await?;
        if args.output.printed(&alloc)? {
            return Ok(ExitCode::SUCCESS);
        }
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
        let stats: Option<AllocResourceUsage> = if alloc.client_status == AllocClientStatus::Running
        {
            client
                .get(&format!("/v1/client/allocation/{}/stats", alloc.id))
                .await
                .ok()
        } else {
            None
        };
        for task_name in task_names(&alloc) {
            let Some(state) = alloc.task_states.get(&task_name) else {
                continue;
            };
            outln!()?;
            outln!("Task \"{task_name}\" is \"{}\"", state.state)?;
            outln!("Task Resources:")?;
            outln!("{}", task_resources(&alloc, &task_name, stats.as_ref()))?;
            let device_stats = stats
                .as_ref()
                .and_then(|stats| stats.tasks.get(&task_name))
                .map(|task| task.resource_usage.device_stats.as_slice())
                .unwrap_or_default();
            if !device_stats.is_empty() {
                outln!()?;
                outln!("Device Stats")?;
                outln!("{}", device_summaries(device_stats))?;
            }
            if args.stats
                && let Some(usage) = stats
                    .as_ref()
                    .and_then(|stats| stats.tasks.get(&task_name))
                    .map(|task| &task.resource_usage)
            {
                let rss = usage.memory_stats.as_ref().map_or(0, |memory| memory.rss);
                outln!()?;
                outln!("Memory Stats")?;
                outln!("{}", table(&["RSS"], &[vec![bytes(rss as i64)]]))?;
                outln!()?;
                outln!("CPU Stats")?;
                let cpu = usage.cpu_stats.clone().unwrap_or_default();
                outln!(
                    "{}",
                    table(
                        &["System Mode", "User Mode", "Total Ticks"],
                        &[vec![
                            format!("{:.2}%", cpu.system_mode / 1e9),
                            format!("{:.2}%", cpu.user_mode / 1e9),
                            format!("{:.0}", cpu.total_ticks),
                        ]]
                    )
                )?;
                if !device_stats.is_empty() {
                    outln!()?;
                    outln!("Device Stats")?;
                    outln!("{}", device_details(device_stats))?;
                }
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
pub async fn read_alloc(client: &ApiClient, prefix: &str) -> anyhow::Result<Allocation> {
    if prefix.len() < 2 {
        anyhow::bail!("Alloc ID must contain at least two characters.");
    }
    let stub = resolve::alloc(client, prefix).await?;
    client
        .get(&format!("/v1/allocation/{}", stub.id))
        .await
        .map_err(|err| anyhow::anyhow!("Error querying allocation: {err}"))
}

/// The allocation's tasks, in the order its group lists them.
pub fn task_names(alloc: &Allocation) -> Vec<String> {
    let from_job: Vec<String> = alloc
        .job
        .iter()
        .flat_map(|job| &job.task_groups)
        .filter(|group| group.name == alloc.task_group)
        .flat_map(|group| &group.tasks)
        .map(|task| task.name.clone())
        .collect();
    if !from_job.is_empty() {
        return from_job;
    }
    alloc.task_states.keys().cloned().collect()
}

fn header(alloc: &Allocation, verbose: bool) -> String {
    let time = |nanos: i64| {
        if verbose {
            format_nanos(nanos)
        } else {
            time_ago(nanos)
        }
    };
    let modified = if alloc.modify_time > 0 {
        time(alloc.modify_time)
    } else {
        time(alloc.create_time)
    };
    let mut pairs = vec![
        ("ID", short_id(&alloc.id, verbose)),
        ("Eval ID", short_id(&alloc.eval_id, verbose)),
        ("Name", alloc.name.clone()),
        ("Node ID", short_id(&alloc.node_id, verbose)),
        ("Node Name", alloc.node_name.clone()),
        ("Job ID", alloc.job_id.to_string()),
        (
            "Job Version",
            alloc.job.as_ref().map_or(0, |job| job.version).to_string(),
        ),
        ("Client Status", alloc.client_status.to_string()),
        ("Client Description", alloc.client_description.clone()),
        ("Desired Status", alloc.desired_status.to_string()),
        ("Desired Description", alloc.desired_description.clone()),
        ("Created", time(alloc.create_time)),
        ("Modified", modified),
    ];
    let present = |id: Option<&str>| id.filter(|id| !id.is_empty()).map(str::to_owned);
    if let Some(deployment_id) = present(alloc.deployment_id.as_deref()) {
        pairs.push(("Deployment ID", short_id(&deployment_id, verbose)));
        let health = match alloc
            .deployment_status
            .as_ref()
            .and_then(|status| status.healthy)
        {
            Some(true) => "healthy",
            Some(false) => "unhealthy",
            None => "unset",
        };
        pairs.push(("Deployment Health", health.to_owned()));
    }
    if let Some(followup) = present(alloc.followup_eval_id.as_deref()) {
        pairs.push(("Follow-up Evaluation", short_id(&followup, verbose)));
    }
    if let Some(next) = present(alloc.next_allocation.as_deref()) {
        pairs.push(("Replacement Alloc ID", short_id(&next, verbose)));
    }
    if let Some(previous) = present(alloc.previous_allocation.as_deref()) {
        pairs.push(("Previous Allocation", short_id(&previous, verbose)));
    }
    kv(&pairs)
}

/// `Nomad Service Checks:` from the client's latest check results, when the allocation runs and
/// has checks (Nomad: `formatAllocNomadServiceChecks`).
async fn checks_table(client: &ApiClient, alloc: &Allocation) -> Option<String> {
    if alloc.client_status != AllocClientStatus::Running {
        return None;
    }
    let results: CheckResults = client
        .get(&format!("/v1/client/allocation/{}/checks", alloc.id))
        .await
        .ok()?;
    let mut rows: Vec<Vec<String>> = results
        .values()
        .map(|result| {
            vec![
                result.service.clone(),
                if result.task.is_empty() {
                    "(group)".to_owned()
                } else {
                    result.task.clone()
                },
                result.check.clone(),
                result.mode.clone(),
                result.status.to_string(),
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
fn addresses_table(alloc: &Allocation) -> Option<String> {
    let reserved: Vec<&str> = alloc
        .job
        .iter()
        .flat_map(|job| &job.task_groups)
        .filter(|group| group.name == alloc.task_group)
        .flat_map(|group| &group.networks)
        .flat_map(|network| &network.reserved_ports)
        .map(|port| port.label.as_str())
        .collect();
    let ports = &alloc.allocated_resources.shared.ports;
    if ports.is_empty() {
        return None;
    }
    let rows: Vec<Vec<String>> = ports
        .iter()
        .map(|port| {
            let address = format!("{}:{}", port.host_ip, port.value);
            let address = match port.to {
                to if to > 0 => format!("{address} -> {to}"),
                _ => address,
            };
            let dynamic = if reserved.contains(&port.label.as_str()) {
                "no"
            } else {
                "yes"
            };
            vec![format!("*{}", port.label), dynamic.to_owned(), address]
        })
        .collect();
    Some(table(&["Label", "Dynamic", "Address"], &rows))
}

fn task_resources(alloc: &Allocation, task: &str, stats: Option<&AllocResourceUsage>) -> String {
    let resources = alloc.allocated_resources.tasks.get(task);
    let cpu = resources.map_or(0, |resources| resources.cpu.cpu_shares);
    let memory = resources.map_or(0, |resources| resources.memory.memory_mb);
    let disk = alloc.allocated_resources.shared.disk_mb;
    let usage = stats
        .and_then(|stats| stats.tasks.get(task))
        .map(|task| &task.resource_usage);
    let (cpu_text, memory_text) = match usage {
        Some(usage) => {
            let ticks = usage.cpu_stats.as_ref().map_or(0.0, |cpu| cpu.total_ticks);
            let rss = usage.memory_stats.as_ref().map_or(0, |memory| memory.rss);
            (
                format!("{}/{cpu} MHz", ticks.round() as i64),
                format!("{}/{memory} MiB", bytes(rss as i64)),
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

/// Nomad's "Device Stats" lines: per instance given, `vendor/type/name[id]` and its summary.
fn device_summaries(stats: &[DeviceGroupStats]) -> String {
    let mut rows: Vec<Vec<String>> = stats
        .iter()
        .flat_map(|group| {
            group.instance_stats.iter().map(|(id, instance)| {
                vec![
                    group.qualified_id(id),
                    instance
                        .summary
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                ]
            })
        })
        .collect();
    rows.sort();
    list(&rows)
}

/// Nomad's `-stats` "Device Stats": per instance given, `Device = vendor/type/name[id]` and
/// each figure, sorted by name.
fn device_details(stats: &[DeviceGroupStats]) -> String {
    let blocks: Vec<String> = stats
        .iter()
        .flat_map(|group| {
            group.instance_stats.iter().map(|(id, instance)| {
                let figures: Vec<(String, String)> = instance
                    .stats
                    .iter()
                    .flat_map(|stats| &stats.attributes)
                    .map(|(name, value)| (name.clone(), value.to_string()))
                    .collect();
                let mut pairs: Vec<(&str, String)> = vec![("Device", group.qualified_id(id))];
                pairs.extend(
                    figures
                        .iter()
                        .map(|(name, value)| (name.as_str(), value.clone())),
                );
                kv(&pairs)
            })
        })
        .collect();
    blocks.join("\n\n")
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

fn task_events_block(state: &TaskState) -> String {
    let time = |at: &Option<String>| match at.as_deref() {
        None | Some("") => "N/A".to_owned(),
        Some(text) => format_nanos(parse_rfc3339(text)),
    };
    let finished = if state.state == TaskStateValue::Dead {
        time(&state.finished_at)
    } else {
        "N/A".to_owned()
    };
    kv(&[
        ("Started At", time(&state.started_at)),
        ("Finished At", finished),
        ("Total Restarts", state.restarts.to_string()),
        ("Last Restart", time(&state.last_restart)),
    ])
}

fn recent_events(state: &TaskState) -> String {
    let mut events: Vec<&TaskEvent> = state.events.iter().collect();
    events.sort_by_key(|event| std::cmp::Reverse(event.time));
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|event| {
            vec![
                format_nanos(event.time),
                event.event_type.clone(),
                event_description(event),
            ]
        })
        .collect();
    table(&["Time", "Type", "Description"], &rows)
}

/// What Nomad shows for an event: its display message, or one built from its fields
/// (Nomad: `TaskEvent.PopulateEventDisplayMessage`).
pub fn event_description(event: &TaskEvent) -> String {
    if !event.display_message.is_empty() {
        return event.display_message.clone();
    }
    let message = &event.message;
    match event.event_type.as_str() {
        "Received" => "Task received by client".to_owned(),
        "Started" => "Task started by client".to_owned(),
        "Terminated" => {
            let mut text = format!("Exit Code: {}", event.exit_code);
            if event.signal != 0 {
                text.push_str(&format!(", Signal: {}", event.signal));
            }
            if !message.is_empty() {
                text.push_str(&format!(", Exit Message: {message:?}"));
            }
            text
        }
        "Restarting" => {
            let mut text = format!("Task restarting in {}", go_duration(event.start_delay));
            let reason = &event.restart_reason;
            if !reason.is_empty() && reason != "Restart within policy" {
                text = format!("{reason} - {text}");
            }
            text
        }
        "Killing" => format!(
            "Sent interrupt. Waiting {} before force killing",
            go_duration(event.kill_timeout)
        ),
        "Killed" => match event.kill_error.as_str() {
            "" => "Task successfully killed".to_owned(),
            error => error.to_owned(),
        },
        "Driver Failure" => event.driver_error.clone(),
        "Not Restarting" => match event.restart_reason.as_str() {
            "" => "Task exceeded restart policy".to_owned(),
            reason => reason.to_owned(),
        },
        _ => message.clone(),
    }
}

/// `-short`: one line per task with its last event.
fn tasks_summary(alloc: &Allocation) -> String {
    let rows: Vec<Vec<String>> = task_names(alloc)
        .into_iter()
        .filter_map(|name| {
            let state = alloc.task_states.get(&name)?;
            let last = state.events.iter().max_by_key(|event| event.time);
            Some(vec![
                name,
                state.state.to_string(),
                last.map(|event| event.event_type.clone())
                    .unwrap_or_default(),
                format_nanos(last.map_or(0, |event| event.time)),
            ])
        })
        .collect();
    format!(
        "Tasks\n{}",
        table(&["Name", "State", "Last Event", "Time"], &rows)
    )
}
