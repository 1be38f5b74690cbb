//! The events the tickets service publishes (`aftersales.events.v1`), built from domain
//! events into outbox rows on the `tickets` stream.

use aftersales_eventbus::outbox::NewEvent;
use aftersales_protos::events::v1::{self as ev, event_envelope::Payload};
use chrono::{DateTime, Utc};
use prost::Message;

use crate::{
    domain::ticket::{Ticket, TicketEvent},
    proto::{self, ProtoEnum},
};

/// The stream every tickets event goes to.
pub const STREAM: &str = "tickets";

pub fn encode(ticket: &Ticket, events: &[TicketEvent], now: DateTime<Utc>) -> Vec<NewEvent> {
    events
        .iter()
        .map(|event| {
            let payload = payload(ticket, event);
            let event_type = format!("tickets.{}", type_name(&payload));
            let envelope = ev::EventEnvelope {
                id: uuid::Uuid::now_v7().to_string(),
                r#type: event_type.clone(),
                subject_id: ticket.id.clone(),
                occurred_at: Some(proto::timestamp(now)),
                source: "tickets".into(),
                payload: Some(payload),
            };
            NewEvent {
                event_id: envelope.id.clone(),
                stream: STREAM.into(),
                event_type,
                subject_id: ticket.id.clone(),
                payload: envelope.encode_to_vec(),
            }
        })
        .collect()
}

fn type_name(payload: &Payload) -> &'static str {
    match payload {
        Payload::TicketCreated(_) => "TicketCreated",
        Payload::TicketStatusChanged(_) => "TicketStatusChanged",
        Payload::TicketEscalated(_) => "TicketEscalated",
        Payload::SlaWarning(_) => "SlaWarning",
        Payload::SlaBreached(_) => "SlaBreached",
        Payload::TicketResolved(_) => "TicketResolved",
        Payload::TicketReopened(_) => "TicketReopened",
    }
}

fn payload(ticket: &Ticket, event: &TicketEvent) -> Payload {
    let ticket_id = ticket.id.clone();
    match event {
        TicketEvent::Created => Payload::TicketCreated(ev::TicketCreated {
            ticket: Some(proto::ticket(ticket)),
        }),
        TicketEvent::StatusChanged { from, to, reason } => {
            Payload::TicketStatusChanged(ev::TicketStatusChanged {
                ticket_id,
                from: from.to_proto(),
                to: to.to_proto(),
                reason: reason.clone(),
            })
        }
        TicketEvent::Escalated {
            from,
            to,
            reason,
            clock_id,
        } => Payload::TicketEscalated(ev::TicketEscalated {
            ticket_id,
            from: from.to_proto(),
            to: to.to_proto(),
            reason: reason.clone(),
            clock_id: clock_id.clone().unwrap_or_default(),
        }),
        TicketEvent::SlaWarning { clock } => Payload::SlaWarning(ev::SlaWarning {
            ticket_id,
            clock_id: clock.id.clone(),
            kind: clock.kind.to_proto(),
            due_at: Some(proto::timestamp(clock.due_at)),
        }),
        TicketEvent::SlaBreached { clock } => Payload::SlaBreached(ev::SlaBreached {
            ticket_id,
            clock_id: clock.id.clone(),
            kind: clock.kind.to_proto(),
            due_at: Some(proto::timestamp(clock.due_at)),
            breached_at: clock.breached_at.map(proto::timestamp),
        }),
        TicketEvent::Resolved => Payload::TicketResolved(ev::TicketResolved {
            ticket_id,
            customer_id: ticket.customer_id.clone(),
            resolved_at: ticket.resolved_at.map(proto::timestamp),
        }),
        TicketEvent::Reopened { reason } => Payload::TicketReopened(ev::TicketReopened {
            ticket_id,
            customer_id: ticket.customer_id.clone(),
            reopen_count: ticket.reopen_count,
            reason: reason.clone(),
        }),
    }
}
