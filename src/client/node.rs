//! Fingerprinting: what this node is and has, as the `Node` the client registers (Nomad:
//! `client/fingerprint/*.go`, one fingerprinter per fact; here one function each).
//!
//! Attribute names are Nomad's: `cpu.numcores`, `cpu.frequency`, `cpu.totalcompute`,
//! `cpu.modelname`, `cpu.arch`, `memory.totalbytes`, `kernel.name`, `kernel.version`,
//! `kernel.arch`, `os.name`, `os.version`, `unique.hostname`, `unique.network.ip-address`,
//! `unique.storage.volume`, `unique.storage.bytestotal`, `unique.storage.bytesfree`,
//! `nomad.version`, `caravan.version` and `driver.<name>` ("1" when the driver is healthy).
//!
//! Drivers are fingerprinted apart from the host facts ([`fingerprint_drivers`]), by the client's
//! fingerprint loop, never on its start-up path or in its heartbeat loop; what a driver reports is
//! bounded ([`bound_fingerprint`]): at most [`MAX_DRIVER_ATTRIBUTES`] attributes, keys of at most
//! [`MAX_ATTRIBUTE_KEY_BYTES`] and values of at most [`MAX_ATTRIBUTE_VALUE_BYTES`]; the entries
//! over those limits are dropped with a warning and a note in the driver's health description
//! (the driver keeps the health it reported), so the node's registration stays small.
//!
//! **Boundary:** drivers are fingerprinted through `driver_host` only.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::Path;

use crate::driver_host::{DriverHost, Error as DriverHostError, Health};
use crate::structs::{
    DriverInfo, NetworkResource, Node, NodeCpuResources, NodeDeviceResource, NodeDiskResources,
    NodeMemoryResources, NodeResources, NodeStatus,
};

/// Per-core MHz assumed when neither /proc/cpuinfo nor cpufreq tells (ARM VMs, containers).
const FALLBACK_CPU_MHZ: u64 = 1000;

/// The facts of this machine, gathered once at start-up.
#[derive(Debug, Clone, PartialEq)]
pub struct HostFacts {
    pub cpu_cores: u32,
    pub cpu_mhz: u64,
    pub cpu_model: String,
    /// The operator's `cpu_total_compute`, which replaces cores × MHz.
    pub cpu_total_compute: Option<u64>,
    pub memory_bytes: u64,
    pub disk_total_bytes: u64,
    pub disk_free_bytes: u64,
    pub kernel_name: String,
    pub kernel_version: String,
    pub os_name: String,
    pub os_version: String,
    pub hostname: String,
    pub ip: IpAddr,
}

impl HostFacts {
    /// Gathers the facts; `data_dir` is where disk space is measured, `advertise_ip` overrides
    /// the detected address.
    pub fn gather(data_dir: &Path, advertise_ip: Option<IpAddr>) -> HostFacts {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let (cpu_mhz, cpu_model) = parse_cpuinfo(&cpuinfo);
        let cpu_mhz = cpu_mhz.or_else(cpufreq_mhz).unwrap_or(FALLBACK_CPU_MHZ);
        let cpu_cores = std::thread::available_parallelism()
            .map(|n| u32::try_from(n.get()).unwrap_or(1))
            .unwrap_or(1);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let (disk_total_bytes, disk_free_bytes) = disk_space(data_dir);
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let (os_name, os_version) = parse_os_release(&os_release);
        HostFacts {
            cpu_cores,
            cpu_mhz,
            cpu_model,
            cpu_total_compute: None,
            memory_bytes: parse_meminfo_total(&meminfo).unwrap_or(0),
            disk_total_bytes,
            disk_free_bytes,
            kernel_name: read_trimmed("/proc/sys/kernel/ostype")
                .map(|name| name.to_lowercase())
                .unwrap_or_else(|| std::env::consts::OS.to_owned()),
            kernel_version: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default(),
            os_name,
            os_version,
            hostname: read_trimmed("/proc/sys/kernel/hostname")
                .unwrap_or_else(|| "localhost".to_owned()),
            ip: advertise_ip.unwrap_or_else(detect_ip),
        }
    }

