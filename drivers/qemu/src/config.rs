//! The qemu driver's pure logic: the task's `config {}` block and the plugin config, validated,
//! and the qemu command line built from them (Nomad: drivers/qemu/driver.go `StartTask`).
//!
//! Nothing here calls the host, so all of it is unit-tested natively.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use caravan_driver_sdk::{DriverError, TaskConfig};
use serde::Deserialize;

/// The monitor socket `graceful_shutdown` adds, in the task directory (Nomad's name).
pub const MONITOR_SOCKET: &str = "qm.sock";
/// The guest agent socket `guest_agent` adds, in the task directory (Nomad's name).
pub const AGENT_SOCKET: &str = "qa.sock";
/// Longest absolute socket path qemu can bind (`sun_path` holds 108 bytes with its NUL).
pub const MAX_SOCKET_PATH: usize = 107;
/// Nomad's bounds for `resources.memory`, in MB.
pub const MIN_MEMORY_MB: u32 = 128;
pub const MAX_MEMORY_MB: u32 = 4_000_000;
/// The drive interfaces qemu's `-drive if=` knows (Nomad's list).
pub const DRIVE_INTERFACES: [&str; 8] = [
    "ide", "scsi", "sd", "mtd", "floppy", "pflash", "virtio", "none",
];

/// The task's `config { ... }` block (Nomad's `TaskConfig` of the qemu driver).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfigBlock {
    pub image_path: String,
    #[serde(default)]
    pub emulator: Option<String>,
    #[serde(default)]
    pub machine_type: Option<String>,
    #[serde(default)]
    pub accelerator: Option<String>,
    #[serde(default)]
    pub drive_interface: Option<String>,
    #[serde(default)]
    pub graceful_shutdown: bool,
    #[serde(default)]
    pub guest_agent: bool,
    #[serde(default)]
    pub args: Vec<String>,
    /// `port_map { http = 80 }`: a map, or (as HCL blocks arrive) a list of maps.
    #[serde(default)]
    pub port_map: Option<serde_json::Value>,
}

/// The operator's `plugin "qemu" { config { ... } }` (the keys the driver reads; the host's own,
/// such as `enabled` and `capabilities`, are ignored here).
#[derive(Debug, Default, Deserialize)]
pub struct PluginConfig {
    #[serde(default)]
    pub image_paths: Vec<String>,
    /// Empty: every argument is allowed (Nomad's default).
    #[serde(default)]
    pub args_allowlist: Vec<String>,
    /// Empty: every emulator found is allowed.
    #[serde(default)]
    pub emulators_allowlist: Vec<String>,
}

impl PluginConfig {
    pub fn parse(json: &str) -> Result<PluginConfig, String> {
        let text = if json.trim().is_empty() { "{}" } else { json };
        serde_json::from_str(text).map_err(|err| format!("plugin \"qemu\" config: {err}"))
    }

    /// Whether the emulator (without its `qemu-system-` prefix) may be used.
    pub fn emulator_allowed(&self, emulator: &str) -> bool {
        self.emulators_allowlist.is_empty()
            || self
                .emulators_allowlist
                .iter()
                .any(|allowed| trim_emulator(allowed) == emulator)
    }
}

/// `qemu-system-x86_64` and `x86_64` both name the emulator `x86_64`.
pub fn trim_emulator(name: &str) -> &str {
    name.strip_prefix("qemu-system-").unwrap_or(name)
}

/// Everything start-task needs, validated.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// `qemu-system-<emulator>`.
    pub program: String,
    pub args: Vec<String>,
    /// The image as qemu opens it (absolute, normalised).
    pub image: String,
    pub graceful_shutdown: bool,
    pub guest_agent: bool,
}

fn invalid(config: &TaskConfig, message: impl std::fmt::Display) -> DriverError {
    DriverError::InvalidConfig(format!("task {}: {message}", config.name))
}

/// qemu's option syntax: a comma inside a value is written twice.
fn escape_option(value: &str) -> String {
    value.replace(',', ",,")
}

/// `a/./b/../c` → `a/c` without touching the filesystem; `None` when `..` climbs above `/`.
fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(name) => out.push(name),
        }
    }
    Some(out)
}

fn simple_word(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The image as qemu will open it: a relative path is relative to the task directory; the
/// result must lie under the allocation directory or one of the plugin's `image_paths`.
pub fn image_path(
    config: &TaskConfig,
    plugin: &PluginConfig,
    image: &str,
) -> Result<String, DriverError> {
    if image.trim().is_empty() {
        return Err(invalid(config, "config.image_path must not be empty"));
    }
    let task_dir = Path::new(&config.task_dir);
    let joined = if Path::new(image).is_absolute() {
        PathBuf::from(image)
    } else {
        task_dir.join(image)
    };
    let resolved = normalise(&joined)
        .ok_or_else(|| invalid(config, format!("image_path {image:?} climbs above /")))?;
    let alloc_dir = task_dir.parent().and_then(normalise);
    let allowed = alloc_dir
        .iter()
        .cloned()
        .chain(
            plugin
                .image_paths
                .iter()
                .filter_map(|dir| normalise(Path::new(dir))),
        )
        .any(|dir| resolved.starts_with(&dir) && resolved != dir);
    if !allowed {
        return Err(invalid(
            config,
            format!(
                "image_path {image:?} ({}) is neither in the allocation directory nor under the \
                 plugin's image_paths {:?}",
                resolved.display(),
                plugin.image_paths
            ),
        ));
    }
    resolved
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid(config, "image_path is not valid UTF-8"))
}

