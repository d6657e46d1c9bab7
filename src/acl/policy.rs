//! Nomad's ACL policy language, parsed from HCL with hcl-rs into a [`Policy`].
//!
//! ```hcl
//! namespace "web" {                       # a name or a glob ("*", "prod-*")
//!   policy       = "write"                # deny | read | write | scale
//!   capabilities = ["alloc-node-exec"]    # added to what the policy grants
//!   variables { path "app/*" { capabilities = ["read", "list"] } }
//! }
//! host_volume "shared-*" { policy = "read" }  # deny | read | write | mount-readonly ...
//! node     { policy = "read" }            # deny | read | write
//! agent    { policy = "read" }
//! operator { policy = "read" }
//! quota    { policy = "read" }
//! plugin   { policy = "list" }            # deny | read | list
//! ```
//!
//! A namespace's `policy` expands into capabilities as Nomad's does (`acl/policy.go`
//! `expandNamespacePolicy`); unknown blocks, arguments, policies and capabilities are errors
//! naming the value. Parsing is a pure function: no I/O.

use std::collections::BTreeSet;

use hcl::{Block, Body, Expression, Structure};

/// Nomad's namespace capabilities (`acl/policy.go`).
pub const NAMESPACE_CAPABILITIES: &[&str] = &[
    "deny",
    "list-jobs",
    "parse-job",
    "read-job",
    "submit-job",
    "dispatch-job",
    "read-logs",
    "read-fs",
    "alloc-exec",
    "alloc-node-exec",
    "alloc-lifecycle",
    "csi-register-plugin",
    "csi-write-volume",
    "csi-read-volume",
    "csi-list-volume",
    "csi-mount-volume",
    "list-scaling-policies",
    "read-scaling-policy",
    "read-job-scaling",
    "scale-job",
    "submit-recommendation",
    "sentinel-override",
    "host-volume-register",
    "host-volume-create",
    "host-volume-delete",
    "host-volume-write",
    "host-volume-read",
];

/// Capabilities of a `variables { path "..." { capabilities = [...] } }` rule.
pub const VARIABLE_CAPABILITIES: &[&str] = &["write", "read", "list", "destroy", "deny"];

/// Capabilities of a `host_volume` rule.
pub const HOST_VOLUME_CAPABILITIES: &[&str] = &["deny", "mount-readonly", "mount-readwrite"];

/// Why a policy's rules do not parse.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("failed to parse ACL policy: {0}")]
    Syntax(String),
    #[error("invalid ACL policy: {0}")]
    Invalid(String),
}

/// The access a coarse rule (`node`, `agent`, `operator`, `quota`, `plugin`) grants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// No rule: nothing granted, but another policy may grant.
    #[default]
    None,
    /// `list` (plugin only): list, not read.
    List,
    Read,
    Write,
    /// `deny` wins over every grant of every policy.
    Deny,
}

impl Level {
    fn parse(value: &str, allowed: &[&str], block: &str) -> Result<Self, PolicyError> {
        if !allowed.contains(&value) {
            return Err(PolicyError::Invalid(format!(
                "invalid {block} policy {value:?}: use one of {}",
                allowed.join(", ")
            )));
        }
        Ok(match value {
            "deny" => Self::Deny,
            "list" => Self::List,
            "read" => Self::Read,
            _ => Self::Write,
        })
    }

    /// Two policies' levels together: deny wins, otherwise the greater grant.
    pub fn merge(self, other: Self) -> Self {
        self.max(other)
    }
}

/// One `namespace "<name>"` block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespaceRule {
    /// A name, or a glob with `*`.
    pub name: String,
    /// The expanded capabilities: the policy's and the listed ones.
    pub capabilities: BTreeSet<String>,
    /// `variables { path "<glob>" { capabilities } }`, in order.
    pub variables: Vec<(String, BTreeSet<String>)>,
}

/// One `host_volume "<name>"` block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostVolumeRule {
    pub name: String,
    pub capabilities: BTreeSet<String>,
}

/// A parsed policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub namespaces: Vec<NamespaceRule>,
    pub host_volumes: Vec<HostVolumeRule>,
    pub node: Level,
    pub agent: Level,
    pub operator: Level,
    pub quota: Level,
    pub plugin: Level,
}

