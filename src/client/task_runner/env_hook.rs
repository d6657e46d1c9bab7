//! Hook `env`: the task's runtime environment (`NOMAD_*` variables, the task's `env` block) and
//! `${...}` interpolation of environment values and task config strings.
//!
//! Nomad: `client/taskenv/env.go`. Variables are built in this order, later ones winning: node
//! and allocation facts, ports, metadata (job, then group, then task), then the task's `env`
//! block, each value of which is interpolated against what came before.
//!
//! Interpolation resolves `${NOMAD_X}` (and any earlier variable), `${env.X}`, `${attr.X}`
//! (node attributes), `${meta.X}` (node meta) and `${node.unique.id}`, `${node.unique.name}`,
//! `${node.datacenter}`, `${node.region}`, `${node.class}`, `${node.pool}`. An unknown key is
//! left as written, as Nomad does.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::hooks::{HookFuture, Prestart, PrestartRequest, PrestartResponse, TaskHook};
use crate::driver_host::FsIsolation;
use crate::structs::{Allocation, Node, Task};

pub const NAME: &str = "env";

/// What the env hook needs about the node the task runs on.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    pub node: Node,
    pub region: String,
}

/// Where the task's directories are, as the task sees them.
#[derive(Debug, Clone)]
pub struct TaskPaths {
    pub alloc_dir: String,
    pub task_local_dir: String,
    pub secrets_dir: String,
    pub tmp_dir: String,
}

impl TaskPaths {
    /// Host paths for drivers without filesystem isolation (raw_exec); for chroot drivers (the
    /// wasm driver, whose WASI tasks see only their task dir, preopened as `.`) paths relative to
    /// the task dir, which is also their working directory; Nomad's mount points for image
    /// drivers (docker).
    pub fn for_driver(alloc_dir: &Path, task_dir: &Path, isolation: FsIsolation) -> TaskPaths {
        match isolation {
            FsIsolation::None => TaskPaths {
                alloc_dir: alloc_dir.join("alloc").display().to_string(),
                task_local_dir: task_dir.join("local").display().to_string(),
                secrets_dir: task_dir.join("secrets").display().to_string(),
                tmp_dir: task_dir.join("tmp").display().to_string(),
            },
            FsIsolation::Chroot => TaskPaths {
                alloc_dir: "alloc".to_owned(),
                task_local_dir: "local".to_owned(),
                secrets_dir: "secrets".to_owned(),
                tmp_dir: "tmp".to_owned(),
            },
            FsIsolation::Image => TaskPaths {
                alloc_dir: "/alloc".to_owned(),
                task_local_dir: "/local".to_owned(),
                secrets_dir: "/secrets".to_owned(),
                tmp_dir: "/tmp".to_owned(),
            },
        }
    }
}

/// The `env` hook: the task's runtime environment, built afresh before every start from the
/// allocation as last received.
#[derive(Debug, Clone)]
pub struct EnvHook {
    pub facts: Arc<NodeFacts>,
}

impl TaskHook for EnvHook {
    fn name(&self) -> &'static str {
        NAME
    }

    fn as_prestart(&self) -> Option<&dyn Prestart> {
        Some(self)
    }
}

impl Prestart for EnvHook {
    fn prestart<'a>(
        &'a self,
        req: &'a PrestartRequest<'a>,
        resp: &'a mut PrestartResponse,
    ) -> HookFuture<'a> {
        Box::pin(async move {
            let paths = TaskPaths::for_driver(req.alloc_dir.root(), req.task_dir, req.fs_isolation);
            resp.env = build_env(req.alloc, req.task, &self.facts, &paths);
            Ok(())
        })
    }
}

