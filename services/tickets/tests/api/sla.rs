//! SLA clocks firing for real: breach and escalation once, pauses, a worker that dies
//! holding a claim.

use std::{sync::Arc, time::Duration};

use aftersales_deadlines::{
    now_ms,
    worker::{self, Deadlines, Due},
};
use aftersales_platform::clock::ManualClock;
use aftersales_protos::tickets::v1 as pb;
use aftersales_tickets::usecases::TicketsDeadline;

use crate::helpers::{
    Backend, Options, TestApp, clock, millis, spawn, spawn_with, worker_settings,
};

async fn breaches_and_escalates_once(mut app: TestApp) {
    app.fast_policy(2, 600).await;
    let t = app.create(pb::Channel::Social, "").await;
    assert_eq!(t.sla_policy_id, "fast");
    let status = app
        .wait_for_sla(&t.id, Duration::from_secs(15), |s| {
            clock(s, pb::ClockKind::FirstResponse).state == pb::ClockState::Breached as i32
        })
        .await;
    let first = clock(&status, pb::ClockKind::FirstResponse);
    let late_ms = millis(&first.breached_at) - millis(&first.due_at);
    println!("first-response breach fired {late_ms} ms after its due time");
    assert!(late_ms >= 0, "fired {late_ms} ms early");
    assert!(first.warned, "the warning came first");
    assert!(status.breached);

    // Give a duplicate delivery every chance to happen, then count.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ticket = app.ticket(&t.id).await;
    assert_eq!(
        ticket.escalation_level,
        pb::EscalationLevel::Supervisor as i32
    );
    assert!(ticket.breached);
    assert_eq!(app.events(&t.id, "tickets.SlaWarning").await, 1);
    assert_eq!(app.events(&t.id, "tickets.SlaBreached").await, 1);
    assert_eq!(app.events(&t.id, "tickets.TicketEscalated").await, 1);
    let resolution = clock(&status, pb::ClockKind::Resolution);
    assert_eq!(
        resolution.state,
        pb::ClockState::Running as i32,
        "the other clock is untouched"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_clock_fires_breaches_and_escalates_once_on_postgres_and_redis() {
    breaches_and_escalates_once(spawn(Backend::Postgres).await).await;
}

#[tokio::test]
async fn a_clock_fires_breaches_and_escalates_once_on_sqlite_in_process() {
    breaches_and_escalates_once(spawn(Backend::Sqlite).await).await;
}

#[tokio::test]
async fn a_paused_ticket_does_not_breach_and_its_due_time_moves_by_the_pause() {
    let mut app = spawn(Backend::Postgres).await;
    app.fast_policy(600, 3).await;
    let t = app.create(pb::Channel::Social, "").await;
    let before = clock(&app.sla(&t.id).await, pb::ClockKind::Resolution);
    let change = |status: pb::TicketStatus| pb::ChangeStatusRequest {
        ticket_id: t.id.clone(),
        status: status as i32,
        reason: "waiting for photos".into(),
        actor: None,
    };
    app.client
        .change_status(change(pb::TicketStatus::PendingCustomer))
        .await
        .unwrap();
    let paused_at = now_ms();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = clock(&app.sla(&t.id).await, pb::ClockKind::Resolution);
    assert_eq!(
        during.state,
        pb::ClockState::Paused as i32,
        "no breach while paused"
    );

    // The customer answers: the clock resumes with its due time moved by the pause.
    app.client
        .add_reply(pb::AddReplyRequest {
            idempotency_key: String::new(),
            ticket_id: t.id.clone(),
            author: pb::ReplyAuthor::Customer as i32,
            author_id: "cust-1".into(),
            body: "photo attached".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let resumed_at = now_ms();
    let after = clock(&app.sla(&t.id).await, pb::ClockKind::Resolution);
    assert_eq!(after.state, pb::ClockState::Running as i32);
    let moved = millis(&after.due_at) - millis(&before.due_at);
    let paused_for = resumed_at - paused_at;
    assert!(
        (moved - paused_for).abs() < 1_000,
        "moved {moved} ms for a {paused_for} ms pause"
    );

    let status = app
        .wait_for_sla(&t.id, Duration::from_secs(10), |s| {
            clock(s, pb::ClockKind::Resolution).state == pb::ClockState::Breached as i32
        })
        .await;
    let breached = clock(&status, pb::ClockKind::Resolution);
    assert!(
        millis(&breached.breached_at) >= millis(&after.due_at),
        "never before the moved due time"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_worker_that_dies_holding_a_claim_is_replaced_after_the_lease_and_escalation_happens_once()
 {
    let lease = Duration::from_millis(1_500);
    let mut app = spawn_with(
        Backend::Postgres,
        Options {
            run_worker: false,
            lease,
            ..Options::default()
        },
    )
    .await;
    app.fast_policy(1, 600).await;
    let handled = app.create(pb::Channel::Social, "").await;
    let abandoned = app.create(pb::Channel::Social, "").await;
    let clock_of = |s: &pb::SlaStatus| clock(s, pb::ClockKind::FirstResponse).id;
    let handled_clock = clock_of(&app.sla(&handled.id).await);
    let abandoned_clock = clock_of(&app.sla(&abandoned.id).await);

    // The doomed worker claims both first-response clocks once they are due...
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let mut claimed = Vec::new();
    while claimed.len() < 2 {
        claimed.extend(
            app.queue
                .claim(now_ms(), 10, lease.as_millis() as i64)
                .await
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ids: Vec<&str> = claimed.iter().map(|c| c.id.as_str()).collect();
    assert!(ids.contains(&handled_clock.as_str()) && ids.contains(&abandoned_clock.as_str()));
    // ...handles one completely, and dies before acknowledging either.
    let due = Due {
        member: TicketsDeadline::Clock(handled_clock.clone()),
        due_ms: now_ms(),
    };
    app.core.fire(&[due]).await.unwrap();
    assert_eq!(
        app.ticket(&handled.id).await.escalation_level,
        pb::EscalationLevel::Supervisor as i32
    );
    assert_eq!(app.queue.stats().await.unwrap().in_flight, 2);

    // A healthy worker takes over once the lease has run out.
    let stop = aftersales_platform::CancellationToken::new();
    let replacement = tokio::spawn(worker::run(
        app.queue.clone(),
        app.core.clone(),
        worker_settings(lease),
        |_| {},
        stop.clone(),
    ));
    app.wait_for_sla(&abandoned.id, Duration::from_secs(10), |s| {
        clock(s, pb::ClockKind::FirstResponse).state == pb::ClockState::Breached as i32
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.queue.stats().await.unwrap().in_flight > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the expired claims were never acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for ticket in [&handled, &abandoned] {
        assert_eq!(
            app.ticket(&ticket.id).await.escalation_level,
            pb::EscalationLevel::Supervisor as i32
        );
        assert_eq!(app.events(&ticket.id, "tickets.SlaBreached").await, 1);
        assert_eq!(app.events(&ticket.id, "tickets.TicketEscalated").await, 1);
    }
    stop.cancel();
    replacement.await.unwrap();
    app.stop().await;
}

/// The use cases read "now" from the service's clock: a ticket opened at a set instant
/// is created then, its clocks due from then, and a reply is timed by the same clock.
#[tokio::test]
async fn the_use_cases_read_the_time_from_the_services_clock() {
    let start = chrono::DateTime::parse_from_rfc3339("2030-01-07T10:00:00Z")
        .unwrap()
        .to_utc();
    let manual = ManualClock::at(start);
    let mut app = spawn_with(
        Backend::Sqlite,
        Options {
            run_worker: false,
            lease: Duration::from_secs(2),
            clock: Some(Arc::new(manual.clone())),
            ..Options::default()
        },
    )
    .await;
    app.fast_policy(60, 600).await;
    let t = app.create(pb::Channel::Social, "").await;
    let at_ms = start.timestamp_millis();
    assert_eq!(millis(&t.created_at), at_ms);
    let first = clock(&app.sla(&t.id).await, pb::ClockKind::FirstResponse);
    assert_eq!(millis(&first.due_at), at_ms + 60_000);

    manual.advance(chrono::Duration::seconds(5));
    let replied = app
        .client
        .add_reply(pb::AddReplyRequest {
            idempotency_key: String::new(),
            ticket_id: t.id.clone(),
            author: pb::ReplyAuthor::Agent as i32,
            author_id: "agent-1".into(),
            body: "on it".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(millis(&replied.reply.unwrap().created_at), at_ms + 5_000);
    let first = clock(&app.sla(&t.id).await, pb::ClockKind::FirstResponse);
    assert_eq!(first.state, pb::ClockState::Met as i32);
    assert_eq!(millis(&first.met_at), at_ms + 5_000);
    app.stop().await;
}
