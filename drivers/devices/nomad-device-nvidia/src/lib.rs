//! `nomad-device-nvidia`: NVIDIA GPUs, named as Nomad's plugin names them (vendor `nvidia`, type
//! `gpu`, name the model; an instance's ID is the GPU's UUID), fingerprinted from
//! `nvidia-smi --query-gpu=... --format=csv,noheader,nounits` through `host-probe`, the one
//! program the host lets this plugin run.
//!
//! ```hcl
//! plugin "nomad-device-nvidia" {
//!   config {
//!     enabled         = true
//!     ignored_gpu_ids = ["GPU-fef8089b"]
//!   }
//! }
//! ```
//!
//! No `nvidia-smi` in the agent's PATH is a node without NVIDIA GPUs: no devices, no error (the
//! host polls every 30 s, so an error here would be an error every 30 s). An `nvidia-smi` that
//! fails (no driver loaded) is an error naming its output. A task given GPUs gets
//! `NVIDIA_VISIBLE_DEVICES=<uuids>`; the NVIDIA container toolkit does the rest.
//!
//! Attributes (Nomad's): `memory` MiB, `power` W, `driver_version`, `cores_clock` MHz,
//! `memory_clock` MHz, `display_state`, `persistence_mode`; a field nvidia-smi answers `[N/A]` or
//! `[Not Supported]` for is left out.

use serde::Deserialize;

wit_bindgen::generate!({
    path: "../wit",
    world: "device-plugin",
});

use caravan::device::host_probe;
use caravan::device::types::{
    Attribute, AttributeValue, DeviceGroup, DeviceInstance, InstanceStats, PluginInfo,
    Reservation,
};
use exports::caravan::device::plugin::Guest;

/// The query, field by field: what [`parse_gpus`] reads.
pub const QUERY: &str = "--query-gpu=uuid,name,memory.total,power.limit,driver_version,\
clocks.max.sm,clocks.max.memory,pci.bus_id,display_mode,persistence_mode";
/// The stats query, field by field: what [`parse_stats`] reads.
pub const STATS_QUERY: &str = "--query-gpu=uuid,utilization.gpu,memory.used,temperature.gpu,power.draw";
const FORMAT: &str = "--format=csv,noheader,nounits";
const PROBE_TIMEOUT_MS: u64 = 10_000;

#[derive(Deserialize, Default)]
struct Config {
    #[serde(default)]
    ignored_gpu_ids: Vec<String>,
}

fn config(json: &str) -> Result<Config, String> {
    serde_json::from_str(json).map_err(|err| format!("nomad-device-nvidia config: {err}"))
}

/// One GPU of nvidia-smi's answer.
#[derive(Debug, Clone)]
pub struct Gpu {
    pub uuid: String,
    pub name: String,
    pub attributes: Vec<Attribute>,
    pub pci_bus_id: Option<String>,
}

/// A field nvidia-smi could not answer.
fn known(field: &str) -> Option<&str> {
    let field = field.trim();
    (!field.is_empty() && !field.starts_with('[')).then_some(field)
}

fn number(name: &str, field: &str, unit: &str) -> Option<Attribute> {
    let field = known(field)?;
    let value = match field.parse::<i64>() {
        Ok(int) => AttributeValue::Int(int),
        Err(_) => {
            let float = field.parse::<f64>().ok().filter(|f| f.is_finite())?;
            // Whole numbers written as `700.00` stay integers, so they compare exactly.
            if float.fract() == 0.0 && float.abs() < 9.0e15 {
                AttributeValue::Int(float as i64)
            } else {
                AttributeValue::Float(float)
            }
        }
    };
    Some(Attribute {
        name: name.to_owned(),
        value,
        unit: unit.to_owned(),
    })
}

fn text(name: &str, field: &str) -> Option<Attribute> {
    Some(Attribute {
        name: name.to_owned(),
        value: AttributeValue::Text(known(field)?.to_owned()),
        unit: String::new(),
    })
}

/// Reads the CSV rows of [`QUERY`]; a row without a UUID and a name is an error naming it.
pub fn parse_gpus(csv: &str) -> Result<Vec<Gpu>, String> {
    let mut gpus = Vec::new();
    for line in csv.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [
            uuid,
            name,
            memory,
            power,
            driver,
            sm_clock,
            memory_clock,
            bus_id,
            display,
            persistence,
        ] = fields[..]
        else {
            return Err(format!(
                "nvidia-smi answered {} fields where 10 were asked: {line:?}",
                fields.len()
            ));
        };
        let (Some(uuid), Some(name)) = (known(uuid), known(name)) else {
            return Err(format!("nvidia-smi answered a GPU without UUID or name: {line:?}"));
        };
        let attributes = [
            number("memory", memory, "MiB"),
            number("power", power, "W"),
            text("driver_version", driver),
            number("cores_clock", sm_clock, "MHz"),
            number("memory_clock", memory_clock, "MHz"),
            text("display_state", display),
            text("persistence_mode", persistence),
        ]
        .into_iter()
        .flatten()
        .collect();
        gpus.push(Gpu {
            uuid: uuid.to_owned(),
            name: name.to_owned(),
            attributes,
            pci_bus_id: known(bus_id).map(str::to_owned),
        });
    }
    Ok(gpus)
}