/// The environment of one task of one allocation.
pub fn build_env(
    alloc: &Allocation,
    task: &Task,
    facts: &NodeFacts,
    paths: &TaskPaths,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |key: String, value: String| {
        env.insert(key, value);
    };
    set("NOMAD_ALLOC_DIR".into(), paths.alloc_dir.clone());
    set("NOMAD_TASK_DIR".into(), paths.task_local_dir.clone());
    set("NOMAD_SECRETS_DIR".into(), paths.secrets_dir.clone());
    set("TMPDIR".into(), paths.tmp_dir.clone());
    set("NOMAD_ALLOC_ID".into(), alloc.id.to_string());
    set("NOMAD_SHORT_ALLOC_ID".into(), alloc.id.short().to_owned());
    set("NOMAD_ALLOC_NAME".into(), alloc.name.clone());
    set(
        "NOMAD_ALLOC_INDEX".into(),
        alloc.index().unwrap_or(0).to_string(),
    );
    set("NOMAD_GROUP_NAME".into(), alloc.task_group.clone());
    set("NOMAD_TASK_NAME".into(), task.name.clone());
    set("NOMAD_NAMESPACE".into(), alloc.namespace.clone());
    set("NOMAD_DC".into(), facts.node.datacenter.clone());
    set("NOMAD_REGION".into(), facts.region.clone());
    set("NOMAD_NODE_ID".into(), facts.node.id.to_string());
    set("NOMAD_NODE_NAME".into(), facts.node.name.clone());
    if let Some(job) = &alloc.job {
        set("NOMAD_JOB_ID".into(), job.id.to_string());
        set(
            "NOMAD_JOB_NAME".into(),
            if job.name.is_empty() {
                job.id.to_string()
            } else {
                job.name.clone()
            },
        );
        if !job.parent_id.is_empty() {
            set("NOMAD_JOB_PARENT_ID".into(), job.parent_id.clone());
        }
        if !job.region.is_empty() {
            set("NOMAD_REGION".into(), job.region.clone());
        }
        if alloc.namespace.is_empty() {
            set("NOMAD_NAMESPACE".into(), job.namespace.clone());
        }
    } else {
        set("NOMAD_JOB_ID".into(), alloc.job_id.to_string());
        set("NOMAD_JOB_NAME".into(), alloc.job_id.to_string());
    }
    if let Some(resources) = alloc.allocated_resources.tasks.get(&task.name) {
        set(
            "NOMAD_CPU_LIMIT".into(),
            resources.cpu.cpu_shares.to_string(),
        );
        set(
            "NOMAD_MEMORY_LIMIT".into(),
            resources.memory.memory_mb.to_string(),
        );
        if !resources.cpu.reserved_cores.is_empty() {
            set(
                "NOMAD_CPU_CORES".into(),
                resources.cpu.reserved_cores_list(),
            );
        }
        if resources.memory.memory_max_mb > 0 {
            set(
                "NOMAD_MEMORY_MAX_LIMIT".into(),
                resources.memory.memory_max_mb.to_string(),
            );
        }
    } else if let Some(resources) = &task.resources {
        set("NOMAD_CPU_LIMIT".into(), resources.cpu.to_string());
        set("NOMAD_MEMORY_LIMIT".into(), resources.memory_mb.to_string());
    }
    for port in ports_of(alloc, &task.name) {
        let host_ip = if port.host_ip.is_empty() {
            "127.0.0.1".to_owned()
        } else {
            port.host_ip.clone()
        };
        let inner_port = if port.to > 0 { port.to } else { port.value };
        set(format!("NOMAD_PORT_{}", port.label), inner_port.to_string());
        set(
            format!("NOMAD_HOST_PORT_{}", port.label),
            port.value.to_string(),
        );
        set(format!("NOMAD_IP_{}", port.label), host_ip.clone());
        set(format!("NOMAD_HOST_IP_{}", port.label), host_ip.clone());
        set(
            format!("NOMAD_ADDR_{}", port.label),
            format!("{host_ip}:{}", port.value),
        );
        set(
            format!("NOMAD_HOST_ADDR_{}", port.label),
            format!("{host_ip}:{}", port.value),
        );
    }
    let mut meta = BTreeMap::new();
    if let Some(job) = &alloc.job {
        meta.extend(job.meta.clone());
        if let Some(group) = job.task_group(&alloc.task_group) {
            meta.extend(group.meta.clone());
        }
    }
    meta.extend(task.meta.clone());
    for (key, value) in meta {
        let upper = key.to_uppercase();
        set(format!("NOMAD_META_{key}"), value.clone());
        set(format!("NOMAD_META_{upper}"), value);
    }
    for (key, value) in &task.env {
        let value = interpolate(value, &env, facts);
        env.insert(key.clone(), value);
    }
    env
}

/// A port of the allocation, from the group's shared ports and any network's ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    pub label: String,
    pub value: i32,
    pub to: i32,
    pub host_ip: String,
}

