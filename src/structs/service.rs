//! `service` blocks: how a task or group is registered for discovery, with its checks.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::validation::ValidationErrors;
use super::{duration, nullable};

/// `check_restart` block: restart the task after this many consecutive failed checks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CheckRestart {
    pub limit: i32,
    #[serde(with = "duration::nanos")]
    pub grace: Duration,
    pub ignore_warnings: bool,
}

impl CheckRestart {
    fn validate(&self, path: &str, errors: &mut ValidationErrors) {
        // Nomad: `CheckRestart.Validate`.
        if self.limit < 0 {
            errors.push(
                &format!("{path}.Limit"),
                format!(
                    "limit must be greater than or equal to 0 but found {}",
                    self.limit
                ),
            );
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceCheck {
    pub name: String,
    /// "http", "tcp", "script" or "grpc".
    #[serde(rename = "Type")]
    pub check_type: String,
    pub command: String,
    #[serde(deserialize_with = "nullable::default")]
    pub args: Vec<String>,
    pub path: String,
    pub protocol: String,
    pub port_label: String,
    pub address_mode: String,
    #[serde(with = "duration::nanos")]
    pub interval: Duration,
    #[serde(with = "duration::nanos")]
    pub timeout: Duration,
    pub method: String,
    #[serde(deserialize_with = "nullable::default")]
    pub header: BTreeMap<String, Vec<String>>,
    pub initial_status: String,
    pub task_name: String,
    pub check_restart: Option<CheckRestart>,
    pub expose: bool,
    pub advertise: String,
    pub notes: String,
    #[serde(rename = "TLSServerName")]
    pub tls_server_name: String,
    #[serde(rename = "TLSSkipVerify")]
    pub tls_skip_verify: bool,
    #[serde(rename = "GRPCService")]
    pub grpc_service: String,
    #[serde(rename = "GRPCUseTLS")]
    pub grpc_use_tls: bool,
    pub success_before_passing: i32,
    pub failures_before_critical: i32,
    pub failures_before_warning: i32,
    pub body: String,
    pub on_update: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Service {
    pub name: String,
    #[serde(deserialize_with = "nullable::default")]
    pub tags: Vec<String>,
    #[serde(deserialize_with = "nullable::default")]
    pub canary_tags: Vec<String>,
    pub port_label: String,
    pub address_mode: String,
    pub address: String,
    /// "nomad" (the servers' own catalog) or "consul".
    pub provider: String,
    #[serde(deserialize_with = "nullable::default")]
    pub checks: Vec<ServiceCheck>,
    pub task_name: String,
    #[serde(deserialize_with = "nullable::default")]
    pub meta: BTreeMap<String, String>,
    pub on_update: String,
    /// The default `check_restart` of the service's checks.
    pub check_restart: Option<CheckRestart>,
    pub enable_tag_override: bool,
    #[serde(deserialize_with = "nullable::default")]
    pub canary_meta: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable::default")]
    pub tagged_addresses: BTreeMap<String, String>,
    /// Consul service mesh: refused at registration.
    pub connect: Option<super::ConsulConnect>,
    pub identity: Option<super::WorkloadIdentity>,
    pub weights: Option<super::ServiceWeights>,
    /// The Consul cluster of a `provider = "consul"` service.
    pub cluster: String,
    /// Consul's service kind (e.g. a gateway's); empty for a plain service.
    pub kind: String,
}

impl Service {
    /// Applies defaults. caravan defaults `provider` to "nomad" (the servers' own service catalog)
    /// where Nomad defaults to "consul": caravan ships no Consul integration.
    pub fn canonicalize(&mut self) {
        if self.address_mode.is_empty() {
            self.address_mode = "auto".to_owned();
        }
        if self.provider.is_empty() {
            self.provider = "nomad".to_owned();
        }
        if self.on_update.is_empty() {
            self.on_update = "require_healthy".to_owned();
        }
        for check in &mut self.checks {
            if check.timeout.is_zero() {
                check.timeout = Duration::from_secs(2);
            }
            if check.interval.is_zero() {
                check.interval = Duration::from_secs(10);
            }
            if check.check_type == "http" && check.method.is_empty() {
                check.method = "GET".to_owned();
            }
        }
    }

    pub(crate) fn validate(
        &self,
        path: &str,
        port_labels: &BTreeMap<String, ()>,
        errors: &mut ValidationErrors,
    ) {
        if self.name.is_empty() {
            errors.push(path, "service name must not be empty");
        } else if !self.name.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || c == '-'
                || c == '$'
                || c == '{'
                || c == '}'
                || c == '.'
                || c == '_'
        }) {
            errors.push(
                &format!("{path}.Name"),
                format!(
                    "service name {:?} must be alphanumeric with dashes (RFC 1123)",
                    self.name
                ),
            );
        }
        if !matches!(self.provider.as_str(), "" | "nomad" | "consul") {
            errors.push(
                &format!("{path}.Provider"),
                format!("unknown service provider {:?}", self.provider),
            );
        }
        let port_is_number = self.port_label.parse::<u16>().is_ok();
        if !self.port_label.is_empty()
            && !port_is_number
            && !self.port_label.contains("${")
            && !port_labels.contains_key(&self.port_label)
        {
            errors.push(
                &format!("{path}.PortLabel"),
                format!(
                    "port label {:?} is not defined in the group's network",
                    self.port_label
                ),
            );
        }
        for check in &self.checks {
            let check_path = format!("{path}.Checks[{}]", check.name);
            if !matches!(
                check.check_type.as_str(),
                "http" | "tcp" | "script" | "grpc"
            ) {
                errors.push(
                    &format!("{check_path}.Type"),
                    format!("invalid check type {:?}", check.check_type),
                );
            }
            if check.check_type == "http" && check.path.is_empty() {
                errors.push(&format!("{check_path}.Path"), "http checks need a path");
            }
            if check.check_type == "script" && check.command.is_empty() {
                errors.push(
                    &format!("{check_path}.Command"),
                    "script checks need a command",
                );
            }
            if let Some(check_restart) = &check.check_restart {
                check_restart.validate(&format!("{check_path}.CheckRestart"), errors);
            }
            // Nomad: `ServiceCheck.validateCommon`.
            for (field, name, value) in [
                (
                    "SuccessBeforePassing",
                    "success_before_passing",
                    check.success_before_passing,
                ),
                (
                    "FailuresBeforeCritical",
                    "failures_before_critical",
                    check.failures_before_critical,
                ),
                (
                    "FailuresBeforeWarning",
                    "failures_before_warning",
                    check.failures_before_warning,
                ),
            ] {
                if value < 0 {
                    errors.push(
                        &format!("{check_path}.{field}"),
                        format!("{name} must be non-negative"),
                    );
                }
            }
        }
        if let Some(check_restart) = &self.check_restart {
            check_restart.validate(&format!("{path}.CheckRestart"), errors);
        }
    }
}
