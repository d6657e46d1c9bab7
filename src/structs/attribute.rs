//! A device attribute: a typed value with an optional unit (`80 GiB`, `350 W`, `1980 MHz`).
//!
//! Values of the same base unit compare across units, so a constraint `memory >= 40 GiB` holds
//! for a device reporting `{"Int": 81920, "Unit": "MiB"}`. Integers with integer multipliers are
//! compared exactly (in `i128`); anything involving a float or a fractional unit (`mW`) in `f64`.
//! Values of different bases, or one with a unit and one without, do not compare at all.
//!
//! Nomad: `plugins/shared/structs/attribute.go` (`ParseAttribute`, `Compare`, `Comparable`),
//! `plugins/shared/structs/units.go`.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One attribute value as Nomad's API writes it: exactly one of the values is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Attribute {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub int: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bool: Option<bool>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub unit: String,
}

/// The quantity a unit measures; only values of one base compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UnitBase {
    Byte,
    ByteRate,
    Hertz,
    Watt,
}

/// A unit: its name, base, and the multiplier to the base as `numerator / denominator`.
struct Unit {
    name: &'static str,
    base: UnitBase,
    numerator: i128,
    denominator: i128,
}

const fn unit(name: &'static str, base: UnitBase, numerator: i128, denominator: i128) -> Unit {
    Unit {
        name,
        base,
        numerator,
        denominator,
    }
}

const KB: i128 = 1000;
const KIB: i128 = 1024;

/// Nomad's unit table; the longest names first, so suffix matching finds `MiB/s` before `B/s`.
static UNITS: &[Unit] = &[
    unit("KiB/s", UnitBase::ByteRate, KIB, 1),
    unit("MiB/s", UnitBase::ByteRate, KIB.pow(2), 1),
    unit("GiB/s", UnitBase::ByteRate, KIB.pow(3), 1),
    unit("TiB/s", UnitBase::ByteRate, KIB.pow(4), 1),
    unit("PiB/s", UnitBase::ByteRate, KIB.pow(5), 1),
    unit("EiB/s", UnitBase::ByteRate, KIB.pow(6), 1),
    unit("kB/s", UnitBase::ByteRate, KB, 1),
    unit("KB/s", UnitBase::ByteRate, KB, 1),
    unit("MB/s", UnitBase::ByteRate, KB.pow(2), 1),
    unit("GB/s", UnitBase::ByteRate, KB.pow(3), 1),
    unit("TB/s", UnitBase::ByteRate, KB.pow(4), 1),
    unit("PB/s", UnitBase::ByteRate, KB.pow(5), 1),
    unit("EB/s", UnitBase::ByteRate, KB.pow(6), 1),
    unit("KiB", UnitBase::Byte, KIB, 1),
    unit("MiB", UnitBase::Byte, KIB.pow(2), 1),
    unit("GiB", UnitBase::Byte, KIB.pow(3), 1),
    unit("TiB", UnitBase::Byte, KIB.pow(4), 1),
    unit("PiB", UnitBase::Byte, KIB.pow(5), 1),
    unit("EiB", UnitBase::Byte, KIB.pow(6), 1),
    unit("B/s", UnitBase::ByteRate, 1, 1),
    unit("MHz", UnitBase::Hertz, KB.pow(2), 1),
    unit("GHz", UnitBase::Hertz, KB.pow(3), 1),
    unit("kB", UnitBase::Byte, KB, 1),
    unit("KB", UnitBase::Byte, KB, 1),
    unit("MB", UnitBase::Byte, KB.pow(2), 1),
    unit("GB", UnitBase::Byte, KB.pow(3), 1),
    unit("TB", UnitBase::Byte, KB.pow(4), 1),
    unit("PB", UnitBase::Byte, KB.pow(5), 1),
    unit("EB", UnitBase::Byte, KB.pow(6), 1),
    unit("mW", UnitBase::Watt, 1, 1000),
    unit("kW", UnitBase::Watt, KB, 1),
    unit("MW", UnitBase::Watt, KB.pow(2), 1),
    unit("GW", UnitBase::Watt, KB.pow(3), 1),
    unit("B", UnitBase::Byte, 1, 1),
    unit("W", UnitBase::Watt, 1, 1),
];

