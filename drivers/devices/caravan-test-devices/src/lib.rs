//! `caravan-test-devices`: a device plugin whose devices are what its plugin config says, so the
//! whole device path (fingerprint, scheduling, reservation) runs on machines without any device.
//! Its vendor is `caravan-test`: nothing it reports is real hardware, and nothing pretends to be.
//! Nomad's example device plugin (`plugins/device/cmd/example`) is the precedent, made declarative.
//!
//! ```hcl
//! plugin "caravan-test-devices" {
//!   config {
//!     visible_env = "CARAVAN_TEST_VISIBLE_DEVICES"   # the reserved IDs, comma-separated
//!     devices = [
//!       {
//!         type       = "gpu"
//!         name       = "sim-80g"
//!         instances  = ["sim-0", "sim-1", "sim-2"]
//!         unhealthy  = ["sim-2"]
//!         attributes = { memory = "80 GiB", driver_version = "sim" }
//!         # What a task given any of these instances gets besides the env (container drivers):
//!         mounts       = [{ host_path = "/opt/sim", task_path = "/opt/sim", read_only = true }]
//!         device_nodes = [{ host_path = "/dev/null", task_path = "/dev/sim0", permissions = "rw" }]
//!         # Figures `stats` reports per instance (read as attributes are), in name order: the
//!         # first is the instance's summary.
//!         stats        = { "sim-0" = { memory_used = "1024 MiB", utilization = 37 } }
//!       },
//!     ]
//!   }
//! }
//! ```
//!
//! Attribute values are read as Nomad reads them: a number with one of Nomad's units
//! (`80 GiB`, `1.5 GHz`), a number, `true`/`false`, or text.

use std::collections::BTreeMap;

use serde::Deserialize;

wit_bindgen::generate!({
    path: "../wit",
    world: "device-plugin",
});

use caravan::device::types::{
    Attribute, AttributeValue, DeviceGroup, DeviceInstance, DeviceNode, InstanceStats, Mount,
    PluginInfo, Reservation,
};
use exports::caravan::device::plugin::Guest;

/// The vendor of every group: obviously not a real one.
const VENDOR: &str = "caravan-test";
const DEFAULT_VISIBLE_ENV: &str = "CARAVAN_TEST_VISIBLE_DEVICES";

