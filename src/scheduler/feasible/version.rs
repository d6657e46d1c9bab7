//! Version constraints for the `version` and `semver` operators: `">= 1.2, < 2"`, `"~> 1.4"`.
//!
//! `version` follows hashicorp/go-version: any number of numeric segments (missing ones are zero),
//! an optional `v` prefix, a `-prerelease` and `+metadata`. `semver` is stricter about
//! prereleases, as node-semver and Nomad's `semver` operator: a prerelease version only satisfies a
//! constraint whose own version is a prerelease of the same major.minor.patch.
//!
//! Nomad: `scheduler/feasible.go` `checkVersionMatch`, `helper/constraints/semver`.

use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    segments: Vec<u64>,
    prerelease: Vec<String>,
}

impl Version {
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let text = text.split_once('+').map_or(text, |(version, _)| version);
        let (numbers, prerelease) = match text.split_once('-') {
            Some((numbers, prerelease)) if !prerelease.is_empty() => (numbers, prerelease),
            Some(_) => return None,
            None => (text, ""),
        };
        let segments = numbers
            .split('.')
            .map(|segment| segment.parse::<u64>().ok())
            .collect::<Option<Vec<_>>>()?;
        if segments.is_empty() {
            return None;
        }
        let prerelease = if prerelease.is_empty() {
            Vec::new()
        } else {
            prerelease.split('.').map(str::to_owned).collect()
        };
        Some(Self {
            segments,
            prerelease,
        })
    }

    fn segment(&self, idx: usize) -> u64 {
        self.segments.get(idx).copied().unwrap_or(0)
    }

    fn same_release(&self, other: &Self) -> bool {
        let len = self.segments.len().max(other.segments.len()).max(3);
        (0..len).all(|idx| self.segment(idx) == other.segment(idx))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.segments.len().max(other.segments.len());
        for idx in 0..len {
            match self.segment(idx).cmp(&other.segment(idx)) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        match (self.prerelease.is_empty(), other.prerelease.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => compare_prerelease(&self.prerelease, &other.prerelease),
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn compare_prerelease(left: &[String], right: &[String]) -> Ordering {
    for (left, right) in left.iter().zip(right) {
        let ordering = match (left.parse::<u64>(), right.parse::<u64>()) {
            (Ok(left), Ok(right)) => left.cmp(&right),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(_), Err(_)) => left.cmp(right),
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    left.len().cmp(&right.len())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Equal,
    NotEqual,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    Pessimistic,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Clause {
    op: Op,
    version: Version,
}

/// Which flavour of matching: go-version's or semver's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionFlavor {
    Version,
    Semver,
}

/// A comma-separated list of clauses, all of which must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionConstraint {
    clauses: Vec<Clause>,
    flavor: VersionFlavor,
}

impl VersionConstraint {
    pub fn parse(text: &str, flavor: VersionFlavor) -> Option<Self> {
        let mut clauses = Vec::new();
        for part in text.split(',').map(str::trim) {
            let (op, rest) = [
                (">=", Op::GreaterEqual),
                ("<=", Op::LessEqual),
                ("!=", Op::NotEqual),
                ("~>", Op::Pessimistic),
                ("=", Op::Equal),
                (">", Op::Greater),
                ("<", Op::Less),
            ]
            .into_iter()
            .find_map(|(prefix, op)| part.strip_prefix(prefix).map(|rest| (op, rest)))
            .unwrap_or((Op::Equal, part));
            let version = Version::parse(rest)?;
            if flavor == VersionFlavor::Semver && version.segments.len() > 3 {
                return None;
            }
            clauses.push(Clause { op, version });
        }
        if clauses.is_empty() {
            return None;
        }
        Some(Self { clauses, flavor })
    }

    pub fn matches(&self, version: &Version) -> bool {
        if self.flavor == VersionFlavor::Semver && !version.prerelease.is_empty() {
            let allowed = self.clauses.iter().any(|clause| {
                !clause.version.prerelease.is_empty() && clause.version.same_release(version)
            });
            if !allowed {
                return false;
            }
        }
        self.clauses.iter().all(|clause| clause.matches(version))
    }
}

impl Clause {
    fn matches(&self, version: &Version) -> bool {
        let ordering = version.cmp(&self.version);
        match self.op {
            Op::Equal => ordering == Ordering::Equal,
            Op::NotEqual => ordering != Ordering::Equal,
            Op::Greater => ordering == Ordering::Greater,
            Op::GreaterEqual => ordering != Ordering::Less,
            Op::Less => ordering == Ordering::Less,
            Op::LessEqual => ordering != Ordering::Greater,
            Op::Pessimistic => {
                // "~> 1.2.3" means >= 1.2.3 and < 1.3; "~> 1.2" means >= 1.2 and < 2.
                if ordering == Ordering::Less {
                    return false;
                }
                let fixed = self.version.segments.len().saturating_sub(1).max(1);
                (0..fixed - 1).all(|idx| version.segment(idx) == self.version.segment(idx))
                    && version.segment(fixed - 1) == self.version.segment(fixed - 1)
            }
        }
    }
}

/// True if `version` satisfies `constraint`; unparsable input never matches.
pub fn version_matches(version: &str, constraint: &str, flavor: VersionFlavor) -> bool {
    match (
        Version::parse(version),
        VersionConstraint::parse(constraint, flavor),
    ) {
        (Some(version), Some(constraint)) => constraint.matches(&version),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_version_constraints() {
        let cases = [
            ("1.2.3", ">= 1.2, < 2", true),
            ("2.0.0", ">= 1.2, < 2", false),
            ("1.2", "= 1.2.0", true),
            ("v1.7.0", "> 1.6", true),
            ("1.4.9", "~> 1.4.2", true),
            ("1.5.0", "~> 1.4.2", false),
            ("1.9", "~> 1.4", true),
            ("2.0", "~> 1.4", false),
            ("1.2.3-beta", "< 1.2.3", true),
            ("1.2.3-beta.2", "> 1.2.3-beta.1", true),
            ("1.2.3", "!= 1.2.3", false),
            ("garbage", ">= 1", false),
            ("1.0", "nonsense", false),
        ];
        for (version, constraint, expected) in cases {
            assert_eq!(
                version_matches(version, constraint, VersionFlavor::Version),
                expected,
                "{version} {constraint}"
            );
        }
    }

    #[test]
    fn semver_is_strict_about_prereleases() {
        assert!(!version_matches(
            "1.3.0-beta",
            ">= 1.2.0",
            VersionFlavor::Semver
        ));
        assert!(version_matches(
            "1.3.0-beta.2",
            ">= 1.3.0-beta.1",
            VersionFlavor::Semver
        ));
        assert!(version_matches("1.3.0", ">= 1.2.0", VersionFlavor::Semver));
        assert!(!version_matches(
            "1.2.3.4",
            ">= 1.2.0.1",
            VersionFlavor::Semver
        ));
    }
}
