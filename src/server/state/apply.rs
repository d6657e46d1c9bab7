//! Applying a [`Command`] to the tables: the dispatch, and what an apply tells the rest of the
//! server.
//!
//! Invariant: deterministic. The only inputs are the tables, the Raft index and the command.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::events::Event;
use super::tables::{JobKey, Tables};
use crate::server::raft::{Command, CommandResponse};
use crate::structs::{Evaluation, Node, NodeId, SchedulerConfiguration};

/// What an apply changed that the leader's machinery reacts to.
#[derive(Debug, Default)]
pub struct ApplyEffects {
    /// The Raft index of the apply.
    pub index: u64,
    /// Whether anyone listens to events; when not, none are recorded.
    pub(super) want_events: bool,
    pub events: Vec<Event>,
    /// Evaluations written by this command, as stored (for the broker and blocked evals).
    pub evals: Vec<Arc<Evaluation>>,
    /// Capacity may have freed or appeared: blocked evaluations should be retried.
    pub capacity_changed: bool,
    /// Nodes written by this command (heartbeat timers follow them).
    pub nodes: Vec<Arc<Node>>,
    /// The scheduler configuration, when this command changed it.
    pub scheduler_config: Option<Arc<SchedulerConfiguration>>,
    /// Jobs whose allocations changed: their status is recomputed at the end of the apply.
    pub(super) touched_jobs: BTreeSet<JobKey>,
    /// Nodes whose allocations changed on the servers' side: their clients' watches wake.
    pub alloc_nodes: BTreeSet<NodeId>,
}

impl ApplyEffects {
    pub(super) fn new(want_events: bool) -> Self {
        Self {
            want_events,
            ..Self::default()
        }
    }

    pub(super) fn event(&mut self, make: impl FnOnce() -> Event) {
        if self.want_events {
            self.events.push(make());
        }
    }
}

impl Tables {
    /// Replaces every table with the restored state, each table's index moved to `index` so
    /// that every watch wakes; the leader learns the restored nodes and evaluations.
    fn apply_snapshot_restore(
        &mut self,
        index: u64,
        state: &super::PersistedState,
        effects: &mut ApplyEffects,
    ) {
        *self = state.clone().into_tables();
        let indexes = &mut self.indexes;
        for table_index in [
            &mut indexes.latest,
            &mut indexes.jobs,
            &mut indexes.job_summaries,
            &mut indexes.job_versions,
            &mut indexes.nodes,
            &mut indexes.allocs,
            &mut indexes.evals,
            &mut indexes.deployments,
            &mut indexes.services,
            &mut indexes.scaling_events,
            &mut indexes.acl_policies,
            &mut indexes.acl_tokens,
            &mut indexes.namespaces,
            &mut indexes.variables,
            &mut indexes.root_keys,
            &mut indexes.node_pools,
        ] {
            *table_index = (*table_index).max(index);
        }
        effects.nodes.extend(self.nodes.values().cloned());
        effects.evals.extend(self.evals.values().cloned());
        effects.capacity_changed = true;
        effects.alloc_nodes.extend(self.nodes.keys().cloned());
        effects.scheduler_config = Some(self.scheduler_config.clone().unwrap_or_default());
    }

