//! Decoding and validating requests: every problem is reported with the field it is in,
//! and the result is a domain value.

use aftersales_platform::{
    auth::Caller,
    caller::actor_of,
    codes::instant,
    idempotency::Idempotency,
    paging::{decode_cursor, page_size},
    status::Violations,
    validate::non_empty,
};
use aftersales_protos::{care::v1 as pb, common::v1 as common};
use chrono::{DateTime, Utc};
use tonic::Status;

use crate::{
    domain::{
        KpiDimension, Reader, SurveySubject, TaskKind,
        cost::{CostFilter, CostQuery},
        customer::{Contact, PurchaseStats, TierRules},
        followup::{self, Outcome},
        listing::{FollowUpFilter, TaskFilter},
        proactive::{Warranty, parse_date},
    },
    proto,
    usecases::{CustomerInput, SurveyInput},
};

const MAX_NAME: usize = 200;
const MAX_TEXT: usize = 4_000;

/// Who reads, with which roles and why. The roles are the token's: a body that claims a
/// role the token does not carry is refused. (Without authentication the body is all
/// there is.)
pub fn reader(caller: &Caller, r: Option<&pb::Reader>) -> Result<Reader, Status> {
    let mut v = Violations::new();
    let claimed: Vec<String> = r.map(|r| r.roles.clone()).unwrap_or_default();
    let roles = if caller.is_unrestricted() {
        claimed
    } else {
        if let Some(missing) = claimed.iter().find(|role| !caller.has_role(role)) {
            return Err(Status::permission_denied(format!(
                "reader.roles: the caller's token does not carry the role {missing}"
            )));
        }
        caller.roles.iter().cloned().collect()
    };
    let reader = Reader {
        actor: actor_of(caller, r.and_then(|r| r.actor.as_ref()))?,
        roles,
        purpose: r.map(|r| r.purpose.clone()).unwrap_or_default(),
    };
    if reader.may_read_pii() {
        // An unmasked read is audited with its reason: no reason, no clear text.
        v.require("reader.purpose", &reader.purpose);
        v.max_len("reader.purpose", &reader.purpose, MAX_NAME);
    }
    v.finish()?;
    Ok(reader)
}

pub use aftersales_platform::validate::id;

fn time(
    v: &mut Violations,
    field: &str,
    t: Option<&prost_types::Timestamp>,
) -> Option<DateTime<Utc>> {
    let t = t?;
    let at = instant(t);
    if at.is_none() {
        v.add(field, "is not a valid instant");
    }
    at
}

fn currency(v: &mut Violations, field: &str, code: &str) {
    if code.len() != 3 || !code.chars().all(|c| c.is_ascii_uppercase()) {
        v.add(field, "must be an ISO 4217 code such as CNY");
    }
}

fn page(v: &mut Violations, p: Option<&common::PageRequest>) -> (Option<String>, u64) {
    let p = p.cloned().unwrap_or_default();
    (decode_cursor(v, &p.page_token), page_size(p.page_size))
}

pub fn erase_customer(r: &pb::EraseCustomerRequest) -> Result<Option<Idempotency>, Status> {
    let mut v = Violations::new();
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.id("customer_id", &r.customer_id);
    v.finish()?;
    Ok(idem)
}

pub fn upsert_customer(
    r: &pb::UpsertCustomerRequest,
) -> Result<(CustomerInput, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.id("customer_id", &r.customer_id);
    v.max_len("name", &r.name, MAX_NAME);
    v.max_len("email", &r.email, MAX_NAME);
    v.max_len("address", &r.address, MAX_NAME);
    v.optional_id("region_code", &r.region_code);
    let digits = r.phone.chars().filter(char::is_ascii_digit).count();
    if !r.phone.is_empty() && !(5..=20).contains(&digits) {
        v.add("phone", "must hold 5 to 20 digits");
    }
    if r.phone
        .chars()
        .any(|c| !(c.is_ascii_digit() || " +-()".contains(c)))
    {
        v.add("phone", "may hold only digits, spaces and + - ( )");
    }
    if !r.email.is_empty() && !r.email.contains('@') {
        v.add("email", "must be an e-mail address");
    }
    let p = r.purchases.clone().unwrap_or_default();
    let money = p.order_value.clone().unwrap_or_default();
    if money.minor_units < 0 {
        v.add("purchases.order_value.minor_units", "must not be negative");
    }
    if money.minor_units != 0 || !money.currency.is_empty() {
        currency(&mut v, "purchases.order_value.currency", &money.currency);
    }
    let purchases = PurchaseStats {
        order_count: p.order_count,
        order_value_minor: money.minor_units,
        currency: money.currency,
        first_order_at: time(
            &mut v,
            "purchases.first_order_at",
            p.first_order_at.as_ref(),
        ),
        last_order_at: time(&mut v, "purchases.last_order_at", p.last_order_at.as_ref()),
    };
    v.finish()?;
    Ok((
        CustomerInput {
            id: r.customer_id.clone(),
            name: r.name.clone(),
            contact: Contact {
                phone: r.phone.trim().to_owned(),
                email: r.email.trim().to_owned(),
                address: r.address.trim().to_owned(),
            },
            region_code: r.region_code.clone(),
            purchases,
        },
        idem,
    ))
}