/// What a namespace `policy` grants (Nomad: `expandNamespacePolicy`).
fn expand_namespace_policy(policy: &str) -> Result<&'static [&'static str], PolicyError> {
    const READ: &[&str] = &[
        "list-jobs",
        "parse-job",
        "read-job",
        "csi-list-volume",
        "csi-read-volume",
        "read-job-scaling",
        "list-scaling-policies",
        "read-scaling-policy",
        "host-volume-read",
    ];
    const WRITE: &[&str] = &[
        "list-jobs",
        "parse-job",
        "read-job",
        "csi-list-volume",
        "csi-read-volume",
        "read-job-scaling",
        "list-scaling-policies",
        "read-scaling-policy",
        "host-volume-read",
        "scale-job",
        "submit-job",
        "dispatch-job",
        "read-logs",
        "read-fs",
        "alloc-exec",
        "alloc-lifecycle",
        "csi-mount-volume",
        "csi-write-volume",
        "submit-recommendation",
        "host-volume-create",
        "host-volume-write",
    ];
    const SCALE: &[&str] = &[
        "list-scaling-policies",
        "read-scaling-policy",
        "read-job-scaling",
        "scale-job",
    ];
    match policy {
        "deny" => Ok(&["deny"]),
        "read" => Ok(READ),
        "write" => Ok(WRITE),
        "scale" => Ok(SCALE),
        other => Err(PolicyError::Invalid(format!(
            "invalid namespace policy {other:?}: use one of deny, read, write, scale"
        ))),
    }
}

/// What a namespace `policy` grants on its variables (every path): `read` reads and lists
/// them, `write` also writes and destroys them, `deny` denies them.
fn namespace_policy_variables(policy: &str) -> Option<&'static [&'static str]> {
    match policy {
        "deny" => Some(&["deny"]),
        "read" => Some(&["read", "list"]),
        "write" => Some(&["read", "list", "write", "destroy"]),
        _ => None,
    }
}

/// What a host volume `policy` grants (Nomad: `expandHostVolumePolicy`).
fn expand_host_volume_policy(policy: &str) -> Result<&'static [&'static str], PolicyError> {
    match policy {
        "deny" => Ok(&["deny"]),
        "read" => Ok(&["mount-readonly"]),
        "write" => Ok(&["mount-readonly", "mount-readwrite"]),
        other => Err(PolicyError::Invalid(format!(
            "invalid host_volume policy {other:?}: use one of deny, read, write"
        ))),
    }
}

impl Policy {
    /// Parses a policy's `Rules`.
    pub fn parse(rules: &str) -> Result<Self, PolicyError> {
        let body: Body = hcl::parse(rules).map_err(|err| PolicyError::Syntax(one_line(&err)))?;
        let mut policy = Policy::default();
        for structure in body.iter() {
            let block = match structure {
                Structure::Block(block) => block,
                Structure::Attribute(attribute) => {
                    return Err(PolicyError::Invalid(format!(
                        "unexpected argument {:?} at the top level",
                        attribute.key()
                    )));
                }
            };
            match block.identifier() {
                "namespace" => policy.namespaces.push(parse_namespace(block)?),
                "host_volume" => policy.host_volumes.push(parse_host_volume(block)?),
                "node" => policy.node = parse_coarse(block, &["deny", "read", "write"])?,
                "agent" => policy.agent = parse_coarse(block, &["deny", "read", "write"])?,
                "operator" => {
                    policy.operator = parse_coarse(block, &["deny", "read", "write"])?;
                }
                "quota" => policy.quota = parse_coarse(block, &["deny", "read", "write"])?,
                "plugin" => policy.plugin = parse_coarse(block, &["deny", "read", "list"])?,
                other => {
                    return Err(PolicyError::Invalid(format!(
                        "unknown block {other:?}: use namespace, host_volume, node, agent, operator, quota or plugin"
                    )));
                }
            }
        }
        Ok(policy)
    }
}

