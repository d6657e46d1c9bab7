//! A placement's scores by scorer name: Nomad's `NodeScoreMeta.Scores` map.
//!
//! Every placement keeps the scores of its best few nodes, so a million allocations hold five
//! million of these. A placement has at most five scorers, so the scores are a short list sorted
//! by name (a B-tree map's first node alone costs hundreds of bytes) and the scheduler's names are
//! static strings. On the wire it is the JSON object Nomad sends.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scores(Vec<(Cow<'static, str>, f64)>);

impl Scores {
    /// Sets the score of `name`, replacing any earlier one.
    pub fn insert(&mut self, name: impl Into<Cow<'static, str>>, score: f64) {
        let name = name.into();
        match self
            .0
            .binary_search_by(|(existing, _)| existing.as_ref().cmp(&name))
        {
            Ok(at) => self.0[at].1 = score,
            Err(at) => self.0.insert(at, (name, score)),
        }
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.0
            .binary_search_by(|(existing, _)| existing.as_ref().cmp(name))
            .ok()
            .map(|at| self.0[at].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scores in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0.iter().map(|(name, score)| (name.as_ref(), *score))
    }
}

impl Serialize for Scores {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Scores {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let scores = BTreeMap::<String, f64>::deserialize(deserializer)?;
        Ok(Self(
            scores
                .into_iter()
                .map(|(name, score)| (Cow::Owned(name), score))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_keeps_names_sorted_and_unique() {
        let mut scores = Scores::default();
        scores.insert("job-anti-affinity", -0.5);
        scores.insert("binpack", 0.75);
        scores.insert("binpack", 0.5);
        assert_eq!(scores.len(), 2);
        assert_eq!(scores.get("binpack"), Some(0.5));
        assert!(!scores.contains_key("node-affinity"));
        let names: Vec<&str> = scores.iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["binpack", "job-anti-affinity"]);
    }

    #[test]
    fn reads_and_writes_nomads_json_object() -> serde_json::Result<()> {
        let json = r#"{"binpack":0.25,"allocation-spread":1.0}"#;
        let scores: Scores = serde_json::from_str(json)?;
        assert_eq!(scores.get("allocation-spread"), Some(1.0));
        assert_eq!(
            serde_json::to_string(&scores)?,
            r#"{"allocation-spread":1.0,"binpack":0.25}"#
        );
        Ok(())
    }
}
