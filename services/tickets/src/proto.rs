//! Conversions between domain types and the protobuf contract, shared by the gRPC API and
//! the published events. The only place that knows both.

use aftersales_platform::{codes::timestamp, proto_enum};
use aftersales_protos::tickets::v1 as pb;
use chrono::{DateTime, Utc};
use prost_types::Timestamp;

pub use aftersales_platform::codes::ProtoEnum;

mod flow;
pub mod teams;

pub use flow::{flow_fields, hand_off, warnings};

use crate::domain::{
    Author, Category, Channel, ClockKind, ClockState, Complexity, Level, Severity, Status, Tier,
    Visibility, WatcherKind,
    activity::ActivityEntry,
    calendar::{BusinessCalendar, format_time_of_day},
    clock::SlaClock,
    policy::{SlaPolicy, SlaTarget},
    product::ProductFacts,
    thread::{Attachment, Reply},
    ticket::Ticket,
    watchers::Watcher,
};

proto_enum!(Channel => pb::Channel {
    Hotline => Hotline, Chat => Chat, Email => Email, App => App,
    MarketplaceReview => MarketplaceReview, Store => Store, Social => Social,
});
proto_enum!(Category => pb::Category {
    Inquiry => Inquiry, Complaint => Complaint, ReturnExchange => ReturnExchange,
    Repair => Repair, TechnicalSupport => TechnicalSupport,
});
proto_enum!(Severity => pb::Severity { Urgent => Urgent, Important => Important, General => General });
proto_enum!(Complexity => pb::Complexity { Simple => Simple, Complex => Complex });
proto_enum!(Tier => pb::CustomerTier { Vip => Vip, Potential => Potential, Regular => Regular });
proto_enum!(Status => pb::TicketStatus {
    New => New, Open => Open, PendingCustomer => PendingCustomer,
    Resolved => Resolved, Closed => Closed, Reopened => Reopened,
});
proto_enum!(Level => pb::EscalationLevel { Agent => Agent, Supervisor => Supervisor, Manager => Manager });
proto_enum!(Author => pb::ReplyAuthor { Agent => Agent, Customer => Customer });
proto_enum!(Visibility => pb::Visibility { Public => Public, Internal => Internal });
proto_enum!(WatcherKind => pb::WatcherKind { User => User, Team => Team });
proto_enum!(ClockKind => pb::ClockKind {
    FirstResponse => FirstResponse, Resolution => Resolution, PeriodicUpdate => PeriodicUpdate,
    Record => Record, HandOff => HandOff, Agreement => Agreement, Remedy => Remedy,
    Feedback => Feedback, NextReply => NextReply,
});
proto_enum!(ClockState => pb::ClockState {
    Running => Running, Paused => Paused, Met => Met, Breached => Breached, Cancelled => Cancelled,
});

fn opt_timestamp(t: Option<DateTime<Utc>>) -> Option<Timestamp> {
    t.map(timestamp)
}

pub fn ticket(t: &Ticket) -> pb::Ticket {
    pb::Ticket {
        id: t.id.clone(),
        customer_id: t.customer_id.clone(),
        order_id: t.order_id.clone(),
        channel: t.channel.to_proto(),
        category: t.category.to_proto(),
        severity: t.severity.to_proto(),
        complexity: t.complexity.to_proto(),
        subject: t.subject.clone(),
        description: t.description.clone(),
        evidence: t.evidence.clone(),
        customer_tier: t.tier.to_proto(),
        assignee: t.assignee.clone().unwrap_or_default(),
        escalation_level: t.level.to_proto(),
        status: t.status.to_proto(),
        created_at: Some(timestamp(t.created_at)),
        updated_at: Some(timestamp(t.updated_at)),
        resolved_at: opt_timestamp(t.resolved_at),
        reopen_count: t.reopen_count,
        breached: t.breached,
        sla_policy_id: t.policy_id.clone(),
        sla_policy_version: t.policy_version,
        product: (!t.product.is_empty()).then(|| product(&t.product)),
        watchers: watchers(&t.watchers),
        held_by: t.holds.clone(),
        group_id: t.group_id.clone().unwrap_or_default(),
        reported_at: Some(timestamp(t.reported_at)),
        ..flow_fields(&t.flow)
    }
}

pub fn watchers(watchers: &[Watcher]) -> Vec<pb::Watcher> {
    watchers
        .iter()
        .map(|w| pb::Watcher {
            kind: w.kind.to_proto(),
            id: w.id.clone(),
        })
        .collect()
}

fn attachment(a: &Attachment) -> pb::Attachment {
    pb::Attachment {
        url: a.url.clone(),
        sha256: a.sha256.clone(),
    }
}

