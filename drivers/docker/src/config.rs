//! The task's `config { ... }` block (Nomad: drivers/docker/config.go `TaskConfig`) and its
//! translation into a container spec of capability `host-docker`.
//!
//! The jobspec hands nested blocks over as lists of objects (`port_map { http = 80 }` is
//! `"port_map": [{"http": 80}]`); maps written as attributes (`labels = { a = "b" }`) arrive as
//! objects. Both shapes are accepted wherever Nomad has a map.

use std::collections::BTreeMap;

use caravan_driver_sdk::host::docker::{
    ContainerSpec, Mount, MountKind, PortBinding, RegistryAuth,
};
use caravan_driver_sdk::{DriverError, TaskConfig};
use serde::Deserialize;
use serde_json::Value;

/// The task's `config` block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DockerConfig {
    pub image: String,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// Group network port labels to publish.
    #[serde(default)]
    pub ports: Vec<String>,
    /// Legacy: label → container port.
    #[serde(default)]
    pub port_map: Option<Value>,
    #[serde(default)]
    pub network_mode: Option<String>,
    /// `host:container[:ro]`, the host path relative to the task directory unless absolute.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// `mount { type = "bind", source = "...", target = "...", readonly = true }` blocks, also
    /// spelled `mounts = [{...}]`.
    #[serde(default)]
    pub mount: Vec<MountBlock>,
    #[serde(default)]
    pub mounts: Vec<MountBlock>,
    #[serde(default)]
    pub labels: Option<Value>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub work_dir: Option<String>,
    #[serde(default)]
    pub privileged: bool,
    /// An image archive to `docker load`, relative to the task directory.
    #[serde(default)]
    pub load: Option<String>,
    #[serde(default)]
    pub force_pull: bool,
    #[serde(default)]
    pub auth: Option<Value>,
    /// Pull again without credentials when the pull with them fails.
    #[serde(default)]
    pub auth_soft_fail: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MountBlock {
    #[serde(default = "bind", rename = "type")]
    pub kind: String,
    pub target: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub readonly: bool,
}

fn bind() -> String {
    String::from("bind")
}

fn invalid(config: &TaskConfig, message: String) -> DriverError {
    DriverError::InvalidConfig(format!("task {}: {message}", config.name))
}

/// A map given as an object or as a list of objects (blocks), merged in order.
fn map_of(value: Option<&Value>) -> Result<BTreeMap<String, Value>, String> {
    let mut map = BTreeMap::new();
    let mut merge = |object: &serde_json::Map<String, Value>| {
        for (key, value) in object {
            map.insert(key.clone(), value.clone());
        }
    };
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Object(object)) => merge(object),
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::Object(object) => merge(object),
                    other => return Err(format!("expected a map, got {other}")),
                }
            }
        }
        Some(other) => return Err(format!("expected a map, got {other}")),
    }
    Ok(map)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

impl DockerConfig {
    pub(crate) fn parse(config: &TaskConfig) -> Result<DockerConfig, DriverError> {
        let block: DockerConfig = caravan_driver_sdk::parse_task_config(config)?;
        if block.image.trim().is_empty() {
            return Err(invalid(
                config,
                String::from("config.image must not be empty"),
            ));
        }
        Ok(block)
    }

    /// The registry credentials of the `auth` block.
    pub(crate) fn registry_auth(
        &self,
        config: &TaskConfig,
    ) -> Result<Option<RegistryAuth>, DriverError> {
        if self.auth.is_none() {
            return Ok(None);
        }
        let auth =
            map_of(self.auth.as_ref()).map_err(|err| invalid(config, format!("auth: {err}")))?;
        let field = |key: &str| auth.get(key).map(text).filter(|value| !value.is_empty());
        Ok(Some(RegistryAuth {
            username: field("username").unwrap_or_default(),
            password: field("password").unwrap_or_default(),
            email: field("email"),
            server_address: field("server_address"),
        }))
    }

