//! Redis loses everything (FLUSHALL) between scheduling and the due time: the worker
//! notices, rebuilds the schedule from the database, and the clock still fires.
//! Its own test binary, so the flush cannot disturb tests running beside it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

#[path = "api/helpers.rs"]
mod helpers;

use std::time::Duration;

use aftersales_protos::tickets::v1 as pb;
use helpers::{Backend, clock, millis, spawn};

#[tokio::test]
async fn a_clock_still_fires_after_redis_is_flushed() {
    let mut app = spawn(Backend::Postgres).await;
    app.fast_policy(3, 600).await;
    let t = app.create(pb::Channel::Social, "").await;
    assert!(
        app.queue.stats().await.unwrap().scheduled >= 2,
        "the clocks are on the schedule"
    );

    let mut redis = aftersales_testkit::redis_connection().await.unwrap();
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut redis)
        .await
        .unwrap();
    assert_eq!(
        app.queue.stats().await.unwrap().scheduled,
        0,
        "the schedule is gone"
    );

    let status = app
        .wait_for_sla(&t.id, Duration::from_secs(15), |s| {
            clock(s, pb::ClockKind::FirstResponse).state == pb::ClockState::Breached as i32
        })
        .await;
    let first = clock(&status, pb::ClockKind::FirstResponse);
    assert!(millis(&first.breached_at) >= millis(&first.due_at));
    assert_eq!(
        app.ticket(&t.id).await.escalation_level,
        pb::EscalationLevel::Supervisor as i32
    );
    assert_eq!(app.events(&t.id, "tickets.TicketEscalated").await, 1);
    app.stop().await;
}
