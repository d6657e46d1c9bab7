//! The broker's guarantees: priority order, one evaluation in flight per job, ack/nack with
//! redelivery, the delivery limit, delayed evaluations, nack timeouts.

use std::sync::Arc;
use std::time::Duration;

use super::{BrokerConfig, BrokerError, EvalBroker};
use crate::structs::{EvalId, Evaluation, JobId};

fn eval(id: &str, job: &str, priority: i32, create_index: u64) -> Arc<Evaluation> {
    Arc::new(Evaluation {
        id: EvalId::from(id),
        namespace: "default".to_owned(),
        job_id: JobId::from(job),
        priority,
        create_index,
        ..Evaluation::default()
    })
}

fn broker(config: BrokerConfig) -> EvalBroker {
    let broker = EvalBroker::new(config);
    broker.set_enabled(true);
    broker
}

fn fast() -> BrokerConfig {
    BrokerConfig {
        nack_timeout: Duration::from_millis(50),
        delivery_limit: 2,
        initial_nack_delay: Duration::ZERO,
        subsequent_nack_delay: Duration::ZERO,
    }
}

#[tokio::test]
async fn dequeues_by_priority_then_age() {
    let broker = broker(BrokerConfig::default());
    broker.enqueue(eval("low", "a", 10, 1), 0);
    broker.enqueue(eval("high-new", "b", 90, 3), 0);
    broker.enqueue(eval("high-old", "c", 90, 2), 0);
    let order: Vec<String> = [0, 1, 2]
        .iter()
        .map(|_| broker.try_dequeue().expect("ready").0.id.to_string())
        .collect();
    assert_eq!(order, ["high-old", "high-new", "low"]);
    assert!(broker.dequeue(Duration::from_millis(10)).await.is_none());
}

#[tokio::test]
async fn one_eval_per_job_in_flight() {
    let broker = broker(BrokerConfig::default());
    broker.enqueue(eval("first", "web", 50, 1), 0);
    broker.enqueue(eval("second", "web", 50, 2), 0);
    let (first, token) = broker.try_dequeue().expect("first is ready");
    assert_eq!(first.id.as_str(), "first");
    assert!(broker.try_dequeue().is_none(), "second waits for the job");
    assert_eq!(broker.stats().total_pending, 1);
    broker.ack(&first.id, &token).expect("ack");
    let (second, _) = broker.try_dequeue().expect("second is ready after the ack");
    assert_eq!(second.id.as_str(), "second");
}

#[tokio::test]
async fn ack_needs_the_current_token() {
    let broker = broker(BrokerConfig::default());
    broker.enqueue(eval("e", "web", 50, 1), 0);
    let (eval, token) = broker.try_dequeue().expect("ready");
    assert_eq!(
        broker.ack(&eval.id, "stale"),
        Err(BrokerError::TokenMismatch(eval.id.clone()))
    );
    assert!(broker.outstanding(&eval.id, &token));
    broker.ack(&eval.id, &token).expect("ack");
    assert_eq!(
        broker.ack(&eval.id, &token),
        Err(BrokerError::NotOutstanding(eval.id.clone()))
    );
}

#[tokio::test]
async fn nack_redelivers_until_the_delivery_limit() {
    let broker = broker(fast());
    broker.enqueue(eval("flaky", "web", 50, 1), 0);
    let (first, token) = broker.try_dequeue().expect("ready");
    broker.nack(&first.id, &token).expect("nack");
    broker.tick();
    let (again, token) = broker.try_dequeue().expect("redelivered");
    assert_eq!(again.id, first.id);
    broker.nack(&again.id, &token).expect("nack");
    broker.tick();
    assert!(
        broker.try_dequeue().is_none(),
        "the limit of 2 deliveries is reached"
    );
    let failed = broker.take_failed();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, first.id);
    // The job is free again for a new evaluation.
    broker.enqueue(eval("next", "web", 50, 2), 0);
    assert!(broker.try_dequeue().is_some());
}

#[tokio::test]
async fn nack_timeout_redelivers() {
    let broker = broker(fast());
    broker.enqueue(eval("slow", "web", 50, 1), 0);
    let (first, _) = broker.try_dequeue().expect("ready");
    tokio::time::sleep(Duration::from_millis(80)).await;
    broker.tick();
    broker.tick();
    let (again, _) = broker
        .try_dequeue()
        .expect("redelivered after the nack timeout");
    assert_eq!(again.id, first.id);
}

