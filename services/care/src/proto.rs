//! Conversions between domain types and the care contract (and the enums of the events
//! care reads): one place for every wire mapping.

use aftersales_platform::{codes::timestamp, proto_enum};
use aftersales_protos::{
    care::v1 as pb,
    common::v1 as common,
    tickets::v1::{self as tickets},
};
use chrono::{DateTime, Utc};

use crate::domain::{
    Category, Channel, FollowUpStatus, KpiDimension, Severity, SurveySubject, TaskKind,
    TicketState, Tier, TimelineKind,
    clock_lateness::ClockLateness,
    cost::{CostDimension, CostFigures, CostGroup, CostPeriod, Turnover},
    customer::{Contact, Customer},
    followup::FollowUp,
    incident::EscalationLevel,
    kpi::{DurationStats, KpiGroup, Rate},
    proactive::{CareTask, Warranty},
    quality::QualityCount,
    records::{PiiRead, Survey, TimelineEntry},
};

pub use aftersales_platform::codes::ProtoEnum;

proto_enum!(Tier => tickets::CustomerTier {
    Vip => Vip,
    Potential => Potential,
    Regular => Regular,
});

proto_enum!(Channel => tickets::Channel {
    Hotline => Hotline,
    Chat => Chat,
    Email => Email,
    App => App,
    MarketplaceReview => MarketplaceReview,
    Store => Store,
    Social => Social,
});

proto_enum!(EscalationLevel => tickets::EscalationLevel {
    Agent => Agent,
    Supervisor => Supervisor,
    Manager => Manager,
});

proto_enum!(Severity => tickets::Severity {
    Urgent => Urgent,
    Important => Important,
    General => General,
});

proto_enum!(Category => tickets::Category {
    Inquiry => Inquiry,
    Complaint => Complaint,
    ReturnExchange => ReturnExchange,
    Repair => Repair,
    TechnicalSupport => TechnicalSupport,
});

proto_enum!(TicketState => tickets::TicketStatus {
    New => New,
    Open => Open,
    PendingCustomer => PendingCustomer,
    Resolved => Resolved,
    Closed => Closed,
    Reopened => Reopened,
});

proto_enum!(TimelineKind => pb::TimelineKind {
    Ticket => Ticket,
    Return => Return,
    RepairJob => RepairJob,
    FollowUp => FollowUp,
    Survey => Survey,
    CareTask => CareTask,
});

proto_enum!(SurveySubject => pb::SurveySubject {
    Ticket => Ticket,
    RepairJob => RepairJob,
    Return => Return,
});

proto_enum!(FollowUpStatus => pb::FollowUpStatus {
    Pending => Pending,
    Done => Done,
    Overdue => Overdue,
});

proto_enum!(TaskKind => pb::CareTaskKind {
    WarrantyExpiry => WarrantyExpiry,
    PurchaseAnniversary => PurchaseAnniversary,
    Notice => Notice,
    ManagerEscalation => ManagerEscalation,
});

/// The wire value of a grouping; "all" is UNSPECIFIED.
pub fn dimension(d: KpiDimension) -> i32 {
    let p = match d {
        KpiDimension::All => pb::KpiDimension::Unspecified,
        KpiDimension::Channel => pb::KpiDimension::Channel,
        KpiDimension::Severity => pb::KpiDimension::Severity,
        KpiDimension::Category => pb::KpiDimension::Category,
        KpiDimension::Region => pb::KpiDimension::Region,
        KpiDimension::ProductLine => pb::KpiDimension::ProductLine,
        KpiDimension::Sku => pb::KpiDimension::Sku,
        KpiDimension::Batch => pb::KpiDimension::Batch,
        KpiDimension::Agent => pb::KpiDimension::Agent,
        KpiDimension::Group => pb::KpiDimension::Group,
    };
    p as i32
}

/// The grouping of a wire value; `None` for values this build does not know.
pub fn dimension_of(value: i32) -> Option<KpiDimension> {
    Some(match pb::KpiDimension::try_from(value).ok()? {
        pb::KpiDimension::Unspecified => KpiDimension::All,
        pb::KpiDimension::Channel => KpiDimension::Channel,
        pb::KpiDimension::Severity => KpiDimension::Severity,
        pb::KpiDimension::Category => KpiDimension::Category,
        pb::KpiDimension::Region => KpiDimension::Region,
        pb::KpiDimension::ProductLine => KpiDimension::ProductLine,
        pb::KpiDimension::Sku => KpiDimension::Sku,
        pb::KpiDimension::Batch => KpiDimension::Batch,
        pb::KpiDimension::Agent => KpiDimension::Agent,
        pb::KpiDimension::Group => KpiDimension::Group,
    })
}

