//! A batch incident through the real binary on PostgreSQL and Redis, with the handbook's
//! clocks shortened by configuration: the third complaint naming one batch within the
//! window makes care propose an incident with the three tickets linked; a fourth is linked
//! as it arrives; the declaration starts the statement and recall clocks, which warn at
//! 75 % and escalate one level each when missed — each event once, none before its
//! instant; and the linked tickets are escalated together through tickets.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::time::{Duration, Instant};

use aftersales_eventbus::entity::outbox;
use aftersales_platform::codes::instant;
use aftersales_protos::{
    care::v1::{self as cpb, care_service_client::CareServiceClient},
    events::v1::{EventEnvelope, event_envelope::Payload},
    tickets::v1::{self as tpb, ticket_service_client::TicketServiceClient},
};
use prost::Message;
use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter, QueryOrder};
use support::suite::Launch;

fn complaint(n: u32) -> tpb::CreateTicketRequest {
    tpb::CreateTicketRequest {
        idempotency_key: format!("kettle-{n}"),
        customer_id: format!("cust-{n}"),
        channel: tpb::Channel::Hotline as i32,
        category: tpb::Category::Complaint as i32,
        severity: tpb::Severity::General as i32,
        subject: "kettle leaks".into(),
        description: "water under the base".into(),
        product: Some(tpb::ProductFacts {
            sku: "KT-200".into(),
            batch: "B2026-11".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_batch_incident_is_proposed_linked_declared_and_escalated_on_time() {
    let mut suite = Launch::postgres(&["tickets", "care"])
        .await
        .env("CARE_INCIDENT_BATCH_THRESHOLD", "3")
        .env("CARE_INCIDENT_WINDOW_MINUTES", "60")
        .env("CARE_INCIDENT_STATEMENT_WITHIN_SECS", "2")
        .env("CARE_INCIDENT_RECALL_WITHIN_SECS", "4")
        .spawn();
    let care_db = suite.database_url("care");
    let mut tickets = TicketServiceClient::new(suite.channel("tickets").await);
    let mut care = CareServiceClient::new(suite.channel("care").await);
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            tickets
                .create_ticket(complaint(n))
                .await
                .unwrap()
                .into_inner()
                .id,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let proposal = loop {
        let proposed = care
            .list_incidents(cpb::ListIncidentsRequest {
                status: cpb::IncidentStatus::Proposed as i32,
                page: None,
            })
            .await
            .unwrap()
            .into_inner()
            .incidents;
        if let Some(first) = proposed.first() {
            assert_eq!(proposed.len(), 1);
            break first.clone();
        }
        assert!(Instant::now() < deadline, "no incident was proposed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(proposal.kind, cpb::IncidentKind::Quality as i32);
    assert_eq!(proposal.scope.as_ref().unwrap().batch, "B2026-11");
    ids.push(
        tickets
            .create_ticket(complaint(3))
            .await
            .unwrap()
            .into_inner()
            .id,
    );
    ids.sort();
    let linked = loop {
        let linked = care
            .list_incident_tickets(cpb::ListIncidentTicketsRequest {
                incident_id: proposal.id.clone(),
                page: None,
            })
            .await
            .unwrap()
            .into_inner()
            .ticket_ids;
        if linked.len() == 4 || Instant::now() > deadline {
            break linked;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(linked, ids, "the three that proposed it and the one after");

    let declared = care
        .declare_incident(cpb::DeclareIncidentRequest {
            idempotency_key: "declare-kettles".into(),
            incident_id: proposal.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(declared.status, cpb::IncidentStatus::Active as i32);
    // Statement due in 2 s, recall in 4 s: both missed, one level each.
    let deadline = Instant::now() + Duration::from_secs(15);
    let escalated = loop {
        let now = care
            .get_incident(cpb::GetIncidentRequest {
                incident_id: proposal.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if now.escalation_level == 2 || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(escalated.escalation_level, 2);
    assert!(
        escalated
            .milestones
            .iter()
            .all(|m| m.warned && m.breached && m.met_at.is_none())
    );

    // Each warning and breach once, none before its instant.
    let db = Database::connect(&care_db).await.unwrap();
    let rows = outbox::Entity::find()
        .filter(outbox::Column::EventType.like("care.IncidentClock%"))
        .order_by_asc(outbox::Column::Seq)
        .all(&db)
        .await
        .unwrap();
    let mut fired = Vec::new();
    for row in rows {
        let envelope = EventEnvelope::decode(row.payload.as_slice()).unwrap();
        let at = instant(envelope.occurred_at.as_ref().unwrap()).unwrap();
        let (what, milestone, instant_due) = match envelope.payload.unwrap() {
            Payload::IncidentClockWarning(w) => {
                let m = declared
                    .milestones
                    .iter()
                    .find(|m| {
                        m.kind
                            == if w.milestone == "statement" {
                                cpb::IncidentMilestoneKind::Statement as i32
                            } else {
                                cpb::IncidentMilestoneKind::Recall as i32
                            }
                    })
                    .unwrap();
                (
                    "warning",
                    w.milestone,
                    instant(m.warn_at.as_ref().unwrap()).unwrap(),
                )
            }
            Payload::IncidentClockBreached(b) => (
                "breach",
                b.milestone,
                instant(b.due_at.as_ref().unwrap()).unwrap(),
            ),
            other => panic!("unexpected {other:?}"),
        };
        assert!(
            at >= instant_due,
            "{what} of {milestone} at {at}, before {instant_due}"
        );
        fired.push(format!("{what}:{milestone}"));
    }
    assert_eq!(
        fired,
        [
            "warning:statement",
            "breach:statement",
            "warning:recall",
            "breach:recall"
        ]
    );

    // The linked tickets updated together: every one escalated to a manager, through
    // tickets.
    care.update_incident_tickets(cpb::UpdateIncidentTicketsRequest {
        idempotency_key: "kettles-to-manager".into(),
        incident_id: proposal.id.clone(),
        escalate_to: tpb::EscalationLevel::Manager as i32,
        severity: 0,
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    for id in &ids {
        loop {
            let ticket = tickets
                .get_ticket(tpb::GetTicketRequest { id: id.clone() })
                .await
                .unwrap()
                .into_inner();
            if ticket.escalation_level == tpb::EscalationLevel::Manager as i32 {
                break;
            }
            assert!(Instant::now() < deadline, "{id} never escalated");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let exit = support::terminate(&mut suite.child, Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit}");
}