/// `(customer_id, phone)`: exactly one is given.
pub fn get_customer(
    r: &pb::GetCustomerRequest,
) -> Result<(Option<String>, Option<String>), Status> {
    let mut v = Violations::new();
    match (non_empty(&r.customer_id), non_empty(&r.phone)) {
        (Some(_), Some(_)) => v.add("phone", "give customer_id or phone, not both"),
        (None, None) => v.add("customer_id", "customer_id or phone is required"),
        _ => {}
    }
    v.optional_id("customer_id", &r.customer_id);
    v.optional_id("phone", &r.phone);
    v.finish()?;
    Ok((non_empty(&r.customer_id), non_empty(&r.phone)))
}

pub fn timeline(r: &pb::GetCustomerTimelineRequest) -> Result<(Option<String>, u64), Status> {
    let mut v = Violations::new();
    v.id("customer_id", &r.customer_id);
    let paging = page(&mut v, r.page.as_ref());
    v.finish()?;
    Ok(paging)
}

pub fn list_follow_ups(
    r: &pb::ListFollowUpsRequest,
) -> Result<(FollowUpFilter, Option<String>, u64), Status> {
    let mut v = Violations::new();
    v.optional_id("customer_id", &r.customer_id);
    v.optional_id("ticket_id", &r.ticket_id);
    let filter = FollowUpFilter {
        customer_id: non_empty(&r.customer_id),
        ticket_id: non_empty(&r.ticket_id),
        status: v.optional_enum("status", r.status),
    };
    let (cursor, size) = page(&mut v, r.page.as_ref());
    v.finish()?;
    Ok((filter, cursor, size))
}

pub fn record_follow_up(
    caller: &Caller,
    r: &pb::RecordFollowUpRequest,
) -> Result<(Outcome, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.id("follow_up_id", &r.follow_up_id);
    v.max_len("comment", &r.comment, MAX_TEXT);
    let csat = v.check(
        "csat",
        followup::csat("csat", r.csat).map_err(|e| reason(&e)),
    );
    if r.csat != 0 && !r.reached {
        v.add("csat", "needs a customer who was reached");
    }
    v.finish()?;
    Ok((
        Outcome {
            reached: r.reached,
            solved: r.solved,
            satisfied: r.satisfied,
            csat: csat.flatten(),
            comment: r.comment.clone(),
            recorded_by: actor_of(caller, r.actor.as_ref())?.id,
            recorded_at: Utc::now(),
        },
        idem,
    ))
}

