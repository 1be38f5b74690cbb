//! Decoding and validating requests: every problem is reported with the field it is in,
//! and the result is a domain value.

use std::collections::BTreeSet;

use aftersales_platform::{
    codes::instant,
    idempotency::Idempotency,
    paging::{decode_cursor, page_size},
    status::Violations,
    validate::non_empty,
};
use aftersales_protos::tickets::v1 as pb;
use chrono::{DateTime, NaiveDate};
use tonic::Status;

use crate::domain::{
    Complexity, Level, Severity, Status as TicketStatus, Tier, Visibility, WatcherKind,
    calendar::{BusinessCalendar, Slot, WorkingDay, parse_time_of_day},
    listing::TicketFilter,
    policy::{SlaPolicy, SlaTarget},
    product::{self, ProductFacts},
    thread::{self, Attachment, MAX_ATTACHMENTS},
    ticket::NewTicket,
    watchers::{self, Watcher},
};
use crate::usecases::NewEntry;

pub const MAX_SUBJECT: usize = 200;
pub const MAX_TEXT: usize = 10_000;
pub const MAX_EVIDENCE: usize = 20;

pub fn ticket_id(value: &str) -> Result<(), Status> {
    let mut v = Violations::new();
    v.id("ticket_id", value);
    v.finish()
}

pub fn create_ticket(
    r: &pb::CreateTicketRequest,
) -> Result<(NewTicket, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    v.id("customer_id", &r.customer_id);
    v.optional_id("order_id", &r.order_id);
    let channel = v.required_enum("channel", r.channel);
    let category = v.required_enum("category", r.category);
    let severity = v
        .optional_enum("severity", r.severity)
        .unwrap_or(Severity::General);
    let tier = v
        .optional_enum("customer_tier", r.customer_tier)
        .unwrap_or(Tier::Regular);
    let complexity = v
        .optional_enum("complexity", r.complexity)
        .unwrap_or(Complexity::Simple);
    v.require("subject", &r.subject);
    v.max_len("subject", &r.subject, MAX_SUBJECT);
    v.max_len("description", &r.description, MAX_TEXT);
    if r.evidence.len() > MAX_EVIDENCE {
        v.add("evidence", format!("at most {MAX_EVIDENCE} references"));
    }
    for (i, e) in r.evidence.iter().enumerate() {
        let field = format!("evidence[{i}]");
        v.require(&field, e);
        v.max_len(&field, e, 2048);
    }
    let product = product_facts(&mut v, r.product.as_ref(), &r.order_id);
    let reported_at = r
        .reported_at
        .as_ref()
        .and_then(|t| v.check("reported_at", instant(t).ok_or("is out of range")));
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.finish()?;
    let (Some(channel), Some(category)) = (channel, category) else {
        return Err(Status::internal("validated fields missing"));
    };
    Ok((
        NewTicket {
            customer_id: r.customer_id.clone(),
            order_id: r.order_id.clone(),
            channel,
            category,
            severity,
            complexity,
            subject: r.subject.trim().to_owned(),
            description: r.description.clone(),
            evidence: r.evidence.clone(),
            tier,
            product,
            reported_at,
        },
        idem,
    ))
}

/// The product facts of a new ticket, each code checked under `product.<field>`; an
/// order line needs the ticket's order.
fn product_facts(
    v: &mut Violations,
    facts: Option<&pb::ProductFacts>,
    order_id: &str,
) -> ProductFacts {
    let Some(p) = facts else {
        return ProductFacts::default();
    };
    let facts = ProductFacts {
        sku: v
            .check("product.sku", product::product_code(&p.sku))
            .flatten(),
        product_line: v
            .check(
                "product.product_line",
                product::product_code(&p.product_line),
            )
            .flatten(),
        batch: v
            .check("product.batch", product::product_code(&p.batch))
            .flatten(),
        region_code: v
            .check("product.region_code", product::region_code(&p.region_code))
            .flatten(),
        order_line_id: v
            .check(
                "product.order_line_id",
                product::product_code(&p.order_line_id),
            )
            .flatten(),
    };
    if facts.order_line_id.is_some() && order_id.trim().is_empty() {
        v.add("product.order_line_id", "needs the ticket's order_id");
    }
    facts
}

