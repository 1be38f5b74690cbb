//! The events the care service publishes on the `care` stream.

use aftersales_eventbus::{envelope::new_event, outbox::NewEvent};
use aftersales_platform::codes::{ProtoEnum, timestamp};
use aftersales_protos::events::v1::{self as ev, event_envelope::Payload};
use chrono::{DateTime, Utc};

use crate::domain::{Tier, followup::FollowUp};

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
