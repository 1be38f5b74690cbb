//! Other services' events, applied by the tickets consumer: a repair job dispatch could
//! not place escalates its ticket to a supervisor, once, however often it is delivered.

use std::time::Duration;

use aftersales_eventbus::{BusMessage, envelope::new_event};
use aftersales_protos::{
    events::v1::{self as ev, event_envelope::Payload},
    tickets::v1 as pb,
};
use chrono::Utc;

use crate::helpers::{Backend, TestApp, spawn};

fn job_unassigned(ticket_id: &str) -> BusMessage {
    let payload = Payload::JobUnassigned(ev::JobUnassigned {
        job_id: "job-1".into(),
        ticket_id: ticket_id.into(),
        reason: "no partner covers region 999999".into(),
        offers_made: 0,
    });
    let event = new_event("dispatch", "dispatch", "job-1", payload, Utc::now());
    BusMessage {
        event_id: event.event_id,
        event_type: event.event_type,
        subject_id: event.subject_id,
        payload: event.payload,
        headers: Default::default(),
    }
}

async fn an_unplaceable_job_escalates_its_ticket_once(backend: Backend) {
    let mut app: TestApp = spawn(backend).await;
    let t = app.create(pb::Channel::Hotline, "").await;
    assert_eq!(t.escalation_level, pb::EscalationLevel::Agent as i32);

    let event = job_unassigned(&t.id);
    let unknown = job_unassigned("a-ticket-of-another-system");
    app.bus
        .publish("dispatch", &[event.clone(), unknown, event])
        .await
        .unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.ticket(&t.id).await.escalation_level != pb::EscalationLevel::Supervisor as i32 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ticket was never escalated"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while app.unpublished().await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the escalation was never published"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give the duplicate delivery every chance to be applied, then count.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.events(&t.id, "tickets.TicketEscalated").await, 1);
    let sla = app.sla(&t.id).await;
    assert!(
        sla.clocks
            .iter()
            .all(|c| c.state == pb::ClockState::Running as i32),
        "an escalation moves no clock: {sla:#?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unplaceable_job_escalates_its_ticket_once_on_postgres_and_redis() {
    an_unplaceable_job_escalates_its_ticket_once(Backend::Postgres).await;
}

#[tokio::test]
async fn an_unplaceable_job_escalates_its_ticket_once_on_sqlite_in_process() {
    an_unplaceable_job_escalates_its_ticket_once(Backend::Sqlite).await;
}
