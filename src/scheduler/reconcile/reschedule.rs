//! Whether and when a failed allocation is replaced, per its group's reschedule policy.
//!
//! An allocation an operator forced to reschedule (`DesiredTransition.ForceReschedule`) is
//! replaced now. Otherwise an allocation failed at `fail_time` (its modify time, else its create time) with `n` earlier
//! reschedules is replaced at `fail_time + policy.delay_for_attempt(n)`, if the policy allows another
//! attempt (unlimited, or fewer than `attempts` reschedules within `interval`). Replacements due
//! within a second are made now; later ones wait for a follow-up evaluation.
//!
//! Nomad: `nomad/structs/structs.go` `RescheduleEligible`, `NextRescheduleTime`,
//! `scheduler/reconciler/filters.go` `updateByReschedulable`.

use crate::structs::{Allocation, EvalId, ReschedulePolicy};

/// Replacements due within this window of now are made now (Nomad's `rescheduleWindowSize`).
pub const RESCHEDULE_WINDOW_NANOS: i64 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RescheduleDecision {
    /// Replace it in this evaluation.
    Now,
    /// Replace it at this Unix time (nanoseconds), from a follow-up evaluation.
    Later(i64),
    /// The policy allows no more attempts: leave it failed.
    Never,
}

fn fail_time(alloc: &Allocation, now: i64) -> i64 {
    if alloc.modify_time > 0 {
        alloc.modify_time
    } else if alloc.create_time > 0 {
        alloc.create_time
    } else {
        now
    }
}

fn attempts_in_interval(alloc: &Allocation, policy: &ReschedulePolicy, fail_time: i64) -> usize {
    let Some(tracker) = &alloc.reschedule_tracker else {
        return 0;
    };
    let interval = i64::try_from(policy.interval.as_nanos()).unwrap_or(i64::MAX);
    tracker
        .events
        .iter()
        .filter(|event| interval == 0 || fail_time.saturating_sub(event.reschedule_time) < interval)
        .count()
}

pub fn decide(
    alloc: &Allocation,
    policy: Option<&ReschedulePolicy>,
    now: i64,
    eval_id: &EvalId,
) -> RescheduleDecision {
    // `job eval -force-reschedule`: the operator asks for it now, whatever the policy says.
    if alloc.desired_transition.force_reschedule == Some(true) {
        return RescheduleDecision::Now;
    }
    let Some(policy) = policy else {
        return RescheduleDecision::Never;
    };
    if !policy.unlimited && policy.attempts <= 0 {
        return RescheduleDecision::Never;
    }
    let failed_at = fail_time(alloc, now);
    if !policy.unlimited {
        let attempted = attempts_in_interval(alloc, policy, failed_at);
        if attempted >= usize::try_from(policy.attempts).unwrap_or(0) {
            return RescheduleDecision::Never;
        }
    }
    if alloc.followup_eval_id.as_ref() == Some(eval_id) {
        return RescheduleDecision::Now;
    }
    let n_previous = alloc
        .reschedule_tracker
        .as_ref()
        .map_or(0, |tracker| tracker.events.len());
    let delay = policy.delay_for_attempt(u32::try_from(n_previous).unwrap_or(u32::MAX));
    let at = failed_at.saturating_add(i64::try_from(delay.as_nanos()).unwrap_or(i64::MAX));
    if at <= now + RESCHEDULE_WINDOW_NANOS {
        RescheduleDecision::Now
    } else {
        RescheduleDecision::Later(at)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::structs::{DelayFunction, RescheduleEvent, RescheduleTracker};

    const SECOND: i64 = 1_000_000_000;

    fn failed_at(time: i64, previous: &[i64]) -> Allocation {
        Allocation {
            modify_time: time,
            reschedule_tracker: (!previous.is_empty()).then(|| RescheduleTracker {
                events: previous
                    .iter()
                    .map(|time| RescheduleEvent {
                        reschedule_time: *time,
                        ..RescheduleEvent::default()
                    })
                    .collect(),
            }),
            ..Allocation::default()
        }
    }

    #[test]
    fn decisions() {
        let eval_id = EvalId::from("eval");
        let limited = ReschedulePolicy {
            attempts: 2,
            interval: Duration::from_secs(3600),
            delay: Duration::from_secs(10),
            delay_function: DelayFunction::Exponential,
            max_delay: Duration::from_secs(100),
            unlimited: false,
        };
        let unlimited = ReschedulePolicy {
            unlimited: true,
            attempts: 0,
            ..limited.clone()
        };
        let now = 10_000 * SECOND;
        let cases = [
            (
                failed_at(now - 10 * SECOND, &[]),
                &limited,
                RescheduleDecision::Now,
            ),
            (
                failed_at(now - 5 * SECOND, &[]),
                &limited,
                RescheduleDecision::Later(now + 5 * SECOND),
            ),
            // Second attempt: delay doubles to 20s.
            (
                failed_at(now, &[now - 100 * SECOND]),
                &limited,
                RescheduleDecision::Later(now + 20 * SECOND),
            ),
            (
                failed_at(now, &[now - 100 * SECOND, now - 50 * SECOND]),
                &limited,
                RescheduleDecision::Never,
            ),
            // Attempts older than the interval no longer count.
            (
                failed_at(
                    now - 60 * SECOND,
                    &[now - 7200 * SECOND, now - 5000 * SECOND],
                ),
                &limited,
                RescheduleDecision::Now,
            ),
            (
                failed_at(now - 1000 * SECOND, &[1, 2, 3, 4, 5]),
                &unlimited,
                RescheduleDecision::Now,
            ),
        ];
        for (alloc, policy, expected) in cases {
            assert_eq!(
                decide(&alloc, Some(policy), now, &eval_id),
                expected,
                "{alloc:?}"
            );
        }
        assert_eq!(
            decide(&failed_at(now, &[]), None, now, &eval_id),
            RescheduleDecision::Never
        );
        let mut waiting = failed_at(now, &[]);
        waiting.followup_eval_id = Some(eval_id.clone());
        assert_eq!(
            decide(&waiting, Some(&limited), now, &eval_id),
            RescheduleDecision::Now
        );
    }

    #[test]
    fn a_forced_reschedule_ignores_the_policy() {
        let eval_id = EvalId::from("eval");
        let now = 10_000 * SECOND;
        let no_attempts = ReschedulePolicy {
            attempts: 0,
            unlimited: false,
            ..ReschedulePolicy::default()
        };
        let mut exhausted = failed_at(now, &[now - SECOND]);
        assert_eq!(
            decide(&exhausted, Some(&no_attempts), now, &eval_id),
            RescheduleDecision::Never
        );
        exhausted.desired_transition.force_reschedule = Some(true);
        for policy in [Some(&no_attempts), None] {
            assert_eq!(
                decide(&exhausted, policy, now, &eval_id),
                RescheduleDecision::Now
            );
        }
    }
}
