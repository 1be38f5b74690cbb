//! The events the tickets service publishes (`aftersales.events.v1`), built from domain
//! events into outbox rows on the `tickets` stream.
//!
//! Events carry ids, not personal data: the stream is read by every service, kept beyond
//! any one ticket, and out of reach of an anonymisation. So no free text leaves in an
//! event: `TicketCreated` carries the ticket without its subject, description and
//! evidence (its product facts are codes, checked to hold no contact), and the reasons of status changes, escalations and reopenings stay on the
//! ticket's history (a consumer that needs them reads the ticket).
//!
//! Every event names the ticket's watchers (ids of users and teams, never contacts), so
//! they receive the ticket's events; changing the watchers publishes nothing of its own.

use aftersales_eventbus::{envelope::new_event, outbox::NewEvent};
use aftersales_protos::{
    events::v1::{self as ev, event_envelope::Payload},
    tickets::v1 as pb,
};
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
    // Every event names the watchers, so a notifier can tell them without a copy of its own.
    let watchers = proto::watchers(&ticket.watchers);
    match event {
        TicketEvent::Created => Payload::TicketCreated(ev::TicketCreated {
            ticket: Some(without_free_text(proto::ticket(ticket))),
        }),
        TicketEvent::StatusChanged { from, to, .. } => {
            Payload::TicketStatusChanged(ev::TicketStatusChanged {
                ticket_id,
                from: from.to_proto(),
                to: to.to_proto(),
                reason: String::new(),
                watchers,
            })
        }
        TicketEvent::Escalated {
            from, to, clock_id, ..
        } => Payload::TicketEscalated(ev::TicketEscalated {
            ticket_id,
            from: from.to_proto(),
            to: to.to_proto(),
            reason: String::new(),
            clock_id: clock_id.clone().unwrap_or_default(),
            watchers,
        }),
        TicketEvent::SlaWarning {
            clock,
            percent,
            action,
        } => Payload::SlaWarning(ev::SlaWarning {
            ticket_id,
            clock_id: clock.id.clone(),
            kind: clock.kind.to_proto(),
            due_at: Some(timestamp(clock.due_at)),
            watchers,
            threshold_percent: u32::from(*percent),
            action: action.to_proto(),
            group_id: ticket.group_id.clone().unwrap_or_default(),
            agent_id: ticket.assignee.clone().unwrap_or_default(),
        }),
        TicketEvent::ClockMet {
            clock,
            actual_minus_standard_ms,
        } => Payload::SlaClockMet(ev::SlaClockMet {
            ticket_id,
            clock_id: clock.id.clone(),
            kind: clock.kind.to_proto(),
            due_at: Some(timestamp(clock.due_at)),
            met_at: clock.met_at.map(timestamp),
            actual_minus_standard_ms: *actual_minus_standard_ms,
            group_id: ticket.group_id.clone().unwrap_or_default(),
            agent_id: ticket.assignee.clone().unwrap_or_default(),
            watchers,
            cycle: clock.cycle,
        }),
        TicketEvent::SlaBreached { clock } => Payload::SlaBreached(ev::SlaBreached {
            ticket_id,
            clock_id: clock.id.clone(),
            kind: clock.kind.to_proto(),
            due_at: Some(timestamp(clock.due_at)),
            breached_at: clock.breached_at.map(timestamp),
            watchers,
        }),
        TicketEvent::Resolved => Payload::TicketResolved(ev::TicketResolved {
            ticket_id,
            customer_id: ticket.customer_id.clone(),
            resolved_at: ticket.resolved_at.map(timestamp),
            watchers,
        }),
        TicketEvent::Reopened { .. } => Payload::TicketReopened(ev::TicketReopened {
            ticket_id,
            customer_id: ticket.customer_id.clone(),
            reopen_count: ticket.reopen_count,
            reason: String::new(),
            watchers,
        }),
        TicketEvent::Assigned {
            group_id,
            agent_id,
            previous_agent_id,
            reason,
        } => Payload::TicketAssigned(ev::TicketAssigned {
            ticket_id,
            group_id: group_id.clone().unwrap_or_default(),
            agent_id: agent_id.clone().unwrap_or_default(),
            previous_agent_id: previous_agent_id.clone().unwrap_or_default(),
            reason: (*reason).to_owned(),
            watchers,
        }),
    }
}

/// The ticket as an event carries it: ids, codes and times, none of the text people wrote.
fn without_free_text(ticket: pb::Ticket) -> pb::Ticket {
    pb::Ticket {
        subject: String::new(),
        description: String::new(),
        evidence: Vec::new(),
        ..ticket
    }
}
