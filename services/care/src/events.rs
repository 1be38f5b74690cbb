//! The events the care service publishes on the `care` stream.

use aftersales_eventbus::{envelope::new_event, outbox::NewEvent};
use aftersales_platform::codes::{ProtoEnum, timestamp};
use aftersales_protos::events::v1::{self as ev, event_envelope::Payload};
use chrono::{DateTime, Utc};

use crate::domain::{
    Severity, Tier,
    followup::FollowUp,
    incident::{ClockOutcome, EscalationLevel, Incident, MilestoneKind},
};

pub const STREAM: &str = "care";

fn event(subject_id: &str, payload: Payload, now: DateTime<Utc>) -> NewEvent {
    new_event(STREAM, "care", subject_id, payload, now)
}

/// `from` is `None` for a new customer.
pub fn tier_changed(
    customer_id: &str,
    from: Option<Tier>,
    to: Tier,
    now: DateTime<Utc>,
) -> NewEvent {
    event(
        customer_id,
        Payload::CustomerTierChanged(ev::CustomerTierChanged {
            customer_id: customer_id.to_owned(),
            from: from.map_or(0, Tier::to_proto),
            to: to.to_proto(),
            changed_at: Some(timestamp(now)),
        }),
        now,
    )
}

pub fn follow_up_recorded(f: &FollowUp, now: DateTime<Utc>) -> NewEvent {
    let o = f.outcome.as_ref();
    event(
        &f.ticket_id,
        Payload::FollowUpRecorded(ev::FollowUpRecorded {
            follow_up_id: f.id.clone(),
            ticket_id: f.ticket_id.clone(),
            customer_id: f.customer_id.clone(),
            reached: o.is_some_and(|o| o.reached),
            solved: o.is_some_and(|o| o.solved),
            satisfied: o.is_some_and(|o| o.satisfied),
            csat: o.and_then(|o| o.csat).map_or(0, u32::from),
            reopen_requested: f.reopen_requested,
        }),
        now,
    )
}

pub fn follow_up_overdue(f: &FollowUp, now: DateTime<Utc>) -> NewEvent {
    event(
        &f.ticket_id,
        Payload::FollowUpOverdue(ev::FollowUpOverdue {
            follow_up_id: f.id.clone(),
            ticket_id: f.ticket_id.clone(),
            customer_id: f.customer_id.clone(),
            due_at: Some(timestamp(f.due_at)),
        }),
        now,
    )
}

pub fn customer_anonymised(customer_id: &str, now: DateTime<Utc>) -> NewEvent {
    event(
        customer_id,
        Payload::CustomerAnonymised(ev::CustomerAnonymised {
            customer_id: customer_id.to_owned(),
        }),
        now,
    )
}

/// `IncidentOpened`: the incident as proposed or declared (no free text: its title and
/// actions stay in care).
pub fn incident_opened(i: &Incident, now: DateTime<Utc>) -> NewEvent {
    let part = |p: &Option<String>| p.clone().unwrap_or_default();
    event(
        &i.id,
        Payload::IncidentOpened(ev::IncidentOpened {
            incident_id: i.id.clone(),
            kind: i.kind.as_str().to_owned(),
            status: i.status.as_str().to_owned(),
            sku: part(&i.scope.sku),
            batch: part(&i.scope.batch),
            region_code: part(&i.scope.region),
        }),
        now,
    )
}

pub fn incident_declared(i: &Incident, now: DateTime<Utc>) -> NewEvent {
    let due = |kind: MilestoneKind| {
        i.milestones
            .iter()
            .find(|m| m.kind == kind)
            .map(|m| timestamp(m.due_at))
    };
    event(
        &i.id,
        Payload::IncidentDeclared(ev::IncidentDeclared {
            incident_id: i.id.clone(),
            kind: i.kind.as_str().to_owned(),
            declared_at: i.declared_at.map(timestamp),
            statement_due_at: due(MilestoneKind::Statement),
            recall_due_at: due(MilestoneKind::Recall),
            region_code: i.scope.region.clone().unwrap_or_default(),
            ends_at: i.ends_at.map(timestamp),
        }),
        now,
    )
}

/// What firing an incident's clocks produced, as events.
pub fn incident_clock(i: &Incident, outcome: &ClockOutcome, now: DateTime<Utc>) -> NewEvent {
    let due_at = |kind: MilestoneKind| {
        i.milestones
            .iter()
            .find(|m| m.kind == kind)
            .map(|m| timestamp(m.due_at))
    };
    let payload = match *outcome {
        ClockOutcome::Warned(kind) => Payload::IncidentClockWarning(ev::IncidentClockWarning {
            incident_id: i.id.clone(),
            milestone: kind.as_str().to_owned(),
            due_at: due_at(kind),
        }),
        ClockOutcome::Breached(kind, level) => {
            Payload::IncidentClockBreached(ev::IncidentClockBreached {
                incident_id: i.id.clone(),
                milestone: kind.as_str().to_owned(),
                due_at: due_at(kind),
                escalation_level: level,
            })
        }
        ClockOutcome::Ended => Payload::IncidentClosed(ev::IncidentClosed {
            incident_id: i.id.clone(),
        }),
    };
    event(&i.id, payload, now)
}

pub fn incident_tickets_linked(
    incident_id: &str,
    ticket_ids: &[String],
    now: DateTime<Utc>,
) -> Vec<NewEvent> {
    ticket_ids
        .iter()
        .map(|t| {
            event(
                incident_id,
                Payload::IncidentTicketLinked(ev::IncidentTicketLinked {
                    incident_id: incident_id.to_owned(),
                    ticket_id: t.clone(),
                }),
                now,
            )
        })
        .collect()
}

/// Care asks tickets to update every ticket linked to the incident together.
pub fn incident_tickets_updated(
    incident_id: &str,
    escalate_to: Option<EscalationLevel>,
    severity: Option<Severity>,
    now: DateTime<Utc>,
) -> NewEvent {
    event(
        incident_id,
        Payload::IncidentTicketsUpdated(ev::IncidentTicketsUpdated {
            incident_id: incident_id.to_owned(),
            escalate_to: escalate_to.map_or(0, EscalationLevel::to_proto),
            severity: severity.map_or(0, Severity::to_proto),
        }),
        now,
    )
}

pub fn incident_closed(incident_id: &str, now: DateTime<Utc>) -> NewEvent {
    event(
        incident_id,
        Payload::IncidentClosed(ev::IncidentClosed {
            incident_id: incident_id.to_owned(),
        }),
        now,
    )
}