    /// The container spec for the task.
    pub(crate) fn container_spec(&self, config: &TaskConfig) -> Result<ContainerSpec, DriverError> {
        let task_dir = config.task_dir.trim_end_matches('/');
        let alloc_dir = task_dir
            .rsplit_once('/')
            .map(|(parent, _)| parent)
            .unwrap_or(task_dir);
        let mut mounts = vec![
            bind_mount(format!("{alloc_dir}/alloc"), "/alloc", false),
            bind_mount(format!("{task_dir}/local"), "/local", false),
            bind_mount(format!("{task_dir}/secrets"), "/secrets", false),
        ];
        for volume in &self.volumes {
            mounts.push(parse_volume(volume, task_dir).map_err(|err| invalid(config, err))?);
        }
        for block in self.mount.iter().chain(&self.mounts) {
            let kind = match block.kind.as_str() {
                "bind" => MountKind::Bind,
                "volume" => MountKind::Volume,
                "tmpfs" => MountKind::Tmpfs,
                other => {
                    return Err(invalid(
                        config,
                        format!("mount type {other:?}: expected bind, volume or tmpfs"),
                    ));
                }
            };
            let source = match kind {
                MountKind::Bind => relative_to(task_dir, &block.source),
                _ => block.source.clone(),
            };
            mounts.push(Mount {
                kind,
                source,
                target: block.target.clone(),
                read_only: block.readonly,
            });
        }

        let network_mode = self.network_mode.clone().filter(|mode| !mode.is_empty());
        let host_network = network_mode.as_deref() == Some("host");
        let mut ports = Vec::new();
        for label in &self.ports {
            let port = config
                .ports
                .iter()
                .find(|port| port.label == *label)
                .ok_or_else(|| {
                    invalid(
                        config,
                        format!("port {label:?} is not a port of the group's network block"),
                    )
                })?;
            ports.push(PortBinding {
                container_port: if port.to == 0 { port.value } else { port.to },
                host_port: port.value,
                host_ip: port.host_ip.clone(),
                protocol: String::from("tcp"),
            });
        }
        let port_map = map_of(self.port_map.as_ref())
            .map_err(|err| invalid(config, format!("port_map: {err}")))?;
        for (label, container_port) in port_map {
            let container_port = container_port
                .as_u64()
                .and_then(|port| u16::try_from(port).ok())
                .ok_or_else(|| {
                    invalid(config, format!("port_map.{label}: expected a port number"))
                })?;
            let port = config
                .ports
                .iter()
                .find(|port| port.label == label)
                .ok_or_else(|| invalid(config, format!("port_map.{label}: no such port label")))?;
            ports.push(PortBinding {
                container_port,
                host_port: port.value,
                host_ip: port.host_ip.clone(),
                protocol: String::from("tcp"),
            });
        }
        if host_network {
            ports.clear();
        }

        let mut labels: Vec<(String, String)> = map_of(self.labels.as_ref())
            .map_err(|err| invalid(config, format!("labels: {err}")))?
            .iter()
            .map(|(key, value)| (key.clone(), text(value)))
            .collect();
        labels.extend([
            (String::from("caravan.alloc_id"), config.alloc_id.clone()),
            (String::from("caravan.task"), config.name.clone()),
            (String::from("caravan.job"), config.job_name.clone()),
            (String::from("caravan.group"), config.group_name.clone()),
        ]);

        let cmd = match (&self.command, self.args.is_empty()) {
            (Some(command), _) => Some(
                std::iter::once(command.clone())
                    .chain(self.args.iter().cloned())
                    .collect(),
            ),
            (None, false) => Some(self.args.clone()),
            (None, true) => None,
        };
        let resources = &config.resources;
        let mib = |mb: u32| u64::from(mb) << 20;
        // Nomad: `memory` is the limit; with `memory_max` it becomes the reservation.
        let (memory_bytes, memory_reservation_bytes) =
            if resources.memory_max_mb > resources.memory_mb {
                (mib(resources.memory_max_mb), mib(resources.memory_mb))
            } else {
                (mib(resources.memory_mb), 0)
            };
        Ok(ContainerSpec {
            // Nomad names containers `<task>-<alloc id>`.
            name: format!("{}-{}", config.name, config.alloc_id),
            image: self.image.clone(),
            entrypoint: self.entrypoint.clone(),
            cmd,
            env: config.env.clone(),
            working_dir: self.work_dir.clone().filter(|dir| !dir.is_empty()),
            hostname: self.hostname.clone().filter(|name| !name.is_empty()),
            user: config.user.clone().filter(|user| !user.is_empty()),
            mounts,
            ports,
            network_mode,
            labels,
            memory_bytes,
            memory_reservation_bytes,
            cpu_shares: resources.cpu_mhz,
            privileged: self.privileged,
            stdout_path: config.stdout_path.clone(),
            stderr_path: config.stderr_path.clone(),
        })
    }
}

fn bind_mount(source: String, target: &str, read_only: bool) -> Mount {
    Mount {
        kind: MountKind::Bind,
        source,
        target: target.to_owned(),
        read_only,
    }
}

fn relative_to(task_dir: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{task_dir}/{}", path.trim_start_matches("./"))
    }
}

/// `host:container[:ro|rw]` (Nomad's `volumes`).
fn parse_volume(volume: &str, task_dir: &str) -> Result<Mount, String> {
    let parts: Vec<&str> = volume.split(':').collect();
    let (host, container, read_only) = match parts.as_slice() {
        [host, container] => (*host, *container, false),
        [host, container, "ro"] => (*host, *container, true),
        [host, container, "rw"] => (*host, *container, false),
        _ => {
            return Err(format!(
                "volume {volume:?}: expected host_path:container_path[:ro]"
            ));
        }
    };
    if host.is_empty() || !container.starts_with('/') {
        return Err(format!(
            "volume {volume:?}: expected host_path:container_path[:ro] with an absolute container path"
        ));
    }
    Ok(bind_mount(
        relative_to(task_dir, host),
        container,
        read_only,
    ))
}

#[cfg(test)]
mod tests {
    use caravan_driver_sdk::{PortMapping, Resources};
    use serde_json::json;

    use super::*;

