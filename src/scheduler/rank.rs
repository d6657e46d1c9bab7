//! Ranking: how good a feasible node is for one more allocation.
//!
//! Every scorer yields a value in -1..=1; a node's final score is the mean of the scores that
//! apply to it (bin packing always, the others only when they have something to say), as Nomad's
//! `ScoreNormalizationIterator` computes it.
//!
//! - fit: bin packing (Nomad's default: fuller nodes score higher) or the `spread` algorithm
//!   (emptier nodes score higher), from Nomad's `ScoreFitBinPack` / `ScoreFitSpread`;
//! - job anti-affinity: `-(collisions + 1) / count` for allocations of the same group already there;
//! - node reschedule penalty: -1 on the node a rescheduled allocation failed on;
//! - node affinity: the weights of the affinities the node meets over the sum of all weights;
//! - allocation spread: see `spread.rs`;
//! - devices: the device affinities the chosen device groups meet (`feasible/device.rs`).
//!
//! Nomad: `scheduler/rank.go`, `nomad/structs/funcs.go` `ScoreFitBinPack`.

use super::feasible::constraint::CompiledConstraint;
use super::usage::NodeCapacity;
use crate::structs::{Job, Node, NodeId, NodeScoreMeta, Scores, TaskGroup};

/// The cluster-wide placement algorithm (Nomad's `SchedulerAlgorithm`), part of the scheduler
/// configuration the operator sets.
pub use crate::structs::SchedulerAlgorithm;

/// Nomad's `binPackingMaxFitScore`.
pub const MAX_FIT_SCORE: f64 = 18.0;

/// The fit of a node once it holds `cpu` MHz and `memory_mb` in total, normalised to 0..=1.
pub fn fit_score(
    algorithm: SchedulerAlgorithm,
    capacity: &NodeCapacity,
    cpu: i64,
    memory_mb: i64,
) -> f64 {
    let free = |used: i64, total: i64| {
        if total <= 0 {
            0.0
        } else {
            1.0 - used as f64 / total as f64
        }
    };
    let total =
        10f64.powf(free(cpu, capacity.cpu)) + 10f64.powf(free(memory_mb, capacity.memory_mb));
    let score = match algorithm {
        SchedulerAlgorithm::BinPack => 20.0 - total,
        SchedulerAlgorithm::Spread => total - 2.0,
    };
    score.clamp(0.0, MAX_FIT_SCORE) / MAX_FIT_SCORE
}

/// Nomad's `JobAntiAffinityIterator`: `None` when the node has none of the group's allocations.
pub fn anti_affinity_score(collisions: u32, desired_count: u32) -> Option<f64> {
    (collisions > 0).then(|| -f64::from(collisions + 1) / f64::from(desired_count.max(1)))
}

/// The affinities of a job, its group and the group's tasks.
#[derive(Clone, Debug, Default)]
pub struct AffinityScorer {
    affinities: Vec<(CompiledConstraint, f64)>,
    sum_weights: f64,
}

impl AffinityScorer {
    pub fn new(job: &Job, group: &TaskGroup) -> Self {
        let affinities: Vec<(CompiledConstraint, f64)> = job
            .affinities
            .iter()
            .chain(group.affinities.iter())
            .chain(group.tasks.iter().flat_map(|task| task.affinities.iter()))
            .map(|affinity| {
                let constraint = crate::structs::Constraint {
                    l_target: affinity.l_target.clone(),
                    r_target: affinity.r_target.clone(),
                    operand: affinity.operand.clone(),
                };
                (
                    CompiledConstraint::new(&constraint),
                    f64::from(affinity.weight),
                )
            })
            .collect();
        let sum_weights = affinities.iter().map(|(_, weight)| weight.abs()).sum();
        Self {
            affinities,
            sum_weights,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.affinities.is_empty()
    }

    pub fn score(&self, node: &Node) -> Option<f64> {
        if self.affinities.is_empty() || self.sum_weights == 0.0 {
            return None;
        }
        let total: f64 = self
            .affinities
            .iter()
            .filter(|(constraint, _)| constraint.is_satisfied_by(node))
            .map(|(_, weight)| weight)
            .sum();
        (total != 0.0).then(|| total / self.sum_weights)
    }
}

/// The scores of one node for one placement.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScoreParts {
    pub fit: f64,
    pub anti_affinity: Option<f64>,
    pub reschedule_penalty: Option<f64>,
    pub affinity: Option<f64>,
    pub spread: Option<f64>,
    pub devices: Option<f64>,
}

