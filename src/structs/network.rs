//! Group networks and their ports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::nullable;
use super::validation::ValidationErrors;

/// A port: `static` ports are reserved as given, dynamic ones are chosen by the scheduler.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Port {
    pub label: String,
    /// The host port: given for static ports, chosen by the scheduler for dynamic ones.
    pub value: i32,
    /// The port inside the task's network namespace or container; 0 means the same as `value`,
    /// -1 means the same as the host port in bridge mode.
    pub to: i32,
    pub host_network: String,
    pub ignore_collision: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkResource {
    /// "host", "bridge", "none" or "cni/<name>".
    pub mode: String,
    pub device: String,
    #[serde(rename = "CIDR")]
    pub cidr: String,
    #[serde(rename = "IP")]
    pub ip: String,
    pub hostname: String,
    #[serde(rename = "MBits")]
    pub mbits: i32,
    #[serde(deserialize_with = "nullable::default")]
    pub reserved_ports: Vec<Port>,
    #[serde(deserialize_with = "nullable::default")]
    pub dynamic_ports: Vec<Port>,
    #[serde(rename = "DNS")]
    pub dns: Option<super::DnsConfig>,
    #[serde(rename = "CNI")]
    pub cni: Option<super::CniConfig>,
}

impl NetworkResource {
    pub const MIN_PORT: i32 = 1;
    pub const MAX_PORT: i32 = 65535;

    pub fn canonicalize(&mut self) {
        if self.mode.is_empty() {
            self.mode = "host".to_owned();
        }
        for port in self
            .reserved_ports
            .iter_mut()
            .chain(self.dynamic_ports.iter_mut())
        {
            if port.host_network.is_empty() {
                port.host_network = "default".to_owned();
            }
        }
    }

    /// All ports, static first, in declaration order within each kind.
    pub fn ports(&self) -> impl Iterator<Item = &Port> {
        self.reserved_ports.iter().chain(self.dynamic_ports.iter())
    }

    pub(crate) fn validate(
        &self,
        path: &str,
        port_labels: &mut BTreeMap<String, ()>,
        errors: &mut ValidationErrors,
    ) {
        if !(matches!(self.mode.as_str(), "" | "host" | "bridge" | "none")
            || self.mode.starts_with("cni/"))
        {
            errors.push(
                &format!("{path}.Mode"),
                format!(
                    "invalid network mode {:?}: expected \"host\", \"bridge\", \"none\" or \"cni/<name>\"",
                    self.mode
                ),
            );
        }
        if self.mbits < 0 {
            errors.push(
                &format!("{path}.MBits"),
                format!("mbits can't be negative, got {}", self.mbits),
            );
        }
        let mut static_values = BTreeMap::new();
        for port in self.ports() {
            let port_path = format!("{path}.Ports[{}]", port.label);
            if port.label.is_empty() {
                errors.push(&port_path, "port label must not be empty");
            } else if port_labels.insert(port.label.clone(), ()).is_some() {
                errors.push(
                    &port_path,
                    format!("port label {:?} is used twice", port.label),
                );
            }
            if port.to < -1 || port.to > Self::MAX_PORT {
                errors.push(
                    &format!("{port_path}.To"),
                    format!("port mapping {} out of range -1..=65535", port.to),
                );
            }
        }
        for port in &self.dynamic_ports {
            // The scheduler picks a dynamic port's value; a submitted one must still be a port.
            if !(0..=Self::MAX_PORT).contains(&port.value) {
                errors.push(
                    &format!("{path}.Ports[{}].Value", port.label),
                    format!("dynamic port value {} out of range 0..=65535", port.value),
                );
            }
        }
        for port in &self.reserved_ports {
            let port_path = format!("{path}.Ports[{}]", port.label);
            if !(Self::MIN_PORT..=Self::MAX_PORT).contains(&port.value) {
                errors.push(
                    &format!("{port_path}.Static"),
                    format!("static port {} out of range 1..=65535", port.value),
                );
            } else if let Some(other) = static_values.insert(port.value, port.label.clone()) {
                errors.push(
                    &format!("{port_path}.Static"),
                    format!(
                        "static port {} is already reserved by port {:?}",
                        port.value, other
                    ),
                );
            }
        }
    }
}
