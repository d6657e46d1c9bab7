//! Native service discovery: one running allocation's instance of a `service` block, as the
//! servers' catalog stores it (`provider = "nomad"`).
//!
//! Nomad: `nomad/structs/service_registration.go` (`ServiceRegistration`,
//! `ServiceRegistrationListStub`), the same JSON names. caravan adds `Checks`, the status of the
//! instance's checks as its client last reported them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::nullable;
use super::{AllocId, JobId, NodeId};

/// One check's status (Nomad: `structs.CheckStatus` of Nomad-native checks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Not decided yet (no result, or not enough successes for `success_before_passing`).
    #[default]
    Pending,
    Success,
    Failure,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

impl std::fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One allocation's instance of a service in the catalog.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceRegistration {
    /// `_nomad-task-<alloc>-<task or group-NAME>-<service>-<port label>` (Nomad's form).
    #[serde(rename = "ID")]
    pub id: String,
    pub service_name: String,
    pub namespace: String,
    #[serde(rename = "NodeID")]
    pub node_id: NodeId,
    pub datacenter: String,
    #[serde(rename = "JobID")]
    pub job_id: JobId,
    #[serde(rename = "AllocID")]
    pub alloc_id: AllocId,
    #[serde(deserialize_with = "nullable::default")]
    pub tags: Vec<String>,
    pub address: String,
    pub port: i32,
    /// caravan: each check's name and status, as the client last reported them.
    #[serde(deserialize_with = "nullable::default")]
    pub checks: BTreeMap<String, CheckStatus>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl ServiceRegistration {
    /// Nomad's registration ID (`MakeAllocServiceID`): a group service's `owner` is
    /// `group-<name>`, a task service's the task's name.
    pub fn make_id(alloc_id: &AllocId, owner: &str, service: &str, port_label: &str) -> String {
        format!("_nomad-task-{alloc_id}-{owner}-{service}-{port_label}")
    }

    /// The status of the instance as a whole: failure if any check fails, pending if any is
    /// pending, else success (also with no checks).
    pub fn checks_status(&self) -> CheckStatus {
        self.checks
            .values()
            .copied()
            .max_by_key(|status| match status {
                CheckStatus::Success => 0,
                CheckStatus::Pending => 1,
                CheckStatus::Failure => 2,
            })
            .unwrap_or(CheckStatus::Success)
    }

    /// The registration without its Raft indexes, to compare what a client sends with what is
    /// stored.
    pub fn same_as(&self, other: &ServiceRegistration) -> bool {
        let strip = |registration: &ServiceRegistration| ServiceRegistration {
            create_index: 0,
            modify_index: 0,
            ..registration.clone()
        };
        strip(self) == strip(other)
    }
}

/// `GET /v1/services`: the services of one namespace (Nomad: `ServiceRegistrationListStub`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceRegistrationListStub {
    pub namespace: String,
    #[serde(deserialize_with = "nullable::default")]
    pub services: Vec<ServiceRegistrationStub>,
}

/// One service of [`ServiceRegistrationListStub`]: its name and the union of its instances' tags.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceRegistrationStub {
    pub service_name: String,
    #[serde(deserialize_with = "nullable::default")]
    pub tags: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instance_status_is_its_worst_check() {
        let mut registration = ServiceRegistration::default();
        assert_eq!(registration.checks_status(), CheckStatus::Success);
        registration
            .checks
            .insert("a".to_owned(), CheckStatus::Success);
        registration
            .checks
            .insert("b".to_owned(), CheckStatus::Pending);
        assert_eq!(registration.checks_status(), CheckStatus::Pending);
        registration
            .checks
            .insert("c".to_owned(), CheckStatus::Failure);
        assert_eq!(registration.checks_status(), CheckStatus::Failure);
    }

    #[test]
    fn ids_and_json_are_nomads() {
        let id = ServiceRegistration::make_id(&AllocId::from("a1"), "group-web", "api", "http");
        assert_eq!(id, "_nomad-task-a1-group-web-api-http");
        let json = serde_json::to_value(ServiceRegistration {
            id,
            ..ServiceRegistration::default()
        })
        .expect("serialises");
        for key in ["ID", "ServiceName", "NodeID", "JobID", "AllocID", "Port"] {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
    }
}
