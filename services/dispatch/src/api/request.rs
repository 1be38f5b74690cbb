//! Decoding and validating requests: every problem is reported with the field it is in,
//! and the result is a domain value.

use aftersales_platform::{
    codes::instant,
    idempotency::Idempotency,
    paging::{decode_cursor, page_size},
    status::Violations,
    validate::non_empty,
};
use aftersales_protos::{common::v1 as common, dispatch::v1 as pb};
use chrono::{DateTime, Utc};
use tonic::Status;

use crate::domain::{
    AreaKind, CompletionOutcome, JobStatus, QuoteLineKind, SettlementAction, Urgency,
    job::{Contact, NewJob, Photo},
    listing::{JobFilter, PartnerFilter},
    partner::{Coverage, FeeSchedule, GeoPoint, PartnerSpec},
    quote::QuoteLine,
};

const MAX_NAME: usize = 200;
const MAX_TEXT: usize = 10_000;
const MAX_LIST: usize = 200;
const MAX_URL: usize = 2_048;

pub use aftersales_platform::validate::id;

fn point(v: &mut Violations, field: &str, p: Option<&pb::GeoPoint>) -> Option<GeoPoint> {
    let p = p?;
    if !p.latitude.is_finite() || !(-90.0..=90.0).contains(&p.latitude) {
        v.add(format!("{field}.latitude"), "must lie in [-90, 90]");
    }
    if !p.longitude.is_finite() || !(-180.0..=180.0).contains(&p.longitude) {
        v.add(format!("{field}.longitude"), "must lie in [-180, 180]");
    }
    Some(GeoPoint {
        latitude: p.latitude,
        longitude: p.longitude,
    })
}

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

fn too_many(v: &mut Violations, field: &str, n: usize) {
    if n > MAX_LIST {
        v.add(field, format!("at most {MAX_LIST} entries"));
    }
}

pub fn partner_spec(v: &mut Violations, s: Option<&pb::PartnerSpec>) -> Option<PartnerSpec> {
    let Some(s) = s else {
        v.add("spec", "is required");
        return None;
    };
    v.require("spec.name", &s.name);
    v.max_len("spec.name", &s.name, MAX_NAME);
    too_many(v, "spec.coverage", s.coverage.len());
    too_many(v, "spec.skills", s.skills.len());
    let coverage = s
        .coverage
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let field = format!("spec.coverage[{i}]");
            v.optional_id(&format!("{field}.region_code"), &c.region_code);
            let area = v.required_enum::<AreaKind>(&format!("{field}.area"), c.area)?;
            Some(Coverage {
                region_code: c.region_code.clone(),
                area,
            })
        })
        .collect();
    for (i, skill) in s.skills.iter().enumerate() {
        v.id(&format!("spec.skills[{i}]"), skill);
    }
    if s.daily_capacity == 0 {
        v.add("spec.daily_capacity", "must be at least 1");
    }
    let fees = s.fees.clone().unwrap_or_default();
    too_many(v, "spec.fees.labour", fees.labour.len());
    too_many(v, "spec.fees.parts", fees.parts.len());
    let labour = fees
        .labour
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            v.id(
                &format!("spec.fees.labour[{i}].product_line"),
                &l.product_line,
            );
            let price = v.money(&format!("spec.fees.labour[{i}].price"), l.price.as_ref())?;
            Some((l.product_line.clone(), price))
        })
        .collect();
    let parts = fees
        .parts
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            v.id(&format!("spec.fees.parts[{i}].part_code"), &p.part_code);
            let price = v.money(&format!("spec.fees.parts[{i}].price"), p.price.as_ref())?;
            Some((p.part_code.clone(), price))
        })
        .collect();
    let call_out_fee = fees
        .call_out_fee
        .as_ref()
        .and_then(|m| v.money("spec.fees.call_out_fee", Some(m)));
    v.optional_id("spec.time_zone", &s.time_zone);
    Some(PartnerSpec {
        name: s.name.clone(),
        coverage,
        location: point(v, "spec.location", s.location.as_ref()),
        service_radius_km: s.service_radius_km,
        skills: s.skills.clone(),
        daily_capacity: s.daily_capacity,
        active: s.active,
        insured: s.insured,
        fees: FeeSchedule {
            labour,
            parts,
            call_out_fee,
        },
        time_zone: s.time_zone.clone(),
    })
}