impl ScoreParts {
    pub fn final_score(&self) -> f64 {
        let extras = [
            self.anti_affinity,
            self.reschedule_penalty,
            self.affinity,
            self.spread,
            self.devices,
        ];
        let (sum, count) = extras
            .iter()
            .flatten()
            .fold((self.fit, 1.0), |(sum, count), score| {
                (sum + score, count + 1.0)
            });
        sum / count
    }

    /// The entry of `AllocMetric.ScoreMetaData`, with Nomad's scorer names.
    pub fn to_meta(&self, node_id: &NodeId) -> NodeScoreMeta {
        let mut scores = Scores::default();
        scores.insert("binpack", self.fit);
        for (name, score) in [
            ("job-anti-affinity", self.anti_affinity),
            ("node-reschedule-penalty", self.reschedule_penalty),
            ("node-affinity", self.affinity),
            ("allocation-spread", self.spread),
            ("devices", self.devices),
        ] {
            if let Some(score) = score {
                scores.insert(name, score);
            }
        }
        NodeScoreMeta {
            node_id: node_id.clone(),
            scores,
            norm_score: self.final_score(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity() -> NodeCapacity {
        NodeCapacity {
            cpu: 4000,
            memory_mb: 8192,
            ..NodeCapacity::default()
        }
    }

    #[test]
    fn bin_packing_prefers_fuller_nodes_and_spread_emptier_ones() {
        let empty = fit_score(SchedulerAlgorithm::BinPack, &capacity(), 0, 0);
        let half = fit_score(SchedulerAlgorithm::BinPack, &capacity(), 2000, 4096);
        let full = fit_score(SchedulerAlgorithm::BinPack, &capacity(), 4000, 8192);
        assert_eq!(empty, 0.0);
        assert!(half > empty && full > half);
        assert_eq!(full, 1.0);
        let spread_empty = fit_score(SchedulerAlgorithm::Spread, &capacity(), 0, 0);
        let spread_half = fit_score(SchedulerAlgorithm::Spread, &capacity(), 2000, 4096);
        assert_eq!(spread_empty, 1.0);
        assert!(spread_half < spread_empty);
        assert_eq!(
            fit_score(SchedulerAlgorithm::BinPack, &NodeCapacity::default(), 1, 1),
            1.0
        );
    }

    #[test]
    fn final_score_is_the_mean_of_applicable_scores() {
        let parts = ScoreParts {
            fit: 0.5,
            anti_affinity: anti_affinity_score(1, 4),
            ..ScoreParts::default()
        };
        assert_eq!(parts.anti_affinity, Some(-0.5));
        assert_eq!(parts.final_score(), 0.0);
        assert_eq!(anti_affinity_score(0, 4), None);
        let meta = parts.to_meta(&NodeId::from("n1"));
        assert_eq!(meta.scores.len(), 2);
        assert_eq!(meta.norm_score, 0.0);
    }

    #[test]
    fn affinity_is_weighted() {
        let job = Job {
            affinities: vec![
                crate::structs::Affinity {
                    l_target: "${meta.rack}".to_owned(),
                    operand: "=".to_owned(),
                    r_target: "r1".to_owned(),
                    weight: 50,
                },
                crate::structs::Affinity {
                    l_target: "${node.class}".to_owned(),
                    operand: "=".to_owned(),
                    r_target: "small".to_owned(),
                    weight: -50,
                },
            ],
            ..Job::default()
        };
        let scorer = AffinityScorer::new(&job, &TaskGroup::default());
        let mut node = Node::default();
        assert_eq!(scorer.score(&node), None);
        node.meta.insert("rack".to_owned(), "r1".to_owned());
        assert_eq!(scorer.score(&node), Some(0.5));
        node.node_class = "small".to_owned();
        assert_eq!(scorer.score(&node), None);
        node.meta.clear();
        assert_eq!(scorer.score(&node), Some(-0.5));
    }
}
