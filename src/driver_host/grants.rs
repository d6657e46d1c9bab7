//! Capability grants: which host interfaces a driver's instances are linked with.
//!
//! Invariant: a capability not granted is not linked. A driver whose component imports it fails
//! to load with [`Error::NotGranted`](crate::driver_host::Error::NotGranted) naming the driver and
//! the capability, before any of its code runs.
//!
//! Defaults per built-in driver (Nomad's raw_exec is off unless enabled, so is ours):
//!
//! | driver     | enabled | capabilities                  |
//! |------------|---------|-------------------------------|
//! | raw_exec   | no      | log, config, process, fs      |
//! | wasm       | yes     | log, config, wasm, fs         |
//! | docker     | yes     | log, config, docker, fs       |
//! | qemu       | yes     | log, config, process, socket  |
//! | exec       | yes     | log, config, isolated         |
//! | any other  | yes     | log, config                   |
//!
//! The agent config overrides them: `plugin "NAME" { config { enabled = true, capabilities =
//! ["process", "fs"] } }` (`log` and `config` are always granted: the driver's own log lines and
//! its own plugin config block). The whole `config` block also goes to the
//! driver's `fingerprint` as JSON.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::driver_host::error::{Error, Result};

/// A host capability a driver may import (one WIT interface each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Log,
    Process,
    Fs,
    Wasm,
    Docker,
    /// `host-config`: the driver's own plugin config (always granted).
    Config,
    /// `host-socket`: one request over a unix socket in the task directory.
    Socket,
    /// `host-isolated`: processes in namespaces, a chroot and a cgroup (the exec driver).
    Isolated,
}

impl Capability {
    pub const ALL: [Capability; 8] = [
        Capability::Log,
        Capability::Process,
        Capability::Fs,
        Capability::Wasm,
        Capability::Docker,
        Capability::Config,
        Capability::Socket,
        Capability::Isolated,
    ];

    /// Granted to every driver whatever the agent config says.
    pub const ALWAYS: [Capability; 2] = [Capability::Log, Capability::Config];

    /// The name used in the agent config (`"process"`).
    pub fn config_name(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Process => "process",
            Capability::Fs => "fs",
            Capability::Wasm => "wasm",
            Capability::Docker => "docker",
            Capability::Config => "config",
            Capability::Socket => "socket",
            Capability::Isolated => "isolated",
        }
    }

    /// The WIT interface (`host-process`).
    pub fn interface(self) -> &'static str {
        match self {
            Capability::Log => "host-log",
            Capability::Process => "host-process",
            Capability::Fs => "host-fs",
            Capability::Wasm => "host-wasm",
            Capability::Docker => "host-docker",
            Capability::Config => "host-config",
            Capability::Socket => "host-socket",
            Capability::Isolated => "host-isolated",
        }
    }

    pub fn from_config_name(name: &str) -> Option<Capability> {
        Capability::ALL
            .into_iter()
            .find(|capability| capability.config_name() == name)
    }

    /// The capability behind a component import such as `caravan:driver/host-process@0.2.0`.
    pub fn from_import(import: &str) -> Option<Capability> {
        let interface = import.strip_prefix("caravan:driver/")?;
        let interface = interface.split('@').next()?;
        Capability::ALL
            .into_iter()
            .find(|capability| capability.interface() == interface)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.config_name())
    }
}

/// What the operator allows a driver, resolved from defaults and the agent config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginGrants {
    pub enabled: bool,
    pub capabilities: BTreeSet<Capability>,
    /// The `config` block as JSON text, passed to the driver's `fingerprint`.
    pub config_json: String,
}

/// The defaults for a driver name.
pub fn default_grants(driver: &str) -> (bool, BTreeSet<Capability>) {
    use Capability::*;
    let (enabled, capabilities): (bool, &[Capability]) = match driver {
        "raw_exec" => (false, &[Process, Fs]),
        "wasm" => (true, &[Wasm, Fs]),
        "docker" => (true, &[Docker, Fs]),
        "qemu" => (true, &[Process, Socket]),
        "exec" => (true, &[Isolated]),
        _ => (true, &[]),
    };
    let capabilities = Capability::ALWAYS.iter().chain(capabilities).copied();
    (enabled, capabilities.collect())
}

/// Resolves a driver's grants from its defaults and the agent's `plugin "NAME" { config {...} }`
/// (`None` when the agent config has no such block).
pub fn resolve_grants(
    driver: &str,
    plugin_config: Option<&serde_json::Value>,
) -> Result<PluginGrants> {
    let (mut enabled, mut capabilities) = default_grants(driver);
    let invalid = |reason: String| Error::PluginConfig {
        driver: driver.to_owned(),
        reason,
    };
    let Some(config) = plugin_config else {
        return Ok(PluginGrants {
            enabled,
            capabilities,
            config_json: String::from("{}"),
        });
    };
    let object = config
        .as_object()
        .ok_or_else(|| invalid(format!("expected an object, got {config}")))?;
    if let Some(value) = object.get("enabled") {
        enabled = value
            .as_bool()
            .ok_or_else(|| invalid(format!("enabled: expected a bool, got {value}")))?;
    }
    if let Some(value) = object.get("capabilities") {
        let names = value
            .as_array()
            .ok_or_else(|| invalid(format!("capabilities: expected a list, got {value}")))?;
        capabilities = BTreeSet::from(Capability::ALWAYS);
        for name in names {
            let capability = name
                .as_str()
                .and_then(Capability::from_config_name)
                .ok_or_else(|| invalid(format!("capabilities: unknown capability {name}; known: log, config, process, fs, wasm, docker, socket, isolated")))?;
            capabilities.insert(capability);
        }
    }
    Ok(PluginGrants {
        enabled,
        capabilities,
        config_json: config.to_string(),
    })
}