/// Every port the allocation holds that the task can use.
pub fn ports_of(alloc: &Allocation, task_name: &str) -> Vec<PortInfo> {
    let mut ports: Vec<PortInfo> = alloc
        .allocated_resources
        .shared
        .ports
        .iter()
        .map(|port| PortInfo {
            label: port.label.clone(),
            value: port.value,
            to: port.to,
            host_ip: port.host_ip.clone(),
        })
        .collect();
    let task_networks = alloc
        .allocated_resources
        .tasks
        .get(task_name)
        .map(|task| task.networks.as_slice())
        .unwrap_or_default();
    for network in alloc
        .allocated_resources
        .shared
        .networks
        .iter()
        .chain(task_networks)
    {
        for port in network.reserved_ports.iter().chain(&network.dynamic_ports) {
            if ports.iter().any(|known| known.label == port.label) {
                continue;
            }
            ports.push(PortInfo {
                label: port.label.clone(),
                value: port.value,
                to: port.to,
                host_ip: network.ip.clone(),
            });
        }
    }
    ports
}

/// Replaces every `${key}` in `text` whose key is known; unknown keys stay as written.
pub fn interpolate(text: &str, env: &BTreeMap<String, String>, facts: &NodeFacts) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = after[..end].trim();
        match lookup(key, env, facts) {
            Some(value) => out.push_str(&value),
            None => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn lookup(key: &str, env: &BTreeMap<String, String>, facts: &NodeFacts) -> Option<String> {
    let node = &facts.node;
    if let Some(attribute) = key.strip_prefix("attr.") {
        return node.attributes.get(attribute).cloned();
    }
    if let Some(meta_key) = key.strip_prefix("meta.") {
        return node.meta.get(meta_key).cloned();
    }
    if let Some(env_key) = key.strip_prefix("env.") {
        return env.get(env_key).cloned();
    }
    match key {
        "node.unique.id" => Some(node.id.to_string()),
        "node.unique.name" => Some(node.name.clone()),
        "node.datacenter" => Some(node.datacenter.clone()),
        "node.region" => Some(facts.region.clone()),
        "node.class" => Some(node.node_class.clone()),
        "node.pool" => Some(node.node_pool.clone()),
        _ => env.get(key).cloned(),
    }
}

/// Interpolates every string in a task's `config` block, recursively.
pub fn interpolate_config(
    value: &serde_json::Value,
    env: &BTreeMap<String, String>,
    facts: &NodeFacts,
) -> serde_json::Value {
    match value {
        serde_json::Value::String(text) => serde_json::Value::String(interpolate(text, env, facts)),
        serde_json::Value::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .map(|item| interpolate_config(item, env, facts))
                .collect(),
        ),
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(key, item)| (key.clone(), interpolate_config(item, env, facts)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use crate::structs::{
        AllocatedCpu, AllocatedMemory, AllocatedPort, AllocatedTaskResources, Job, JobId, TaskGroup,
    };

    fn fixture() -> (Allocation, Task, NodeFacts, TaskPaths) {
        let task = Task {
            name: "web".to_owned(),
            driver: "raw_exec".to_owned(),
            env: BTreeMap::from([
                ("GREETING".to_owned(), "hello ${NOMAD_TASK_NAME}".to_owned()),
                ("LISTEN".to_owned(), "${NOMAD_ADDR_http}".to_owned()),
                ("KERNEL".to_owned(), "${attr.kernel.name}".to_owned()),
                ("RACK".to_owned(), "${meta.rack}".to_owned()),
                ("DC".to_owned(), "${node.datacenter}".to_owned()),
                ("LEFT".to_owned(), "${unknown.thing}".to_owned()),
            ]),
            meta: BTreeMap::from([("owner".to_owned(), "ops".to_owned())]),
            ..Task::default()
        };
        let job = Job {
            id: JobId::from("example"),
            name: "example".to_owned(),
            region: "global".to_owned(),
            namespace: "default".to_owned(),
            meta: BTreeMap::from([("team".to_owned(), "core".to_owned())]),
            task_groups: vec![TaskGroup {
                name: "cache".to_owned(),
                tasks: vec![task.clone()],
                ..TaskGroup::default()
            }],
            ..Job::default()
        };
        let mut alloc = Allocation {
            id: "8d3ae1c2-0000-4000-8000-000000000001".into(),
            name: "example.cache[2]".to_owned(),
            namespace: "default".to_owned(),
            task_group: "cache".to_owned(),
            job_id: job.id.clone(),
            job: Some(Arc::new(job)),
            ..Allocation::default()
        };
        alloc.allocated_resources.tasks.insert(
            "web".to_owned(),
            AllocatedTaskResources {
                cpu: AllocatedCpu {
                    cpu_shares: 500,
                    ..AllocatedCpu::default()
                },
                memory: AllocatedMemory {
                    memory_mb: 256,
                    memory_max_mb: 0,
                },
                networks: Vec::new(),
                devices: Vec::new(),
            },
        );
        alloc.allocated_resources.shared.ports.push(AllocatedPort {
            label: "http".to_owned(),
            value: 23456,
            to: 8080,
            host_ip: "10.0.0.5".to_owned(),
        });
        let facts = NodeFacts {
            node: Node {
                id: "node-1".into(),
                name: "client1".to_owned(),
                datacenter: "dc1".to_owned(),
                attributes: BTreeMap::from([("kernel.name".to_owned(), "linux".to_owned())]),
                meta: BTreeMap::from([("rack".to_owned(), "r1".to_owned())]),
                ..Node::default()
            },
            region: "global".to_owned(),
        };
        let paths = TaskPaths::for_driver(
            Path::new("/data/alloc/a1"),
            Path::new("/data/alloc/a1/web"),
            FsIsolation::None,
        );
        (alloc, task, facts, paths)
    }

    #[test]
    fn builds_nomads_runtime_environment() {
        let (alloc, task, facts, paths) = fixture();
        let env = build_env(&alloc, &task, &facts, &paths);
        let expected = [
            ("NOMAD_ALLOC_DIR", "/data/alloc/a1/alloc"),
            ("NOMAD_TASK_DIR", "/data/alloc/a1/web/local"),
            ("NOMAD_SECRETS_DIR", "/data/alloc/a1/web/secrets"),
            ("NOMAD_ALLOC_ID", "8d3ae1c2-0000-4000-8000-000000000001"),
            ("NOMAD_SHORT_ALLOC_ID", "8d3ae1c2"),
            ("NOMAD_ALLOC_NAME", "example.cache[2]"),
            ("NOMAD_ALLOC_INDEX", "2"),
            ("NOMAD_JOB_NAME", "example"),
            ("NOMAD_JOB_ID", "example"),
            ("NOMAD_GROUP_NAME", "cache"),
            ("NOMAD_TASK_NAME", "web"),
            ("NOMAD_NAMESPACE", "default"),
            ("NOMAD_REGION", "global"),
            ("NOMAD_DC", "dc1"),
            ("NOMAD_CPU_LIMIT", "500"),
            ("NOMAD_MEMORY_LIMIT", "256"),
            ("NOMAD_PORT_http", "8080"),
            ("NOMAD_HOST_PORT_http", "23456"),
            ("NOMAD_IP_http", "10.0.0.5"),
            ("NOMAD_ADDR_http", "10.0.0.5:23456"),
            ("NOMAD_META_team", "core"),
            ("NOMAD_META_owner", "ops"),
            ("NOMAD_META_OWNER", "ops"),
            ("GREETING", "hello web"),
            ("LISTEN", "10.0.0.5:23456"),
            ("KERNEL", "linux"),
            ("RACK", "r1"),
            ("DC", "dc1"),
            ("LEFT", "${unknown.thing}"),
        ];
        for (key, value) in expected {
            assert_eq!(env.get(key).map(String::as_str), Some(value), "{key}");
        }
    }

    #[test]
    fn interpolates_task_config_strings_recursively() {
        let (alloc, task, facts, paths) = fixture();
        let env = build_env(&alloc, &task, &facts, &paths);
        let config = json!({
            "command": "/bin/sh",
            "args": ["-c", "echo ${NOMAD_ALLOC_INDEX} ${node.unique.name}", 3],
            "nested": { "port": "${NOMAD_PORT_http}", "open": "${" }
        });
        assert_eq!(
            interpolate_config(&config, &env, &facts),
            json!({
                "command": "/bin/sh",
                "args": ["-c", "echo 2 client1", 3],
                "nested": { "port": "8080", "open": "${" }
            })
        );
    }

    #[test]
    fn isolated_drivers_see_paths_inside_their_view() {
        let chroot = TaskPaths::for_driver(Path::new("/a"), Path::new("/a/t"), FsIsolation::Chroot);
        assert_eq!(chroot.task_local_dir, "local");
        let image = TaskPaths::for_driver(Path::new("/a"), Path::new("/a/t"), FsIsolation::Image);
        assert_eq!(image.alloc_dir, "/alloc");
        assert_eq!(image.task_local_dir, "/local");
    }
}
