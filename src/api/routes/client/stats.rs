//! `GET /v1/client/allocation/{id}/stats` (each running task's usage from its driver, and the
//! stats of the devices it was given) and `GET /v1/client/stats` (the host's memory, uptime, the
//! data dir's disk, and every device instance's stats from its plugin, asked now) (Nomad:
//! `command/agent/alloc_endpoint.go`, `stats_endpoint.go`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path as UrlPath, State};

use super::{blocking, runner_of};
use crate::api::error::ApiError;
use crate::api::types::client::{
    AllocResourceUsage, CpuStats, HostDiskStats, HostMemoryStats, HostStats, MemoryStats,
    ResourceUsage, TaskResourceUsage,
};
use crate::client::Shared;
use crate::client::node::{disk_space, parse_meminfo_field};
use crate::client::task_runner::events::now_nanos;
use crate::structs::DeviceGroupStats;

/// Usage from RSS bytes and CPU milliseconds, as Nomad reports it (CPU in nanoseconds).
fn usage(rss_bytes: u64, user_ms: u64, system_ms: u64) -> ResourceUsage {
    ResourceUsage {
        memory_stats: Some(MemoryStats {
            rss: rss_bytes,
            measured: vec!["RSS".to_owned()],
        }),
        cpu_stats: Some(CpuStats {
            user_mode: user_ms as f64 * 1e6,
            system_mode: system_ms as f64 * 1e6,
            total_ticks: (user_ms + system_ms) as f64,
            measured: vec!["User Mode".to_owned(), "System Mode".to_owned()],
        }),
        device_stats: Vec::new(),
    }
}

pub(crate) async fn alloc_stats(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
) -> Result<Json<AllocResourceUsage>, ApiError> {
    let runner = runner_of(&shared, &alloc)?;
    let mut tasks = BTreeMap::new();
    let (mut total_rss, mut total_user, mut total_system) = (0u64, 0u64, 0u64);
    let now = now_nanos();
    let alloc_record = runner.alloc();
    let given = |task: &str| {
        alloc_record
            .allocated_resources
            .tasks
            .get(task)
            .map(|resources| resources.devices.clone())
            .unwrap_or_default()
    };
    // The plugins are asked only when a task holds devices.
    let device_stats = if runner.tasks().keys().any(|task| !given(task).is_empty()) {
        shared.driver_host.device_group_stats().await
    } else {
        Vec::new()
    };
    for (name, task) in runner.tasks() {
        let Some((driver, handle, scope)) = task.running() else {
            continue;
        };
        if let Ok(stats) = driver.task_stats(&scope, &handle).await {
            total_rss += stats.memory_rss_bytes;
            total_user += stats.cpu_user_ms;
            total_system += stats.cpu_system_ms;
            let timestamp_ns = i64::try_from(stats.timestamp_ms)
                .unwrap_or(i64::MAX / 1_000_000)
                .saturating_mul(1_000_000);
            tasks.insert(
                name.clone(),
                TaskResourceUsage {
                    resource_usage: ResourceUsage {
                        device_stats: DeviceGroupStats::of_allocated(&device_stats, &given(name)),
                        ..usage(
                            stats.memory_rss_bytes,
                            stats.cpu_user_ms,
                            stats.cpu_system_ms,
                        )
                    },
                    timestamp: timestamp_ns,
                    pids: stats
                        .pids
                        .iter()
                        .map(|pid| (pid.to_string(), ResourceUsage::default()))
                        .collect(),
                },
            );
        }
    }
    Ok(Json(AllocResourceUsage {
        resource_usage: usage(total_rss, total_user, total_system),
        tasks,
        timestamp: now,
    }))
}

pub(crate) async fn host_stats(
    State(shared): State<Arc<Shared>>,
) -> Result<Json<HostStats>, ApiError> {
    let data_dir = shared.data_dir.clone();
    let device_stats = shared.driver_host.device_group_stats().await;
    blocking(move || {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let field = |name: &str| parse_meminfo_field(&meminfo, name).unwrap_or(0);
        let (total, available) = (field("MemTotal"), field("MemAvailable"));
        let uptime = std::fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|text| {
                text.split_whitespace()
                    .next()
                    .and_then(|secs| secs.parse::<f64>().ok())
            })
            .unwrap_or(0.0) as u64;
        let (disk_total, disk_free) = disk_space(&data_dir);
        let used = disk_total.saturating_sub(disk_free);
        Ok(Json(HostStats {
            memory: HostMemoryStats {
                total,
                available,
                used: total.saturating_sub(available),
                free: field("MemFree"),
            },
            uptime,
            timestamp: now_nanos(),
            alloc_dir_stats: HostDiskStats {
                device: String::new(),
                mountpoint: data_dir.display().to_string(),
                size: disk_total,
                used,
                available: disk_free,
                used_percent: if disk_total > 0 {
                    used as f64 * 100.0 / disk_total as f64
                } else {
                    0.0
                },
            },
            device_stats,
        }))
    })
    .await
}