/// Checks a component's imports against its grants: the first ungranted capability or unknown
/// import is the error.
pub fn check_imports<'a>(
    driver: &str,
    imports: impl IntoIterator<Item = &'a str>,
    granted: &BTreeSet<Capability>,
) -> Result<()> {
    for import in imports {
        if import.starts_with("caravan:driver/types@") {
            continue;
        }
        match Capability::from_import(import) {
            Some(capability) if granted.contains(&capability) => {}
            Some(capability) => {
                return Err(Error::NotGranted {
                    driver: driver.to_owned(),
                    capability,
                });
            }
            None => {
                return Err(Error::UnknownImport {
                    driver: driver.to_owned(),
                    import: import.to_owned(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn raw_exec_is_disabled_by_default_and_enabled_by_config() {
        let grants = resolve_grants("raw_exec", None).expect("defaults");
        assert!(!grants.enabled);
        let grants = resolve_grants("raw_exec", Some(&json!({"enabled": true}))).expect("valid");
        assert!(grants.enabled);
        assert_eq!(
            grants.capabilities,
            BTreeSet::from([
                Capability::Log,
                Capability::Config,
                Capability::Process,
                Capability::Fs
            ])
        );
        assert_eq!(grants.config_json, r#"{"enabled":true}"#);
    }

    #[test]
    fn user_drivers_get_only_log_unless_granted() {
        let grants = resolve_grants("java", None).expect("defaults");
        assert!(grants.enabled);
        assert_eq!(grants.capabilities, BTreeSet::from(Capability::ALWAYS));
        let grants =
            resolve_grants("java", Some(&json!({"capabilities": ["process"]}))).expect("valid");
        assert_eq!(
            grants.capabilities,
            BTreeSet::from([Capability::Log, Capability::Config, Capability::Process])
        );
    }

    #[test]
    fn qemu_gets_process_and_socket_and_nothing_else() {
        let grants = resolve_grants("qemu", None).expect("defaults");
        assert!(grants.enabled);
        assert_eq!(
            grants.capabilities,
            BTreeSet::from([
                Capability::Log,
                Capability::Config,
                Capability::Process,
                Capability::Socket
            ])
        );
        // Withdrawn by the operator: the socket capability is no longer linked.
        let grants =
            resolve_grants("qemu", Some(&json!({"capabilities": ["process"]}))).expect("valid");
        assert!(!grants.capabilities.contains(&Capability::Socket));
        let err = check_imports(
            "qemu",
            ["caravan:driver/host-socket@0.2.1"],
            &grants.capabilities,
        )
        .expect_err("ungranted");
        assert!(
            err.to_string()
                .contains("driver \"qemu\" imports capability socket"),
            "{err}"
        );
    }

    #[test]
    fn exec_gets_isolated_and_no_process() {
        let grants = resolve_grants("exec", None).expect("defaults");
        assert!(grants.enabled);
        assert_eq!(
            grants.capabilities,
            BTreeSet::from([Capability::Log, Capability::Config, Capability::Isolated])
        );
        assert_eq!(
            Capability::from_import("caravan:driver/host-isolated@0.2.1"),
            Some(Capability::Isolated)
        );
        // Nobody else gets it by default.
        for driver in ["raw_exec", "qemu", "docker", "wasm", "custom"] {
            let grants = resolve_grants(driver, None).expect("defaults");
            assert!(
                !grants.capabilities.contains(&Capability::Isolated),
                "{driver}"
            );
        }
    }

    #[test]
    fn capabilities_replace_the_defaults() {
        let grants =
            resolve_grants("wasm", Some(&json!({"capabilities": ["wasm"]}))).expect("valid");
        assert_eq!(
            grants.capabilities,
            BTreeSet::from([Capability::Log, Capability::Config, Capability::Wasm])
        );
    }

    #[test]
    fn malformed_plugin_config_names_the_key() {
        let err =
            resolve_grants("java", Some(&json!({"capabilities": ["gpu"]}))).expect_err("unknown");
        assert!(
            err.to_string().contains("unknown capability \"gpu\""),
            "{err}"
        );
        let err =
            resolve_grants("raw_exec", Some(&json!({"enabled": "yes"}))).expect_err("not a bool");
        assert!(
            err.to_string().contains("enabled: expected a bool"),
            "{err}"
        );
    }

    #[test]
    fn imports_are_checked_against_grants() {
        let granted = BTreeSet::from([Capability::Log, Capability::Process]);
        let ok = [
            "caravan:driver/types@0.1.0",
            "caravan:driver/host-log@0.1.0",
            "caravan:driver/host-process@0.1.0",
        ];
        check_imports("raw_exec", ok, &granted).expect("granted");
        let err = check_imports("x", ["caravan:driver/host-docker@0.1.0"], &granted)
            .expect_err("ungranted");
        assert!(matches!(
            err,
            Error::NotGranted {
                capability: Capability::Docker,
                ..
            }
        ));
        assert!(
            err.to_string()
                .contains("driver \"x\" imports capability docker"),
            "{err}"
        );
        let err =
            check_imports("x", ["wasi:cli/environment@0.2.0"], &granted).expect_err("unknown");
        assert!(matches!(err, Error::UnknownImport { .. }));
    }
}
