//! Placement rules: constraints (hard), affinities (soft) and spreads (balance).

use serde::{Deserialize, Serialize};

use super::nullable;
use super::validation::ValidationErrors;

/// Nomad's constraint operators, by the names job files and the API use.
pub struct ConstraintOperand;

impl ConstraintOperand {
    pub const EQUAL: &'static str = "=";
    pub const DISTINCT_HOSTS: &'static str = "distinct_hosts";
    pub const DISTINCT_PROPERTY: &'static str = "distinct_property";
    pub const REGEXP: &'static str = "regexp";
    pub const VERSION: &'static str = "version";
    pub const SEMVER: &'static str = "semver";
    pub const SET_CONTAINS: &'static str = "set_contains";
    pub const SET_CONTAINS_ALL: &'static str = "set_contains_all";
    pub const SET_CONTAINS_ANY: &'static str = "set_contains_any";
    pub const IS_SET: &'static str = "is_set";
    pub const IS_NOT_SET: &'static str = "is_not_set";

    /// Every operator a constraint may use.
    pub const ALL: &'static [&'static str] = &[
        "=",
        "==",
        "is",
        "!=",
        "not",
        ">",
        ">=",
        "<",
        "<=",
        "distinct_hosts",
        "distinct_property",
        "regexp",
        "version",
        "semver",
        "set_contains",
        "set_contains_all",
        "set_contains_any",
        "is_set",
        "is_not_set",
    ];

    /// Operators that take no right-hand side.
    pub fn is_unary(operand: &str) -> bool {
        matches!(operand, "distinct_hosts" | "is_set" | "is_not_set")
    }
}

/// `constraint` block: a node must satisfy it to be feasible.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Constraint {
    #[serde(rename = "LTarget")]
    pub l_target: String,
    #[serde(rename = "RTarget")]
    pub r_target: String,
    #[serde(rename = "Operand")]
    pub operand: String,
}

impl Constraint {
    pub(crate) fn validate(&self, path: &str, errors: &mut ValidationErrors) {
        validate_operand(path, &self.operand, &self.l_target, &self.r_target, errors);
    }
}

fn validate_operand(
    path: &str,
    operand: &str,
    l_target: &str,
    r_target: &str,
    errors: &mut ValidationErrors,
) {
    if !ConstraintOperand::ALL.contains(&operand) {
        errors.push(
            &format!("{path}.Operand"),
            format!("unknown constraint operator {operand:?}"),
        );
        return;
    }
    match operand {
        "distinct_hosts" => {}
        "distinct_property" => {
            if l_target.is_empty() {
                errors.push(
                    &format!("{path}.LTarget"),
                    "distinct_property needs an attribute",
                );
            }
        }
        "is_set" | "is_not_set" => {
            if l_target.is_empty() {
                errors.push(
                    &format!("{path}.LTarget"),
                    format!("{operand} needs an attribute"),
                );
            }
        }
        "regexp" => {
            if r_target.is_empty() {
                errors.push(&format!("{path}.RTarget"), "regexp needs a pattern");
            }
        }
        _ => {
            if l_target.is_empty() && r_target.is_empty() {
                errors.push(path, "constraint needs an attribute and a value");
            }
        }
    }
}

/// `affinity` block: a preference that raises or lowers a node's score.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Affinity {
    #[serde(rename = "LTarget")]
    pub l_target: String,
    #[serde(rename = "RTarget")]
    pub r_target: String,
    #[serde(rename = "Operand")]
    pub operand: String,
    /// -100..=100, never 0.
    #[serde(rename = "Weight")]
    pub weight: i8,
}

impl Affinity {
    pub(crate) fn validate(&self, path: &str, errors: &mut ValidationErrors) {
        if matches!(
            self.operand.as_str(),
            "distinct_hosts" | "distinct_property"
        ) {
            errors.push(
                &format!("{path}.Operand"),
                format!("operator {:?} is not allowed in an affinity", self.operand),
            );
        } else {
            validate_operand(path, &self.operand, &self.l_target, &self.r_target, errors);
        }
        if self.weight == 0 || !(-100..=100).contains(&self.weight) {
            errors.push(
                &format!("{path}.Weight"),
                format!(
                    "affinity weight must be within -100..=100 and not 0, got {}",
                    self.weight
                ),
            );
        }
    }
}

/// One target value of a spread and the share of allocations it should get.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SpreadTarget {
    pub value: String,
    pub percent: u8,
}

/// `spread` block: balance allocations across the values of a node attribute.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Spread {
    pub attribute: String,
    pub weight: i8,
    #[serde(rename = "SpreadTarget", deserialize_with = "nullable::default")]
    pub spread_target: Vec<SpreadTarget>,
}

impl Spread {
    pub(crate) fn validate(&self, path: &str, errors: &mut ValidationErrors) {
        if self.attribute.is_empty() {
            errors.push(&format!("{path}.Attribute"), "spread needs an attribute");
        }
        if !(1..=100).contains(&self.weight) {
            errors.push(
                &format!("{path}.Weight"),
                format!("spread weight must be within 1..=100, got {}", self.weight),
            );
        }
        let total: u32 = self
            .spread_target
            .iter()
            .map(|target| u32::from(target.percent))
            .sum();
        if total > 100 {
            errors.push(
                &format!("{path}.SpreadTarget"),
                format!("sum of spread target percentages must not exceed 100, got {total}"),
            );
        }
    }
}
