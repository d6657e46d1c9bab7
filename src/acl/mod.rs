//! Access control: Nomad's policy language ([`policy`]) and the [`Acl`] a token's policies
//! compile into, which answers every "may this caller ..." question of the API.
//!
//! Policies merge as Nomad's do (`acl/acl.go` `NewACL`): a namespace's capabilities are the
//! union of every policy's rules for it, and `deny` in any of them denies everything there; a
//! coarse rule (`node`, `agent`, ...) takes the greatest grant, `deny` winning. A namespace
//! without an exact rule takes the closest glob that matches it (the one that leaves the fewest
//! characters to its `*`s).
//!
//! Invariant: pure, no I/O; the API resolves tokens and asks an `Acl`.

pub mod policy;

use std::collections::{BTreeMap, BTreeSet};

pub use policy::{Level, Policy, PolicyError};

/// Nomad's answer to a caller its token does not allow (`structs.ErrPermissionDenied`).
pub const PERMISSION_DENIED: &str = "Permission denied";

/// The SHA-256 of a token's secret, hex: how tokens are looked up by secret without the secret
/// itself being a key (servers' state and clients' caches alike).
pub fn secret_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// What a token may do: management (everything), or its policies merged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acl {
    management: bool,
    namespaces: BTreeMap<String, BTreeSet<String>>,
    /// Per namespace (or glob), per variable path glob, the capabilities granted.
    variables: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    node: Level,
    agent: Level,
    operator: Level,
    quota: Level,
    plugin: Level,
}

impl Acl {
    /// A management token's: everything allowed.
    pub fn management() -> Self {
        Self {
            management: true,
            ..Self::default()
        }
    }

    /// Nothing allowed (an anonymous caller with no anonymous policy).
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// `policies` merged.
    pub fn from_policies<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Self {
        let mut acl = Self::default();
        for policy in policies {
            for rule in &policy.namespaces {
                acl.namespaces
                    .entry(rule.name.clone())
                    .or_default()
                    .extend(rule.capabilities.iter().cloned());
                let paths = acl.variables.entry(rule.name.clone()).or_default();
                for (glob, capabilities) in &rule.variables {
                    paths
                        .entry(glob.clone())
                        .or_default()
                        .extend(capabilities.iter().cloned());
                }
            }
            acl.node = acl.node.merge(policy.node);
            acl.agent = acl.agent.merge(policy.agent);
            acl.operator = acl.operator.merge(policy.operator);
            acl.quota = acl.quota.merge(policy.quota);
            acl.plugin = acl.plugin.merge(policy.plugin);
        }
        acl
    }

    pub fn is_management(&self) -> bool {
        self.management
    }

    /// The capabilities that apply in `namespace`: its exact rule, else its closest glob.
    fn namespace_rule(&self, namespace: &str) -> Option<&BTreeSet<String>> {
        closest(&self.namespaces, namespace)
    }

    /// Whether `capability` is granted in `namespace`.
    pub fn allow_namespace_op(&self, namespace: &str, capability: &str) -> bool {
        if self.management {
            return true;
        }
        self.namespace_rule(namespace).is_some_and(|capabilities| {
            !capabilities.contains("deny") && capabilities.contains(capability)
        })
    }

    /// Whether `capability` (`read`, `list`, `write`, `destroy`) is granted on the variable at
    /// `path` in `namespace`: the namespace's exact rule else its closest glob, then the path's
    /// exact rule else its closest glob (Nomad: `ACL.AllowVariableOperation`).
    pub fn allow_variable_op(&self, namespace: &str, path: &str, capability: &str) -> bool {
        if self.management {
            return true;
        }
        let Some(paths) = closest(&self.variables, namespace) else {
            return false;
        };
        closest(paths, path).is_some_and(|capabilities| {
            !capabilities.contains("deny") && capabilities.contains(capability)
        })
    }

    /// Whether anything at all is granted in `namespace` (it shows in lists).
    pub fn allow_namespace(&self, namespace: &str) -> bool {
        if self.management {
            return true;
        }
        self.namespace_rule(namespace)
            .is_some_and(|capabilities| !capabilities.contains("deny") && !capabilities.is_empty())
    }

    /// Whether the caller may read anything at all: some namespace's jobs, or the nodes (what
    /// the event stream needs before it filters).
    pub fn may_read_anything(&self) -> bool {
        self.management
            || self.allow_node_read()
            || self.namespaces.values().any(|capabilities| {
                !capabilities.contains("deny") && capabilities.contains("read-job")
            })
    }

    fn allow(&self, level: Level, wanted: Level) -> bool {
        self.management || (level != Level::Deny && level >= wanted)
    }

    pub fn allow_node_read(&self) -> bool {
        self.allow(self.node, Level::Read)
    }

    pub fn allow_node_write(&self) -> bool {
        self.allow(self.node, Level::Write)
    }

    pub fn allow_agent_read(&self) -> bool {
        self.allow(self.agent, Level::Read)
    }

    pub fn allow_agent_write(&self) -> bool {
        self.allow(self.agent, Level::Write)
    }

    pub fn allow_operator_read(&self) -> bool {
        self.allow(self.operator, Level::Read)
    }

