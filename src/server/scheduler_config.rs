//! The scheduler configuration as the servers serve and enforce it: read from the state (the
//! agent's `server { default_scheduler_config { ... } }` until one is stored, which a new leader
//! does at once), written through Raft, with an optional check-and-set.
//!
//! What acts on it: the workers take the algorithm from the state snapshot of each evaluation
//! (`worker.rs`); the leader's broker hands out no evaluation while `PauseEvalBroker` is set (the
//! apply that changes it pauses the broker before the write returns, and a new leader reads it);
//! job registration, dispatch and scaling are refused while `RejectJobRegistration` is set. Preemption and memory
//! oversubscription are not implemented: those flags are stored and shown only.
//!
//! Nomad: `nomad/operator_endpoint.go` `SchedulerGetConfiguration`/`SchedulerSetConfiguration`,
//! `nomad/leader.go` `getOrCreateSchedulerConfig`, `nomad/job_endpoint.go` (the refusal).

use super::Server;
use super::endpoints::ServerError;
use super::raft::Command;
use super::state::{ApplyError, StateSnapshot};
use crate::structs::SchedulerConfiguration;

/// Nomad's refusal while `RejectJobRegistration` is set (`structs.ErrJobRegistrationDisabled`),
/// answered with a 403.
pub const JOB_REGISTRATION_DISABLED: &str =
    "Job registration, dispatch, and scale are disabled by the scheduler configuration";

impl Server {
    /// The configuration in force in `snapshot`: the stored one, else the agent's default.
    pub fn scheduler_config_in(&self, snapshot: &StateSnapshot) -> SchedulerConfiguration {
        snapshot.scheduler_config().map_or_else(
            || self.options.default_scheduler_config.clone(),
            |config| (*config).clone(),
        )
    }

    /// The configuration in force now.
    pub fn scheduler_config(&self) -> SchedulerConfiguration {
        self.scheduler_config_in(&self.store.snapshot())
    }

    /// Stores `config`; with `cas`, only if the stored configuration's modify index is `cas`.
    /// Returns whether it was stored, and the index of the write.
    pub async fn scheduler_set_config(
        &self,
        config: SchedulerConfiguration,
        cas: Option<u64>,
    ) -> Result<(bool, u64), ServerError> {
        let response = self
            .write(Command::SchedulerSetConfig { config, cas })
            .await?;
        match response.error {
            None => Ok((true, response.index)),
            Some(ApplyError::SchedulerConfigCas { .. }) => Ok((false, response.index)),
            Some(error) => Err(ServerError::State(error)),
        }
    }

    /// Refuses job registration, dispatch and scaling while the configuration says so.
    pub(super) fn check_job_registration_allowed(&self) -> Result<(), ServerError> {
        if self.scheduler_config().reject_job_registration {
            return Err(ServerError::Forbidden(JOB_REGISTRATION_DISABLED.to_owned()));
        }
        Ok(())
    }

    /// On gaining leadership: stores the agent's default configuration if the state has none.
    pub(super) async fn ensure_scheduler_config(&self) {
        if self.store.snapshot().scheduler_config().is_some() {
            return;
        }
        let config = self.options.default_scheduler_config.clone();
        if let Err(error) = self
            .write(Command::SchedulerSetConfig { config, cas: None })
            .await
        {
            tracing::warn!(error = %error, "storing the default scheduler configuration failed");
        }
    }
}
