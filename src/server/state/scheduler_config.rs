//! The scheduler configuration: one record, written whole by `operator scheduler set-config`
//! (and by a new leader when the state has none), optionally check-and-set against its modify
//! index. Nomad: `state_store.go` `SchedulerSetConfig`, `SchedulerCASConfig`.

use std::sync::Arc;

use super::error::ApplyError;
use super::tables::Tables;
use crate::structs::SchedulerConfiguration;

impl Tables {
    /// Stores `config` at `index`, keeping the stored one's create index; with `cas`, only if
    /// the stored configuration's modify index is `cas` (a missing one never matches, as in
    /// Nomad).
    pub(super) fn apply_scheduler_set_config(
        &mut self,
        index: u64,
        config: &SchedulerConfiguration,
        cas: Option<u64>,
    ) -> Result<(), ApplyError> {
        let stored = self.scheduler_config.as_deref();
        if let Some(expected) = cas {
            let actual = stored.map(|stored| stored.modify_index);
            if actual != Some(expected) {
                return Err(ApplyError::SchedulerConfigCas { expected, actual });
            }
        }
        let mut config = config.clone();
        config.create_index = stored.map_or(index, |stored| stored.create_index);
        config.modify_index = index;
        self.scheduler_config = Some(Arc::new(config));
        Ok(())
    }
}
