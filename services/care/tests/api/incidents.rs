//! Major incidents through the real gRPC API: the suite proposes one when complaints
//! naming a batch pass the threshold (and at once for an urgent complaint), tickets are
//! linked as they arrive, a declaration starts the statement and recall clocks, which
//! warn and escalate at their exact instants, once; bad input is named by field.

use std::sync::Arc;

use aftersales_care::usecases::CareDeadline;
use aftersales_deadlines::worker::{Deadlines, Due};
use aftersales_platform::{clock::ManualClock, codes::timestamp};
use aftersales_protos::{
    care::v1 as pb,
    events::v1::{self as ev, EventEnvelope, event_envelope::Payload},
    tickets::v1 as tickets,
};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use tonic::Code;

use crate::helpers::*;

fn complaint(
    id: &str,
    batch: &str,
    severity: tickets::Severity,
    category: tickets::Category,
    at: DateTime<Utc>,
) -> EventEnvelope {
    envelope(
        id,
        at,
        Payload::TicketCreated(ev::TicketCreated {
            ticket: Some(tickets::Ticket {
                id: id.into(),
                customer_id: "c".into(),
                order_id: id.into(),
                channel: tickets::Channel::Hotline as i32,
                category: category as i32,
                severity: severity as i32,
                created_at: Some(timestamp(at)),
                status: tickets::TicketStatus::New as i32,
                product: Some(tickets::ProductFacts {
                    batch: batch.into(),
                    region_code: "CN-SH".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
    )
}

async fn spawn_at(backend: Backend, clock: &ManualClock, threshold: u32) -> TestApp {
    let mut setup = Setup::new(backend);
    setup.config.clock = Arc::new(clock.clone());
    setup.config.rules.incidents.batch_threshold = threshold;
    setup.config.rules.incidents.window = Duration::minutes(60);
    spawn_with(setup).await
}

async fn fire(app: &TestApp, clock: &ManualClock, at: DateTime<Utc>, id: &str) {
    clock.set(at);
    let due = Due {
        member: CareDeadline::Incident(id.to_owned()),
        due_ms: 0,
    };
    app.core.fire(&[due]).await.expect("fired");
}

async fn outbox(app: &TestApp, event_type: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) AS n FROM outbox WHERE event_type = '{event_type}'"
    ))
    .await
}

async fn linked(app: &mut TestApp, id: &str) -> Vec<String> {
    app.client
        .list_incident_tickets(pb::ListIncidentTicketsRequest {
            incident_id: id.into(),
            page: None,
        })
        .await
        .expect("tickets")
        .into_inner()
        .ticket_ids
}

async fn a_batch_incident_from_proposal_to_escalation(backend: Backend) {
    use tickets::{Category::*, Severity::*};
    let t0 = Utc::now().trunc_subsecs(3);
    let clock = ManualClock::at(t0);
    let mut app = spawn_at(backend, &clock, 3).await;
    let script = vec![
        complaint("t0", "B9", General, Complaint, t0 - Duration::hours(2)),
        complaint("q1", "B9", General, Inquiry, t0 - Duration::minutes(20)),
        complaint("t1", "B9", General, Complaint, t0 - Duration::minutes(10)),
        complaint("t2", "B9", General, Repair, t0 - Duration::minutes(5)),
        complaint("x1", "B1", General, Complaint, t0 - Duration::minutes(5)),
    ];
    app.publish(&script).await;
    app.wait_for_events(script.len() as i64).await;
    let proposed = |app: &mut TestApp| {
        let mut client = app.client.clone();
        async move {
            client
                .list_incidents(pb::ListIncidentsRequest {
                    status: pb::IncidentStatus::Proposed as i32,
                    page: None,
                })
                .await
                .expect("listed")
                .into_inner()
                .incidents
        }
    };
    assert!(
        proposed(&mut app).await.is_empty(),
        "two complaints in the window"
    );

    // The third complaint of B9 within the hour: proposed, with all three linked.
    app.publish(&[complaint("t3", "B9", General, Complaint, t0)])
        .await;
    app.wait_for_events(6).await;
    let incidents = proposed(&mut app).await;
    assert_eq!(incidents.len(), 1);
    let incident = &incidents[0];
    assert_eq!(incident.kind, pb::IncidentKind::Quality as i32);
    assert_eq!(incident.scope.as_ref().unwrap().batch, "B9");
    assert!(
        incident
            .proposed_because
            .starts_with("3 complaints naming batch B9"),
        "{}",
        incident.proposed_because
    );
    assert!(
        incident.milestones.is_empty(),
        "no clock before a declaration"
    );
    let id = incident.id.clone();
    assert_eq!(linked(&mut app, &id).await, ["t1", "t2", "t3"]);

    // A later complaint of the batch is linked as it arrives, once under redelivery.
    let t4 = complaint("t4", "B9", General, Complaint, t0 + Duration::minutes(1));
    app.publish(&[t4.clone(), t4]).await;
    app.wait_for_events(7).await;
    assert_eq!(linked(&mut app, &id).await, ["t1", "t2", "t3", "t4"]);
    assert_eq!(outbox(&app, "care.IncidentOpened").await, 1, "one proposal");
    assert_eq!(outbox(&app, "care.IncidentTicketLinked").await, 4);

    // Declared at t0 + 10 min: the statement is due 2 h later, the recall 48 h later.
    let declared_at = t0 + Duration::minutes(10);
    clock.set(declared_at);
    let declare = pb::DeclareIncidentRequest {
        idempotency_key: "declare-b9".into(),
        incident_id: id.clone(),
        ..Default::default()
    };
    let active = app
        .client
        .declare_incident(declare.clone())
        .await
        .expect("declared")
        .into_inner();
    assert_eq!(active.status, pb::IncidentStatus::Active as i32);
    let due: Vec<_> = active
        .milestones
        .iter()
        .map(|m| (m.kind, m.due_at, m.warn_at))
        .collect();
    let ms = |d: Duration| Some(timestamp(declared_at + d));
    assert_eq!(
        due,
        [
            (
                pb::IncidentMilestoneKind::Statement as i32,
                ms(Duration::hours(2)),
                ms(Duration::minutes(90))
            ),
            (
                pb::IncidentMilestoneKind::Recall as i32,
                ms(Duration::hours(48)),
                ms(Duration::hours(36))
            ),
        ]
    );
    let again = app
        .client
        .declare_incident(declare)
        .await
        .expect("a retry answers")
        .into_inner();
    assert_eq!(again, active, "the retry does nothing new");
    assert_eq!(outbox(&app, "care.IncidentDeclared").await, 1);

    // The statement clock: nothing a millisecond early, a warning at 75 %, then the
    // breach escalates one level; each once however often it fires.
    let at = |d: Duration| declared_at + d;
    fire(
        &app,
        &clock,
        at(Duration::minutes(90) - Duration::milliseconds(1)),
        &id,
    )
    .await;
    assert_eq!(outbox(&app, "care.IncidentClockWarning").await, 0);
    fire(&app, &clock, at(Duration::minutes(90)), &id).await;
    fire(&app, &clock, at(Duration::minutes(90)), &id).await;
    assert_eq!(outbox(&app, "care.IncidentClockWarning").await, 1);
    fire(
        &app,
        &clock,
        at(Duration::hours(2) - Duration::milliseconds(1)),
        &id,
    )
    .await;
    assert_eq!(outbox(&app, "care.IncidentClockBreached").await, 0);
    fire(&app, &clock, at(Duration::hours(2)), &id).await;
    fire(&app, &clock, at(Duration::hours(2)), &id).await;
    assert_eq!(outbox(&app, "care.IncidentClockBreached").await, 1);

    // The recall is recorded before its warning: it never warns nor breaches.
    clock.set(at(Duration::hours(3)));
    let recalled = app
        .client
        .record_incident_action(pb::RecordIncidentActionRequest {
            idempotency_key: "recall-b9".into(),
            incident_id: id.clone(),
            action: pb::IncidentActionKind::Recall as i32,
            note: "batch B9 withdrawn from sale and recalled".into(),
            reference: "RECALL-2026-17".into(),
        })
        .await
        .expect("recorded")
        .into_inner();
    assert_eq!(recalled.escalation_level, 1);
    assert_eq!(recalled.actions.len(), 1);
    fire(&app, &clock, at(Duration::hours(48)), &id).await;
    assert_eq!(outbox(&app, "care.IncidentClockWarning").await, 1);
    assert_eq!(outbox(&app, "care.IncidentClockBreached").await, 1);
    let breached = app
        .client
        .get_incident(pb::GetIncidentRequest {
            incident_id: id.clone(),
        })
        .await
        .expect("read")
        .into_inner();
    let flags: Vec<(bool, bool, bool)> = breached
        .milestones
        .iter()
        .map(|m| (m.warned, m.breached, m.met_at.is_some()))
        .collect();
    assert_eq!(flags, [(true, true, false), (false, false, true)]);

    // One open incident a scope: declaring B9 again by hand is refused.
    let refused = app
        .client
        .declare_incident(pb::DeclareIncidentRequest {
            kind: pb::IncidentKind::Quality as i32,
            scope: Some(pb::IncidentScope {
                batch: "B9".into(),
                ..Default::default()
            }),
            title: "kettles of batch B9".into(),
            ..Default::default()
        })
        .await
        .expect_err("a second open incident for the scope");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    let closed = app
        .client
        .close_incident(pb::CloseIncidentRequest {
            idempotency_key: String::new(),
            incident_id: id.clone(),
        })
        .await
        .expect("closed")
        .into_inner();
    assert_eq!(closed.status, pb::IncidentStatus::Closed as i32);
    let late = app
        .client
        .link_incident_tickets(pb::LinkIncidentTicketsRequest {
            incident_id: id.clone(),
            ticket_ids: vec!["t9".into()],
            ..Default::default()
        })
        .await
        .expect_err("closed incidents link nothing");
    assert_eq!(late.code(), Code::FailedPrecondition);
    app.stop().await;
}

#[tokio::test]
async fn a_batch_incident_from_proposal_to_escalation_on_postgres() {
    a_batch_incident_from_proposal_to_escalation(Backend::Postgres).await;
}

#[tokio::test]
async fn a_batch_incident_from_proposal_to_escalation_on_sqlite() {
    a_batch_incident_from_proposal_to_escalation(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_urgent_complaint_proposes_a_safety_incident_at_once_and_one_declared_by_hand_links_open_tickets()
 {
    use tickets::{Category::*, Severity::*};
    let t0 = Utc::now().trunc_subsecs(3);
    let clock = ManualClock::at(t0);
    let mut app = spawn_at(Backend::Sqlite, &clock, 0).await;
    let script = vec![
        complaint("u1", "B5", Urgent, Complaint, t0),
        complaint("g1", "B6", General, Complaint, t0),
        complaint("g2", "", General, Inquiry, t0),
    ];
    app.publish(&script).await;
    app.wait_for_events(3).await;
    let all = app
        .client
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .expect("listed")
        .into_inner()
        .incidents;
    assert_eq!(
        all.len(),
        1,
        "the threshold rule is off; the urgent rule is not"
    );
    assert_eq!(all[0].kind, pb::IncidentKind::Safety as i32);
    assert_eq!(all[0].scope.as_ref().unwrap().batch, "B5");
    assert_eq!(linked(&mut app, &all[0].id).await, ["u1"]);

    // An outage declared by hand for the region links its open tickets; it has no
    // recall clock.
    let outage = app
        .client
        .declare_incident(pb::DeclareIncidentRequest {
            kind: pb::IncidentKind::ServiceOutage as i32,
            scope: Some(pb::IncidentScope {
                region_code: "CN-SH".into(),
                ..Default::default()
            }),
            title: "hotline down in Shanghai".into(),
            ..Default::default()
        })
        .await
        .expect("declared")
        .into_inner();
    assert_eq!(outage.milestones.len(), 1);
    assert_eq!(linked(&mut app, &outage.id).await, ["g1", "g2", "u1"]);

    // The linked tickets updated together: recorded, and asked of tickets by one event.
    let updated = app
        .client
        .update_incident_tickets(pb::UpdateIncidentTicketsRequest {
            idempotency_key: "outage-escalate".into(),
            incident_id: outage.id.clone(),
            escalate_to: tickets::EscalationLevel::Manager as i32,
            severity: tickets::Severity::Urgent as i32,
        })
        .await
        .expect("updated")
        .into_inner();
    let last = updated.actions.last().expect("an action");
    assert_eq!(last.action, pb::IncidentActionKind::TicketsUpdated as i32);
    assert_eq!(last.note, "escalate to manager; severity urgent");
    let asked = app
        .rows("SELECT payload FROM outbox WHERE event_type = 'care.IncidentTicketsUpdated'")
        .await;
    assert_eq!(asked.len(), 1);
    let payload: Vec<u8> = asked[0].try_get("", "payload").unwrap();
    let Some(Payload::IncidentTicketsUpdated(event)) =
        <EventEnvelope as prost::Message>::decode(payload.as_slice())
            .unwrap()
            .payload
    else {
        panic!("not an update");
    };
    assert_eq!(
        (event.escalate_to, event.severity),
        (
            tickets::EscalationLevel::Manager as i32,
            tickets::Severity::Urgent as i32
        )
    );
    let bad = app
        .client
        .update_incident_tickets(pb::UpdateIncidentTicketsRequest {
            incident_id: outage.id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("nothing asked");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("escalate_to"), "{}", bad.message());

    let bad = app
        .client
        .declare_incident(pb::DeclareIncidentRequest {
            scope: Some(pb::IncidentScope::default()),
            ..Default::default()
        })
        .await
        .expect_err("nothing named");
    assert_eq!(bad.code(), Code::InvalidArgument);
    for field in ["kind", "scope", "title"] {
        assert!(bad.message().contains(field), "{field}: {}", bad.message());
    }
    let bad = app
        .client
        .record_incident_action(pb::RecordIncidentActionRequest {
            incident_id: outage.id.clone(),
            note: "x".into(),
            ..Default::default()
        })
        .await
        .expect_err("no action");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("action"), "{}", bad.message());
    let by_hand = app
        .client
        .record_incident_action(pb::RecordIncidentActionRequest {
            incident_id: outage.id.clone(),
            action: pb::IncidentActionKind::TicketsUpdated as i32,
            note: "x".into(),
            ..Default::default()
        })
        .await
        .expect_err("only UpdateIncidentTickets records that");
    assert_eq!(by_hand.code(), Code::InvalidArgument);
    app.stop().await;
}

/// A regional emergency: its region's customers with open work are notified once, its
/// declaration carries the region for tickets to pause that region's clocks, and it
/// closes by itself at its planned end, exactly then.
async fn a_regional_emergency_notifies_once_and_ends_at_its_planned_end(backend: Backend) {
    let t0 = Utc::now().trunc_subsecs(3);
    let clock = ManualClock::at(t0);
    let mut app = spawn_at(backend, &clock, 0).await;
    for (id, region) in [("busy", "CN-GD"), ("idle", "CN-GD"), ("far", "CN-BJ")] {
        let mut c = customer(id);
        c.region_code = region.into();
        app.upsert(c).await;
    }
    let mut open = complaint(
        "e1",
        "",
        tickets::Severity::General,
        tickets::Category::Repair,
        t0,
    );
    if let Some(Payload::TicketCreated(c)) = &mut open.payload
        && let Some(t) = &mut c.ticket
    {
        t.customer_id = "busy".into();
    }
    app.publish(&[open]).await;
    app.wait_for_events(1).await;

    let until = t0 + Duration::hours(6);
    let declare = pb::DeclareIncidentRequest {
        idempotency_key: "typhoon".into(),
        kind: pb::IncidentKind::RegionalEmergency as i32,
        scope: Some(pb::IncidentScope {
            region_code: "CN-GD".into(),
            ..Default::default()
        }),
        title: "typhoon: roads closed".into(),
        until: Some(timestamp(until)),
        ..Default::default()
    };
    let emergency = app
        .client
        .declare_incident(declare.clone())
        .await
        .expect("declared")
        .into_inner();
    assert!(emergency.milestones.is_empty());
    assert_eq!(emergency.ends_at, Some(timestamp(until)));
    app.client
        .declare_incident(declare)
        .await
        .expect("a retry answers");
    let notified = app
        .count("SELECT COUNT(*) AS n FROM care_tasks WHERE kind = 'notice'")
        .await;
    assert_eq!(
        notified, 1,
        "the one customer of the region with open work, once"
    );
    let declared = app
        .rows("SELECT payload FROM outbox WHERE event_type = 'care.IncidentDeclared'")
        .await;
    assert_eq!(declared.len(), 1);

    let id = emergency.id.clone();
    fire(&app, &clock, until - Duration::milliseconds(1), &id).await;
    assert_eq!(outbox(&app, "care.IncidentClosed").await, 0);
    fire(&app, &clock, until, &id).await;
    fire(&app, &clock, until, &id).await;
    assert_eq!(outbox(&app, "care.IncidentClosed").await, 1);
    let ended = app
        .client
        .get_incident(pb::GetIncidentRequest {
            incident_id: id.clone(),
        })
        .await
        .expect("read")
        .into_inner();
    assert_eq!(ended.status, pb::IncidentStatus::Closed as i32);
    assert_eq!(ended.closed_at, Some(timestamp(until)));

    let bad = app
        .client
        .declare_incident(pb::DeclareIncidentRequest {
            kind: pb::IncidentKind::Quality as i32,
            scope: Some(pb::IncidentScope {
                batch: "B1".into(),
                ..Default::default()
            }),
            title: "x".into(),
            until: Some(timestamp(until)),
            ..Default::default()
        })
        .await
        .expect_err("only an emergency has a planned end");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("until"), "{}", bad.message());
    app.stop().await;
}

#[tokio::test]
async fn a_regional_emergency_notifies_once_and_ends_at_its_planned_end_on_postgres() {
    a_regional_emergency_notifies_once_and_ends_at_its_planned_end(Backend::Postgres).await;
}

#[tokio::test]
async fn a_regional_emergency_notifies_once_and_ends_at_its_planned_end_on_sqlite() {
    a_regional_emergency_notifies_once_and_ends_at_its_planned_end(Backend::Sqlite).await;
}