    fn task(config: Value) -> TaskConfig {
        TaskConfig {
            id: String::from("a1/web"),
            name: String::from("web"),
            alloc_id: String::from("a1"),
            job_name: String::from("example"),
            group_name: String::from("cache"),
            config_json: config.to_string(),
            env: vec![(String::from("NOMAD_TASK_NAME"), String::from("web"))],
            task_dir: String::from("/data/alloc/a1/web"),
            stdout_path: String::from("/data/alloc/a1/alloc/logs/web.stdout.0"),
            stderr_path: String::from("/data/alloc/a1/alloc/logs/web.stderr.0"),
            resources: Resources {
                cpu_mhz: 500,
                memory_mb: 256,
                memory_max_mb: 0,
            },
            ports: vec![
                PortMapping {
                    label: String::from("db"),
                    value: 29906,
                    to: 6379,
                    host_ip: String::from("10.0.0.5"),
                },
                PortMapping {
                    label: String::from("admin"),
                    value: 31000,
                    to: 0,
                    host_ip: String::from("10.0.0.5"),
                },
            ],
            user: None,
        }
    }

    fn spec(config: Value) -> Result<ContainerSpec, DriverError> {
        let task = task(config);
        DockerConfig::parse(&task)?.container_spec(&task)
    }

    #[test]
    fn the_tutorial_redis_task_publishes_the_scheduled_port_to_its_to_port() {
        let spec =
            spec(json!({ "image": "redis:7", "ports": ["db", "admin"], "auth_soft_fail": true }))
                .expect("valid");
        let ports: Vec<(u16, u16, &str)> = spec
            .ports
            .iter()
            .map(|port| (port.container_port, port.host_port, port.host_ip.as_str()))
            .collect();
        assert_eq!(
            ports,
            [(6379, 29906, "10.0.0.5"), (31000, 31000, "10.0.0.5")]
        );
        assert_eq!(spec.name, "web-a1");
        assert_eq!(spec.cmd, None);
        assert_eq!(spec.memory_bytes, 256 << 20);
        assert_eq!(spec.memory_reservation_bytes, 0);
        assert_eq!(spec.cpu_shares, 500);
        let mounts: Vec<(&str, &str)> = spec
            .mounts
            .iter()
            .map(|mount| (mount.source.as_str(), mount.target.as_str()))
            .collect();
        assert_eq!(
            mounts,
            [
                ("/data/alloc/a1/alloc", "/alloc"),
                ("/data/alloc/a1/web/local", "/local"),
                ("/data/alloc/a1/web/secrets", "/secrets"),
            ]
        );
        assert!(
            spec.labels
                .contains(&(String::from("caravan.alloc_id"), String::from("a1")))
        );
    }

    #[test]
    fn command_args_volumes_mounts_labels_and_memory_max() {
        let mut task = task(json!({
            "image": "busybox",
            "command": "httpd",
            "args": ["-f", "-p", "8080"],
            "volumes": ["local/data:/data:ro", "/srv:/srv"],
            "mount": [{ "type": "tmpfs", "target": "/scratch" }],
            "labels": [{ "team": "web" }],
            "port_map": [{ "admin": 9000 }],
            "network_mode": "bridge",
        }));
        task.resources.memory_max_mb = 512;
        let spec = DockerConfig::parse(&task)
            .and_then(|block| block.container_spec(&task))
            .expect("valid");
        assert_eq!(
            spec.cmd,
            Some(vec![
                String::from("httpd"),
                String::from("-f"),
                String::from("-p"),
                String::from("8080")
            ])
        );
        assert_eq!(spec.memory_bytes, 512 << 20);
        assert_eq!(spec.memory_reservation_bytes, 256 << 20);
        let volume = &spec.mounts[3];
        assert_eq!(volume.source, "/data/alloc/a1/web/local/data");
        assert!(volume.read_only);
        assert_eq!(spec.mounts[4].source, "/srv");
        assert!(matches!(spec.mounts[5].kind, MountKind::Tmpfs));
        assert!(
            spec.labels
                .contains(&(String::from("team"), String::from("web")))
        );
        assert_eq!(spec.ports.len(), 1);
        assert_eq!(spec.ports[0].container_port, 9000);
        assert_eq!(spec.ports[0].host_port, 31000);
    }

    #[test]
    fn mistakes_name_the_key() {
        let message = |result: Result<ContainerSpec, DriverError>| match result {
            Err(DriverError::InvalidConfig(message)) => message,
            other => panic!("expected invalid-config, got {other:?}"),
        };
        assert!(message(spec(json!({ "image": "" }))).contains("config.image"));
        assert!(message(spec(json!({ "image": "x", "ports": ["web"] }))).contains("\"web\""));
        assert!(message(spec(json!({ "image": "x", "volumes": ["nocolon"] }))).contains("nocolon"));
        assert!(message(spec(json!({ "image": "x", "imagee": "y" }))).contains("imagee"));
        assert!(
            message(spec(
                json!({ "image": "x", "host_network": true, "network_mode": 1 })
            ))
            .contains("task web")
        );
    }

    #[test]
    fn host_networking_publishes_nothing() {
        let spec =
            spec(json!({ "image": "x", "ports": ["db"], "network_mode": "host" })).expect("valid");
        assert!(spec.ports.is_empty());
    }
}
