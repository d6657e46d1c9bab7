//! Variables: encrypted key-value items at a path in a namespace (Nomad: `structs.Variable*`,
//! `structs.RootKeyMeta`).
//!
//! [`Variable`] is what the API reads and writes, its `Items` in plain text;
//! [`VariableEncrypted`] is what the servers' state, Raft log and snapshots hold: the same
//! metadata and the items sealed with a root key, named by `KeyID` (the key itself never enters
//! the state: see `server::keyring`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Nomad's limit on a variable's items, all together.
pub const MAX_VARIABLE_BYTES: usize = 64 * 1024;

/// A variable's metadata: what lists answer (`GET /v1/vars`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VariableMetadata {
    pub namespace: String,
    pub path: String,
    pub create_index: u64,
    pub modify_index: u64,
    /// Unix nanoseconds.
    pub create_time: i64,
    /// Unix nanoseconds.
    pub modify_time: i64,
}

/// A variable with its items in plain text: the API's `Variable`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Variable {
    pub namespace: String,
    pub path: String,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
    pub items: BTreeMap<String, String>,
}

impl Variable {
    /// Nomad's rules (`VariableDecrypted.Validate`): items present and at most 64 KiB, a valid
    /// path, a namespace that is not the `*` wildcard.
    pub fn validate(&self) -> Result<(), String> {
        if self.namespace == "*" {
            return Err("can not target wildcard (\"*\")namespace".to_owned());
        }
        if self.items.is_empty() {
            return Err("empty variables are invalid".to_owned());
        }
        let size: usize = self
            .items
            .iter()
            .map(|(key, value)| key.len() + value.len())
            .sum();
        if size > MAX_VARIABLE_BYTES {
            return Err("variables are limited to 64KiB in total size".to_owned());
        }
        check_variable_path(&self.path)
    }

    pub fn metadata(&self) -> VariableMetadata {
        VariableMetadata {
            namespace: self.namespace.clone(),
            path: self.path.clone(),
            create_index: self.create_index,
            modify_index: self.modify_index,
            create_time: self.create_time,
            modify_time: self.modify_time,
        }
    }
}

/// A variable as the servers store it: metadata, and the items sealed with root key `key_id`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VariableEncrypted {
    #[serde(flatten)]
    pub meta: VariableMetadata,
    #[serde(rename = "KeyID")]
    pub key_id: String,
    /// Nonce and ciphertext (AES-256-GCM) of the items' JSON.
    pub data: Vec<u8>,
}

/// A root key as the state knows it: its ID, algorithm, when it was made and whether new
/// variables are sealed with it, never the key (Nomad: `structs.RootKeyMeta`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RootKeyMeta {
    #[serde(rename = "KeyID")]
    pub key_id: String,
    pub algorithm: String,
    /// Unix nanoseconds.
    pub create_time: i64,
    pub create_index: u64,
    pub modify_index: u64,
    /// [`ROOT_KEY_ACTIVE`] for the one key new variables are sealed with,
    /// [`ROOT_KEY_INACTIVE`] for older keys, still used to open what they sealed.
    pub state: String,
}

/// The state of the key new variables are sealed with.
pub const ROOT_KEY_ACTIVE: &str = "active";
/// The state of a key rotated out: it only opens what it sealed.
pub const ROOT_KEY_INACTIVE: &str = "inactive";

/// Checks a variable path as Nomad does (`validatePath`): 1 to 128 of `a-zA-Z0-9-_~/`, and under
/// the reserved `nomad/` only `nomad/jobs` and below.
pub fn check_variable_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("variable requires path".to_owned());
    }
    let valid = path.len() <= 128
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '~' | '/'));
    if !valid {
        return Err(format!("invalid path {path:?}"));
    }
    let mut parts = path.split('/');
    if parts.next() != Some("nomad") {
        return Ok(());
    }
    match parts.next() {
        None => Err(
            "\"nomad\" is a reserved top-level directory path, but you may write variables to \
             \"nomad/jobs\" or below"
                .to_owned(),
        ),
        Some("jobs") => Ok(()),
        Some(_) => Err(
            "only paths at \"nomad/jobs\" and below are valid paths under the top-level \
             \"nomad\" directory"
                .to_owned(),
        ),
    }
}

/// The paths a task may read without any ACL policy (Nomad's workload identity implicit
/// policy): `nomad/jobs`, `nomad/jobs/<job>`, `nomad/jobs/<job>/<group>` and
/// `nomad/jobs/<job>/<group>/<task>`, in its own namespace.
pub fn workload_variable_paths(job_id: &str, group: &str, task: &str) -> [String; 4] {
    [
        "nomad/jobs".to_owned(),
        format!("nomad/jobs/{job_id}"),
        format!("nomad/jobs/{job_id}/{group}"),
        format!("nomad/jobs/{job_id}/{group}/{task}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_nomads_rules() {
        for (path, valid) in [
            ("app/db", true),
            ("nomad/jobs", true),
            ("nomad/jobs/web/group/task", true),
            ("nomad", false),
            ("nomad/other", false),
            ("", false),
            ("with space", false),
            ("dots.not.allowed", false),
        ] {
            assert_eq!(check_variable_path(path).is_ok(), valid, "{path:?}");
        }
    }

    #[test]
    fn a_variable_needs_items_and_a_namespace() {
        let mut variable = Variable {
            namespace: "default".to_owned(),
            path: "app".to_owned(),
            ..Variable::default()
        };
        assert!(variable.validate().is_err(), "no items");
        variable.items.insert("k".to_owned(), "v".to_owned());
        assert_eq!(variable.validate(), Ok(()));
        variable.namespace = "*".to_owned();
        assert!(variable.validate().is_err());
    }
}