    pub(super) fn apply(
        &mut self,
        index: u64,
        command: &Command,
        effects: &mut ApplyEffects,
    ) -> CommandResponse {
        self.indexes.latest = self.indexes.latest.max(index);
        let result = match command {
            Command::JobRegister {
                job,
                enforce_index,
                eval,
            } => self.apply_job_register(index, job, *enforce_index, eval.as_ref(), effects),
            Command::JobDeregister {
                namespace,
                job_id,
                purge,
                eval,
            } => {
                self.apply_job_deregister(index, namespace, job_id, *purge, eval.as_ref(), effects)
            }
            Command::NodeRegister { node, evals } => {
                self.apply_node_register(index, node, effects);
                self.upsert_evals(index, evals, effects);
                Ok(())
            }
            Command::NodeUpdateStatus {
                node_id,
                status,
                updated_at,
                evals,
            } => self
                .apply_node_update_status(index, node_id, *status, *updated_at, effects)
                .map(|()| self.upsert_evals(index, evals, effects)),
            Command::NodeUpdateEligibility {
                node_id,
                eligibility,
                evals,
            } => self
                .apply_node_update_eligibility(index, node_id, *eligibility, effects)
                .map(|()| self.upsert_evals(index, evals, effects)),
            Command::NodeUpdateDrain {
                node_id,
                drain_strategy,
                mark_eligible,
                evals,
            } => self
                .apply_node_update_drain(
                    index,
                    node_id,
                    drain_strategy.clone(),
                    *mark_eligible,
                    effects,
                )
                .map(|()| self.upsert_evals(index, evals, effects)),
            Command::EvalUpdate { evals } => {
                self.upsert_evals(index, evals, effects);
                Ok(())
            }
            Command::Reap(request) => {
                self.apply_reap(index, request, effects);
                Ok(())
            }
            Command::PlanApply(request) => {
                self.apply_plan(index, request, effects);
                Ok(())
            }
            Command::AllocClientUpdate { updates, evals } => {
                self.apply_alloc_client_update(index, updates, effects);
                self.upsert_evals(index, evals, effects);
                Ok(())
            }
            Command::AllocDesiredTransition { transitions, evals } => {
                self.apply_alloc_desired_transition(index, transitions, effects);
                self.upsert_evals(index, evals, effects);
                Ok(())
            }
            Command::DeploymentUpdate { update, eval } => self
                .apply_deployment_update(index, update, effects)
                .map(|()| {
                    if let Some(eval) = eval {
                        self.upsert_evals(index, std::slice::from_ref(eval), effects);
                    }
                }),
            Command::DeploymentPromote {
                deployment_id,
                groups,
                eval,
            } => self
                .apply_deployment_promote(index, deployment_id, groups, effects)
                .map(|()| {
                    if let Some(eval) = eval {
                        self.upsert_evals(index, std::slice::from_ref(eval), effects);
                    }
                }),
            Command::DeploymentAllocHealth {
                deployment_id,
                healthy,
                unhealthy,
                now,
                eval,
            } => {
                let verdicts = healthy
                    .iter()
                    .map(|id| (id, true))
                    .chain(unhealthy.iter().map(|id| (id, false)));
                for (alloc_id, verdict) in verdicts {
                    self.set_alloc_health(index, deployment_id, alloc_id, verdict, *now, effects);
                }
                if let Some(eval) = eval {
                    self.upsert_evals(index, std::slice::from_ref(eval), effects);
                }
                Ok(())
            }
            Command::ServiceRegistrations { upserts, deletes } => {
                self.apply_service_registrations(index, upserts, deletes, effects);
                Ok(())
            }
            Command::AclBootstrap { token } => self.apply_acl_bootstrap(index, token),
            Command::AclPolicyUpsert { policies } => {
                self.apply_acl_policy_upsert(index, policies);
                Ok(())
            }
            Command::AclPolicyDelete { names } => self.apply_acl_policy_delete(index, names),
            Command::AclTokenUpsert { tokens } => self.apply_acl_token_upsert(index, tokens),
            Command::AclTokenDelete { accessor_ids } => {
                self.apply_acl_token_delete(index, accessor_ids)
            }
            Command::NamespaceUpsert { namespaces } => {
                self.apply_namespace_upsert(index, namespaces);
                Ok(())
            }
            Command::NamespaceDelete { names } => self.apply_namespace_delete(index, names),
            Command::VariableUpsert { variable, cas } => {
                self.apply_variable_upsert(index, variable, *cas)
            }
            Command::VariableDelete {
                namespace,
                path,
                cas,
            } => self.apply_variable_delete(index, namespace, path, *cas),
            Command::RootKeyUpsert { key } => {
                self.apply_root_key_upsert(index, key);
                Ok(())
            }
            Command::NodePoolUpsert { pools } => self.apply_node_pool_upsert(index, pools),
            Command::NodePoolDelete { names } => self.apply_node_pool_delete(index, names),
            Command::SnapshotRestore { state } => {
                self.apply_snapshot_restore(index, state, effects);
                Ok(())
            }
            Command::SchedulerSetConfig { config, cas } => self
                .apply_scheduler_set_config(index, config, *cas)
                .map(|()| effects.scheduler_config = self.scheduler_config.clone()),
            Command::JobStability {
                namespace,
                job_id,
                version,
                stable,
            } => self.apply_job_stability(index, namespace, job_id, *version, *stable, effects),
            Command::JobScale {
                namespace,
                job_id,
                group,
                job,
                enforce_index,
                eval,
                event,
            } => self.apply_job_scale(
                index,
                namespace,
                job_id,
                group,
                job.as_ref(),
                *enforce_index,
                eval.as_ref(),
                event,
                effects,
            ),
        };
        let touched = std::mem::take(&mut effects.touched_jobs);
        for key in touched {
            self.refresh_job_status(index, &key, effects);
        }
        CommandResponse {
            index,
            error: result.err(),
        }
    }
}