    pub fn allow_operator_write(&self) -> bool {
        self.allow(self.operator, Level::Write)
    }

    pub fn allow_quota_read(&self) -> bool {
        self.allow(self.quota, Level::Read)
    }

    pub fn allow_plugin_read(&self) -> bool {
        self.allow(self.plugin, Level::Read)
    }
}

/// The value of `key` in `rules`, else of the closest glob that matches it (the one that leaves
/// the fewest characters to its `*`s).
fn closest<'a, V>(rules: &'a BTreeMap<String, V>, key: &str) -> Option<&'a V> {
    if let Some(exact) = rules.get(key) {
        return Some(exact);
    }
    rules
        .iter()
        .filter(|(pattern, _)| pattern.contains('*') && glob_matches(pattern, key))
        .min_by_key(|(pattern, _)| key.len().saturating_sub(pattern.replace('*', "").len()))
        .map(|(_, value)| value)
}

/// `*` matches any run of characters, everything else itself.
fn glob_matches(pattern: &str, value: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return value.is_empty();
    };
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (position, part) in parts.iter().enumerate() {
        if position + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(rules: &[&str]) -> Acl {
        let policies: Vec<Policy> = rules
            .iter()
            .map(|rules| Policy::parse(rules).expect("parses"))
            .collect();
        Acl::from_policies(&policies)
    }

    #[test]
    fn globs_match_as_nomads() {
        for (pattern, value, matches) in [
            ("*", "anything", true),
            ("*", "", true),
            ("prod-*", "prod-web", true),
            ("prod-*", "dev-web", false),
            ("*-web", "prod-web", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXcYYb", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(glob_matches(pattern, value), matches, "{pattern} ~ {value}");
        }
    }

    #[test]
    fn a_namespace_takes_its_exact_rule_then_the_closest_glob() {
        let acl = acl(&[
            r#"namespace "*" { policy = "read" }"#,
            r#"namespace "prod-*" { policy = "deny" }"#,
            r#"namespace "prod-web" { policy = "write" }"#,
        ]);
        assert!(acl.allow_namespace_op("default", "read-job"));
        assert!(!acl.allow_namespace_op("default", "submit-job"));
        assert!(
            !acl.allow_namespace_op("prod-db", "read-job"),
            "prod-* denies"
        );
        assert!(!acl.allow_namespace("prod-db"));
        assert!(
            acl.allow_namespace_op("prod-web", "submit-job"),
            "exact wins"
        );
    }

    #[test]
    fn policies_merge_with_deny_winning() {
        let merged = acl(&[
            r#"namespace "web" { policy = "read" }
               node { policy = "write" }
               agent { policy = "read" }"#,
            r#"namespace "web" { capabilities = ["submit-job"] }
               node { policy = "read" }
               agent { policy = "deny" }"#,
        ]);
        assert!(merged.allow_namespace_op("web", "read-job"));
        assert!(merged.allow_namespace_op("web", "submit-job"), "union");
        assert!(merged.allow_node_write(), "the greater grant");
        assert!(!merged.allow_agent_read(), "deny wins");
        assert!(!merged.allow_namespace("default"), "nothing granted there");
        assert!(!merged.allow_operator_read());

        let denied = acl(&[
            r#"namespace "web" { policy = "write" }"#,
            r#"namespace "web" { policy = "deny" }"#,
        ]);
        assert!(!denied.allow_namespace_op("web", "read-job"));
    }

    #[test]
    fn variables_take_the_closest_path_rule_and_the_namespace_policy() {
        let acl = acl(&[r#"namespace "default" {
                 variables {
                   path "app/*" { capabilities = ["read", "list"] }
                   path "app/secret" { capabilities = ["deny"] }
                 }
               }
               namespace "web" { policy = "write" }
               namespace "ro" { policy = "read" }"#]);
        assert!(acl.allow_variable_op("default", "app/db", "read"));
        assert!(!acl.allow_variable_op("default", "app/db", "write"));
        assert!(!acl.allow_variable_op("default", "app/secret", "read"));
        assert!(!acl.allow_variable_op("default", "other", "read"));
        assert!(acl.allow_variable_op("web", "anything", "write"));
        assert!(acl.allow_variable_op("ro", "anything", "list"));
        assert!(!acl.allow_variable_op("ro", "anything", "write"));
        assert!(!acl.allow_variable_op("elsewhere", "app/db", "read"));
        assert!(Acl::management().allow_variable_op("any", "path", "destroy"));
    }

    #[test]
    fn management_may_do_everything_and_no_policy_nothing() {
        let management = Acl::management();
        assert!(management.allow_namespace_op("any", "alloc-node-exec"));
        assert!(management.allow_operator_write() && management.allow_node_write());
        let nothing = Acl::deny_all();
        assert!(!nothing.may_read_anything());
        assert!(acl(&[r#"namespace "web" { policy = "read" }"#]).may_read_anything());
        assert!(!acl(&[r#"namespace "web" { policy = "deny" }"#]).may_read_anything());
        assert!(!nothing.allow_namespace("default"));
        assert!(!nothing.allow_node_read() && !nothing.allow_agent_read());
    }
}