fn ts(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(timestamp(t))
}

/// A profile with `contact` as shown (clear or masked).
pub fn customer(c: &Customer, contact: &Contact, unmasked: bool) -> pb::Customer {
    let p = &c.purchases;
    pb::Customer {
        id: c.id.clone(),
        name: c.name.clone(),
        phone: contact.phone.clone(),
        email: contact.email.clone(),
        address: contact.address.clone(),
        region_code: c.region_code.clone(),
        purchases: Some(pb::PurchaseStats {
            order_count: p.order_count,
            order_value: Some(common::Money {
                minor_units: p.order_value_minor,
                currency: p.currency.clone(),
            }),
            first_order_at: p.first_order_at.map(timestamp),
            last_order_at: p.last_order_at.map(timestamp),
        }),
        tier: c.tier.to_proto(),
        contact_unmasked: unmasked,
        anonymised: c.anonymised,
        created_at: ts(c.created_at),
        updated_at: ts(c.updated_at),
        last_activity_at: ts(c.last_activity_at),
    }
}

pub fn follow_up(f: &FollowUp) -> pb::FollowUp {
    let o = f.outcome.as_ref();
    pb::FollowUp {
        id: f.id.clone(),
        ticket_id: f.ticket_id.clone(),
        customer_id: f.customer_id.clone(),
        status: f.status.to_proto(),
        resolved_at: ts(f.resolved_at),
        due_at: ts(f.due_at),
        reached: o.is_some_and(|o| o.reached),
        solved: o.is_some_and(|o| o.solved),
        satisfied: o.is_some_and(|o| o.satisfied),
        csat: o.and_then(|o| o.csat).map_or(0, u32::from),
        comment: o.map(|o| o.comment.clone()).unwrap_or_default(),
        recorded_by: o.map(|o| o.recorded_by.clone()).unwrap_or_default(),
        recorded_at: o.map(|o| timestamp(o.recorded_at)),
        reopen_requested: f.reopen_requested,
        ticket_reopened: f.ticket_reopened,
    }
}

pub fn survey(s: &Survey) -> pb::Survey {
    pb::Survey {
        id: s.id.clone(),
        customer_id: s.customer_id.clone(),
        subject: s.subject.to_proto(),
        subject_id: s.subject_id.clone(),
        csat: u32::from(s.csat),
        comment: s.comment.clone(),
        recorded_at: ts(s.recorded_at),
    }
}

pub fn warranty(w: &Warranty) -> pb::Warranty {
    pb::Warranty {
        id: w.id.clone(),
        customer_id: w.customer_id.clone(),
        product: w.product.clone(),
        product_line: w.product_line.clone(),
        purchase_date: w.purchase_date.to_string(),
        months: w.months,
        expires_on: w.expires_on().to_string(),
    }
}

pub fn task(t: &CareTask) -> pb::CareTask {
    pb::CareTask {
        id: t.id.clone(),
        customer_id: t.customer_id.clone(),
        kind: t.kind.to_proto(),
        subject_id: t.subject_id.clone(),
        due_at: ts(t.due_at),
        note: t.note.clone(),
        offer_extended_warranty: t.offer_extended_warranty,
        created_at: ts(t.created_at),
    }
}

pub fn timeline_entry(e: &TimelineEntry) -> pb::TimelineEntry {
    pb::TimelineEntry {
        id: e.id.clone(),
        kind: e.kind.to_proto(),
        subject_id: e.subject_id.clone(),
        event: e.event.clone(),
        summary: e.summary.clone(),
        channel: e.channel.map_or(0, ProtoEnum::to_proto),
        occurred_at: ts(e.occurred_at),
    }
}

pub fn audit_entry(read: &PiiRead) -> pb::AuditEntry {
    pb::AuditEntry {
        actor_id: read.actor_id.clone(),
        actor_role: read.actor_role.clone(),
        purpose: read.purpose.clone(),
        operation: read.operation.clone(),
        fields: read.fields.clone(),
        read_at: ts(read.read_at),
    }
}

fn rate(r: &Rate) -> Option<pb::Rate> {
    Some(pb::Rate {
        numerator: r.numerator,
        denominator: r.denominator,
        value: r.value(),
    })
}

fn durations(d: &DurationStats) -> Option<pb::Durations> {
    Some(pb::Durations {
        count: d.count,
        mean_seconds: d.mean_seconds,
        p50_seconds: d.p50_seconds,
        p90_seconds: d.p90_seconds,
    })
}

