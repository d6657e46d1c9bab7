//! Conversions of capability `host-docker` between the WIT records and the Engine API's models
//! (bollard), and Docker's error messages.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, DeviceMapping, DeviceRequest, HostConfig,
    Mount as BollardMount, MountType, PortBinding as BollardPortBinding,
};

use crate::driver_host::bindings::caravan::driver::host_docker::{
    ContainerSpec, ContainerStatus, MountKind,
};
use crate::driver_host::device_plugin::TaskDevices;
use crate::driver_host::host::docker_scope::{LABEL_STDERR, LABEL_STDOUT, Owner};
use crate::driver_host::types::TaskVolume;

/// Most output `exec-container` returns per stream.
pub(crate) const MAX_EXEC_OUTPUT: usize = 1 << 20;

/// Docker's own message for a daemon error (what `docker` itself would print), else bollard's.
pub(crate) fn docker_error(err: BollardError) -> String {
    match err {
        BollardError::DockerResponseServerError { message, .. } => message,
        BollardError::DockerStreamError { error } => error,
        other => other.to_string(),
    }
}

pub(crate) fn status_of(err: &BollardError) -> Option<u16> {
    match err {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `repo:tag` split for the Engine API's pull (an empty tag would pull every tag).
pub(crate) fn split_reference(image: &str) -> (String, String) {
    if image.contains('@') {
        return (image.to_owned(), String::new());
    }
    let name_start = image.rfind('/').map_or(0, |slash| slash + 1);
    match image[name_start..].rfind(':') {
        Some(colon) => (
            image[..name_start + colon].to_owned(),
            image[name_start + colon + 1..].to_owned(),
        ),
        None => (image.to_owned(), String::from("latest")),
    }
}

pub(crate) fn full_id(inspect: &ContainerInspectResponse, requested: &str) -> String {
    inspect.id.clone().unwrap_or_else(|| requested.to_owned())
}

pub(crate) fn container_body(spec: &ContainerSpec, owner: &Owner<'_>) -> ContainerCreateBody {
    let mut labels: HashMap<String, String> = spec.labels.iter().cloned().collect();
    // The ownership labels are the host's: a driver cannot forge them.
    labels.retain(|key, _| {
        !key.starts_with("caravan.managed")
            && !key.starts_with("caravan.driver")
            && !key.starts_with("caravan.task_dir")
            && !key.starts_with("caravan.task_id")
            && !key.starts_with("caravan.alloc_id")
            && !key.starts_with("caravan.std")
    });
    for (key, value) in owner.labels() {
        labels.insert(key.to_owned(), value);
    }
    labels.insert(LABEL_STDOUT.to_owned(), spec.stdout_path.clone());
    labels.insert(LABEL_STDERR.to_owned(), spec.stderr_path.clone());
    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<BollardPortBinding>>> = HashMap::new();
    for port in &spec.ports {
        let protocol = if port.protocol.is_empty() {
            "tcp"
        } else {
            port.protocol.as_str()
        };
        let key = format!("{}/{protocol}", port.container_port);
        exposed.push(key.clone());
        bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(BollardPortBinding {
                host_ip: Some(port.host_ip.clone()).filter(|ip| !ip.is_empty()),
                host_port: Some(port.host_port.to_string()).filter(|_| port.host_port != 0),
            });
    }
    let mounts = spec
        .mounts
        .iter()
        .map(|mount| BollardMount {
            target: Some(mount.target.clone()),
            source: Some(mount.source.clone()).filter(|source| !source.is_empty()),
            typ: Some(match mount.kind {
                MountKind::Bind => MountType::BIND,
                MountKind::Volume => MountType::VOLUME,
                MountKind::Tmpfs => MountType::TMPFS,
            }),
            read_only: Some(mount.read_only),
            ..BollardMount::default()
        })
        .collect();
    let positive = |value: u64| i64::try_from(value).ok().filter(|value| *value > 0);
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.entrypoint.clone(),
        cmd: spec.cmd.clone(),
        env: Some(
            spec.env
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect(),
        ),
        working_dir: spec.working_dir.clone(),
        hostname: spec.hostname.clone(),
        user: spec.user.clone(),
        labels: Some(labels),
        exposed_ports: Some(exposed).filter(|ports| !ports.is_empty()),
        host_config: Some(HostConfig {
            mounts: Some(mounts),
            port_bindings: Some(bindings).filter(|bindings| !bindings.is_empty()),
            network_mode: spec.network_mode.clone(),
            privileged: Some(spec.privileged),
            memory: positive(spec.memory_bytes),
            memory_reservation: positive(spec.memory_reservation_bytes),
            cpu_shares: Some(i64::from(spec.cpu_shares)).filter(|shares| *shares > 0),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    }
}

/// Gives the container what the task's devices reserve, whatever the driver asked (the host's
/// record of the task, from its device plugins): NVIDIA GPUs as device requests of driver
/// `nvidia` naming their UUIDs (what `docker run --gpus` sends; the NVIDIA container toolkit
/// does the rest), device nodes as `Devices`, mounts as bind mounts (read-only as the plugin
/// says). Nomad: drivers/docker/driver.go, `Devices` and `Mounts` of the task config.
pub(crate) fn add_devices(body: &mut ContainerCreateBody, devices: &TaskDevices) {
    if devices.is_empty() {
        return;
    }
    let host_config = body.host_config.get_or_insert_with(HostConfig::default);
    if !devices.nvidia_gpus.is_empty() {
        host_config
            .device_requests
            .get_or_insert_with(Vec::new)
            .push(DeviceRequest {
                driver: Some(String::from("nvidia")),
                device_ids: Some(devices.nvidia_gpus.clone()),
                capabilities: Some(vec![vec![String::from("gpu")]]),
                ..DeviceRequest::default()
            });
    }
    host_config
        .devices
        .get_or_insert_with(Vec::new)
        .extend(devices.nodes.iter().map(|node| DeviceMapping {
            path_on_host: Some(node.host_path.clone()),
            path_in_container: Some(node.task_path.clone()),
            cgroup_permissions: Some(node.cgroup_permissions.clone()),
        }));
    host_config.mounts.get_or_insert_with(Vec::new).extend(
        devices
            .mounts
            .iter()
            .map(|mount| bind_mount(&mount.host_path, &mount.task_path, mount.read_only)),
    );
}

/// Binds the task's host volumes into the container, whatever the driver asked (the host's
/// record of the task: the agent's `host_volume` paths). Nomad: drivers/docker/driver.go,
/// `Mounts` of the task config.
pub(crate) fn add_volumes(body: &mut ContainerCreateBody, volumes: &[TaskVolume]) {
    if volumes.is_empty() {
        return;
    }
    body.host_config
        .get_or_insert_with(HostConfig::default)
        .mounts
        .get_or_insert_with(Vec::new)
        .extend(volumes.iter().map(|volume| {
            bind_mount(
                &volume.host_path.to_string_lossy(),
                &volume.task_path,
                volume.read_only,
            )
        }));
}

fn bind_mount(source: &str, target: &str, read_only: bool) -> BollardMount {
    BollardMount {
        target: Some(target.to_owned()),
        source: Some(source.to_owned()),
        typ: Some(MountType::BIND),
        read_only: Some(read_only),
        ..BollardMount::default()
    }
}

pub(crate) fn state_of(inspect: &ContainerInspectResponse) -> ContainerStatus {
    let state = inspect.state.clone().unwrap_or_default();
    ContainerStatus {
        status: state
            .status
            .map(|status| status.to_string())
            .unwrap_or_default(),
        running: state.running.unwrap_or(false),
        exit_code: state
            .exit_code
            .and_then(|code| i32::try_from(code).ok())
            .unwrap_or(-1),
        oom_killed: state.oom_killed.unwrap_or(false),
        pid: state
            .pid
            .and_then(|pid| u32::try_from(pid).ok())
            .unwrap_or(0),
        image: inspect.image.clone().unwrap_or_default(),
    }
}

pub(crate) fn append_capped(buffer: &mut Vec<u8>, bytes: &[u8]) {
    let room = MAX_EXEC_OUTPUT.saturating_sub(buffer.len());
    buffer.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver_host::{DeviceMount, DeviceNodeSpec};

    #[test]
    fn reserved_devices_reach_the_container_config() {
        let mut body = ContainerCreateBody {
            host_config: Some(HostConfig {
                mounts: Some(vec![BollardMount {
                    target: Some(String::from("/local")),
                    ..BollardMount::default()
                }]),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        add_devices(
            &mut body,
            &TaskDevices {
                nvidia_gpus: vec![String::from("GPU-0a1b"), String::from("GPU-2c3d")],
                mounts: vec![DeviceMount {
                    task_path: String::from("/usr/lib/sim"),
                    host_path: String::from("/opt/sim/lib"),
                    read_only: true,
                }],
                nodes: vec![DeviceNodeSpec {
                    task_path: String::from("/dev/sim0"),
                    host_path: String::from("/dev/null"),
                    cgroup_permissions: String::from("rw"),
                }],
            },
        );
        let host_config = body.host_config.unwrap_or_default();
        assert_eq!(
            host_config.device_requests,
            Some(vec![DeviceRequest {
                driver: Some(String::from("nvidia")),
                device_ids: Some(vec![String::from("GPU-0a1b"), String::from("GPU-2c3d")]),
                capabilities: Some(vec![vec![String::from("gpu")]]),
                ..DeviceRequest::default()
            }])
        );
        assert_eq!(
            host_config.devices,
            Some(vec![DeviceMapping {
                path_on_host: Some(String::from("/dev/null")),
                path_in_container: Some(String::from("/dev/sim0")),
                cgroup_permissions: Some(String::from("rw")),
            }])
        );
        let mounts = host_config.mounts.unwrap_or_default();
        assert_eq!(mounts.len(), 2, "the driver's mount is kept: {mounts:?}");
        assert_eq!(mounts[1].source.as_deref(), Some("/opt/sim/lib"));
        assert_eq!(mounts[1].target.as_deref(), Some("/usr/lib/sim"));
        assert_eq!(mounts[1].typ, Some(MountType::BIND));
        assert_eq!(mounts[1].read_only, Some(true));
    }

    #[test]
    fn no_devices_change_nothing() {
        let mut body = ContainerCreateBody::default();
        add_devices(&mut body, &TaskDevices::default());
        assert_eq!(body, ContainerCreateBody::default());
    }

    #[test]
    fn host_volumes_become_bind_mounts_read_only_as_recorded() {
        let mut body = ContainerCreateBody::default();
        add_volumes(&mut body, &[]);
        assert_eq!(body, ContainerCreateBody::default());
        add_volumes(
            &mut body,
            &[
                TaskVolume {
                    host_path: "/srv/certs".into(),
                    task_path: String::from("/etc/certs"),
                    read_only: true,
                },
                TaskVolume {
                    host_path: "/srv/data".into(),
                    task_path: String::from("/data"),
                    read_only: false,
                },
            ],
        );
        let mounts = body
            .host_config
            .unwrap_or_default()
            .mounts
            .unwrap_or_default();
        let seen: Vec<_> = mounts
            .iter()
            .map(|m| (m.source.as_deref(), m.target.as_deref(), m.typ, m.read_only))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    Some("/srv/certs"),
                    Some("/etc/certs"),
                    Some(MountType::BIND),
                    Some(true)
                ),
                (
                    Some("/srv/data"),
                    Some("/data"),
                    Some(MountType::BIND),
                    Some(false)
                ),
            ]
        );
    }

    #[test]
    fn references_split_into_repository_and_tag() {
        let split = |image: &str| {
            let (repository, tag) = split_reference(image);
            (repository, tag)
        };
        assert_eq!(split("redis"), ("redis".into(), "latest".into()));
        assert_eq!(split("redis:7"), ("redis".into(), "7".into()));
        assert_eq!(
            split("localhost:5000/team/app"),
            ("localhost:5000/team/app".into(), "latest".into())
        );
        assert_eq!(
            split("localhost:5000/team/app:v2"),
            ("localhost:5000/team/app".into(), "v2".into())
        );
        assert_eq!(
            split("busybox@sha256:abc"),
            ("busybox@sha256:abc".into(), String::new())
        );
    }
}
