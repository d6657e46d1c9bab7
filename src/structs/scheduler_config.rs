//! The cluster-wide scheduler configuration (`operator scheduler get-config` / `set-config`),
//! stored through Raft.
//!
//! What acts on it: the scheduler workers read the algorithm from the state for each evaluation,
//! job registration is refused while `RejectJobRegistration` is set, and the leader's broker
//! hands out no evaluation while `PauseEvalBroker` is set. Preemption is not implemented in caravan's scheduler: the
//! `PreemptionConfig` flags and `MemoryOversubscriptionEnabled` are stored and shown, nothing
//! more.
//!
//! Nomad: `nomad/structs/operator.go` `SchedulerConfiguration`, `PreemptionConfig`.

use serde::{Deserialize, Serialize};

/// How the scheduler ranks the nodes that can run an allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchedulerAlgorithm {
    /// Fuller nodes first (Nomad's default); an empty value means this one, as in Nomad.
    #[default]
    #[serde(rename = "binpack", alias = "")]
    BinPack,
    /// Emptier nodes first.
    #[serde(rename = "spread")]
    Spread,
}

impl SchedulerAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BinPack => "binpack",
            Self::Spread => "spread",
        }
    }
}

impl std::fmt::Display for SchedulerAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SchedulerAlgorithm {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "binpack" | "" => Ok(Self::BinPack),
            "spread" => Ok(Self::Spread),
            other => Err(format!("invalid scheduler algorithm: {other}")),
        }
    }
}

/// Which schedulers may preempt lower-priority allocations. Stored and shown only: caravan's
/// scheduler does not preempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PreemptionConfig {
    pub system_scheduler_enabled: bool,
    #[serde(rename = "SysBatchSchedulerEnabled")]
    pub sysbatch_scheduler_enabled: bool,
    pub batch_scheduler_enabled: bool,
    pub service_scheduler_enabled: bool,
}

impl Default for PreemptionConfig {
    /// Nomad's defaults: only system jobs preempt.
    fn default() -> Self {
        Self {
            system_scheduler_enabled: true,
            sysbatch_scheduler_enabled: false,
            batch_scheduler_enabled: false,
            service_scheduler_enabled: false,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SchedulerConfiguration {
    pub scheduler_algorithm: SchedulerAlgorithm,
    pub preemption_config: PreemptionConfig,
    /// Stored and shown only: caravan does not oversubscribe memory.
    pub memory_oversubscription_enabled: bool,
    /// Job registration, dispatch and scaling are refused while set.
    pub reject_job_registration: bool,
    /// The broker hands the scheduler workers no evaluation while set.
    pub pause_eval_broker: bool,
    pub create_index: u64,
    pub modify_index: u64,
}