/// GPUs of one model form one group, with the first one's attributes (Nomad's grouping).
pub fn group_gpus(gpus: Vec<Gpu>, ignored: &[String]) -> Vec<DeviceGroup> {
    let mut groups: Vec<DeviceGroup> = Vec::new();
    for gpu in gpus.into_iter().filter(|gpu| !ignored.contains(&gpu.uuid)) {
        let instance = DeviceInstance {
            id: gpu.uuid,
            healthy: true,
            health_description: String::new(),
            pci_bus_id: gpu.pci_bus_id,
        };
        match groups.iter_mut().find(|group| group.name == gpu.name) {
            Some(group) => group.instances.push(instance),
            None => groups.push(DeviceGroup {
                vendor: "nvidia".to_owned(),
                device_type: "gpu".to_owned(),
                name: gpu.name,
                instances: vec![instance],
                attributes: gpu.attributes,
            }),
        }
    }
    groups
}

/// Reads the CSV rows of [`STATS_QUERY`]: per GPU, what it answered of utilization (percent),
/// memory used (MiB), temperature (C) and power draw (W).
pub fn parse_stats(csv: &str) -> Result<Vec<InstanceStats>, String> {
    let mut stats = Vec::new();
    for line in csv.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [uuid, utilization, memory_used, temperature, power] = fields[..] else {
            return Err(format!(
                "nvidia-smi answered {} fields where 5 were asked: {line:?}",
                fields.len()
            ));
        };
        let Some(uuid) = known(uuid) else {
            return Err(format!("nvidia-smi answered a GPU without UUID: {line:?}"));
        };
        stats.push(InstanceStats {
            id: uuid.to_owned(),
            stats: [
                number("utilization", utilization, "%"),
                number("memory_used", memory_used, "MiB"),
                number("temperature", temperature, "C"),
                number("power_draw", power, "W"),
            ]
            .into_iter()
            .flatten()
            .collect(),
        });
    }
    Ok(stats)
}

/// Runs a query; `Ok(None)` when the node has no nvidia-smi at all.
fn query(fields: &str) -> Result<Option<String>, String> {
    let args = vec![fields.to_owned(), FORMAT.to_owned()];
    let output = match host_probe::probe("nvidia-smi", &args, PROBE_TIMEOUT_MS) {
        Ok(output) => output,
        Err(err) if err.contains("not in the agent's PATH") => return Ok(None),
        Err(err) => return Err(err),
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.exit_code != 0 {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said = if stderr.trim().is_empty() {
            stdout.trim()
        } else {
            stderr.trim()
        };
        let said: String = said.chars().take(300).collect();
        return Err(format!(
            "nvidia-smi exited with {}: {said}",
            output.exit_code
        ));
    }
    Ok(Some(stdout))
}

struct Plugin;

impl Guest for Plugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "nomad-device-nvidia".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    fn fingerprint(config_json: String) -> Result<Vec<DeviceGroup>, String> {
        let config = config(&config_json)?;
        let Some(csv) = query(QUERY)? else {
            return Ok(Vec::new());
        };
        Ok(group_gpus(parse_gpus(&csv)?, &config.ignored_gpu_ids))
    }

    fn reserve(config_json: String, device_ids: Vec<String>) -> Result<Reservation, String> {
        let config = config(&config_json)?;
        if let Some(ignored) = device_ids
            .iter()
            .find(|id| config.ignored_gpu_ids.contains(id))
        {
            return Err(format!("GPU {ignored} is ignored by the plugin config"));
        }
        Ok(Reservation {
            env: vec![("NVIDIA_VISIBLE_DEVICES".to_owned(), device_ids.join(","))],
            mounts: Vec::new(),
            devices: Vec::new(),
        })
    }

    fn stats(config_json: String) -> Result<Vec<InstanceStats>, String> {
        let config = config(&config_json)?;
        let Some(csv) = query(STATS_QUERY)? else {
            return Ok(Vec::new());
        };
        let mut stats = parse_stats(&csv)?;
        stats.retain(|gpu| !config.ignored_gpu_ids.contains(&gpu.id));
        Ok(stats)
    }
}

export!(Plugin);
