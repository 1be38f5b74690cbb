//! The events the tickets service publishes (`aftersales.events.v1`), built from domain
//! events into outbox rows on the `tickets` stream.

use aftersales_eventbus::{envelope::new_event, outbox::NewEvent};
use aftersales_protos::events::v1::{self as ev, event_envelope::Payload};
use chrono::{DateTime, Utc};

use crate::{
    domain::ticket::{Ticket, TicketEvent},
    proto::{self, ProtoEnum},
};
use aftersales_platform::codes::timestamp;

/// The stream every tickets event goes to.
pub const STREAM: &str = "tickets";

pub fn encode(ticket: &Ticket, events: &[TicketEvent], now: DateTime<Utc>) -> Vec<NewEvent> {
    events
        .iter()
        .map(|event| new_event(STREAM, "tickets", &ticket.id, payload(ticket, event), now))
        .collect()
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
            due_at: Some(timestamp(clock.due_at)),
        }),
        TicketEvent::SlaBreached { clock } => Payload::SlaBreached(ev::SlaBreached {
            ticket_id,
            clock_id: clock.id.clone(),
            kind: clock.kind.to_proto(),
            due_at: Some(timestamp(clock.due_at)),
            breached_at: clock.breached_at.map(timestamp),
        }),
        TicketEvent::Resolved => Payload::TicketResolved(ev::TicketResolved {
            ticket_id,
            customer_id: ticket.customer_id.clone(),
            resolved_at: ticket.resolved_at.map(timestamp),
        }),
        TicketEvent::Reopened { reason } => Payload::TicketReopened(ev::TicketReopened {
            ticket_id,
            customer_id: ticket.customer_id.clone(),
            reopen_count: ticket.reopen_count,
            reason: reason.clone(),
        }),
    }
}
