//! Spread blocks: balance a group's allocations over the values of a node attribute.
//!
//! With targets (`target "us-east" { percent = 70 }`) each value should hold its share of the
//! group's count; a value not named shares what the targets leave (the implicit target `*`), or
//! gets the maximum penalty if they leave nothing. Without targets the spread is even.
//!
//! Nomad: `scheduler/spread.go`. One deliberate difference: Nomad's even-spread boost is
//! `(min - current) / min`, which shrinks as counts grow and can be outweighed by bin packing. Here
//! the boost is +1 for a value at the minimum count (or not used yet) and -1 otherwise, so an even
//! spread stays balanced within one allocation whatever the node sizes.

use std::collections::HashMap;
use std::sync::Arc;

use super::feasible::constraint::resolve_target;
use super::proposed::ProposedAllocs;
use crate::structs::{Job, Node, NodeId, TaskGroup};

const IMPLICIT_TARGET: &str = "*";

#[derive(Clone, Debug)]
struct SpreadState {
    attribute: String,
    weight: f64,
    /// Desired allocations per value; empty for an even spread.
    desired: HashMap<String, f64>,
    counts: HashMap<String, u64>,
}

#[derive(Clone, Debug, Default)]
pub struct SpreadScorer {
    task_group: String,
    spreads: Vec<SpreadState>,
    sum_weights: f64,
}

impl SpreadScorer {
    pub fn new(job: &Job, group: &TaskGroup) -> Self {
        let count = f64::from(group.count.max(0));
        let spreads: Vec<SpreadState> = job
            .spreads
            .iter()
            .chain(group.spreads.iter())
            .map(|spread| {
                let mut desired = HashMap::new();
                let mut sum_percent = 0u32;
                for target in &spread.spread_target {
                    desired.insert(
                        target.value.clone(),
                        f64::from(target.percent) / 100.0 * count,
                    );
                    sum_percent += u32::from(target.percent);
                }
                if !desired.is_empty() && sum_percent < 100 {
                    desired.insert(
                        IMPLICIT_TARGET.to_owned(),
                        f64::from(100 - sum_percent) / 100.0 * count,
                    );
                }
                SpreadState {
                    attribute: spread.attribute.clone(),
                    weight: f64::from(spread.weight.max(1)),
                    desired,
                    counts: HashMap::new(),
                }
            })
            .collect();
        let sum_weights = spreads.iter().map(|spread| spread.weight).sum();
        Self {
            task_group: group.name.clone(),
            spreads,
            sum_weights,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.spreads.is_empty()
    }

    /// Counts the attribute values of the group's proposed allocations.
    pub fn populate(
        &mut self,
        proposed: &ProposedAllocs,
        node_by_id: &dyn Fn(&NodeId) -> Option<Arc<Node>>,
    ) {
        for spread in &mut self.spreads {
            spread.counts.clear();
        }
        if self.spreads.is_empty() {
            return;
        }
        for (node_id, count) in proposed.nodes_with(Some(&self.task_group)) {
            let Some(node) = node_by_id(node_id) else {
                continue;
            };
            for spread in &mut self.spreads {
                if let Some(value) = resolve_target(&node, &spread.attribute) {
                    *spread.counts.entry(value.to_owned()).or_default() += u64::from(count);
                }
            }
        }
    }

    pub fn record(&mut self, node: &Node) {
        self.adjust(node, true);
    }

    pub fn forget(&mut self, node: &Node) {
        self.adjust(node, false);
    }

    fn adjust(&mut self, node: &Node, add: bool) {
        for spread in &mut self.spreads {
            if let Some(value) = resolve_target(node, &spread.attribute) {
                let count = spread.counts.entry(value.to_owned()).or_default();
                *count = if add {
                    *count + 1
                } else {
                    count.saturating_sub(1)
                };
            }
        }
    }

    /// The node's spread score, `None` when spreading has no opinion.
    pub fn score(&self, node: &Node) -> Option<f64> {
        if self.spreads.is_empty() {
            return None;
        }
        let mut total = 0.0;
        for spread in &self.spreads {
            let share = spread.weight / self.sum_weights;
            let Some(value) = resolve_target(node, &spread.attribute) else {
                total -= share;
                continue;
            };
            let used = spread.counts.get(value).copied().unwrap_or(0);
            if spread.desired.is_empty() {
                total += even_boost(&spread.counts, used) * share;
                continue;
            }
            let desired = spread
                .desired
                .get(value)
                .or_else(|| spread.desired.get(IMPLICIT_TARGET))
                .copied()
                .unwrap_or(0.0);
            if desired <= 0.0 {
                total -= share;
                continue;
            }
            total += ((desired - (used + 1) as f64) / desired) * share;
        }
        (total != 0.0).then_some(total)
    }
}

/// +1 for a value at the minimum count of an uneven distribution (or unused while others are
/// used), -1 otherwise; 0 while nothing is placed.
fn even_boost(counts: &HashMap<String, u64>, used: u64) -> f64 {
    let mut in_use = counts.values().copied().filter(|count| *count > 0);
    let Some(first) = in_use.next() else {
        return 0.0;
    };
    let (min, max) = in_use.fold((first, first), |(min, max), count| {
        (min.min(count), max.max(count))
    });
    if used < min || (used == min && min != max) {
        1.0
    } else {
        -1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::{Spread, SpreadTarget};

    fn node(id: &str, zone: &str) -> Node {
        let mut node = Node {
            id: NodeId::from(id),
            ..Node::default()
        };
        node.meta.insert("zone".to_owned(), zone.to_owned());
        node
    }

    fn group(targets: Vec<SpreadTarget>) -> TaskGroup {
        TaskGroup {
            name: "web".to_owned(),
            count: 10,
            spreads: vec![Spread {
                attribute: "${meta.zone}".to_owned(),
                weight: 100,
                spread_target: targets,
            }],
            ..TaskGroup::default()
        }
    }

    #[test]
    fn even_spread_prefers_the_emptiest_value() {
        let mut scorer = SpreadScorer::new(&Job::default(), &group(Vec::new()));
        let (a, b) = (node("n1", "a"), node("n2", "b"));
        assert_eq!(scorer.score(&a), None);
        scorer.record(&a);
        assert_eq!(scorer.score(&a), Some(-1.0));
        assert_eq!(scorer.score(&b), Some(1.0));
        scorer.record(&b);
        assert_eq!(scorer.score(&a), Some(-1.0));
        scorer.record(&b);
        assert_eq!(scorer.score(&a), Some(1.0));
        assert_eq!(scorer.score(&Node::default()), Some(-1.0));
        scorer.forget(&b);
        assert_eq!(scorer.score(&b), Some(-1.0));
    }

    #[test]
    fn targets_with_an_implicit_remainder() {
        let targets = vec![SpreadTarget {
            value: "a".to_owned(),
            percent: 70,
        }];
        let mut scorer = SpreadScorer::new(&Job::default(), &group(targets));
        let (a, b) = (node("n1", "a"), node("n2", "b"));
        // a wants 7, b (implicit) wants 3.
        assert_eq!(scorer.score(&a), Some(6.0 / 7.0));
        assert_eq!(scorer.score(&b), Some(2.0 / 3.0));
        for _ in 0..7 {
            scorer.record(&a);
        }
        assert!(scorer.score(&a).is_some_and(|score| score < 0.0));
        let full = vec![SpreadTarget {
            value: "a".to_owned(),
            percent: 100,
        }];
        let scorer = SpreadScorer::new(&Job::default(), &group(full));
        assert_eq!(scorer.score(&b), Some(-1.0));
    }
}
