//! `constraint`, `affinity` and `spread` blocks, at job, group or task level.
//!
//! Constraints and affinities accept Nomad's shorthand arguments: `distinct_hosts = true`,
//! `distinct_property = "${meta.rack}"`, `regexp = "..."`, `version = "..."`, `semver = "..."`,
//! `set_contains = "..."` and friends set the operator and the value in one line.

use crate::jobspec::body::{BlockReader, Schema, join_path, no_labels, single_label};
use crate::jobspec::error::JobspecError;
use crate::structs::{Affinity, Constraint, Spread, SpreadTarget};

/// Shorthands whose value is the right-hand side; the argument's name is the operator.
const VALUE_SHORTHANDS: &[&str] = &[
    "regexp",
    "version",
    "semver",
    "set_contains",
    "set_contains_any",
    "set_contains_all",
];

const CONSTRAINT_SCHEMA: Schema<'static> = Schema {
    arguments: &[
        "attribute",
        "distinct_hosts",
        "distinct_property",
        "operator",
        "regexp",
        "semver",
        "set_contains",
        "set_contains_all",
        "set_contains_any",
        "value",
        "version",
    ],
    blocks: &[],
};

const AFFINITY_SCHEMA: Schema<'static> = Schema {
    arguments: &[
        "attribute",
        "operator",
        "regexp",
        "semver",
        "set_contains",
        "set_contains_all",
        "set_contains_any",
        "value",
        "version",
        "weight",
    ],
    blocks: &[],
};

const SPREAD_SCHEMA: Schema<'static> = Schema {
    arguments: &["attribute", "weight"],
    blocks: &["target"],
};

const SPREAD_TARGET_SCHEMA: Schema<'static> = Schema {
    arguments: &["percent"],
    blocks: &[],
};

/// Nomad's weight for an affinity or spread that does not give one.
const DEFAULT_WEIGHT: i8 = 50;

/// The operator, left and right targets shared by constraints and affinities.
struct Rule {
    l_target: String,
    r_target: String,
    operand: String,
}

fn decode_rule(rule: &BlockReader<'_, '_>) -> Result<Rule, JobspecError> {
    let mut decoded = Rule {
        l_target: rule.string("attribute", "LTarget")?.unwrap_or_default(),
        r_target: rule.string("value", "RTarget")?.unwrap_or_default(),
        operand: rule.string("operator", "Operand")?.unwrap_or_default(),
    };
    let mut operator_from: Option<&str> = rule.has("operator").then_some("operator");
    let mut set_operator = |name: &'static str| -> Result<(), JobspecError> {
        if let Some(previous) = operator_from {
            let offset = rule
                .attribute(name)
                .map_or(rule.offset, crate::jobspec::body::attribute_offset);
            return Err(rule.error(
                offset,
                format!(
                    "{} sets both \"{previous}\" and \"{name}\"; give the operator only once",
                    rule.what
                ),
            ));
        }
        operator_from = Some(name);
        Ok(())
    };
    for &shorthand in VALUE_SHORTHANDS {
        if let Some(value) = rule.string(shorthand, "RTarget")? {
            set_operator(shorthand)?;
            decoded.operand = shorthand.to_owned();
            decoded.r_target = value;
        }
    }
    if rule.has("distinct_hosts") {
        set_operator("distinct_hosts")?;
        if rule.bool("distinct_hosts", "Operand")? == Some(true) {
            decoded.operand = "distinct_hosts".to_owned();
        }
    }
    if let Some(property) = rule.string("distinct_property", "LTarget")? {
        set_operator("distinct_property")?;
        decoded.operand = "distinct_property".to_owned();
        decoded.l_target = property;
    }
    if decoded.operand.is_empty() {
        decoded.operand = "=".to_owned();
    }
    Ok(decoded)
}

pub(super) fn decode_constraints(
    parent: &BlockReader<'_, '_>,
) -> Result<Vec<Constraint>, JobspecError> {
    let mut constraints = Vec::new();
    for (constraint_idx, block) in parent.blocks("constraint").enumerate() {
        no_labels(parent, block)?;
        let reader = parent.child(
            block,
            format!("constraint of {}", parent.what),
            join_path(&parent.path, &format!("Constraints[{constraint_idx}]")),
            CONSTRAINT_SCHEMA,
        )?;
        let rule = decode_rule(&reader)?;
        constraints.push(Constraint {
            l_target: rule.l_target,
            r_target: rule.r_target,
            operand: rule.operand,
        });
    }
    Ok(constraints)
}

pub(super) fn decode_affinities(
    parent: &BlockReader<'_, '_>,
) -> Result<Vec<Affinity>, JobspecError> {
    let mut affinities = Vec::new();
    for (affinity_idx, block) in parent.blocks("affinity").enumerate() {
        no_labels(parent, block)?;
        let reader = parent.child(
            block,
            format!("affinity of {}", parent.what),
            join_path(&parent.path, &format!("Affinities[{affinity_idx}]")),
            AFFINITY_SCHEMA,
        )?;
        let rule = decode_rule(&reader)?;
        affinities.push(Affinity {
            l_target: rule.l_target,
            r_target: rule.r_target,
            operand: rule.operand,
            weight: reader.int_in("weight", "Weight")?.unwrap_or(DEFAULT_WEIGHT),
        });
    }
    Ok(affinities)
}

pub(super) fn decode_spreads(parent: &BlockReader<'_, '_>) -> Result<Vec<Spread>, JobspecError> {
    let mut spreads = Vec::new();
    for (spread_idx, block) in parent.blocks("spread").enumerate() {
        no_labels(parent, block)?;
        let reader = parent.child(
            block,
            format!("spread of {}", parent.what),
            join_path(&parent.path, &format!("Spreads[{spread_idx}]")),
            SPREAD_SCHEMA,
        )?;
        let mut spread = Spread {
            attribute: reader.string("attribute", "Attribute")?.unwrap_or_default(),
            weight: reader.int_in("weight", "Weight")?.unwrap_or(DEFAULT_WEIGHT),
            spread_target: Vec::new(),
        };
        for target_block in reader.blocks("target") {
            let value = single_label(&reader, target_block, "value")?;
            let target = reader.child(
                target_block,
                format!("target {value:?} of spread"),
                join_path(&reader.path, "SpreadTarget"),
                SPREAD_TARGET_SCHEMA,
            )?;
            spread.spread_target.push(SpreadTarget {
                percent: target.int_in("percent", "Percent")?.unwrap_or(0),
                value,
            });
        }
        spreads.push(spread);
    }
    Ok(spreads)
}
