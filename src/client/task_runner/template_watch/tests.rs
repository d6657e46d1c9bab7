//! Unit tests of the watcher's pure parts: quiescence (`wait`), the plan of a re-render
//! (several templates, one restart) and splay.

use std::time::Duration;

use tokio::time::Instant;

use super::{Plan, Quiescence, splay_delay};
use crate::structs::{ChangeScript, Template, WaitConfig};

const S: Duration = Duration::from_secs(1);

fn template(mode: &str) -> Template {
    Template {
        dest_path: format!("local/{mode}"),
        change_mode: mode.to_owned(),
        ..Template::default()
    }
}

#[test]
fn without_wait_a_change_is_due_at_once() {
    let now = Instant::now();
    let mut wait = Quiescence::new(None);
    assert_eq!(wait.due(), None);
    wait.changed(now);
    assert_eq!(wait.due(), Some(now));
    wait.clear();
    assert_eq!(wait.due(), None);
}

#[test]
fn changes_coalesce_until_min_passes_quietly_capped_at_max() {
    let start = Instant::now();
    let config = WaitConfig {
        min: Some(2 * S),
        max: Some(5 * S),
    };
    let mut wait = Quiescence::new(Some(&config));
    wait.changed(start);
    assert_eq!(wait.due(), Some(start + 2 * S));
    // Another change pushes the render back: min after the last change.
    wait.changed(start + S);
    assert_eq!(wait.due(), Some(start + 3 * S));
    // Changes that keep coming never push it past max after the first.
    wait.changed(start + 4 * S);
    assert_eq!(wait.due(), Some(start + 5 * S));
    wait.clear();
    // After a render the next change starts a new window.
    wait.changed(start + 10 * S);
    assert_eq!(wait.due(), Some(start + 12 * S));
}

#[test]
fn min_alone_caps_at_four_times_min() {
    let start = Instant::now();
    let config = WaitConfig {
        min: Some(S),
        max: None,
    };
    let mut wait = Quiescence::new(Some(&config));
    for second in 0..10 {
        wait.changed(start + second * S / 2);
    }
    assert_eq!(wait.due(), Some(start + 4 * S));
}

#[test]
fn several_templates_changing_together_restart_once() {
    let restart = template("restart");
    let mut other = template("restart");
    other.splay = 3 * S;
    let signal = template("signal");
    let plan = Plan::of([&restart, &other, &signal]);
    assert!(plan.restart);
    // A restart covers the signals and scripts of the others.
    assert!(plan.signals.is_empty());
    assert_eq!(plan.splay, 3 * S);
}

#[test]
fn signals_are_sent_once_each_and_scripts_run() {
    let mut hup = template("signal");
    hup.change_signal = "SIGHUP".to_owned();
    let default = template("signal");
    let mut usr = template("signal");
    usr.change_signal = "SIGUSR1".to_owned();
    let mut script = template("script");
    script.change_script = Some(ChangeScript {
        command: "/bin/true".to_owned(),
        ..ChangeScript::default()
    });
    let plan = Plan::of([&hup, &default, &usr, &script]);
    assert!(!plan.restart);
    assert_eq!(
        plan.signals.iter().map(String::as_str).collect::<Vec<_>>(),
        ["SIGHUP", "SIGUSR1"]
    );
    assert_eq!(plan.scripts.len(), 1);
    assert_eq!(plan.scripts[0].command, "/bin/true");
}

#[test]
fn noop_only_writes_and_env_templates_need_a_restart() {
    let mut noop = template("noop");
    noop.splay = 10 * S;
    let plan = Plan::of([&noop]);
    assert!(plan.is_noop());
    assert_eq!(plan.splay, Duration::ZERO);
    let mut env_noop = template("noop");
    env_noop.envvars = true;
    assert!(Plan::of([&env_noop]).is_noop());
    let mut env_signal = template("signal");
    env_signal.envvars = true;
    let plan = Plan::of([&env_signal]);
    assert!(plan.restart);
    assert!(plan.signals.is_empty());
}

#[test]
fn splay_is_a_part_of_the_splay() {
    assert_eq!(splay_delay(4 * S, 0.0), Duration::ZERO);
    assert_eq!(splay_delay(4 * S, 0.5), 2 * S);
    assert!(splay_delay(4 * S, 0.999) < 4 * S);
    // Out-of-range draws stay within the splay.
    assert_eq!(splay_delay(4 * S, 7.0), 4 * S);
    assert_eq!(splay_delay(Duration::ZERO, 0.7), Duration::ZERO);
}
