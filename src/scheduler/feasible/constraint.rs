//! Constraints: `${attr.kernel.name} = linux` and every other operator Nomad knows.
//!
//! A constraint's targets are interpolated against the node (`${attr.X}`, `${meta.X}`,
//! `${node.unique.id}`, `${node.datacenter}`, `${node.unique.name}`, `${node.class}`,
//! `${node.pool}`), anything else is a literal. `distinct_hosts` and `distinct_property` depend on
//! the plan, not the node alone, and are checked in `distinct.rs`; here they always hold.
//!
//! Nomad: `scheduler/feasible.go` `resolveTarget`, `checkConstraint`, `checkOrder`.

use std::cmp::Ordering;
use std::sync::Arc;

use regex::Regex;

use super::version::{VersionConstraint, VersionFlavor, version_matches};
use crate::structs::{Constraint, Node};

/// Resolves a constraint target against a node; `None` if it names something the node lacks.
pub fn resolve_target<'a>(node: &'a Node, target: &'a str) -> Option<&'a str> {
    let Some(inner) = target
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
    else {
        return Some(target);
    };
    match inner {
        "node.unique.id" => Some(node.id.as_str()),
        "node.datacenter" => Some(&node.datacenter),
        "node.unique.name" => Some(&node.name),
        "node.class" => Some(&node.node_class),
        "node.pool" => Some(&node.node_pool),
        _ => {
            if let Some(attribute) = inner.strip_prefix("attr.") {
                node.attributes.get(attribute).map(String::as_str)
            } else if let Some(key) = inner.strip_prefix("meta.") {
                node.meta.get(key).map(String::as_str)
            } else {
                None
            }
        }
    }
}

/// True if a target's value differs between nodes of the same computed class.
pub fn target_is_unique(target: &str) -> bool {
    target.contains("${node.unique.")
        || target.contains("${attr.unique.")
        || target.contains("${meta.unique.")
}

/// A constraint with its right-hand side parsed once, when it is a literal.
#[derive(Clone, Debug)]
pub struct CompiledConstraint {
    pub constraint: Constraint,
    /// The key of `AllocMetric.ConstraintFiltered`: `"${attr.kernel.name} = linux"`.
    pub key: Arc<str>,
    regex: Option<Regex>,
    version: Option<VersionConstraint>,
}

impl CompiledConstraint {
    pub fn new(constraint: &Constraint) -> Self {
        let literal_rhs = !constraint.r_target.starts_with("${");
        let regex = (literal_rhs && constraint.operand == "regexp")
            .then(|| Regex::new(&constraint.r_target).ok())
            .flatten();
        let version = match (literal_rhs, constraint.operand.as_str()) {
            (true, "version") => {
                VersionConstraint::parse(&constraint.r_target, VersionFlavor::Version)
            }
            (true, "semver") => {
                VersionConstraint::parse(&constraint.r_target, VersionFlavor::Semver)
            }
            _ => None,
        };
        Self {
            key: constraint_key(constraint).into(),
            constraint: constraint.clone(),
            regex,
            version,
        }
    }

    /// True if the constraint can be decided per computed node class.
    pub fn is_class_cacheable(&self) -> bool {
        !target_is_unique(&self.constraint.l_target) && !target_is_unique(&self.constraint.r_target)
    }

    pub fn is_satisfied_by(&self, node: &Node) -> bool {
        let constraint = &self.constraint;
        let left = resolve_target(node, &constraint.l_target);
        let right = resolve_target(node, &constraint.r_target);
        match constraint.operand.as_str() {
            "regexp" => match (left, &self.regex) {
                (Some(left), Some(regex)) => regex.is_match(left),
                (Some(left), None) => right
                    .and_then(|pattern| Regex::new(pattern).ok())
                    .is_some_and(|regex| regex.is_match(left)),
                (None, _) => false,
            },
            "version" | "semver" => match (left, &self.version) {
                (Some(left), Some(version)) => super::version::Version::parse(left)
                    .is_some_and(|parsed| version.matches(&parsed)),
                (Some(left), None) => right.is_some_and(|right| {
                    let flavor = if constraint.operand == "semver" {
                        VersionFlavor::Semver
                    } else {
                        VersionFlavor::Version
                    };
                    version_matches(left, right, flavor)
                }),
                (None, _) => false,
            },
            operand => check_constraint(operand, left, right),
        }
    }
}

/// `"${attr.kernel.name} = linux"`, Nomad's `Constraint.String()`.
pub fn constraint_key(constraint: &Constraint) -> String {
    format!(
        "{} {} {}",
        constraint.l_target, constraint.operand, constraint.r_target
    )
}

/// Applies an operator to resolved targets (`None`: the node lacks it).
pub fn check_constraint(operand: &str, left: Option<&str>, right: Option<&str>) -> bool {
    match operand {
        "=" | "==" | "is" => left.is_some() && left == right,
        "!=" | "not" => left != right,
        "<" | "<=" | ">" | ">=" => match (left, right) {
            (Some(left), Some(right)) => check_order(operand, left, right),
            _ => false,
        },
        "regexp" => match (left, right) {
            (Some(left), Some(right)) => Regex::new(right).is_ok_and(|regex| regex.is_match(left)),
            _ => false,
        },
        "version" => match (left, right) {
            (Some(left), Some(right)) => version_matches(left, right, VersionFlavor::Version),
            _ => false,
        },
        "semver" => match (left, right) {
            (Some(left), Some(right)) => version_matches(left, right, VersionFlavor::Semver),
            _ => false,
        },
        "set_contains" | "set_contains_all" => match (left, right) {
            (Some(left), Some(right)) => {
                let have = split_set(left);
                split_set(right).iter().all(|item| have.contains(item))
            }
            _ => false,
        },
        "set_contains_any" => match (left, right) {
            (Some(left), Some(right)) => {
                let have = split_set(left);
                split_set(right).iter().any(|item| have.contains(item))
            }
            _ => false,
        },
        "is_set" => left.is_some(),
        "is_not_set" => left.is_none(),
        "distinct_hosts" | "distinct_property" => true,
        _ => false,
    }
}

