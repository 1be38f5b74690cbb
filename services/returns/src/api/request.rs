//! Decoding and validating requests: every problem is reported with the field it is in,
//! and the result is a domain value.

use aftersales_platform::{
    codes::instant,
    idempotency::Idempotency,
    paging::{decode_cursor, page_size},
    status::Violations,
    validate::non_empty,
};
use aftersales_protos::returns::v1 as pb;
use chrono::Utc;
use tonic::Status;

use crate::{
    domain::{
        Exclusion, Outcome,
        eligibility::{DEFAULT_TIME_ZONE, ReturnPolicy},
        listing::ReturnFilter,
        refund_variants::PriceClaim,
        rma::{InspectionLine, NewReturn, ReturnLine, third_party::LabResult},
    },
    usecases::{
        logistics::{PickupOrder, TrackingUpdate},
        variants::PartialOffer,
    },
};

const MAX_TEXT: usize = 10_000;
const MAX_LINES: usize = 100;

pub fn return_id(field: &str, value: &str) -> Result<(), Status> {
    let mut v = Violations::new();
    v.id(field, value);
    v.finish()
}

pub fn request_return(
    r: &pb::RequestReturnRequest,
) -> Result<(NewReturn, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    v.id("order_id", &r.order_id);
    v.id("customer_id", &r.customer_id);
    v.optional_id("ticket_id", &r.ticket_id);
    if r.lines.is_empty() {
        v.add("lines", "at least one line is required");
    }
    if r.lines.len() > MAX_LINES {
        v.add("lines", format!("at most {MAX_LINES} lines"));
    }
    let now = Utc::now();
    let mut currency: Option<String> = None;
    let mut lines = Vec::new();
    for (i, l) in r.lines.iter().enumerate() {
        let f = |name: &str| format!("lines[{i}].{name}");
        v.id(&f("sku"), &l.sku);
        v.id(&f("product_line"), &l.product_line);
        if l.quantity == 0 || l.quantity > 10_000 {
            v.add(f("quantity"), "must be between 1 and 10000");
        }
        let price = v.money(&f("unit_price"), l.unit_price.as_ref());
        if let Some(price) = &price {
            match &currency {
                Some(c) if *c != price.currency => v.add(
                    f("unit_price.currency"),
                    format!("must be {c}, like the first line"),
                ),
                Some(_) => {}
                None => currency = Some(price.currency.clone()),
            }
        }
        let delivered_at = match l.delivered_at.as_ref().map(instant) {
            None => {
                v.add(f("delivered_at"), "is required");
                None
            }
            Some(None) => {
                v.add(f("delivered_at"), "is out of range");
                None
            }
            Some(Some(t)) if t > now => {
                v.add(f("delivered_at"), "is in the future");
                None
            }
            Some(Some(t)) => Some(t),
        };
        if let (Some(unit_price), Some(delivered_at)) = (price, delivered_at) {
            lines.push(ReturnLine {
                sku: l.sku.clone(),
                product_line: l.product_line.clone(),
                quantity: l.quantity,
                unit_price,
                delivered_at,
            });
        }
    }
    let reason = v.required_enum("reason", r.reason);
    let desired = v.required_enum("desired_outcome", r.desired_outcome);
    if r.evidence.len() > 20 {
        v.add("evidence", "at most 20 references");
    }
    for (i, e) in r.evidence.iter().enumerate() {
        v.require(&format!("evidence[{i}]"), e);
        v.max_len(&format!("evidence[{i}]"), e, 2048);
    }
    let zone = non_empty(&r.customer_time_zone).unwrap_or_else(|| DEFAULT_TIME_ZONE.to_owned());
    if zone.parse::<chrono_tz::Tz>().is_err() {
        v.add(
            "customer_time_zone",
            format!("{zone:?} is not an IANA time zone"),
        );
    }
    if r.refund_only && desired.is_some_and(|d| d != Outcome::Refund) {
        v.add(
            "desired_outcome",
            "must be refund for a refund-only request",
        );
    }
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.finish()?;
    let (Some(reason), Some(desired)) = (reason, desired) else {
        return Err(Status::internal("validated fields missing"));
    };
    Ok((
        NewReturn {
            order_id: r.order_id.clone(),
            customer_id: r.customer_id.clone(),
            ticket_id: non_empty(&r.ticket_id),
            lines,
            reason,
            evidence: r.evidence.clone(),
            desired,
            customer_time_zone: zone,
            refund_only: r.refund_only,
        },
        idem,
    ))
}

pub fn list(r: &pb::ListReturnsRequest) -> Result<(ReturnFilter, Option<String>, u64), Status> {
    let mut v = Violations::new();
    let filter = ReturnFilter {
        status: v.optional_enum("status", r.status),
        reason: v.optional_enum("reason", r.reason),
        order_id: non_empty(&r.order_id),
        customer_id: non_empty(&r.customer_id),
        carrier: non_empty(&r.carrier),
        overdue: r.overdue,
    };
    let cursor = decode_cursor(&mut v, &r.page_token);
    v.finish()?;
    Ok((filter, cursor, page_size(r.page_size)))
}