pub fn register_partner(
    r: &pb::RegisterPartnerRequest,
) -> Result<(PartnerSpec, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    let spec = partner_spec(&mut v, r.spec.as_ref());
    let idem = v.idempotency(&r.idempotency_key, r, |r| r.idempotency_key.clear());
    v.finish()?;
    let spec = spec.ok_or_else(|| Status::internal("validated spec missing"))?;
    Ok((spec, idem))
}

pub fn update_partner(r: &pb::UpdatePartnerRequest) -> Result<PartnerSpec, Status> {
    let mut v = Violations::new();
    v.id("partner_id", &r.partner_id);
    let spec = partner_spec(&mut v, r.spec.as_ref());
    v.finish()?;
    spec.ok_or_else(|| Status::internal("validated spec missing"))
}

fn page(v: &mut Violations, p: Option<&common::PageRequest>) -> (Option<String>, u64) {
    let p = p.cloned().unwrap_or_default();
    (decode_cursor(v, &p.page_token), page_size(p.page_size))
}

pub fn list_partners(
    r: &pb::ListPartnersRequest,
) -> Result<(PartnerFilter, Option<String>, u64), Status> {
    let mut v = Violations::new();
    v.optional_id("region_code", &r.region_code);
    v.optional_id("skill", &r.skill);
    let (cursor, size) = page(&mut v, r.page.as_ref());
    v.finish()?;
    Ok((
        PartnerFilter {
            region_code: non_empty(&r.region_code),
            skill: non_empty(&r.skill),
            active_only: r.active_only,
        },
        cursor,
        size,
    ))
}

/// The new job and, apart, its customer's contact (sealed under the job's id once it has
/// one).
pub fn create_job(
    r: &pb::CreateJobRequest,
) -> Result<(NewJob, Option<Contact>, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    // A job repairs what a ticket reports or what a return brought back: one is needed.
    if r.return_id.is_empty() {
        v.id("ticket_id", &r.ticket_id);
    } else {
        v.optional_id("ticket_id", &r.ticket_id);
    }
    v.id("customer_id", &r.customer_id);
    v.optional_id("return_id", &r.return_id);
    v.id("product_line", &r.product_line);
    v.require("fault_description", &r.fault_description);
    v.max_len("fault_description", &r.fault_description, MAX_TEXT);
    let region = r
        .location
        .as_ref()
        .map(|l| l.region_code.clone())
        .unwrap_or_default();
    v.id("location.region_code", &region);
    let point = point(
        &mut v,
        "location.point",
        r.location.as_ref().and_then(|l| l.point.as_ref()),
    );
    let urgency = if r.urgency == 0 {
        Some(Urgency::Normal)
    } else {
        v.optional_enum::<Urgency>("urgency", r.urgency)
    };
    let contact = r.contact.as_ref().map(|c| {
        v.max_len("contact.name", &c.name, MAX_NAME);
        v.optional_id("contact.phone", &c.phone);
        v.max_len("contact.address", &c.address, MAX_TEXT);
        Contact {
            name: c.name.clone(),
            phone: c.phone.clone(),
            address: c.address.clone(),
        }
    });
    let idem = v.idempotency(&r.idempotency_key, r, |r| r.idempotency_key.clear());
    v.finish()?;
    let urgency = urgency.ok_or_else(|| Status::internal("validated urgency missing"))?;
    Ok((
        NewJob {
            ticket_id: r.ticket_id.clone(),
            return_id: non_empty(&r.return_id),
            customer_id: r.customer_id.clone(),
            region_code: region,
            point,
            product_line: r.product_line.clone(),
            fault_description: r.fault_description.clone(),
            urgency,
            warranty: r.warranty,
        },
        contact,
        idem,
    ))
}