pub fn list_tickets(
    r: &pb::ListTicketsRequest,
) -> Result<(TicketFilter, Option<String>, u64), Status> {
    let mut v = Violations::new();
    let filter = TicketFilter {
        status: v.optional_enum("status", r.status),
        severity: v.optional_enum("severity", r.severity),
        category: v.optional_enum("category", r.category),
        assignee: non_empty(&r.assignee),
        customer_id: non_empty(&r.customer_id),
        order_id: non_empty(&r.order_id),
        breached: r.breached,
        sku: v.check("sku", product::product_code(&r.sku)).flatten(),
        product_line: v
            .check("product_line", product::product_code(&r.product_line))
            .flatten(),
        batch: v.check("batch", product::product_code(&r.batch)).flatten(),
        region_code: v
            .check("region_code", product::region_code(&r.region_code))
            .flatten(),
        group_id: non_empty(&r.group_id)
            .and_then(|g| v.check("group_id", crate::domain::team::code(&g))),
        complexity: v.optional_enum("complexity", r.complexity),
    };
    let cursor = decode_cursor(&mut v, &r.page_token);
    v.finish()?;
    Ok((filter, cursor, page_size(r.page_size)))
}

pub fn add_reply(r: &pb::AddReplyRequest) -> Result<(NewEntry, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    v.id("ticket_id", &r.ticket_id);
    let author = v.required_enum("author", r.author);
    v.optional_id("author_id", &r.author_id);
    v.require("body", &r.body);
    v.max_len("body", &r.body, MAX_TEXT);
    let visibility = v
        .optional_enum("visibility", r.visibility)
        .unwrap_or(Visibility::Public);
    if let Some(author) = author {
        v.check("visibility", thread::may_write(author, visibility));
    }
    let attachments = attachments(&mut v, &r.attachments);
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.finish()?;
    let author = author.ok_or_else(|| Status::internal("validated author missing"))?;
    let entry = NewEntry {
        author,
        claimed_author_id: non_empty(&r.author_id),
        body: r.body.clone(),
        visibility,
        attachments,
    };
    Ok((entry, idem))
}

fn attachments(v: &mut Violations, given: &[pb::Attachment]) -> Vec<Attachment> {
    v.max_count("attachments", given, MAX_ATTACHMENTS);
    given
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let url = v.check(
                &format!("attachments[{i}].url"),
                thread::attachment_url(&a.url),
            );
            let sha256 = v.check(
                &format!("attachments[{i}].sha256"),
                thread::sha256_digest(&a.sha256),
            );
            Some(Attachment {
                url: url?,
                sha256: sha256?,
            })
        })
        .collect()
}

pub fn list_thread(
    r: &pb::ListThreadRequest,
) -> Result<(Option<Visibility>, Option<String>, u64), Status> {
    let mut v = Violations::new();
    v.id("ticket_id", &r.ticket_id);
    let visibility = v.optional_enum("visibility", r.visibility);
    let cursor = decode_cursor(&mut v, &r.page_token);
    v.finish()?;
    Ok((visibility, cursor, page_size(r.page_size)))
}

pub fn list_activity(r: &pb::ListActivityRequest) -> Result<(Option<u64>, u64), Status> {
    let mut v = Violations::new();
    v.id("ticket_id", &r.ticket_id);
    // The log is numbered, not keyed by UUIDs: its page token is the line number in the
    // form of one, so the suite's one cursor codec reads it.
    let after_seq = decode_cursor(&mut v, &r.page_token).and_then(|cursor| {
        let seq = uuid::Uuid::parse_str(&cursor)
            .ok()
            .and_then(|id| u64::try_from(id.as_u128()).ok());
        if seq.is_none() {
            v.add("page_token", "is not a token from an earlier page");
        }
        seq
    });
    v.finish()?;
    Ok((after_seq, page_size(r.page_size)))
}

/// The page token of the activity log's page after line `seq`.
pub fn activity_page_token(seq: u64) -> String {
    aftersales_platform::paging::encode_cursor(&uuid::Uuid::from_u128(u128::from(seq)).to_string())
}