pub fn review(r: &pb::ReviewReturnRequest) -> Result<(), Status> {
    let mut v = Violations::new();
    v.id("return_id", &r.return_id);
    if !r.approve {
        v.require("reason", &r.reason);
    }
    v.max_len("reason", &r.reason, MAX_TEXT);
    v.finish()
}

pub fn book_pickup(r: &pb::BookPickupRequest) -> Result<PickupOrder, Status> {
    let mut v = Violations::new();
    v.id("return_id", &r.return_id);
    v.id("carrier", &r.carrier);
    v.optional_id("tracking_number", &r.tracking_number);
    let fee = r.fee.as_ref().and_then(|fee| v.money("fee", Some(fee)));
    v.finish()?;
    Ok(PickupOrder {
        carrier: r.carrier.clone(),
        tracking_number: non_empty(&r.tracking_number),
        fee,
    })
}

pub fn tracking(r: &pb::RecordTrackingEventRequest) -> Result<TrackingUpdate, Status> {
    let mut v = Violations::new();
    v.id("carrier", &r.carrier);
    v.id("carrier_event_id", &r.carrier_event_id);
    v.id("tracking_number", &r.tracking_number);
    let kind = v.required_enum("kind", r.kind);
    let occurred_at = match r.occurred_at.as_ref().map(instant) {
        None => Some(Utc::now()),
        Some(None) => {
            v.add("occurred_at", "is out of range");
            None
        }
        Some(t) => t,
    };
    v.max_len("detail", &r.detail, MAX_TEXT);
    v.finish()?;
    let (Some(kind), Some(occurred_at)) = (kind, occurred_at) else {
        return Err(Status::internal("validated fields missing"));
    };
    Ok(TrackingUpdate {
        carrier: r.carrier.clone(),
        event_id: r.carrier_event_id.clone(),
        tracking_number: r.tracking_number.clone(),
        kind,
        occurred_at,
        detail: r.detail.clone(),
    })
}

pub fn inspection(r: &pb::RecordInspectionRequest) -> Result<Vec<InspectionLine>, Status> {
    let mut v = Violations::new();
    v.id("return_id", &r.return_id);
    if r.lines.is_empty() {
        v.add("lines", "at least one inspected line is required");
    }
    let mut lines = Vec::new();
    for (i, l) in r.lines.iter().enumerate() {
        v.id(&format!("lines[{i}].sku"), &l.sku);
        let condition = v.required_enum(&format!("lines[{i}].condition"), l.condition);
        let disposition = v.required_enum(&format!("lines[{i}].disposition"), l.disposition);
        v.max_len(&format!("lines[{i}].note"), &l.note, MAX_TEXT);
        if let (Some(condition), Some(disposition)) = (condition, disposition) {
            lines.push(InspectionLine {
                sku: l.sku.clone(),
                condition,
                quality_defect: l.quality_defect,
                disposition,
                note: l.note.clone(),
            });
        }
    }
    v.finish()?;
    Ok(lines)
}

pub fn resolve(r: &pb::ResolveReturnRequest) -> Result<crate::domain::Resolution, Status> {
    let mut v = Violations::new();
    v.id("return_id", &r.return_id);
    let resolution = v.required_enum("resolution", r.resolution);
    if resolution == Some(crate::domain::Resolution::Reject) {
        v.require("reason", &r.reason);
    }
    v.max_len("reason", &r.reason, MAX_TEXT);
    v.finish()?;
    resolution.ok_or_else(|| Status::internal("validated resolution missing"))
}

pub fn policy(r: &pb::UpsertReturnPolicyRequest) -> Result<ReturnPolicy, Status> {
    let mut v = Violations::new();
    let Some(p) = r.policy.as_ref() else {
        v.add("policy", "is required");
        v.finish()?;
        return Err(Status::internal("unreachable"));
    };
    v.id("policy.product_line", &p.product_line);
    let exclusion = match non_empty(&p.exclusion) {
        None => None,
        Some(code) => v.check("policy.exclusion", code.parse::<Exclusion>()),
    };
    if p.damage_deduction_percent > 100 {
        v.add("policy.damage_deduction_percent", "must be at most 100");
    }
    if p.no_reason_days > 365 || p.exchange_days > 365 || p.warranty_months > 120 {
        v.add("policy", "periods must be at most 365 days and 120 months");
    }
    if p.partial_refund_max_percent > 100 {
        v.add("policy.partial_refund_max_percent", "must be at most 100");
    }
    if p.price_protection_days > 365 {
        v.add("policy.price_protection_days", "must be at most 365");
    }
    if p.refund_only_max_minor < 0 {
        v.add("policy.refund_only_max_minor", "must not be negative");
    }
    if p.price_protection_max_minor < 0 {
        v.add("policy.price_protection_max_minor", "must not be negative");
    }
    v.finish()?;
    Ok(ReturnPolicy {
        product_line: p.product_line.clone(),
        no_reason_days: p.no_reason_days,
        exchange_days: p.exchange_days,
        warranty_months: p.warranty_months,
        exclusion,
        auto_approve: p.auto_approve,
        damage_deduction_percent: p.damage_deduction_percent as u8,
        refund_only_max_minor: p.refund_only_max_minor,
        partial_refund_max_percent: p.partial_refund_max_percent as u8,
        price_protection_days: p.price_protection_days,
        price_protection_max_minor: p.price_protection_max_minor,
    })
}