pub fn list_jobs(r: &pb::ListJobsRequest) -> Result<(JobFilter, Option<String>, u64), Status> {
    let mut v = Violations::new();
    v.optional_id("partner_id", &r.partner_id);
    v.optional_id("ticket_id", &r.ticket_id);
    let statuses = v.enum_list::<JobStatus>("statuses", &r.statuses);
    let (cursor, size) = page(&mut v, r.page.as_ref());
    v.finish()?;
    Ok((
        JobFilter {
            partner_id: non_empty(&r.partner_id),
            ticket_id: non_empty(&r.ticket_id),
            statuses,
        },
        cursor,
        size,
    ))
}

pub fn schedule_visit(r: &pb::ScheduleVisitRequest) -> Result<DateTime<Utc>, Status> {
    let mut v = Violations::new();
    v.id("job_id", &r.job_id);
    let at = time(&mut v, "scheduled_for", r.scheduled_for.as_ref());
    if r.scheduled_for.is_none() {
        v.add("scheduled_for", "is required");
    }
    v.finish()?;
    at.ok_or_else(|| Status::internal("validated time missing"))
}

pub fn record_visit(r: &pb::RecordVisitRequest) -> Result<Option<DateTime<Utc>>, Status> {
    let mut v = Violations::new();
    v.id("job_id", &r.job_id);
    v.max_len("notes", &r.notes, MAX_TEXT);
    let at = time(&mut v, "arrived_at", r.arrived_at.as_ref());
    v.finish()?;
    Ok(at)
}

pub fn quote_lines(v: &mut Violations, lines: &[pb::QuoteLine]) -> Vec<QuoteLine> {
    if lines.is_empty() {
        v.add("lines", "at least one line is required");
    }
    too_many(v, "lines", lines.len());
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let field = format!("lines[{i}]");
            let kind = v.required_enum::<QuoteLineKind>(&format!("{field}.kind"), l.kind);
            if kind == Some(QuoteLineKind::Part) {
                v.id(&format!("{field}.part_code"), &l.part_code);
            }
            v.max_len(&format!("{field}.description"), &l.description, MAX_TEXT);
            if l.quantity == 0 {
                v.add(format!("{field}.quantity"), "must be at least 1");
            }
            if l.quantity > 10_000 {
                v.add(format!("{field}.quantity"), "must be at most 10000");
            }
            let price = v.money(&format!("{field}.unit_price"), l.unit_price.as_ref());
            Some(QuoteLine {
                kind: kind?,
                part_code: l.part_code.clone(),
                description: l.description.clone(),
                quantity: l.quantity,
                unit_price: price?,
                within_schedule: false,
                schedule_price: None,
            })
        })
        .collect()
}

pub fn submit_quote(
    r: &pb::SubmitQuoteRequest,
) -> Result<(Vec<QuoteLine>, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    v.id("job_id", &r.job_id);
    let lines = quote_lines(&mut v, &r.lines);
    let idem = v.idempotency(&r.idempotency_key, r, |r| r.idempotency_key.clear());
    v.finish()?;
    Ok((lines, idem))
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn complete_job(
    r: &pb::CompleteJobRequest,
) -> Result<(CompletionOutcome, Vec<Photo>, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    v.id("job_id", &r.job_id);
    let outcome = v.required_enum::<CompletionOutcome>("outcome", r.outcome);
    v.max_len("notes", &r.notes, MAX_TEXT);
    too_many(&mut v, "photos", r.photos.len());
    let photos = r
        .photos
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let url_field = format!("photos[{i}].url");
            v.max_len(&url_field, &p.url, MAX_URL);
            if !(p.url.starts_with("https://") || p.url.starts_with("http://")) {
                v.add(url_field, "must be an http(s) URL");
            }
            if !is_sha256_hex(&p.sha256) {
                v.add(
                    format!("photos[{i}].sha256"),
                    "must be 64 lower-case hex digits",
                );
            }
            Photo {
                url: p.url.clone(),
                sha256: p.sha256.clone(),
            }
        })
        .collect();
    let idem = v.idempotency(&r.idempotency_key, r, |r| r.idempotency_key.clear());
    v.finish()?;
    let outcome = outcome.ok_or_else(|| Status::internal("validated outcome missing"))?;
    Ok((outcome, photos, idem))
}