/// The ticket and watcher of AddWatcher and RemoveWatcher, and the command's key.
pub fn watcher<M: prost::Message + Clone>(
    request: &M,
    idempotency_key: &str,
    ticket_id: &str,
    watcher: Option<&pb::Watcher>,
    clear_key: impl FnOnce(&mut M),
) -> Result<(Watcher, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    v.id("ticket_id", ticket_id);
    let parsed = match watcher {
        None => {
            v.add("watcher", "is required");
            None
        }
        Some(w) => {
            let kind: Option<WatcherKind> = v.required_enum("watcher.kind", w.kind);
            let id = v.check("watcher.id", watchers::watcher_id(&w.id));
            kind.zip(id).map(|(kind, id)| Watcher { kind, id })
        }
    };
    let idem = v.idempotency(idempotency_key, request, clear_key);
    v.finish()?;
    parsed
        .ok_or_else(|| Status::internal("validated watcher missing"))
        .map(|w| (w, idem))
}

pub fn change_status(r: &pb::ChangeStatusRequest) -> Result<TicketStatus, Status> {
    let mut v = Violations::new();
    v.id("ticket_id", &r.ticket_id);
    let status = v.required_enum("status", r.status);
    v.max_len("reason", &r.reason, MAX_TEXT);
    v.finish()?;
    status.ok_or_else(|| Status::internal("validated status missing"))
}

pub fn set_severity(r: &pb::SetSeverityRequest) -> Result<Severity, Status> {
    let mut v = Violations::new();
    v.id("ticket_id", &r.ticket_id);
    let severity = v.required_enum("severity", r.severity);
    v.max_len("reason", &r.reason, MAX_TEXT);
    v.finish()?;
    severity.ok_or_else(|| Status::internal("validated severity missing"))
}

/// The new complexity of SetComplexity, and the command's key.
pub fn set_complexity(
    r: &pb::SetComplexityRequest,
) -> Result<(Complexity, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    v.id("ticket_id", &r.ticket_id);
    let complexity = v.required_enum("complexity", r.complexity);
    v.max_len("reason", &r.reason, MAX_TEXT);
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.finish()?;
    complexity
        .map(|c| (c, idem))
        .ok_or_else(|| Status::internal("validated complexity missing"))
}

pub fn release_held_reply(r: &pb::ReleaseHeldReplyRequest) -> Result<Option<Idempotency>, Status> {
    let mut v = Violations::new();
    v.id("ticket_id", &r.ticket_id);
    v.id("reply_id", &r.reply_id);
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.finish()?;
    Ok(idem)
}

pub fn escalate(r: &pb::EscalateRequest) -> Result<Option<Level>, Status> {
    let mut v = Violations::new();
    v.id("ticket_id", &r.ticket_id);
    let level = v.optional_enum("to_level", r.to_level);
    v.max_len("reason", &r.reason, MAX_TEXT);
    v.finish()?;
    Ok(level)
}

pub fn reopen(r: &pb::ReopenTicketRequest) -> Result<(), Status> {
    let mut v = Violations::new();
    v.id("ticket_id", &r.ticket_id);
    v.max_len("reason", &r.reason, MAX_TEXT);
    v.finish()
}

pub(super) fn target(
    v: &mut Violations,
    field: &str,
    t: Option<&pb::SlaTarget>,
    required: bool,
) -> Option<SlaTarget> {
    match t {
        None if required => {
            v.add(field, "is required");
            None
        }
        None => None,
        Some(t) => {
            if t.seconds == 0 {
                v.add(format!("{field}.seconds"), "must be greater than zero");
            }
            Some(SlaTarget {
                seconds: t.seconds,
                calendar_id: non_empty(&t.calendar_id),
            })
        }
    }
}