    pub fn total_compute_mhz(&self) -> u64 {
        self.cpu_total_compute
            .unwrap_or(u64::from(self.cpu_cores) * self.cpu_mhz)
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

/// The first `cpu MHz` (rounded) and `model name` of /proc/cpuinfo.
pub fn parse_cpuinfo(cpuinfo: &str) -> (Option<u64>, String) {
    let mut mhz = None;
    let mut model = String::new();
    for line in cpuinfo.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim() {
            "cpu MHz" if mhz.is_none() => {
                mhz = value
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .map(|mhz| mhz.round() as u64);
            }
            "model name" if model.is_empty() => model = value.trim().to_owned(),
            _ => {}
        }
    }
    (mhz.filter(|mhz| *mhz > 0), model)
}

fn cpufreq_mhz() -> Option<u64> {
    read_trimmed("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")?
        .parse::<u64>()
        .ok()
        .map(|khz| khz / 1000)
        .filter(|mhz| *mhz > 0)
}

/// `MemTotal` of /proc/meminfo in bytes.
pub fn parse_meminfo_total(meminfo: &str) -> Option<u64> {
    parse_meminfo_field(meminfo, "MemTotal")
}

/// A field of /proc/meminfo (`MemTotal`, `MemAvailable`, `MemFree`...) in bytes.
pub fn parse_meminfo_field(meminfo: &str, field: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| {
        line.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `ID` and `VERSION_ID` of /etc/os-release.
pub fn parse_os_release(text: &str) -> (String, String) {
    let mut name = String::new();
    let mut version = String::new();
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("ID=") {
            name = value.trim_matches('"').to_owned();
        } else if let Some(value) = line.strip_prefix("VERSION_ID=") {
            version = value.trim_matches('"').to_owned();
        }
    }
    (name, version)
}

/// The total and available bytes of the filesystem that holds `dir` (created if missing).
pub fn disk_space(dir: &Path) -> (u64, u64) {
    let _ = std::fs::create_dir_all(dir);
    match nix::sys::statvfs::statvfs(dir) {
        // The statvfs field types differ across platforms.
        #[allow(clippy::unnecessary_cast)]
        Ok(stat) => {
            let fragment = stat.fragment_size() as u64;
            (
                stat.blocks() as u64 * fragment,
                stat.blocks_available() as u64 * fragment,
            )
        }
        Err(_) => (0, 0),
    }
}

/// The address of the interface that routes outward (no packet is sent), else loopback.
fn detect_ip() -> IpAddr {
    UdpSocket::bind("0.0.0.0:0")
        .and_then(|socket| {
            socket.connect("192.0.2.1:9")?;
            socket.local_addr()
        })
        .map(|addr| addr.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// What the client knows of itself besides the host facts.
#[derive(Debug, Clone, Default)]
pub struct NodeIdentity {
    pub id: String,
    pub secret_id: String,
    pub name: String,
    pub datacenter: String,
    pub node_class: String,
    pub node_pool: String,
    pub http_addr: String,
    pub meta: BTreeMap<String, String>,
}

/// The node as registered, without its drivers (the fingerprint loop adds them).
pub fn fingerprint_node(identity: &NodeIdentity, facts: &HostFacts) -> Node {
    let mut attributes = BTreeMap::new();
    let mut set = |key: &str, value: String| {
        attributes.insert(key.to_owned(), value);
    };
    set("cpu.numcores", facts.cpu_cores.to_string());
    set("cpu.frequency", facts.cpu_mhz.to_string());
    set("cpu.totalcompute", facts.total_compute_mhz().to_string());
    set("cpu.arch", std::env::consts::ARCH.to_owned());
    if !facts.cpu_model.is_empty() {
        set("cpu.modelname", facts.cpu_model.clone());
    }
    set("memory.totalbytes", facts.memory_bytes.to_string());
    set("kernel.name", facts.kernel_name.clone());
    set("kernel.version", facts.kernel_version.clone());
    set("kernel.arch", std::env::consts::ARCH.to_owned());
    set("os.name", facts.os_name.clone());
    set("os.version", facts.os_version.clone());
    set("unique.hostname", facts.hostname.clone());
    set("unique.network.ip-address", facts.ip.to_string());
    set(
        "unique.storage.bytestotal",
        facts.disk_total_bytes.to_string(),
    );
    set(
        "unique.storage.bytesfree",
        facts.disk_free_bytes.to_string(),
    );
    set("nomad.version", "1.9.0".to_owned());
    set("caravan.version", env!("CARGO_PKG_VERSION").to_owned());
    Node {
        id: identity.id.as_str().into(),
        secret_id: identity.secret_id.clone(),
        datacenter: identity.datacenter.clone(),
        name: identity.name.clone(),
        http_addr: identity.http_addr.clone(),
        attributes,
        node_resources: NodeResources {
            cpu: NodeCpuResources {
                cpu_shares: i64::try_from(facts.total_compute_mhz()).unwrap_or(i64::MAX),
                total_cpu_cores: facts.cpu_cores,
                reservable_cpu_cores: (0..facts.cpu_cores).collect(),
            },
            memory: NodeMemoryResources {
                memory_mb: i64::try_from(facts.memory_bytes >> 20).unwrap_or(i64::MAX),
            },
            disk: NodeDiskResources {
                disk_mb: i64::try_from(facts.disk_free_bytes >> 20).unwrap_or(i64::MAX),
            },
            networks: vec![NetworkResource {
                mode: "host".to_owned(),
                ip: facts.ip.to_string(),
                cidr: match facts.ip {
                    IpAddr::V4(ip) => format!("{ip}/32"),
                    IpAddr::V6(ip) => format!("{ip}/128"),
                },
                ..NetworkResource::default()
            }],
            min_dynamic_port: NodeResources::DEFAULT_MIN_DYNAMIC_PORT,
            max_dynamic_port: NodeResources::DEFAULT_MAX_DYNAMIC_PORT,
            devices: Vec::new(),
        },
        meta: identity.meta.clone(),
        node_class: identity.node_class.clone(),
        node_pool: identity.node_pool.clone(),
        status: NodeStatus::Ready,
        ..Node::default()
    }
}

/// Replaces the `driver.*` attributes: `driver.<name> = "1"` for each healthy driver, plus the
/// `driver.*` attributes drivers report.
pub fn set_driver_attributes(
    attributes: &mut BTreeMap<String, String>,
    drivers: &BTreeMap<String, DriverInfo>,
) {
    attributes.retain(|key, _| !key.starts_with("driver."));
    for (name, info) in drivers {
        if info.detected && info.healthy {
            attributes.insert(format!("driver.{name}"), "1".to_owned());
        }
        for (key, value) in &info.attributes {
            if key.starts_with("driver.") {
                attributes.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Attributes kept of one driver's fingerprint.
pub const MAX_DRIVER_ATTRIBUTES: usize = 128;
/// Longest attribute key kept, in bytes.
pub const MAX_ATTRIBUTE_KEY_BYTES: usize = 128;
/// Longest attribute value kept, in bytes.
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 512;
/// Longest health description kept, in bytes.
pub const MAX_HEALTH_DESCRIPTION_BYTES: usize = 1024;

/// Every available driver's health: fingerprinted (bounded), disabled, or why it failed to load
/// or answer. All drivers are fingerprinted concurrently, each under its own deadline.
pub async fn fingerprint_drivers(host: &DriverHost) -> BTreeMap<String, DriverInfo> {
    let now = crate::client::task_runner::events::now_rfc3339();
    host.fingerprint_all()
        .await
        .into_iter()
        .map(|(name, fingerprint)| {
            let info = match fingerprint {
                Ok(fingerprint) => {
                    let (attributes, dropped) = bound_fingerprint(fingerprint.attributes);
                    let mut description = if fingerprint.description.is_empty() {
                        "Healthy".to_owned()
                    } else {
                        cut(fingerprint.description, MAX_HEALTH_DESCRIPTION_BYTES)
                    };
                    if dropped > 0 {
                        tracing::warn!(
                            driver = %name,
                            dropped,
                            kept = attributes.len(),
                            "driver fingerprint over its limits: attributes dropped"
                        );
                        description.push_str(&format!(
                            " ({dropped} fingerprint attributes dropped: over the limits of \
                             {MAX_DRIVER_ATTRIBUTES} attributes, keys of \
                             {MAX_ATTRIBUTE_KEY_BYTES} bytes, values of \
                             {MAX_ATTRIBUTE_VALUE_BYTES} bytes)"
                        ));
                    }
                    DriverInfo {
                        attributes,
                        detected: fingerprint.health != Health::Undetected,
                        healthy: fingerprint.health == Health::Healthy,
                        health_description: description,
                        update_time: now.clone(),
                    }
                }
                Err(DriverHostError::Disabled { .. }) => DriverInfo {
                    health_description: "disabled".to_owned(),
                    update_time: now.clone(),
                    ..DriverInfo::default()
                },
                Err(err) => DriverInfo {
                    health_description: cut(err.to_string(), MAX_HEALTH_DESCRIPTION_BYTES),
                    update_time: now.clone(),
                    ..DriverInfo::default()
                },
            };
            (name, info)
        })
        .collect()
}

/// Every enabled device plugin's device groups, plugin by plugin (Nomad:
/// `client/devicemanager`). A plugin that fails contributes none; its error is logged when it
/// first appears or changes (`last_errors`, by plugin), never every round. A group two plugins
/// report, and groups past [`NodeDeviceResource::MAX_GROUPS`], are left out with a warning.
pub async fn fingerprint_devices(
    host: &DriverHost,
    last_errors: &std::sync::Mutex<BTreeMap<String, String>>,
) -> Vec<NodeDeviceResource> {
    let fingerprints = host.fingerprint_devices().await;
    let mut errors = last_errors
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut devices: Vec<NodeDeviceResource> = Vec::new();
    for (plugin, result) in fingerprints {
        match result {
            Ok(groups) => {
                if errors.remove(&plugin).is_some() {
                    tracing::info!(plugin = %plugin, "device plugin fingerprints again");
                }
                for group in groups {
                    if devices.iter().any(|known| known.id() == group.id()) {
                        tracing::warn!(plugin = %plugin, group = %group.full_name(), "device group reported by two plugins; the second is left out");
                    } else if devices.len() == NodeDeviceResource::MAX_GROUPS {
                        tracing::warn!(plugin = %plugin, group = %group.full_name(), max = NodeDeviceResource::MAX_GROUPS, "too many device groups; left out");
                    } else {
                        devices.push(group);
                    }
                }
            }
            Err(err) => {
                let message = err.to_string();
                if errors.get(&plugin) != Some(&message) {
                    tracing::warn!(plugin = %plugin, error = %message, "device plugin fingerprint failed; its devices are left out");
                    errors.insert(plugin, message);
                }
            }
        }
    }
    devices
}

/// The attributes within the limits (the first [`MAX_DRIVER_ATTRIBUTES`] in key order of those
/// whose key and value fit), and how many were dropped.
pub fn bound_fingerprint(
    attributes: BTreeMap<String, String>,
) -> (BTreeMap<String, String>, usize) {
    let total = attributes.len();
    let kept: BTreeMap<String, String> = attributes
        .into_iter()
        .filter(|(key, value)| {
            !key.is_empty()
                && key.len() <= MAX_ATTRIBUTE_KEY_BYTES
                && value.len() <= MAX_ATTRIBUTE_VALUE_BYTES
        })
        .take(MAX_DRIVER_ATTRIBUTES)
        .collect();
    let dropped = total - kept.len();
    (kept, dropped)
}

/// `text` cut to at most `max` bytes at a character boundary.
fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\ncpu MHz\t\t: 2449.998\n\nprocessor\t: 1\ncpu MHz\t\t: 2000.0\n";
        assert_eq!(
            parse_cpuinfo(cpuinfo),
            (Some(2450), "AMD EPYC 7B13".to_owned())
        );
        assert_eq!(parse_cpuinfo("processor : 0\n"), (None, String::new()));
        assert_eq!(
            parse_meminfo_total("MemTotal:        8040088 kB\nMemFree: 1 kB\n"),
            Some(8040088 * 1024)
        );
        assert_eq!(
            parse_os_release("NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"24.04\"\n"),
            ("ubuntu".to_owned(), "24.04".to_owned())
        );
    }

    #[test]
    fn driver_fingerprints_are_bounded() {
        let mut attributes: BTreeMap<String, String> = (0..200_000)
            .map(|index| (format!("driver.noisy.attr{index:06}"), "x".repeat(10)))
            .collect();
        attributes.insert("driver.noisy.a-long-value".to_owned(), "v".repeat(513));
        attributes.insert(format!("driver.{}", "k".repeat(200)), "1".to_owned());
        let (kept, dropped) = bound_fingerprint(attributes);
        assert_eq!(kept.len(), MAX_DRIVER_ATTRIBUTES);
        assert_eq!(dropped, 200_002 - MAX_DRIVER_ATTRIBUTES);
        assert!(kept.keys().all(|key| key.starts_with("driver.noisy.attr")));
        let small = BTreeMap::from([("driver.ok".to_owned(), "1".to_owned())]);
        assert_eq!(bound_fingerprint(small.clone()), (small, 0));
        assert_eq!(cut("ü".repeat(10), 3), "ü");
    }

    #[test]
    fn gathers_this_machine() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let facts = HostFacts::gather(dir.path(), None);
        assert!(facts.cpu_cores >= 1);
        assert!(facts.cpu_mhz > 0);
        assert_eq!(
            facts.total_compute_mhz(),
            u64::from(facts.cpu_cores) * facts.cpu_mhz
        );
        assert!(facts.memory_bytes > 0);
        assert!(facts.disk_total_bytes > 0);
        assert_eq!(facts.kernel_name, "linux");
        Ok(())
    }
}