/// Nomad's units, longest first so that `MiB/s` is found before `B/s`.
const UNITS: &[&str] = &[
    "KiB/s", "MiB/s", "GiB/s", "TiB/s", "PiB/s", "EiB/s", "kB/s", "KB/s", "MB/s", "GB/s", "TB/s",
    "PB/s", "EB/s", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "B/s", "MHz", "GHz", "kB", "KB",
    "MB", "GB", "TB", "PB", "EB", "mW", "kW", "MW", "GW", "B", "W",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    devices: Vec<GroupConfig>,
    visible_env: Option<String>,
    /// The operator's grant list, read by the host; accepted here so the config may carry it.
    #[serde(default)]
    #[allow(dead_code)]
    probe_programs: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupConfig {
    #[serde(rename = "type")]
    device_type: String,
    name: String,
    #[serde(default)]
    instances: Vec<String>,
    #[serde(default)]
    unhealthy: Vec<String>,
    #[serde(default)]
    attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    mounts: Vec<MountConfig>,
    #[serde(default)]
    device_nodes: Vec<NodeConfig>,
    /// Figures by instance ID, then by name.
    #[serde(default)]
    stats: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MountConfig {
    host_path: String,
    task_path: String,
    #[serde(default)]
    read_only: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeConfig {
    host_path: String,
    task_path: String,
    #[serde(default)]
    permissions: String,
}

fn config(json: &str) -> Result<Config, String> {
    let config: Config =
        serde_json::from_str(json).map_err(|err| format!("caravan-test-devices config: {err}"))?;
    for group in &config.devices {
        if group.device_type.is_empty() || group.name.is_empty() {
            return Err("caravan-test-devices config: every device needs a type and a name".into());
        }
        if let Some(unknown) = group
            .unhealthy
            .iter()
            .find(|id| !group.instances.contains(id))
        {
            return Err(format!(
                "caravan-test-devices config: unhealthy instance {unknown:?} of {} is not among its instances",
                group.name
            ));
        }
    }
    Ok(config)
}

/// Reads `"80 GiB"` as int 80 with unit GiB, as Nomad's `ParseAttribute` does.
fn attribute(name: &str, value: &serde_json::Value) -> Attribute {
    let (value, unit) = match value {
        serde_json::Value::Bool(flag) => (AttributeValue::Boolean(*flag), String::new()),
        serde_json::Value::Number(number) => match number.as_i64() {
            Some(int) => (AttributeValue::Int(int), String::new()),
            None => (
                AttributeValue::Float(number.as_f64().unwrap_or_default()),
                String::new(),
            ),
        },
        serde_json::Value::String(text) => parse_text(text),
        other => (AttributeValue::Text(other.to_string()), String::new()),
    };
    Attribute {
        name: name.to_owned(),
        value,
        unit,
    }
}

fn parse_text(text: &str) -> (AttributeValue, String) {
    let (numeric, unit) = match UNITS.iter().find(|unit| text.ends_with(*unit)) {
        Some(unit) => (text[..text.len() - unit.len()].trim(), *unit),
        None => (text, ""),
    };
    if let Ok(int) = numeric.parse::<i64>() {
        return (AttributeValue::Int(int), unit.to_owned());
    }
    if !numeric.is_empty()
        && numeric
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+'))
        && let Ok(float) = numeric.parse::<f64>()
    {
        return (AttributeValue::Float(float), unit.to_owned());
    }
    match text {
        "true" => (AttributeValue::Boolean(true), String::new()),
        "false" => (AttributeValue::Boolean(false), String::new()),
        _ => (AttributeValue::Text(text.to_owned()), String::new()),
    }
}

struct Plugin;

impl Guest for Plugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "caravan-test-devices".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    fn fingerprint(config_json: String) -> Result<Vec<DeviceGroup>, String> {
        let config = config(&config_json)?;
        Ok(config
            .devices
            .iter()
            .map(|group| DeviceGroup {
                vendor: VENDOR.to_owned(),
                device_type: group.device_type.clone(),
                name: group.name.clone(),
                instances: group
                    .instances
                    .iter()
                    .map(|id| {
                        let healthy = !group.unhealthy.contains(id);
                        DeviceInstance {
                            id: id.clone(),
                            healthy,
                            health_description: if healthy {
                                String::new()
                            } else {
                                "marked unhealthy in the plugin config".to_owned()
                            },
                            pci_bus_id: None,
                        }
                    })
                    .collect(),
                attributes: group
                    .attributes
                    .iter()
                    .map(|(name, value)| attribute(name, value))
                    .collect(),
            })
            .collect())
    }

    fn reserve(config_json: String, device_ids: Vec<String>) -> Result<Reservation, String> {
        let config = config(&config_json)?;
        if let Some(unknown) = device_ids.iter().find(|id| {
            !config
                .devices
                .iter()
                .any(|group| group.instances.contains(id))
        }) {
            return Err(format!("unknown device {unknown:?}"));
        }
        let given: Vec<&GroupConfig> = config
            .devices
            .iter()
            .filter(|group| device_ids.iter().any(|id| group.instances.contains(id)))
            .collect();
        let variable = config
            .visible_env
            .clone()
            .unwrap_or_else(|| DEFAULT_VISIBLE_ENV.to_owned());
        Ok(Reservation {
            env: vec![(variable, device_ids.join(","))],
            mounts: given
                .iter()
                .flat_map(|group| &group.mounts)
                .map(|mount| Mount {
                    task_path: mount.task_path.clone(),
                    host_path: mount.host_path.clone(),
                    read_only: mount.read_only,
                })
                .collect(),
            devices: given
                .iter()
                .flat_map(|group| &group.device_nodes)
                .map(|node| DeviceNode {
                    task_path: node.task_path.clone(),
                    host_path: node.host_path.clone(),
                    cgroup_permissions: node.permissions.clone(),
                })
                .collect(),
        })
    }

    fn stats(config_json: String) -> Result<Vec<InstanceStats>, String> {
        let config = config(&config_json)?;
        Ok(config
            .devices
            .iter()
            .flat_map(|group| group.instances.iter().map(move |id| (group, id)))
            .map(|(group, id)| InstanceStats {
                id: id.clone(),
                stats: group
                    .stats
                    .get(id)
                    .into_iter()
                    .flatten()
                    .map(|(name, value)| attribute(name, value))
                    .collect(),
            })
            .collect())
    }
}

export!(Plugin);