fn split_set(text: &str) -> Vec<&str> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect()
}

/// Numeric order when both sides are numbers (integers, then floats), lexical otherwise.
fn check_order(operand: &str, left: &str, right: &str) -> bool {
    let ordering = match (left.trim().parse::<i64>(), right.trim().parse::<i64>()) {
        (Ok(left), Ok(right)) => left.cmp(&right),
        _ => match (left.trim().parse::<f64>(), right.trim().parse::<f64>()) {
            (Ok(left), Ok(right)) => match left.partial_cmp(&right) {
                Some(ordering) => ordering,
                None => return false,
            },
            _ => left.cmp(right),
        },
    };
    match operand {
        "<" => ordering == Ordering::Less,
        "<=" => ordering != Ordering::Greater,
        ">" => ordering == Ordering::Greater,
        ">=" => ordering != Ordering::Less,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::NodeId;

    fn node() -> Node {
        let mut node = Node {
            id: NodeId::from("node-1"),
            name: "foo".to_owned(),
            datacenter: "dc1".to_owned(),
            node_class: "large".to_owned(),
            node_pool: "default".to_owned(),
            ..Node::default()
        };
        for (key, value) in [
            ("kernel.name", "linux"),
            ("cpu.numcores", "8"),
            ("driver.docker.version", "24.0.7"),
            ("os.version", "1.3.0-beta"),
            ("cpu.arch", "amd64"),
            ("ratio", "1.5"),
        ] {
            node.attributes.insert(key.to_owned(), value.to_owned());
        }
        node.meta.insert("rack".to_owned(), "r1".to_owned());
        node.meta
            .insert("tags".to_owned(), "ssd, gpu,fast".to_owned());
        node
    }

    fn check(l_target: &str, operand: &str, r_target: &str) -> bool {
        let constraint = Constraint {
            l_target: l_target.to_owned(),
            r_target: r_target.to_owned(),
            operand: operand.to_owned(),
        };
        CompiledConstraint::new(&constraint).is_satisfied_by(&node())
    }

    #[test]
    fn every_operator() {
        let cases = [
            ("${attr.kernel.name}", "=", "linux", true),
            ("${attr.kernel.name}", "==", "linux", true),
            ("${attr.kernel.name}", "is", "windows", false),
            ("${attr.kernel.name}", "!=", "windows", true),
            ("${attr.kernel.name}", "not", "linux", false),
            ("${attr.missing}", "!=", "linux", true),
            ("${attr.missing}", "=", "linux", false),
            ("${attr.cpu.numcores}", ">", "4", true),
            ("${attr.cpu.numcores}", ">", "10", false),
            ("${attr.cpu.numcores}", ">=", "8", true),
            ("${attr.cpu.numcores}", "<", "10", true),
            ("${attr.cpu.numcores}", "<=", "7", false),
            ("${attr.ratio}", "<", "2.25", true),
            ("${attr.cpu.arch}", "<", "arm64", true),
            ("${attr.cpu.arch}", ">", "arm64", false),
            ("${attr.missing}", "<", "5", false),
            ("${attr.kernel.name}", "regexp", "^lin", true),
            ("${attr.kernel.name}", "regexp", "^win", false),
            ("${attr.kernel.name}", "regexp", "(", false),
            (
                "${attr.driver.docker.version}",
                "version",
                ">= 20, < 25",
                true,
            ),
            ("${attr.driver.docker.version}", "version", "< 24", false),
            ("${attr.os.version}", "version", ">= 1.2", true),
            ("${attr.os.version}", "semver", ">= 1.2.0", false),
            ("${attr.driver.docker.version}", "semver", "~> 24.0.1", true),
            ("${meta.tags}", "set_contains", "ssd,gpu", true),
            ("${meta.tags}", "set_contains_all", "ssd,arm", false),
            ("${meta.tags}", "set_contains_any", "arm,fast", true),
            ("${meta.tags}", "set_contains_any", "arm", false),
            ("${meta.rack}", "is_set", "", true),
            ("${meta.zone}", "is_set", "", false),
            ("${meta.zone}", "is_not_set", "", true),
            ("${meta.rack}", "is_not_set", "", false),
            ("${node.unique.id}", "=", "node-1", true),
            ("${node.datacenter}", "=", "dc1", true),
            ("${node.unique.name}", "=", "foo", true),
            ("${node.class}", "=", "large", true),
            ("${node.pool}", "=", "default", true),
            ("${meta.rack}", "=", "${meta.rack}", true),
            ("${meta.rack}", "distinct_property", "", true),
            ("", "distinct_hosts", "", true),
            ("${attr.kernel.name}", "bogus", "linux", false),
        ];
        for (l_target, operand, r_target, expected) in cases {
            assert_eq!(
                check(l_target, operand, r_target),
                expected,
                "{l_target} {operand} {r_target}"
            );
        }
    }

    #[test]
    fn metric_key_is_nomads_constraint_string() {
        let constraint = Constraint {
            l_target: "${attr.kernel.name}".to_owned(),
            r_target: "windows".to_owned(),
            operand: "=".to_owned(),
        };
        assert_eq!(constraint_key(&constraint), "${attr.kernel.name} = windows");
    }
}