fn lookup_unit(name: &str) -> Option<&'static Unit> {
    UNITS.iter().find(|unit| unit.name == name)
}

impl Attribute {
    pub fn int(value: i64, unit: &str) -> Self {
        Self {
            int: Some(value),
            unit: unit.to_owned(),
            ..Self::default()
        }
    }

    pub fn float(value: f64, unit: &str) -> Self {
        Self {
            float: Some(value),
            unit: unit.to_owned(),
            ..Self::default()
        }
    }

    pub fn string(value: &str) -> Self {
        Self {
            string: Some(value.to_owned()),
            ..Self::default()
        }
    }

    pub fn bool(value: bool) -> Self {
        Self {
            bool: Some(value),
            ..Self::default()
        }
    }

    /// Reads `"80 GiB"`, `"1.5GHz"`, `"12"`, `"true"` or any other text, as Nomad's
    /// `ParseAttribute`: a known unit suffix after a number, then int, float, bool, string.
    pub fn parse(input: &str) -> Self {
        let (numeric, unit) = match UNITS.iter().find(|unit| input.ends_with(unit.name)) {
            Some(unit)
                if input
                    .chars()
                    .last()
                    .is_some_and(|last| last.is_alphabetic() || last == 's') =>
            {
                (input[..input.len() - unit.name.len()].trim(), unit.name)
            }
            _ => (input, ""),
        };
        if let Ok(value) = numeric.parse::<i64>() {
            return Self::int(value, unit);
        }
        if let Ok(value) = numeric.parse::<f64>()
            && value.is_finite()
            && !numeric.is_empty()
            && numeric
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
        {
            return Self::float(value, unit);
        }
        match input {
            "true" | "TRUE" | "True" | "1" | "t" | "T" => Self::bool(true),
            "false" | "FALSE" | "False" | "0" | "f" | "F" => Self::bool(false),
            _ => Self::string(input),
        }
    }

    /// The unit, when it is one of Nomad's; an unknown unit makes the value incomparable.
    fn typed_unit(&self) -> Result<Option<&'static Unit>, ()> {
        if self.unit.is_empty() {
            return Ok(None);
        }
        lookup_unit(&self.unit).map(Some).ok_or(())
    }

    /// Orders two attributes, or `None` when they do not compare (Nomad's `Compare` with
    /// `Comparable`): different types, different unit bases, a unit on one side only.
    pub fn compare(&self, other: &Self) -> Option<Ordering> {
        let (Ok(left_unit), Ok(right_unit)) = (self.typed_unit(), other.typed_unit()) else {
            return None;
        };
        match (left_unit, right_unit) {
            (Some(left), Some(right)) if left.base != right.base => return None,
            (Some(_), None) | (None, Some(_)) => return None,
            _ => {}
        }
        if let (Some(left), Some(right)) = (&self.string, &other.string) {
            return Some(left.cmp(right));
        }
        if let (Some(left), Some(right)) = (self.bool, other.bool) {
            return (left == right).then_some(Ordering::Equal);
        }
        let scale = |unit: Option<&Unit>| unit.map_or((1, 1), |u| (u.numerator, u.denominator));
        let (left_num, left_den) = scale(left_unit);
        let (right_num, right_den) = scale(right_unit);
        match (self.int, other.int) {
            // a·ln/ld vs b·rn/rd, exactly: a·ln·rd vs b·rn·ld (at most 2^63 · 2^60 · 10^3).
            (Some(left), Some(right)) => Some(
                (i128::from(left) * left_num * right_den)
                    .cmp(&(i128::from(right) * right_num * left_den)),
            ),
            _ => {
                let left = self.number()? * left_num as f64 / left_den as f64;
                let right = other.number()? * right_num as f64 / right_den as f64;
                left.partial_cmp(&right)
            }
        }
    }

    fn number(&self) -> Option<f64> {
        self.float.or(self.int.map(|value| value as f64))
    }
}