pub fn policy(r: &pb::UpsertSlaPolicyRequest) -> Result<SlaPolicy, Status> {
    let mut v = Violations::new();
    let Some(p) = r.policy.as_ref() else {
        v.add("policy", "is required");
        v.finish()?;
        return Err(Status::internal("unreachable"));
    };
    v.id("policy.id", &p.id);
    v.max_len("policy.name", &p.name, MAX_SUBJECT);
    let first_response = target(
        &mut v,
        "policy.first_response",
        p.first_response.as_ref(),
        true,
    );
    let resolution = target(&mut v, "policy.resolution", p.resolution.as_ref(), true);
    let periodic_update = target(
        &mut v,
        "policy.periodic_update",
        p.periodic_update.as_ref(),
        false,
    );
    let mut pause_statuses = v.enum_list("policy.pause_statuses", &p.pause_statuses);
    if pause_statuses.is_empty() {
        pause_statuses.push(TicketStatus::PendingCustomer);
    }
    let warning_percent = match p.warning_percent {
        0 => 75,
        n if n < 100 => n as u8,
        _ => {
            v.add("policy.warning_percent", "must be below 100");
            75
        }
    };
    let policy = SlaPolicy {
        id: p.id.clone(),
        version: 0,
        name: if p.name.is_empty() {
            p.id.clone()
        } else {
            p.name.clone()
        },
        priority: p.priority,
        match_severities: v.enum_list("policy.match_severities", &p.match_severities),
        match_categories: v.enum_list("policy.match_categories", &p.match_categories),
        match_tiers: v.enum_list("policy.match_tiers", &p.match_tiers),
        match_channels: v.enum_list("policy.match_channels", &p.match_channels),
        match_complexities: v.enum_list("policy.match_complexities", &p.match_complexities),
        first_response: first_response.unwrap_or_else(|| SlaTarget::always_on(0)),
        resolution: resolution.unwrap_or_else(|| SlaTarget::always_on(0)),
        periodic_update,
        pause_statuses,
        warning_percent,
        escalate_on_breach: p.escalate_on_breach,
        initial_level: v
            .optional_enum(
                "policy.initial_escalation_level",
                p.initial_escalation_level,
            )
            .unwrap_or(Level::Agent),
        // Stamped by the use case when the version is stored.
        created_at: DateTime::UNIX_EPOCH,
        milestones: super::flow::milestones(&mut v, p),
        warnings: super::flow::warnings(&mut v, &p.warnings),
    };
    v.finish()?;
    Ok(policy)
}

pub fn calendar(r: &pb::UpsertBusinessCalendarRequest) -> Result<BusinessCalendar, Status> {
    let mut v = Violations::new();
    let Some(c) = r.calendar.as_ref() else {
        v.add("calendar", "is required");
        v.finish()?;
        return Err(Status::internal("unreachable"));
    };
    v.id("calendar.id", &c.id);
    v.require("calendar.time_zone", &c.time_zone);
    // In the request's order, so a violation the calendar finds names the entry.
    let mut working_days: Vec<WorkingDay> = Vec::with_capacity(c.working_days.len());
    let mut seen = BTreeSet::new();
    for (i, day) in c.working_days.iter().enumerate() {
        let field = format!("calendar.working_days[{i}]");
        if !(1..=7).contains(&day.weekday) {
            v.add(
                format!("{field}.weekday"),
                "must be 1 (Monday) to 7 (Sunday)",
            );
            continue;
        }
        if !seen.insert(day.weekday) {
            v.add(format!("{field}.weekday"), "appears twice");
            continue;
        }
        let mut slots = Vec::with_capacity(day.slots.len());
        for (j, slot) in day.slots.iter().enumerate() {
            let start = v.check(
                &format!("{field}.slots[{j}].start"),
                parse_time_of_day(&slot.start),
            );
            let end = v.check(
                &format!("{field}.slots[{j}].end"),
                parse_time_of_day(&slot.end),
            );
            if let (Some(start), Some(end)) = (start, end) {
                slots.push(Slot { start, end });
            }
        }
        let Ok(weekday) = chrono::Weekday::try_from((day.weekday - 1) as u8) else {
            continue;
        };
        working_days.push(WorkingDay { weekday, slots });
    }
    let mut holidays = BTreeSet::new();
    for (i, h) in c.holidays.iter().enumerate() {
        if let Some(date) = v.check(
            &format!("calendar.holidays[{i}]"),
            NaiveDate::parse_from_str(h, "%Y-%m-%d"),
        ) {
            holidays.insert(date);
        }
    }
    v.finish()?;
    let name = if c.name.is_empty() {
        c.id.clone()
    } else {
        c.name.clone()
    };
    BusinessCalendar::from_working_days(
        c.id.clone(),
        name,
        c.time_zone.clone(),
        working_days,
        holidays,
    )
    .map_err(|e| match e {
        crate::domain::DomainError::Invalid { field, reason } => {
            aftersales_platform::status::invalid_field(&format!("calendar.{field}"), reason)
        }
        other => Status::invalid_argument(other.to_string()),
    })
}