/// Nomad's `args_allowlist`: with a list, each argument starting with `-` must be on it.
pub fn check_args(
    config: &TaskConfig,
    plugin: &PluginConfig,
    args: &[String],
) -> Result<(), DriverError> {
    if plugin.args_allowlist.is_empty() {
        return Ok(());
    }
    let normal = |arg: &str| format!("-{}", arg.trim_start_matches('-'));
    for arg in args.iter().filter(|arg| arg.starts_with('-')) {
        let listed = plugin
            .args_allowlist
            .iter()
            .any(|allowed| normal(allowed) == normal(arg));
        if !listed {
            return Err(invalid(
                config,
                format!(
                    "argument {arg:?} is not in the plugin's args_allowlist {:?}",
                    plugin.args_allowlist
                ),
            ));
        }
    }
    Ok(())
}

/// `port_map` as label → guest port.
fn port_map(
    config: &TaskConfig,
    value: Option<&serde_json::Value>,
) -> Result<BTreeMap<String, u16>, DriverError> {
    let mut map = BTreeMap::new();
    let objects: Vec<&serde_json::Map<String, serde_json::Value>> = match value {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Object(object)) => vec![object],
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_object()
                    .ok_or_else(|| invalid(config, format!("port_map: expected a map, got {item}")))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(invalid(
                config,
                format!("port_map: expected a map, got {other}"),
            ));
        }
    };
    for object in objects {
        for (label, port) in object {
            let port = port
                .as_u64()
                .and_then(|port| u16::try_from(port).ok())
                .filter(|port| *port != 0)
                .ok_or_else(|| {
                    invalid(
                        config,
                        format!("port_map.{label}: expected a port number, got {port}"),
                    )
                })?;
            map.insert(label.clone(), port);
        }
    }
    Ok(map)
}

/// The host forwards: `port_map` entries (label → guest port), else the group's ports that
/// have a `to`. Each binds the allocation's host IP for the port, never every interface.
fn forwards(config: &TaskConfig, block: &TaskConfigBlock) -> Result<Vec<String>, DriverError> {
    let map = port_map(config, block.port_map.as_ref())?;
    let mut pairs: Vec<(&caravan_driver_sdk::PortMapping, u16)> = Vec::new();
    if map.is_empty() {
        for port in config.ports.iter().filter(|port| port.to != 0) {
            pairs.push((port, port.to));
        }
    } else {
        for (label, guest) in &map {
            let port = config
                .ports
                .iter()
                .find(|port| &port.label == label)
                .ok_or_else(|| {
                    invalid(
                        config,
                        format!(
                            "port_map.{label}: the task's network has no port labelled {label:?}"
                        ),
                    )
                })?;
            pairs.push((port, *guest));
        }
    }
    let mut forwards = Vec::new();
    for (port, guest) in pairs {
        let ip = port.host_ip.trim();
        if ip.is_empty() || ip == "0.0.0.0" || ip == "::" {
            return Err(invalid(
                config,
                format!(
                    "port {:?} has no host address to bind ({ip:?}); qemu would listen on every interface",
                    port.label
                ),
            ));
        }
        if !ip
            .chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':'))
        {
            return Err(invalid(
                config,
                format!("port {:?}: odd host address {ip:?}", port.label),
            ));
        }
        for protocol in ["tcp", "udp"] {
            forwards.push(format!("hostfwd={protocol}:{ip}:{}-:{guest}", port.value));
        }
    }
    Ok(forwards)
}

/// Counts the CPUs of a cpuset such as `0-1,3` (the task's reserved cores).
pub fn count_cpuset(cpuset: &str) -> Option<u32> {
    let mut count = 0u32;
    for part in cpuset
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        match part.split_once('-') {
            Some((low, high)) => {
                let (low, high): (u32, u32) = (low.parse().ok()?, high.parse().ok()?);
                count += high.checked_sub(low)? + 1;
            }
            None => {
                part.parse::<u32>().ok()?;
                count += 1;
            }
        }
    }
    (count > 0).then_some(count)
}

