//! Major incidents declared by care. A regional emergency: the region's open tickets
//! have their SLA clocks held from the declaration until care closes it, then run again
//! with their due instants moved on by exactly the time held; tickets opened in the
//! region meanwhile are held from their start; other regions and finished tickets are
//! untouched; a redelivered declaration or closing changes nothing more. And the tickets
//! care linked to an incident, updated together when care asks.

use std::{sync::Arc, time::Duration};

use aftersales_eventbus::{BusMessage, envelope::new_event};
use aftersales_platform::{clock::ManualClock, codes::timestamp};
use aftersales_protos::{
    events::v1::{self as ev, event_envelope::Payload},
    tickets::v1 as pb,
};
use chrono::{DateTime, SubsecRound, Utc};

use crate::helpers::{Backend, Options, TestApp, clock, create_request, millis, spawn_with};

fn message(payload: Payload, at: DateTime<Utc>) -> BusMessage {
    let event = new_event("care", "care", "inc-typhoon", payload, at);
    BusMessage {
        event_id: event.event_id,
        event_type: event.event_type,
        subject_id: event.subject_id,
        payload: event.payload,
        headers: Default::default(),
    }
}

async fn open_in(app: &mut TestApp, region: &str) -> pb::Ticket {
    let mut request = create_request(pb::Channel::Social, "");
    request.product = Some(pb::ProductFacts {
        region_code: region.into(),
        ..Default::default()
    });
    app.client
        .create_ticket(request)
        .await
        .expect("created")
        .into_inner()
}

fn states(status: &pb::SlaStatus) -> Vec<i32> {
    status.clocks.iter().map(|c| c.state).collect()
}

async fn a_regional_emergency_holds_the_regions_clocks(backend: Backend) {
    let t0 = Utc::now().trunc_subsecs(3);
    let manual = ManualClock::at(t0);
    let mut app = spawn_with(
        backend,
        Options {
            // The worker runs the consumers; the clocks it could fire are hours away.
            clock: Some(Arc::new(manual.clone())),
            ..Options::default()
        },
    )
    .await;
    app.fast_policy(3_600, 86_400).await;
    let held = open_in(&mut app, "CN-GD").await;
    let elsewhere = open_in(&mut app, "CN-BJ").await;
    let done = open_in(&mut app, "CN-GD").await;
    app.client
        .change_status(pb::ChangeStatusRequest {
            ticket_id: done.id.clone(),
            status: pb::TicketStatus::Resolved as i32,
            reason: "fixed".into(),
            actor: None,
        })
        .await
        .expect("resolved");
    let due = |s: &pb::SlaStatus| millis(&clock(s, pb::ClockKind::Resolution).due_at);
    let before = app.sla(&held.id).await;
    let resolution_due = due(&before);
    assert_eq!(resolution_due, (t0.timestamp_millis()) + 86_400_000);
    let done_before = app.sla(&done.id).await;

    // Declared at t0 + 10 min, and delivered twice.
    let declared_at = t0 + chrono::Duration::minutes(10);
    manual.set(declared_at);
    let declared = message(
        Payload::IncidentDeclared(ev::IncidentDeclared {
            incident_id: "inc-typhoon".into(),
            kind: "regional_emergency".into(),
            declared_at: Some(timestamp(declared_at)),
            region_code: "CN-GD".into(),
            ..Default::default()
        }),
        declared_at,
    );
    app.bus
        .publish("care", &[declared.clone(), declared])
        .await
        .unwrap();
    let paused = pb::ClockState::Paused as i32;
    let status = app
        .wait_for_sla(&held.id, Duration::from_secs(10), |s| {
            states(s).iter().all(|&c| c == paused)
        })
        .await;
    assert_eq!(
        millis(&clock(&status, pb::ClockKind::Resolution).paused_at),
        declared_at.timestamp_millis()
    );
    assert!(
        states(&app.sla(&elsewhere.id).await)
            .iter()
            .all(|&c| c == pb::ClockState::Running as i32),
        "another region runs on"
    );
    assert_eq!(
        app.sla(&done.id).await,
        done_before,
        "a resolved ticket is untouched"
    );

    // Opened during the emergency in its region: held from its start.
    let opened_at = t0 + chrono::Duration::minutes(30);
    manual.set(opened_at);
    let late = open_in(&mut app, "CN-GD").await;
    let late_status = app.sla(&late.id).await;
    assert!(states(&late_status).iter().all(|&c| c == paused));
    assert_eq!(app.ticket(&late.id).await.held_by, ["inc-typhoon"]);

    // Closed at t0 + 70 min (delivered twice): every held clock runs again, due later by
    // exactly the time it was held.
    let closed_at = t0 + chrono::Duration::minutes(70);
    manual.set(closed_at);
    let closed = message(
        Payload::IncidentClosed(ev::IncidentClosed {
            incident_id: "inc-typhoon".into(),
        }),
        closed_at,
    );
    app.bus
        .publish("care", &[closed.clone(), closed])
        .await
        .unwrap();
    let running = pb::ClockState::Running as i32;
    let after = app
        .wait_for_sla(&held.id, Duration::from_secs(10), |s| {
            states(s).iter().all(|&c| c == running)
        })
        .await;
    assert_eq!(
        due(&after),
        resolution_due + 60 * 60_000,
        "held for 60 minutes"
    );
    assert!(app.ticket(&held.id).await.held_by.is_empty());
    let late_after = app
        .wait_for_sla(&late.id, Duration::from_secs(10), |s| {
            states(s).iter().all(|&c| c == running)
        })
        .await;
    assert_eq!(
        due(&late_after),
        opened_at.timestamp_millis() + 86_400_000 + 40 * 60_000,
        "held for the 40 minutes it lived under the emergency"
    );
    assert_eq!(
        due(&app.sla(&elsewhere.id).await),
        resolution_due,
        "never held"
    );
    // Both deliveries of each event applied, the second changing nothing.
    let processed = app
        .execute("UPDATE regional_emergencies SET region_code = region_code")
        .await;
    assert_eq!(processed, 1, "one emergency recorded");
    app.stop().await;
}

