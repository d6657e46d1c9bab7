//! The client's service sync loop: carries the alloc runners' service registrations and
//! deregistrations to the servers (Nomad: the client's `serviceregistration/nsd` provider).
//!
//! Changes are coalesced by registration ID (the latest wins: an upsert replaced by a delete is
//! never sent) and sent in one request; a failed request is retried after a growing delay (up
//! to 5 s) with whatever changed meanwhile, so servers away for a few minutes miss nothing. A
//! batch still refused after [`MAX_ATTEMPTS`] is dropped with an error in the log, so one the
//! servers will never take (an allocation they moved away) does not hold back the rest. The
//! servers drop an allocation's registrations themselves when it turns terminal, so a delete
//! lost with the agent leaves nothing behind.
//!
//! Anti-entropy: every [`RESYNC_INTERVAL`] the loop sends again every registration its alloc
//! runners hold, so instances the servers dropped while they took the node for down (a network
//! partition shorter than the allocations' lives) come back. The servers write nothing for a
//! sync that changes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::Shared;
use super::alloc_runner::services::ServiceSync;
use crate::structs::ServiceRegistration;

/// Attempts at one batch before it is dropped (about three minutes).
const MAX_ATTEMPTS: u32 = 50;

/// How often every held registration is sent again.
const RESYNC_INTERVAL: Duration = Duration::from_secs(30);

/// Runs until shutdown, sending what `syncs` brings.
#[tracing::instrument(level = "debug", skip_all)]
pub(super) async fn sync_services(
    shared: Arc<Shared>,
    mut syncs: mpsc::UnboundedReceiver<ServiceSync>,
    mut shutdown: watch::Receiver<bool>,
) {
    // By ID: `Some` to upsert, `None` to delete.
    let mut pending: BTreeMap<String, Option<ServiceRegistration>> = BTreeMap::new();
    // Every registration the alloc runners hold now, for the anti-entropy resync.
    let mut held: BTreeMap<String, ServiceRegistration> = BTreeMap::new();
    let mut resync = tokio::time::interval(RESYNC_INTERVAL);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    resync.reset();
    let mut attempt = 0u32;
    loop {
        if pending.is_empty() {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = resync.tick() => {
                    for (id, registration) in &held {
                        pending.insert(id.clone(), Some(registration.clone()));
                    }
                    if pending.is_empty() {
                        continue;
                    }
                }
                sync = syncs.recv() => match sync {
                    Some(sync) => merge(&mut pending, &mut held, sync),
                    None => return,
                },
            }
        }
        while let Ok(sync) = syncs.try_recv() {
            merge(&mut pending, &mut held, sync);
        }
        let mut upserts = Vec::new();
        let mut deletes = Vec::new();
        for (id, change) in &pending {
            match change {
                Some(registration) => upserts.push(registration.clone()),
                None => deletes.push(id.clone()),
            }
        }
        let node_id = shared.node_id();
        match shared
            .link
            .sync_services(&node_id, &upserts, &deletes)
            .await
        {
            Ok(()) => {
                tracing::debug!(
                    n_upserts = upserts.len(),
                    n_deletes = deletes.len(),
                    "service registrations synced"
                );
                // Only what was sent: a change that arrived since is newer and stays.
                pending.clear();
                attempt = 0;
            }
            Err(err) => {
                tracing::warn!(error = %err, "failed to sync service registrations");
                attempt = attempt.saturating_add(1);
                if attempt >= MAX_ATTEMPTS {
                    tracing::error!(error = %err, n_changes = pending.len(), "dropping service registrations the servers keep refusing");
                    pending.clear();
                    attempt = 0;
                    continue;
                }
                let delay = Duration::from_millis(250 * u64::from(attempt.min(20)));
                tokio::select! {
                    _ = shutdown.changed() => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

fn merge(
    pending: &mut BTreeMap<String, Option<ServiceRegistration>>,
    held: &mut BTreeMap<String, ServiceRegistration>,
    sync: ServiceSync,
) {
    for id in sync.deletes {
        held.remove(&id);
        pending.insert(id, None);
    }
    for registration in sync.upserts {
        held.insert(registration.id.clone(), registration.clone());
        pending.insert(registration.id.clone(), Some(registration));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_change_of_an_id_wins() {
        let mut pending = BTreeMap::new();
        let mut held = BTreeMap::new();
        let registration = ServiceRegistration {
            id: "a".to_owned(),
            ..ServiceRegistration::default()
        };
        merge(
            &mut pending,
            &mut held,
            ServiceSync {
                upserts: vec![registration.clone()],
                deletes: Vec::new(),
            },
        );
        merge(
            &mut pending,
            &mut held,
            ServiceSync {
                upserts: Vec::new(),
                deletes: vec!["a".to_owned()],
            },
        );
        assert_eq!(pending.get("a"), Some(&None));
        assert!(held.is_empty(), "a deleted registration is not sent again");
        merge(
            &mut pending,
            &mut held,
            ServiceSync {
                upserts: vec![registration.clone()],
                deletes: Vec::new(),
            },
        );
        assert_eq!(pending.get("a"), Some(&Some(registration.clone())));
        assert_eq!(held.get("a"), Some(&registration));
    }
}