pub fn resolve_remotely(
    r: &pb::ResolveRemotelyRequest,
) -> Result<(CompletionOutcome, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    v.id("job_id", &r.job_id);
    let outcome = v.required_enum::<CompletionOutcome>("outcome", r.outcome);
    if outcome == Some(CompletionOutcome::NeedsParts) {
        v.add("outcome", "must be FIXED, REPLACED or NOT_FIXED");
    }
    v.max_len("notes", &r.notes, MAX_TEXT);
    let idem = v.idempotency(&r.idempotency_key, r, |r| r.idempotency_key.clear());
    v.finish()?;
    let outcome = outcome.ok_or_else(|| Status::internal("validated outcome missing"))?;
    Ok((outcome, idem))
}

pub fn scorecard(r: &pb::GetScorecardRequest) -> Result<(DateTime<Utc>, DateTime<Utc>), Status> {
    let mut v = Violations::new();
    v.id("partner_id", &r.partner_id);
    let from = time(&mut v, "from", r.from.as_ref());
    let to = time(&mut v, "to", r.to.as_ref());
    if r.from.is_none() {
        v.add("from", "is required");
    }
    if r.to.is_none() {
        v.add("to", "is required");
    }
    v.finish()?;
    match (from, to) {
        (Some(from), Some(to)) => Ok((from, to)),
        _ => Err(Status::internal("validated period missing")),
    }
}

pub fn settlement_action(
    r: &pb::UpdateSettlementStatusRequest,
) -> Result<SettlementAction, Status> {
    let mut v = Violations::new();
    v.id("settlement_id", &r.settlement_id);
    let action = v.required_enum::<SettlementAction>("action", r.action);
    v.max_len("reason", &r.reason, MAX_TEXT);
    v.finish()?;
    action.ok_or_else(|| Status::internal("validated action missing"))
}

pub fn list_settlements(r: &pb::ListSettlementsRequest) -> Result<(Option<String>, u64), Status> {
    let mut v = Violations::new();
    v.optional_id("partner_id", &r.partner_id);
    let page = page(&mut v, r.page.as_ref());
    v.finish()?;
    Ok(page)
}

/// A free-text field with a length limit.
pub fn text(field: &str, value: &str) -> Result<(), Status> {
    let mut v = Violations::new();
    v.max_len(field, value, MAX_TEXT);
    v.finish()
}

#[cfg(test)]
mod tests {
    use aftersales_platform::status::field_violations;

    use super::*;

    #[test]
    fn a_bad_job_names_every_field() {
        let r = pb::CreateJobRequest {
            urgency: 99,
            location: Some(pb::CustomerLocation {
                region_code: String::new(),
                point: Some(pb::GeoPoint {
                    latitude: 91.0,
                    longitude: f64::NAN,
                }),
            }),
            ..Default::default()
        };
        let status = create_job(&r).unwrap_err();
        let fields: Vec<String> = field_violations(&status)
            .into_iter()
            .map(|f| f.field)
            .collect();
        for expected in [
            "ticket_id",
            "customer_id",
            "product_line",
            "fault_description",
            "location.region_code",
            "location.point.latitude",
            "location.point.longitude",
            "urgency",
        ] {
            assert!(
                fields.iter().any(|f| f == expected),
                "{expected} missing from {fields:?}"
            );
        }
    }

    #[test]
    fn photos_need_a_url_and_a_digest() {
        let r = pb::CompleteJobRequest {
            job_id: "j".into(),
            outcome: pb::CompletionOutcome::Fixed as i32,
            photos: vec![pb::Photo {
                url: "ftp://x".into(),
                sha256: "ABC".into(),
            }],
            ..Default::default()
        };
        let fields: Vec<String> = field_violations(&complete_job(&r).unwrap_err())
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(fields, vec!["photos[0].url", "photos[0].sha256"]);
    }
}