pub fn kpi_group(g: &KpiGroup) -> pb::KpiGroup {
    pb::KpiGroup {
        key: g.key.clone(),
        tickets: g.tickets,
        first_response: durations(&g.first_response),
        resolution: durations(&g.resolution),
        closure: rate(&g.closure),
        resolved_within_sla: rate(&g.resolved_within_sla),
        sla_breaches: g.sla_breaches,
        escalation: rate(&g.escalation),
        reopen: rate(&g.reopen),
        repeat_complaint: rate(&g.repeat_complaint),
        csat: rate(&g.csat),
        follow_up_within_window: rate(&g.follow_up_within_window),
        return_rate: rate(&g.return_rate),
        first_time_fix: rate(&g.first_time_fix),
        remote_resolution: rate(&g.remote_resolution),
        spot_check_score: Some(pb::Scores {
            count: g.spot_check_score.count,
            mean: g.spot_check_score.mean(),
        }),
        milestones: g.milestones.iter().map(clock_lateness).collect(),
    }
}

fn clock_lateness(l: &ClockLateness) -> pb::ClockLateness {
    pb::ClockLateness {
        kind: l.kind,
        met: l.met,
        met_late: l.met_late,
        mean_actual_minus_standard_seconds: l.mean_seconds(),
        max_actual_minus_standard_seconds: l.max_seconds(),
    }
}

pub fn quality_count(q: &QualityCount) -> pb::QualityCount {
    pb::QualityCount {
        key: q.key.clone(),
        this_week: q.this_week,
        last_week: q.last_week,
        change: q.change(),
    }
}

pub fn cost_dimension(d: CostDimension) -> i32 {
    (match d {
        CostDimension::All => pb::CostDimension::Unspecified,
        CostDimension::Ticket => pb::CostDimension::Ticket,
        CostDimension::ProductLine => pb::CostDimension::ProductLine,
        CostDimension::Region => pb::CostDimension::Region,
    }) as i32
}

pub fn cost_dimension_of(value: i32) -> Option<CostDimension> {
    Some(match pb::CostDimension::try_from(value).ok()? {
        pb::CostDimension::Unspecified => CostDimension::All,
        pb::CostDimension::Ticket => CostDimension::Ticket,
        pb::CostDimension::ProductLine => CostDimension::ProductLine,
        pb::CostDimension::Region => CostDimension::Region,
    })
}

pub fn cost_period(p: CostPeriod) -> i32 {
    (match p {
        CostPeriod::Whole => pb::CostPeriod::Unspecified,
        CostPeriod::Day => pb::CostPeriod::Day,
        CostPeriod::Week => pb::CostPeriod::Week,
        CostPeriod::Month => pb::CostPeriod::Month,
    }) as i32
}

pub fn cost_period_of(value: i32) -> Option<CostPeriod> {
    Some(match pb::CostPeriod::try_from(value).ok()? {
        pb::CostPeriod::Unspecified => CostPeriod::Whole,
        pb::CostPeriod::Day => CostPeriod::Day,
        pb::CostPeriod::Week => CostPeriod::Week,
        pb::CostPeriod::Month => CostPeriod::Month,
    })
}

fn money_of(minor: i64, currency: &str) -> Option<common::Money> {
    Some(common::Money {
        minor_units: minor,
        currency: currency.to_owned(),
    })
}

fn cost_figures(f: &CostFigures) -> pb::CostFigures {
    let c = f.currency.as_str();
    pb::CostFigures {
        currency: f.currency.clone(),
        labour: money_of(f.labour, c),
        parts: money_of(f.parts, c),
        logistics: money_of(f.logistics, c),
        compensation: money_of(f.compensation, c),
        total: money_of(f.total(), c),
        returned_goods_value: money_of(f.returned_goods, c),
        cost_share: f.share(),
    }
}

pub fn turnover(t: &Turnover) -> pb::PartsTurnover {
    pb::PartsTurnover {
        consumed_units: u64::try_from(t.consumed).unwrap_or_default(),
        average_on_hand_units: t.average_on_hand,
        turnover: t.turnover,
    }
}

pub fn cost_group(g: &CostGroup) -> pb::CostGroup {
    pb::CostGroup {
        key: g.key.clone(),
        period_start: g.period_start.map(timestamp),
        figures: g.figures.iter().map(cost_figures).collect(),
        tickets: g.tickets,
        parts_turnover: g.turnover.as_ref().map(turnover),
    }
}