#[tokio::test]
async fn wait_until_delays_delivery() {
    let broker = broker(BrokerConfig::default());
    let now = 1_000_000_000_i64;
    let mut delayed = (*eval("later", "web", 50, 1)).clone();
    delayed.wait_until = now + 60_000_000;
    broker.enqueue(Arc::new(delayed), now);
    assert!(broker.try_dequeue().is_none());
    tokio::time::sleep(Duration::from_millis(80)).await;
    broker.tick();
    assert!(broker.try_dequeue().is_some());
}

#[tokio::test]
async fn enqueue_while_unacked_requeues_after_ack() {
    let broker = broker(BrokerConfig::default());
    let blocked = eval("blocked", "web", 50, 1);
    broker.enqueue(blocked.clone(), 0);
    let (first, token) = broker.try_dequeue().expect("ready");
    broker.enqueue(blocked, 0);
    assert!(broker.try_dequeue().is_none());
    broker.ack(&first.id, &token).expect("ack");
    assert!(
        broker.try_dequeue().is_some(),
        "capacity changed while it ran"
    );
}

#[tokio::test]
async fn disabled_broker_holds_nothing() {
    let broker = EvalBroker::new(BrokerConfig::default());
    broker.enqueue(eval("e", "web", 50, 1), 0);
    broker.set_enabled(true);
    assert!(broker.try_dequeue().is_none());
    broker.enqueue(eval("e", "web", 50, 1), 0);
    broker.set_enabled(false);
    broker.set_enabled(true);
    assert_eq!(broker.stats().total_ready, 0);
}

#[tokio::test]
async fn dequeue_wakes_on_enqueue() {
    let broker = Arc::new(broker(BrokerConfig::default()));
    let waiter = {
        let broker = broker.clone();
        tokio::spawn(async move { broker.dequeue(Duration::from_secs(5)).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    broker.enqueue(eval("e", "web", 50, 1), 0);
    let dequeued = waiter.await.expect("join");
    assert_eq!(
        dequeued.map(|(eval, _)| eval.id.to_string()),
        Some("e".to_owned())
    );
}

#[tokio::test]
async fn deregister_cancels_the_jobs_queued_evals() {
    let broker = broker(BrokerConfig::default());
    // "register" is ready, "update" and "dereg" wait behind it; "other" is another job.
    broker.enqueue(eval("register", "web", 50, 1), 0);
    broker.enqueue(eval("update", "web", 50, 2), 0);
    broker.enqueue(eval("dereg", "web", 50, 3), 0);
    broker.enqueue(eval("other", "db", 50, 4), 0);
    let cancelled = broker.cancel_job("default", &JobId::from("web"), Some(&EvalId::from("dereg")));
    let mut ids: Vec<&str> = cancelled.iter().map(|eval| eval.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["register", "update"]);
    let mut order = Vec::new();
    while let Some((eval, token)) = broker.try_dequeue() {
        order.push(eval.id.to_string());
        broker.ack(&eval.id, &token).expect("ack");
    }
    order.sort();
    assert_eq!(
        order,
        ["dereg", "other"],
        "the deregister's own eval still runs"
    );
    assert_eq!(broker.stats().total_pending, 0);
}

#[tokio::test]
async fn an_unacked_eval_is_left_to_its_worker() {
    let broker = broker(BrokerConfig::default());
    broker.enqueue(eval("register", "web", 50, 1), 0);
    let (register, token) = broker.try_dequeue().expect("ready");
    broker.enqueue(eval("dereg", "web", 50, 2), 0);
    let cancelled = broker.cancel_job("default", &JobId::from("web"), Some(&EvalId::from("dereg")));
    assert!(cancelled.is_empty());
    assert!(broker.outstanding(&register.id, &token));
    broker.ack(&register.id, &token).expect("ack");
    let (next, _) = broker.try_dequeue().expect("the deregister follows");
    assert_eq!(next.id.as_str(), "dereg");
}

/// `PauseEvalBroker`: a paused broker keeps its evaluations and hands none out, not even to a
/// dequeue already waiting; unpausing wakes that waiter.
#[tokio::test]
async fn a_paused_broker_holds_its_evaluations() {
    let broker = Arc::new(broker(BrokerConfig::default()));
    let waiting = tokio::spawn({
        let broker = broker.clone();
        async move { broker.dequeue(Duration::from_secs(10)).await }
    });
    broker.set_paused(true);
    broker.enqueue(eval("held", "a", 50, 1), 0);
    assert_eq!(broker.stats().total_ready, 1);
    assert!(broker.dequeue(Duration::ZERO).await.is_none());
    assert!(!waiting.is_finished());
    broker.set_paused(false);
    let (dequeued, _) = waiting
        .await
        .expect("the waiter ends")
        .expect("the evaluation is handed out once unpaused");
    assert_eq!(dequeued.id, EvalId::from("held"));
}
