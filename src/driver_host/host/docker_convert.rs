//! Conversions of capability `host-docker` between the WIT records and the Engine API's models
//! (bollard), and Docker's error messages.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, HostConfig, Mount as BollardMount, MountType,
    PortBinding as BollardPortBinding,
};

use crate::driver_host::bindings::caravan::driver::host_docker::{
    ContainerSpec, ContainerStatus, MountKind,
};
use crate::driver_host::host::docker_scope::{LABEL_STDERR, LABEL_STDOUT, Owner};

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
    use super::split_reference;

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