/// The reason of a domain error without its field prefix.
fn reason(e: &crate::domain::DomainError) -> String {
    match e {
        crate::domain::DomainError::Invalid { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

pub fn record_survey(
    r: &pb::RecordSurveyRequest,
) -> Result<(SurveyInput, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.id("customer_id", &r.customer_id);
    v.id("subject_id", &r.subject_id);
    let subject: Option<SurveySubject> = v.required_enum("subject", r.subject);
    let csat = match followup::csat("csat", r.csat) {
        Ok(Some(score)) => Some(score),
        Ok(None) => {
            v.add("csat", "is required (1–5)");
            None
        }
        Err(e) => {
            v.add("csat", reason(&e));
            None
        }
    };
    v.max_len("comment", &r.comment, MAX_TEXT);
    v.finish()?;
    match (subject, csat) {
        (Some(subject), Some(csat)) => Ok((
            SurveyInput {
                customer_id: r.customer_id.clone(),
                subject,
                subject_id: r.subject_id.clone(),
                csat,
                comment: r.comment.clone(),
            },
            idem,
        )),
        _ => Err(Status::invalid_argument("subject and csat are required")),
    }
}

pub fn upsert_warranty(
    r: &pb::UpsertWarrantyRequest,
) -> Result<(Warranty, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.optional_id("warranty_id", &r.warranty_id);
    v.id("customer_id", &r.customer_id);
    v.require("product", &r.product);
    v.max_len("product", &r.product, MAX_NAME);
    v.optional_id("product_line", &r.product_line);
    let date = v.check(
        "purchase_date",
        parse_date("purchase_date", &r.purchase_date).map_err(|e| reason(&e)),
    );
    if r.months == 0 || r.months > 240 {
        v.add("months", "must be between 1 and 240");
    }
    v.finish()?;
    let Some(purchase_date) = date else {
        return Err(Status::invalid_argument("purchase_date is required"));
    };
    Ok((
        Warranty {
            id: r.warranty_id.clone(),
            customer_id: r.customer_id.clone(),
            product: r.product.clone(),
            product_line: r.product_line.clone(),
            purchase_date,
            months: r.months,
        },
        idem,
    ))
}

pub fn list_tasks(
    r: &pb::ListCareTasksRequest,
) -> Result<(TaskFilter, Option<String>, u64), Status> {
    let mut v = Violations::new();
    v.optional_id("customer_id", &r.customer_id);
    let kind: Option<TaskKind> = v.optional_enum("kind", r.kind);
    let filter = TaskFilter {
        customer_id: non_empty(&r.customer_id),
        kind,
        due_before: time(&mut v, "due_before", r.due_before.as_ref()),
    };
    let (cursor, size) = page(&mut v, r.page.as_ref());
    v.finish()?;
    Ok((filter, cursor, size))
}

pub fn broadcast(r: &pb::BroadcastNoticeRequest) -> Result<Option<Idempotency>, Status> {
    let mut v = Violations::new();
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.id("region_code", &r.region_code);
    v.require("reason", &r.reason);
    v.max_len("reason", &r.reason, MAX_NAME);
    v.require("message", &r.message);
    v.max_len("message", &r.message, MAX_TEXT);
    v.finish()?;
    Ok(idem)
}

pub fn kpis(
    r: &pb::GetKpisRequest,
) -> Result<(DateTime<Utc>, DateTime<Utc>, KpiDimension), Status> {
    let mut v = Violations::new();
    let from = time(&mut v, "from", r.from.as_ref());
    let to = time(&mut v, "to", r.to.as_ref());
    if r.from.is_none() {
        v.add("from", "is required");
    }
    if r.to.is_none() {
        v.add("to", "is required");
    }
    if let (Some(from), Some(to)) = (from, to)
        && to <= from
    {
        v.add("to", "must be after from");
    }
    let by = proto::dimension_of(r.group_by);
    if by.is_none() {
        v.add("group_by", format!("unknown value {}", r.group_by));
    }
    v.finish()?;
    match (from, to, by) {
        (Some(from), Some(to), Some(by)) => Ok((from, to, by)),
        _ => Err(Status::invalid_argument(
            "from, to and group_by are required",
        )),
    }
}

/// The longest span a cost report covers.
const MAX_COST_SPAN_DAYS: i64 = 366;

pub fn cost_report(r: &pb::GetCostReportRequest) -> Result<CostQuery, Status> {
    let mut v = Violations::new();
    let from = time(&mut v, "from", r.from.as_ref());
    let to = time(&mut v, "to", r.to.as_ref());
    if r.from.is_none() {
        v.add("from", "is required");
    }
    if r.to.is_none() {
        v.add("to", "is required");
    }
    if let (Some(from), Some(to)) = (from, to) {
        if to <= from {
            v.add("to", "must be after from");
        } else if to - from > chrono::Duration::days(MAX_COST_SPAN_DAYS) {
            v.add(
                "to",
                format!("must be at most {MAX_COST_SPAN_DAYS} days after from"),
            );
        }
    }
    let by = proto::cost_dimension_of(r.group_by);
    if by.is_none() {
        v.add("group_by", format!("unknown value {}", r.group_by));
    }
    let period = proto::cost_period_of(r.period);
    if period.is_none() {
        v.add("period", format!("unknown value {}", r.period));
    }
    let mut filter = |field: &str, value: &str| {
        v.max_len(field, value, MAX_NAME);
        non_empty(value)
    };
    let filter = CostFilter {
        product_line: filter("product_line", &r.product_line),
        region: filter("region_code", &r.region_code),
        ticket_id: filter("ticket_id", &r.ticket_id),
    };
    v.finish()?;
    match (from, to, by, period) {
        (Some(from), Some(to), Some(by), Some(period)) => Ok(CostQuery {
            from,
            to,
            by,
            period,
            filter,
        }),
        _ => Err(Status::invalid_argument(
            "from, to, group_by and period are required",
        )),
    }
}

pub fn quality(r: &pb::GetQualityReportRequest) -> Result<(DateTime<Utc>, usize), Status> {
    let mut v = Violations::new();
    let week_of = time(&mut v, "week_of", r.week_of.as_ref()).unwrap_or_else(Utc::now);
    if r.top_movers > 100 {
        v.add("top_movers", "must be at most 100");
    }
    v.finish()?;
    let top = if r.top_movers == 0 {
        5
    } else {
        r.top_movers as usize
    };
    Ok((week_of, top))
}

pub fn tier_rules(r: &pb::UpsertTierRulesRequest) -> Result<TierRules, Status> {
    let mut v = Violations::new();
    let Some(rules) = r.rules.as_ref() else {
        v.add("rules", "is required");
        v.finish()?;
        return Err(Status::invalid_argument("rules: is required"));
    };
    let vip = rules.vip_min_value.clone().unwrap_or_default();
    let potential = rules.potential_min_value.clone().unwrap_or_default();
    currency(&mut v, "rules.vip_min_value.currency", &vip.currency);
    if potential.currency != vip.currency {
        v.add(
            "rules.potential_min_value.currency",
            "must match vip_min_value",
        );
    }
    v.finish()?;
    Ok(TierRules {
        currency: vip.currency,
        vip_min_value_minor: vip.minor_units,
        vip_min_orders: rules.vip_min_orders,
        potential_min_value_minor: potential.minor_units,
        version: 0,
    })
}