/// The value as Nomad's `Attribute.GoString` shows it: `"80 GiB"`, `"true"`, `"A100"`.
impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = match (self.float, self.int, &self.string, self.bool) {
            (Some(value), ..) => format!("{value:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned(),
            (None, Some(value), ..) => value.to_string(),
            (None, None, Some(value), _) => value.clone(),
            (None, None, None, Some(value)) => value.to_string(),
            (None, None, None, None) => String::new(),
        };
        if self.unit.is_empty() {
            f.write_str(&value)
        } else {
            write!(f, "{value} {}", self.unit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_with_units_bools_and_text() {
        assert_eq!(Attribute::parse("80 GiB"), Attribute::int(80, "GiB"));
        assert_eq!(Attribute::parse("81920MiB"), Attribute::int(81920, "MiB"));
        assert_eq!(Attribute::parse("1.5 GHz"), Attribute::float(1.5, "GHz"));
        assert_eq!(Attribute::parse("700 W"), Attribute::int(700, "W"));
        assert_eq!(Attribute::parse("10 MB/s"), Attribute::int(10, "MB/s"));
        assert_eq!(Attribute::parse("12"), Attribute::int(12, ""));
        assert_eq!(Attribute::parse("true"), Attribute::bool(true));
        assert_eq!(Attribute::parse("H200"), Attribute::string("H200"));
        assert_eq!(
            Attribute::parse("550.54.15"),
            Attribute::string("550.54.15")
        );
        assert_eq!(Attribute::parse("GiB"), Attribute::string("GiB"));
        assert_eq!(Attribute::parse(""), Attribute::string(""));
        assert_eq!(Attribute::parse("inf"), Attribute::string("inf"));
    }

    #[test]
    fn compares_across_units_of_one_base() {
        let check =
            |left: &str, right: &str| Attribute::parse(left).compare(&Attribute::parse(right));
        assert_eq!(check("40 GiB", "81920 MiB"), Some(Ordering::Less));
        assert_eq!(check("80 GiB", "81920 MiB"), Some(Ordering::Equal));
        assert_eq!(check("81920 MiB", "40 GiB"), Some(Ordering::Greater));
        assert_eq!(check("1 GB", "1 GiB"), Some(Ordering::Less));
        assert_eq!(check("1.5 GHz", "1500 MHz"), Some(Ordering::Equal));
        assert_eq!(check("1500 mW", "1 W"), Some(Ordering::Greater));
        assert_eq!(
            check("9223372036854775807 EiB", "1 B"),
            Some(Ordering::Greater)
        );
        assert_eq!(check("A100", "H100"), Some(Ordering::Less));
        assert_eq!(check("12", "9"), Some(Ordering::Greater));
        assert_eq!(check("true", "true"), Some(Ordering::Equal));
        // Nothing to compare: other base, a unit on one side only, other types.
        assert_eq!(check("1 GiB", "1 GHz"), None);
        assert_eq!(check("1 GiB", "1024"), None);
        assert_eq!(check("1 GiB", "A100"), None);
        assert_eq!(check("true", "false"), None);
        assert_eq!(
            Attribute::int(1, "furlong").compare(&Attribute::int(1, "furlong")),
            None
        );
    }

    #[test]
    fn shows_value_and_unit() {
        assert_eq!(Attribute::int(81920, "MiB").to_string(), "81920 MiB");
        assert_eq!(Attribute::float(1.5, "GHz").to_string(), "1.5 GHz");
        assert_eq!(Attribute::string("H200").to_string(), "H200");
        assert_eq!(Attribute::bool(false).to_string(), "false");
    }

    #[test]
    fn json_leaves_out_what_is_unset() {
        let json = serde_json::to_string(&Attribute::int(81920, "MiB")).expect("encodes");
        assert_eq!(json, r#"{"Int":81920,"Unit":"MiB"}"#);
        let back: Attribute = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back, Attribute::int(81920, "MiB"));
    }
}
