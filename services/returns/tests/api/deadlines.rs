//! Step deadlines fired the way the worker fires them, in claimed batches, with time
//! moved by a manual clock instead of waited for.

use std::sync::Arc;

use aftersales_deadlines::worker::{Deadlines, Due};
use aftersales_platform::clock::ManualClock;
use aftersales_protos::returns::v1 as pb;
use aftersales_returns::{domain::Step, usecases::deadlines::ReturnsDeadline};
use chrono::{Duration, Utc};

use crate::helpers::{Backend, TestApp, request, spawn_with, yesterday};

fn batch(members: impl IntoIterator<Item = ReturnsDeadline>) -> Vec<Due<ReturnsDeadline>> {
    members
        .into_iter()
        .map(|member| Due { member, due_ms: 0 })
        .collect()
}

/// The pickup deadline of each return.
async fn pickup_deadlines(app: &TestApp, ids: &[String]) -> Vec<String> {
    let mut deadlines = Vec::new();
    for id in ids {
        let agg = app.core.get_return(id).await.unwrap();
        let pickup = agg
            .deadlines
            .iter()
            .find(|d| d.step == Step::Pickup)
            .unwrap();
        deadlines.push(pickup.id.clone());
    }
    deadlines
}

#[tokio::test]
async fn a_batch_misses_each_due_step_once_and_leaves_early_ones_running() {
    let clock = ManualClock::at(Utc::now());
    let handle = clock.clone();
    let mut app = spawn_with(Backend::Postgres, move |config| {
        config.clock = Arc::new(handle);
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = app
            .client
            .request_return(request(
                pb::ReturnReason::NoReason,
                pb::Outcome::Refund,
                yesterday(),
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, pb::ReturnStatus::Approved as i32);
        ids.push(r.id);
    }
    let deadlines = pickup_deadlines(&app, &ids).await;
    let steps = || deadlines.iter().cloned().map(ReturnsDeadline::Step);

    // Claimed early (a skewed clock): nothing is missed yet.
    app.core.fire(&batch(steps())).await.unwrap();
    for id in &ids {
        assert!(!app.get(id).await.overdue);
    }

    // A day later, two batches over the same returns in opposite orders at once, with a
    // deadline and a refund that do not exist: the returns are locked in id order, so
    // neither batch deadlocks the other, and each deadline is missed once.
    clock.advance(Duration::hours(25));
    let gone = [
        ReturnsDeadline::Step("no-such-deadline".into()),
        ReturnsDeadline::Refund("no-such-refund".into()),
    ];
    let forward = batch(steps().chain(gone.clone()));
    let backward = batch(steps().rev().chain(gone));
    let (a, b) = tokio::join!(app.core.fire(&forward), app.core.fire(&backward));
    a.unwrap();
    b.unwrap();
    app.core.fire(&forward).await.unwrap();
    for id in &ids {
        let current = app.get(id).await;
        assert!(current.overdue, "{id}");
        let pickup = current
            .deadlines
            .iter()
            .find(|d| d.step == pb::Step::Pickup as i32)
            .unwrap();
        assert_eq!(pickup.state, "missed");
        assert_eq!(app.events(id, "returns.ReturnStepOverdue").await, 1, "once");
    }
    app.stop().await;
}
