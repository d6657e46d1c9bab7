//! A namespace: the scope of jobs, allocations, evaluations, deployments, services and
//! variables, and of ACL rules (Nomad: `structs.Namespace`).
//!
//! Invariant: `default` always exists and cannot be deleted; the state answers it even before
//! anyone wrote it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A namespace as the API and the state hold it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Namespace {
    pub name: String,
    pub description: String,
    /// The quota it is limited by (caravan has no quotas: kept as written).
    pub quota: String,
    pub meta: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Namespace {
    /// The namespace every job lands in unless it names another.
    pub const DEFAULT: &'static str = "default";

    /// `default`, as the state answers it until an operator changes its description.
    pub fn default_namespace() -> Self {
        Self {
            name: Self::DEFAULT.to_owned(),
            description: "Default shared namespace".to_owned(),
            create_index: 1,
            modify_index: 1,
            ..Self::default()
        }
    }

    /// Nomad's rules (`Namespace.Validate`): a name of 1 to 128 letters, digits and dashes, a
    /// description of at most 256 bytes.
    pub fn validate(&self) -> Result<(), String> {
        let valid_name = !self.name.is_empty()
            && self.name.len() <= 128
            && self
                .name
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || character == '-');
        if !valid_name {
            return Err(format!(
                "invalid name {:?}. Must match regex ^[a-zA-Z0-9-]{{1,128}}$",
                self.name
            ));
        }
        if self.description.len() > 256 {
            return Err(format!(
                "description longer than 256 bytes ({})",
                self.description.len()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_nomads_rule() {
        for (name, valid) in [
            ("web", true),
            ("prod-web-2", true),
            ("", false),
            ("a b", false),
            ("../x", false),
            (&"n".repeat(129), false),
        ] {
            let namespace = Namespace {
                name: name.to_owned(),
                ..Namespace::default()
            };
            assert_eq!(namespace.validate().is_ok(), valid, "{name:?}");
        }
    }
}