pub fn reconciliation(r: &pb::CarrierReconciliationRequest) -> Result<(), Status> {
    let mut v = Violations::new();
    v.id("carrier", &r.carrier);
    let valid = r.month.len() == 7
        && chrono::NaiveDate::parse_from_str(&format!("{}-01", r.month), "%Y-%m-%d").is_ok();
    if !valid {
        v.add("month", "must be YYYY-MM");
    }
    v.finish()
}

pub fn third_party(r: &pb::RequestThirdPartyInspectionRequest) -> Result<(), Status> {
    let mut v = Violations::new();
    v.id("return_id", &r.return_id);
    v.id("lab", &r.lab);
    v.require("reason", &r.reason);
    v.max_len("reason", &r.reason, MAX_TEXT);
    v.finish()
}

pub fn third_party_result(r: &pb::RecordThirdPartyResultRequest) -> Result<LabResult, Status> {
    let mut v = Violations::new();
    v.id("return_id", &r.return_id);
    v.id("lab_reference", &r.lab_reference);
    let verdict = v.required_enum("verdict", r.verdict);
    v.max_len("notes", &r.notes, MAX_TEXT);
    v.finish()?;
    let verdict = verdict.ok_or_else(|| Status::internal("validated verdict missing"))?;
    Ok(LabResult {
        lab_reference: r.lab_reference.clone(),
        verdict,
        notes: r.notes.clone(),
    })
}

pub fn partial(r: &pb::AgreePartialRefundRequest) -> Result<PartialOffer, Status> {
    let mut v = Violations::new();
    v.id("return_id", &r.return_id);
    let amount = match &r.amount {
        None => {
            v.add("amount", "is required");
            None
        }
        Some(amount) => v.money("amount", Some(amount)),
    };
    if amount.as_ref().is_some_and(|a| a.minor == 0) {
        v.add("amount.minor_units", "must be positive");
    }
    v.id("customer_agreement", &r.customer_agreement);
    v.max_len("reason", &r.reason, MAX_TEXT);
    v.finish()?;
    let amount = amount.ok_or_else(|| Status::internal("validated amount missing"))?;
    Ok(PartialOffer {
        amount,
        customer_agreement: r.customer_agreement.clone(),
        reason: r.reason.clone(),
    })
}

pub fn price_difference(
    r: &pb::RequestPriceDifferenceRefundRequest,
) -> Result<(PriceClaim, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    v.id("order_id", &r.order_id);
    v.id("customer_id", &r.customer_id);
    v.id("sku", &r.sku);
    v.id("product_line", &r.product_line);
    if r.quantity == 0 || r.quantity > 10_000 {
        v.add("quantity", "must be between 1 and 10000");
    }
    let mut money = |field: &str, m: Option<&aftersales_protos::common::v1::Money>| match m {
        None => {
            v.add(field, "is required");
            None
        }
        some => v.money(field, some),
    };
    let paid = money("paid_unit_price", r.paid_unit_price.as_ref());
    let current = money("current_unit_price", r.current_unit_price.as_ref());
    let purchased_at = match r.purchased_at.as_ref().map(instant) {
        None => {
            v.add("purchased_at", "is required");
            None
        }
        Some(None) => {
            v.add("purchased_at", "is out of range");
            None
        }
        Some(Some(t)) if t > Utc::now() => {
            v.add("purchased_at", "is in the future");
            None
        }
        Some(Some(t)) => Some(t),
    };
    let zone = non_empty(&r.customer_time_zone).unwrap_or_else(|| DEFAULT_TIME_ZONE.to_owned());
    if zone.parse::<chrono_tz::Tz>().is_err() {
        v.add(
            "customer_time_zone",
            format!("{zone:?} is not an IANA time zone"),
        );
    }
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.finish()?;
    let (Some(paid_unit_price), Some(current_unit_price), Some(purchased_at)) =
        (paid, current, purchased_at)
    else {
        return Err(Status::internal("validated fields missing"));
    };
    Ok((
        PriceClaim {
            order_id: r.order_id.clone(),
            customer_id: r.customer_id.clone(),
            sku: r.sku.clone(),
            product_line: r.product_line.clone(),
            quantity: r.quantity,
            paid_unit_price,
            current_unit_price,
            purchased_at,
            customer_time_zone: zone,
        },
        idem,
    ))
}