#[tokio::test]
async fn a_regional_emergency_holds_the_regions_clocks_on_postgres_and_redis() {
    a_regional_emergency_holds_the_regions_clocks(Backend::Postgres).await;
}

#[tokio::test]
async fn a_regional_emergency_holds_the_regions_clocks_on_sqlite_in_process() {
    a_regional_emergency_holds_the_regions_clocks(Backend::Sqlite).await;
}

/// Tickets care linked to an incident are updated together when care asks: escalated to
/// the level and given the severity (policy matched again), once however often either
/// event is delivered; an unlinked ticket is untouched.
async fn linked_tickets_are_updated_together(backend: Backend) {
    let mut app = spawn_with(backend, Options::default()).await;
    let first = open_in(&mut app, "CN-SH").await;
    let second = open_in(&mut app, "CN-SH").await;
    let unlinked = open_in(&mut app, "CN-SH").await;
    let now = Utc::now();
    let link = |ticket: &str| {
        message(
            Payload::IncidentTicketLinked(ev::IncidentTicketLinked {
                incident_id: "inc-batch".into(),
                ticket_id: ticket.into(),
            }),
            now,
        )
    };
    let update = message(
        Payload::IncidentTicketsUpdated(ev::IncidentTicketsUpdated {
            incident_id: "inc-batch".into(),
            escalate_to: pb::EscalationLevel::Manager as i32,
            severity: pb::Severity::Urgent as i32,
        }),
        now,
    );
    let first_link = link(&first.id);
    app.bus
        .publish(
            "care",
            &[
                first_link.clone(),
                link(&second.id),
                first_link,
                link("of-another-system"),
            ],
        )
        .await
        .unwrap();
    app.bus
        .publish("care", &[update.clone(), update])
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for id in [&first.id, &second.id] {
        loop {
            let t = app.ticket(id).await;
            if t.escalation_level == pb::EscalationLevel::Manager as i32 {
                assert_eq!(t.severity, pb::Severity::Urgent as i32);
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{id} never updated");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Give the duplicates every chance, then count.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Urgent brings a supervisor, then the manager: two escalations, not four.
    assert_eq!(app.events(&first.id, "tickets.TicketEscalated").await, 2);
    let untouched = app.ticket(&unlinked.id).await;
    assert_eq!(
        untouched.escalation_level,
        pb::EscalationLevel::Agent as i32
    );
    assert_eq!(untouched.severity, pb::Severity::General as i32);
    app.stop().await;
}

#[tokio::test]
async fn linked_tickets_are_updated_together_on_postgres_and_redis() {
    linked_tickets_are_updated_together(Backend::Postgres).await;
}

#[tokio::test]
async fn linked_tickets_are_updated_together_on_sqlite_in_process() {
    linked_tickets_are_updated_together(Backend::Sqlite).await;
}
