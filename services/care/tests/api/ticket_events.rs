//! Tickets' events as care's tests publish them: a ticket created, assigned and resolved
//! at given instants, with ids only.

use aftersales_platform::codes::timestamp;
use aftersales_protos::{
    events::v1::{self as ev, EventEnvelope, event_envelope::Payload},
    tickets::v1 as tickets,
};
use chrono::{DateTime, Utc};

use crate::helpers::envelope;

/// Monday 2026-11-16 00:00 UTC: the week the scripted histories happen in.
pub fn week() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-16T00:00:00Z")
        .unwrap()
        .to_utc()
}

pub fn created(id: &str, at: DateTime<Utc>) -> EventEnvelope {
    envelope(
        id,
        at,
        Payload::TicketCreated(ev::TicketCreated {
            ticket: Some(tickets::Ticket {
                id: id.into(),
                customer_id: format!("c-{id}"),
                order_id: format!("o-{id}"),
                channel: tickets::Channel::Hotline as i32,
                category: tickets::Category::Complaint as i32,
                severity: tickets::Severity::General as i32,
                created_at: Some(timestamp(at)),
                status: tickets::TicketStatus::New as i32,
                ..Default::default()
            }),
        }),
    )
}

pub fn assigned(
    id: &str,
    group: &str,
    agent: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> EventEnvelope {
    envelope(
        id,
        at,
        Payload::TicketAssigned(ev::TicketAssigned {
            ticket_id: id.into(),
            group_id: group.into(),
            agent_id: agent.into(),
            reason: reason.into(),
            ..Default::default()
        }),
    )
}

pub fn resolved(id: &str, at: DateTime<Utc>) -> EventEnvelope {
    envelope(
        id,
        at,
        Payload::TicketResolved(ev::TicketResolved {
            ticket_id: id.into(),
            customer_id: format!("c-{id}"),
            resolved_at: Some(timestamp(at)),
            ..Default::default()
        }),
    )
}

/// A busy week for the measurements: 20,000 tickets, one every 25 s from [`week`], each
/// assigned to one of 50 agents of group `g1` and resolved 5 minutes later, written
/// straight into care's ticket facts (`with_creation`: their creation observed too).
pub async fn seed_busy_week(db: &sea_orm::DatabaseConnection, with_creation: bool) {
    use aftersales_care::domain::facts::{Assignment, TicketFact, TicketObservation};
    use chrono::Duration;
    use sea_orm::TransactionTrait;
    let txn = db.begin().await.unwrap();
    for i in 0..20_000 {
        let at = week() + Duration::seconds(i * 25);
        let mut fact = TicketFact::new(&format!("busy-{i:05}"));
        if with_creation {
            fact.observe(&TicketObservation::Created {
                customer_id: format!("c-{i}"),
                order_id: format!("o-{i}"),
                channel: None,
                severity: None,
                category: None,
                product: Default::default(),
                at,
            });
        }
        fact.observe(&TicketObservation::Assigned(Assignment {
            at,
            event_id: format!("e-{i}"),
            agent_id: format!("agent-{}", i % 50),
            group_id: "g1".into(),
        }));
        fact.observe(&TicketObservation::Resolved {
            customer_id: "c".into(),
            at: at + Duration::minutes(5),
        });
        aftersales_care::store::save_ticket_fact(&txn, &fact)
            .await
            .unwrap();
    }
    txn.commit().await.unwrap();
}