/// Validates the task and builds qemu's command line, in Nomad's order.
pub fn plan(
    config: &TaskConfig,
    block: &TaskConfigBlock,
    plugin: &PluginConfig,
) -> Result<Plan, DriverError> {
    let emulator = trim_emulator(block.emulator.as_deref().unwrap_or("x86_64"));
    if !simple_word(emulator) {
        return Err(invalid(
            config,
            format!("emulator {emulator:?} is not an emulator name"),
        ));
    }
    if !plugin.emulator_allowed(emulator) {
        return Err(invalid(
            config,
            format!(
                "emulator {emulator:?} is not in the plugin's emulators_allowlist {:?}",
                plugin.emulators_allowlist
            ),
        ));
    }
    let machine = block.machine_type.as_deref().unwrap_or("pc");
    if !simple_word(machine) {
        return Err(invalid(
            config,
            format!("machine_type {machine:?} is not a machine name"),
        ));
    }
    let accelerator = block.accelerator.as_deref().unwrap_or("tcg");
    match accelerator {
        "tcg" => {}
        "kvm" => {
            return Err(invalid(
                config,
                "accelerator \"kvm\": this driver runs guests under tcg only; /dev/kvm alone does \
                 not prove KVM works on a node and no boot has proven it here",
            ));
        }
        other => {
            return Err(invalid(
                config,
                format!("accelerator {other:?}: expected \"tcg\" or \"kvm\""),
            ));
        }
    }
    let interface = block.drive_interface.as_deref().unwrap_or("ide");
    if !DRIVE_INTERFACES.contains(&interface) {
        return Err(invalid(
            config,
            format!("drive_interface {interface:?}: expected one of {DRIVE_INTERFACES:?}"),
        ));
    }
    let memory = config.resources.memory_mb;
    if !(MIN_MEMORY_MB..=MAX_MEMORY_MB).contains(&memory) {
        return Err(invalid(
            config,
            format!(
                "resources.memory {memory} MB is outside qemu's {MIN_MEMORY_MB}..{MAX_MEMORY_MB} MB"
            ),
        ));
    }
    check_args(config, plugin, &block.args)?;
    let image = image_path(config, plugin, &block.image_path)?;
    let vm_id = Path::new(&image)
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("vm")
        .to_owned();

    let mut args = vec![
        String::from("-machine"),
        format!("type={machine},accel={accelerator}"),
        String::from("-name"),
        escape_option(&vm_id),
        String::from("-m"),
        format!("{memory}M"),
        String::from("-drive"),
        format!("file={},if={interface},id=image0", escape_option(&image)),
        String::from("-nographic"),
    ];
    let socket = |name: &str| -> Result<String, DriverError> {
        let path = format!("{}/{name}", config.task_dir.trim_end_matches('/'));
        if path.len() > MAX_SOCKET_PATH {
            return Err(invalid(
                config,
                format!(
                    "socket path {path} is {} bytes, over the {MAX_SOCKET_PATH} a unix socket \
                     holds: try to reduce the task name or the agent's data_dir",
                    path.len()
                ),
            ));
        }
        Ok(escape_option(&path))
    };
    if block.graceful_shutdown {
        args.push(String::from("-monitor"));
        args.push(format!(
            "unix:{},server=on,wait=off",
            socket(MONITOR_SOCKET)?
        ));
    }
    if block.guest_agent {
        args.extend([
            String::from("-chardev"),
            format!(
                "socket,path={},server=on,wait=off,id=qga0",
                socket(AGENT_SOCKET)?
            ),
            String::from("-device"),
            String::from("virtio-serial"),
            String::from("-device"),
            String::from("virtserialport,chardev=qga0,name=org.qemu.guest_agent.0"),
        ]);
    }
    args.extend(block.args.iter().cloned());
    let forwards = forwards(config, block)?;
    if !forwards.is_empty() {
        args.push(String::from("-netdev"));
        args.push(format!("user,id=user.0,{}", forwards.join(",")));
        args.push(String::from("-device"));
        args.push(String::from("virtio-net,netdev=user.0"));
    }
    let cores = config
        .env
        .iter()
        .find(|(key, _)| key == "NOMAD_CPU_CORES")
        .and_then(|(_, cpuset)| count_cpuset(cpuset));
    if let Some(cores) = cores
        && !block.args.iter().any(|arg| arg == "-smp" || arg == "--smp")
    {
        args.push(String::from("-smp"));
        args.push(cores.to_string());
    }
    Ok(Plan {
        program: format!("qemu-system-{emulator}"),
        args,
        image,
        graceful_shutdown: block.graceful_shutdown,
        guest_agent: block.guest_agent,
    })
}

/// Nomad's version regex on `qemu-system-* --version`: `version (\d[\.\d+]+)`.
pub fn parse_version(output: &str) -> Option<String> {
    let rest = &output[output.find("version ")? + "version ".len()..];
    let version: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '+')
        .collect();
    (version.chars().next().is_some_and(|c| c.is_ascii_digit())).then_some(version)
}

#[cfg(test)]
mod tests;