/// hcl-rs errors span lines; a policy error is one line.
fn one_line(error: &hcl::Error) -> String {
    error
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn one_label(block: &Block) -> Result<&str, PolicyError> {
    match block.labels() {
        [label] if !label.as_str().is_empty() => Ok(label.as_str()),
        _ => Err(PolicyError::Invalid(format!(
            "a {} block takes one name: {} \"<name>\" {{ ... }}",
            block.identifier(),
            block.identifier()
        ))),
    }
}

fn no_labels(block: &Block) -> Result<(), PolicyError> {
    if block.labels().is_empty() {
        Ok(())
    } else {
        Err(PolicyError::Invalid(format!(
            "a {} block takes no name",
            block.identifier()
        )))
    }
}

fn string_of(expr: &Expression, what: &str) -> Result<String, PolicyError> {
    match expr {
        Expression::String(value) => Ok(value.clone()),
        _ => Err(PolicyError::Invalid(format!("{what} must be a string"))),
    }
}

fn strings_of(expr: &Expression, what: &str) -> Result<Vec<String>, PolicyError> {
    match expr {
        Expression::Array(values) => values.iter().map(|value| string_of(value, what)).collect(),
        _ => Err(PolicyError::Invalid(format!(
            "{what} must be a list of strings"
        ))),
    }
}

fn check_capabilities(
    capabilities: &[String],
    allowed: &[&str],
    block: &str,
) -> Result<(), PolicyError> {
    for capability in capabilities {
        if !allowed.contains(&capability.as_str()) {
            return Err(PolicyError::Invalid(format!(
                "invalid {block} capability {capability:?}"
            )));
        }
    }
    Ok(())
}

fn parse_namespace(block: &Block) -> Result<NamespaceRule, PolicyError> {
    let name = one_label(block)?;
    let mut rule = NamespaceRule {
        name: name.to_owned(),
        ..NamespaceRule::default()
    };
    for structure in block.body().iter() {
        match structure {
            Structure::Attribute(attribute) => match attribute.key() {
                "policy" => {
                    let policy = string_of(attribute.expr(), "namespace policy")?;
                    // Nomad allows an empty policy next to capabilities.
                    if !policy.is_empty() {
                        let expanded = expand_namespace_policy(&policy)?;
                        rule.capabilities
                            .extend(expanded.iter().map(|cap| (*cap).to_owned()));
                        if let Some(variables) = namespace_policy_variables(&policy) {
                            rule.variables.push((
                                "*".to_owned(),
                                variables.iter().map(|cap| (*cap).to_owned()).collect(),
                            ));
                        }
                    }
                }
                "capabilities" => {
                    let listed = strings_of(attribute.expr(), "namespace capabilities")?;
                    check_capabilities(&listed, NAMESPACE_CAPABILITIES, "namespace")?;
                    rule.capabilities.extend(listed);
                }
                other => {
                    return Err(PolicyError::Invalid(format!(
                        "unknown argument {other:?} in namespace {name:?}"
                    )));
                }
            },
            Structure::Block(inner) if inner.identifier() == "variables" => {
                no_labels(inner)?;
                rule.variables.extend(parse_variables(inner, name)?);
            }
            Structure::Block(inner) => {
                return Err(PolicyError::Invalid(format!(
                    "unknown block {:?} in namespace {name:?}",
                    inner.identifier()
                )));
            }
        }
    }
    Ok(rule)
}

fn parse_variables(
    block: &Block,
    namespace: &str,
) -> Result<Vec<(String, BTreeSet<String>)>, PolicyError> {
    let mut paths = Vec::new();
    for structure in block.body().iter() {
        let Structure::Block(path) = structure else {
            return Err(PolicyError::Invalid(format!(
                "variables in namespace {namespace:?} hold only path blocks"
            )));
        };
        if path.identifier() != "path" {
            return Err(PolicyError::Invalid(format!(
                "unknown block {:?} in the variables of namespace {namespace:?}",
                path.identifier()
            )));
        }
        let glob = one_label(path)?;
        let mut capabilities = BTreeSet::new();
        for attribute in path.body().attributes() {
            if attribute.key() != "capabilities" {
                return Err(PolicyError::Invalid(format!(
                    "unknown argument {:?} in variables path {glob:?}",
                    attribute.key()
                )));
            }
            let listed = strings_of(attribute.expr(), "variables capabilities")?;
            check_capabilities(&listed, VARIABLE_CAPABILITIES, "variables")?;
            capabilities.extend(listed);
        }
        paths.push((glob.to_owned(), capabilities));
    }
    Ok(paths)
}

fn parse_host_volume(block: &Block) -> Result<HostVolumeRule, PolicyError> {
    let name = one_label(block)?;
    let mut rule = HostVolumeRule {
        name: name.to_owned(),
        ..HostVolumeRule::default()
    };
    for structure in block.body().iter() {
        let Structure::Attribute(attribute) = structure else {
            return Err(PolicyError::Invalid(format!(
                "host_volume {name:?} takes no blocks"
            )));
        };
        match attribute.key() {
            "policy" => {
                let policy = string_of(attribute.expr(), "host_volume policy")?;
                let expanded = expand_host_volume_policy(&policy)?;
                rule.capabilities
                    .extend(expanded.iter().map(|cap| (*cap).to_owned()));
            }
            "capabilities" => {
                let listed = strings_of(attribute.expr(), "host_volume capabilities")?;
                check_capabilities(&listed, HOST_VOLUME_CAPABILITIES, "host_volume")?;
                rule.capabilities.extend(listed);
            }
            other => {
                return Err(PolicyError::Invalid(format!(
                    "unknown argument {other:?} in host_volume {name:?}"
                )));
            }
        }
    }
    Ok(rule)
}

fn parse_coarse(block: &Block, allowed: &[&str]) -> Result<Level, PolicyError> {
    no_labels(block)?;
    let name = block.identifier();
    let mut level = Level::None;
    for structure in block.body().iter() {
        match structure {
            Structure::Attribute(attribute) if attribute.key() == "policy" => {
                level = Level::parse(&string_of(attribute.expr(), name)?, allowed, name)?;
            }
            Structure::Attribute(attribute) => {
                return Err(PolicyError::Invalid(format!(
                    "unknown argument {:?} in {name}",
                    attribute.key()
                )));
            }
            Structure::Block(inner) => {
                return Err(PolicyError::Invalid(format!(
                    "unknown block {:?} in {name}",
                    inner.identifier()
                )));
            }
        }
    }
    Ok(level)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn every_block_of_nomads_language_parses() {
        let policy = Policy::parse(
            r#"
            namespace "web" {
              policy = "read"
              capabilities = ["alloc-node-exec"]
              variables {
                path "app/*" { capabilities = ["read", "list"] }
              }
            }
            namespace "prod-*" { policy = "scale" }
            host_volume "shared" { policy = "write" }
            node { policy = "read" }
            agent { policy = "write" }
            operator { policy = "deny" }
            quota { policy = "read" }
            plugin { policy = "list" }
            "#,
        )
        .expect("parses");
        assert_eq!(policy.namespaces.len(), 2);
        let web = &policy.namespaces[0];
        assert_eq!(web.name, "web");
        assert!(web.capabilities.contains("read-job"));
        assert!(web.capabilities.contains("alloc-node-exec"));
        assert!(!web.capabilities.contains("submit-job"));
        // `policy = "read"` reads and lists every variable; the block adds its own path.
        assert_eq!(
            web.variables,
            vec![
                ("*".to_owned(), caps(&["list", "read"])),
                ("app/*".to_owned(), caps(&["list", "read"]))
            ]
        );
        assert_eq!(
            policy.namespaces[1].capabilities,
            caps(&[
                "list-scaling-policies",
                "read-job-scaling",
                "read-scaling-policy",
                "scale-job"
            ])
        );
        assert_eq!(
            policy.host_volumes[0].capabilities,
            caps(&["mount-readonly", "mount-readwrite"])
        );
        assert_eq!(
            (
                policy.node,
                policy.agent,
                policy.operator,
                policy.quota,
                policy.plugin
            ),
            (
                Level::Read,
                Level::Write,
                Level::Deny,
                Level::Read,
                Level::List
            )
        );
    }

    #[test]
    fn write_grants_what_read_does_and_submitting() {
        let policy = Policy::parse(r#"namespace "default" { policy = "write" }"#).expect("parses");
        let granted = &policy.namespaces[0].capabilities;
        for capability in [
            "list-jobs",
            "read-job",
            "submit-job",
            "dispatch-job",
            "read-logs",
            "read-fs",
            "alloc-exec",
            "alloc-lifecycle",
            "scale-job",
        ] {
            assert!(granted.contains(capability), "{capability}");
        }
        assert!(!granted.contains("alloc-node-exec"));
    }

    #[test]
    fn bad_rules_are_refused_naming_the_value() {
        let cases = [
            (
                r#"namespace "web" { policy = "admin" }"#,
                "invalid ACL policy: invalid namespace policy \"admin\": use one of deny, read, write, scale",
            ),
            (
                r#"namespace "web" { capabilities = ["fly"] }"#,
                "invalid ACL policy: invalid namespace capability \"fly\"",
            ),
            (
                r#"node { policy = "list" }"#,
                "invalid ACL policy: invalid node policy \"list\": use one of deny, read, write",
            ),
            (
                r#"plugin { policy = "write" }"#,
                "invalid ACL policy: invalid plugin policy \"write\": use one of deny, read, list",
            ),
            (
                r#"keyring { policy = "read" }"#,
                "invalid ACL policy: unknown block \"keyring\": use namespace, host_volume, node, agent, operator, quota or plugin",
            ),
            (
                r#"namespace { policy = "read" }"#,
                "invalid ACL policy: a namespace block takes one name: namespace \"<name>\" { ... }",
            ),
            (
                r#"namespace "web" { polcy = "read" }"#,
                "invalid ACL policy: unknown argument \"polcy\" in namespace \"web\"",
            ),
            (
                r#"policy = "read""#,
                "invalid ACL policy: unexpected argument \"policy\" at the top level",
            ),
            (
                "namespace \"web\" {\n  variables {\n    path \"a\" { capabilities = [\"sing\"] }\n  }\n}",
                "invalid ACL policy: invalid variables capability \"sing\"",
            ),
        ];
        for (rules, expected) in cases {
            let error = Policy::parse(rules).expect_err(rules);
            assert_eq!(error.to_string(), expected, "{rules}");
        }
        let syntax = Policy::parse("namespace \"web\" {").expect_err("unclosed");
        assert!(matches!(syntax, PolicyError::Syntax(_)), "{syntax}");
        assert!(!syntax.to_string().contains('\n'), "{syntax}");
    }
}