pub fn activity(a: &ActivityEntry) -> pb::ActivityEntry {
    pb::ActivityEntry {
        seq: a.seq,
        ticket_id: a.ticket_id.clone(),
        actor_id: a.actor_id.clone(),
        actor_role: a.actor_role.clone(),
        action: a.action.clone(),
        detail: a.detail.clone(),
        changes: a
            .changes
            .iter()
            .map(|c| pb::FieldChange {
                field: c.field.clone(),
                before: c.before.clone(),
                after: c.after.clone(),
            })
            .collect(),
        at: Some(timestamp(a.at)),
    }
}

fn product(p: &ProductFacts) -> pb::ProductFacts {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    pb::ProductFacts {
        sku: text(&p.sku),
        product_line: text(&p.product_line),
        batch: text(&p.batch),
        region_code: text(&p.region_code),
        order_line_id: text(&p.order_line_id),
    }
}

pub fn reply(r: &Reply) -> pb::Reply {
    pb::Reply {
        id: r.id.clone(),
        ticket_id: r.ticket_id.clone(),
        author: r.author.to_proto(),
        author_id: r.author_id.clone(),
        body: r.body.clone(),
        created_at: Some(timestamp(r.created_at)),
        visibility: r.visibility.to_proto(),
        attachments: r.attachments.iter().map(attachment).collect(),
        recorded_by: r.recorded_by.clone(),
        held: r.held,
    }
}

pub fn clock(c: &SlaClock, now: DateTime<Utc>) -> pb::SlaClock {
    pb::SlaClock {
        id: c.id.clone(),
        kind: c.kind.to_proto(),
        state: c.state.to_proto(),
        target_seconds: c.target_seconds,
        calendar_id: c.calendar_id.clone().unwrap_or_default(),
        started_at: Some(timestamp(c.started_at)),
        due_at: Some(timestamp(c.due_at)),
        warning_at: Some(timestamp(c.warning_at)),
        warned: c.warned(),
        warning_percents: c.warning_percents.iter().copied().map(u32::from).collect(),
        warnings_fired: u32::from(c.warnings_fired),
        met_at: opt_timestamp(c.met_at),
        breached_at: opt_timestamp(c.breached_at),
        paused_at: opt_timestamp(c.paused_at),
        lateness_seconds: c.lateness_seconds(now),
    }
}

pub(crate) fn target(t: &SlaTarget) -> pb::SlaTarget {
    pb::SlaTarget {
        seconds: t.seconds,
        calendar_id: t.calendar_id.clone().unwrap_or_default(),
    }
}

fn codes<T: ProtoEnum>(values: &[T]) -> Vec<i32> {
    values.iter().map(|v| v.to_proto()).collect()
}

pub fn policy(p: &SlaPolicy) -> pb::SlaPolicy {
    pb::SlaPolicy {
        id: p.id.clone(),
        version: p.version,
        name: p.name.clone(),
        priority: p.priority,
        match_severities: codes(&p.match_severities),
        match_categories: codes(&p.match_categories),
        match_tiers: codes(&p.match_tiers),
        match_channels: codes(&p.match_channels),
        match_complexities: codes(&p.match_complexities),
        first_response: Some(target(&p.first_response)),
        resolution: Some(target(&p.resolution)),
        periodic_update: p.periodic_update.as_ref().map(target),
        pause_statuses: codes(&p.pause_statuses),
        warning_percent: u32::from(p.warning_percent),
        escalate_on_breach: p.escalate_on_breach,
        initial_escalation_level: p.initial_level.to_proto(),
        created_at: Some(timestamp(p.created_at)),
        record: p.milestones.record.as_ref().map(target),
        hand_off: p.milestones.hand_off.as_ref().map(hand_off),
        agreement: p.milestones.agreement.as_ref().map(target),
        remedy: p.milestones.remedy.as_ref().map(target),
        feedback: p.milestones.feedback.as_ref().map(target),
        next_reply: p.milestones.next_reply.as_ref().map(target),
        warnings: warnings(&p.warnings),
    }
}

pub fn calendar(c: &BusinessCalendar) -> pb::BusinessCalendar {
    pb::BusinessCalendar {
        id: c.id.clone(),
        name: c.name.clone(),
        time_zone: c.time_zone.clone(),
        working_days: c
            .week
            .iter()
            .enumerate()
            .filter(|(_, slots)| !slots.is_empty())
            .map(|(i, slots)| pb::WorkingDay {
                weekday: i as u32 + 1,
                slots: slots
                    .iter()
                    .map(|s| pb::TimeSlot {
                        start: format_time_of_day(s.start),
                        end: format_time_of_day(s.end),
                    })
                    .collect(),
            })
            .collect(),
        holidays: c.holidays.iter().map(|d| d.to_string()).collect(),
    }
}
