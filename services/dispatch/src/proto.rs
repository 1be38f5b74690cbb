//! Domain values to protobuf messages, and the enum mappings both ways.

use aftersales_platform::{
    codes::{ProtoEnum, timestamp},
    proto_enum,
};
use aftersales_protos::{common::v1 as common, dispatch::v1 as pb};

use crate::domain::{
    AreaKind, CompletionMode, CompletionOutcome, JobStatus, Money, OfferStatus, Payer,
    QuoteLineKind, QuoteStatus, SettlementAction, SettlementStatus, Urgency,
    job::{JobView, Offer},
    keys::PartnerKey,
    partner::{GeoPoint, Partner, PartnerSpec},
    quote::{Quote, QuoteLine},
    scorecard::Scorecard,
    settlement::Settlement,
};

proto_enum!(AreaKind => pb::AreaKind { Urban => Urban, County => County });
proto_enum!(Urgency => pb::Urgency { Normal => Normal, Urgent => Urgent });
proto_enum!(JobStatus => pb::JobStatus {
    PendingDispatch => PendingDispatch,
    Offered => Offered,
    Accepted => Accepted,
    Scheduled => Scheduled,
    OnSite => OnSite,
    Completed => Completed,
    CannotComplete => CannotComplete,
    Cancelled => Cancelled,
    Unassigned => Unassigned,
    WaitingForParts => WaitingForParts,
});
proto_enum!(OfferStatus => pb::OfferStatus {
    Open => Open,
    Accepted => Accepted,
    Declined => Declined,
    Expired => Expired,
    Withdrawn => Withdrawn,
});
proto_enum!(QuoteLineKind => pb::QuoteLineKind { Labour => Labour, Part => Part, CallOut => CallOut });
proto_enum!(QuoteStatus => pb::QuoteStatus {
    PendingReview => PendingReview,
    Approved => Approved,
    Rejected => Rejected,
});
proto_enum!(Payer => pb::Payer { Customer => Customer, Company => Company });
proto_enum!(CompletionOutcome => pb::CompletionOutcome {
    Fixed => Fixed,
    NotFixed => NotFixed,
    NeedsParts => NeedsParts,
    Replaced => Replaced,
});
proto_enum!(CompletionMode => pb::CompletionMode { OnSite => OnSite, Remote => Remote });
proto_enum!(SettlementStatus => pb::SettlementStatus {
    Draft => Draft,
    Issued => Issued,
    Disputed => Disputed,
    Paid => Paid,
});
proto_enum!(SettlementAction => pb::SettlementAction { Issue => Issue, Dispute => Dispute, Pay => Pay });

pub fn money(m: &Money) -> common::Money {
    m.to_proto()
}

pub fn point(p: &GeoPoint) -> pb::GeoPoint {
    pb::GeoPoint {
        latitude: p.latitude,
        longitude: p.longitude,
    }
}

pub fn spec(s: &PartnerSpec) -> pb::PartnerSpec {
    pb::PartnerSpec {
        name: s.name.clone(),
        coverage: s
            .coverage
            .iter()
            .map(|c| pb::Coverage {
                region_code: c.region_code.clone(),
                area: c.area.to_proto(),
            })
            .collect(),
        location: s.location.as_ref().map(point),
        service_radius_km: s.service_radius_km,
        skills: s.skills.clone(),
        daily_capacity: s.daily_capacity,
        active: s.active,
        insured: s.insured,
        fees: Some(pb::FeeSchedule {
            labour: s
                .fees
                .labour
                .iter()
                .map(|(line, price)| pb::LabourRate {
                    product_line: line.clone(),
                    price: Some(money(price)),
                })
                .collect(),
            parts: s
                .fees
                .parts
                .iter()
                .map(|(code, price)| pb::PartPrice {
                    part_code: code.clone(),
                    price: Some(money(price)),
                })
                .collect(),
            call_out_fee: s.fees.call_out_fee.as_ref().map(money),
        }),
        time_zone: s.time_zone.clone(),
    }
}

pub fn partner(p: &Partner) -> pb::Partner {
    pb::Partner {
        id: p.id.clone(),
        spec: Some(spec(&p.spec)),
        version: p.version,
        created_at: Some(timestamp(p.created_at)),
        updated_at: Some(timestamp(p.updated_at)),
    }
}

pub fn offer(o: &Offer) -> pb::Offer {
    pb::Offer {
        id: o.id.clone(),
        partner_id: o.partner_id.clone(),
        status: o.status.to_proto(),
        offered_at: Some(timestamp(o.offered_at)),
        expires_at: Some(timestamp(o.expires_at)),
        responded_at: o.responded_at.map(timestamp),
        decline_reason: o.decline_reason.clone(),
        score: o.score,
        distance_km: o.distance_km.unwrap_or_default(),
    }
}

fn quote_line(l: &QuoteLine) -> pb::QuoteLine {
    pb::QuoteLine {
        kind: l.kind.to_proto(),
        part_code: l.part_code.clone(),
        description: l.description.clone(),
        quantity: l.quantity,
        unit_price: Some(money(&l.unit_price)),
        within_schedule: l.within_schedule,
        schedule_price: l.schedule_price.as_ref().map(money),
    }
}

pub fn quote(q: &Quote) -> pb::Quote {
    pb::Quote {
        id: q.id.clone(),
        job_id: q.job_id.clone(),
        partner_id: q.partner_id.clone(),
        lines: q.lines.iter().map(quote_line).collect(),
        status: q.status.to_proto(),
        auto_approved: q.auto_approved,
        total: Some(money(&q.total)),
        payer: q.payer.to_proto(),
        review_note: q.review_note.clone(),
        reviewed_by: q.reviewed_by.clone(),
        submitted_at: Some(timestamp(q.submitted_at)),
        reviewed_at: q.reviewed_at.map(timestamp),
    }
}

/// A job as one reader sees it (its contact as [`JobView`] holds it).
pub fn job(view: &JobView) -> pb::Job {
    let agg = &view.job;
    let j = &agg.job;
    pb::Job {
        id: j.id.clone(),
        ticket_id: j.ticket_id.clone(),
        return_id: j.return_id.clone().unwrap_or_default(),
        customer_id: j.customer_id.clone(),
        location: Some(pb::CustomerLocation {
            region_code: j.region_code.clone(),
            point: j.point.as_ref().map(point),
        }),
        contact: view.contact.as_ref().map(|c| pb::CustomerContact {
            name: c.name.clone(),
            phone: c.phone.clone(),
            address: c.address.clone(),
        }),
        product_line: j.product_line.clone(),
        fault_description: j.fault_description.clone(),
        urgency: j.urgency.to_proto(),
        warranty: j.warranty,
        status: j.status.to_proto(),
        partner_id: j.partner_id.clone().unwrap_or_default(),
        area: j.area.map_or(0, ProtoEnum::to_proto),
        offers: agg.offers.iter().map(offer).collect(),
        accepted_at: j.accepted_at.map(timestamp),
        scheduled_for: j.scheduled_for.map(timestamp),
        visit_due_at: j.visit_due_at.map(timestamp),
        visited_at: j.visited_at.map(timestamp),
        visit_late: j.visit_late,
        quotes: agg.quotes.iter().map(quote).collect(),
        completion: j.completion.as_ref().map(|c| pb::Completion {
            outcome: c.outcome.to_proto(),
            photos: c
                .photos
                .iter()
                .map(|p| pb::Photo {
                    url: p.url.clone(),
                    sha256: p.sha256.clone(),
                })
                .collect(),
            notes: c.notes.clone(),
            completed_at: Some(timestamp(c.completed_at)),
            first_time_fix_revoked: c.first_time_fix_revoked,
            repeat_job_id: c.repeat_job_id.clone().unwrap_or_default(),
            mode: c.mode.to_proto(),
        }),
        status_reason: j.status_reason.clone(),
        repeat_of_job_id: j.repeat_of_job_id.clone().unwrap_or_default(),
        created_at: Some(timestamp(j.created_at)),
        updated_at: Some(timestamp(j.updated_at)),
    }
}

pub fn scorecard(c: &Scorecard) -> pb::Scorecard {
    pb::Scorecard {
        partner_id: c.partner_id.clone(),
        from: Some(timestamp(c.from)),
        to: Some(timestamp(c.to)),
        offers: c.offers,
        offers_accepted: c.offers_accepted,
        acceptance_rate: c.acceptance_rate,
        visits: c.visits,
        visits_on_time: c.visits_on_time,
        on_time_visit_rate: c.on_time_visit_rate,
        jobs_completed: c.jobs_completed,
        first_time_fixes: c.first_time_fixes,
        first_time_fix_rate: c.first_time_fix_rate,
        mean_hours_to_complete: c.mean_hours_to_complete,
        cost_per_job: Some(money(&c.cost_per_job)),
        remote_resolutions: c.remote_resolutions,
        remote_resolution_rate: c.remote_resolution_rate,
    }
}

pub fn settlement(s: &Settlement) -> pb::Settlement {
    pb::Settlement {
        id: s.id.clone(),
        partner_id: s.partner_id.clone(),
        month: s.month.clone(),
        status: s.status.to_proto(),
        lines: s
            .lines
            .iter()
            .map(|l| pb::SettlementLine {
                job_id: l.job_id.clone(),
                quote_id: l.quote_id.clone(),
                completed_at: Some(timestamp(l.completed_at)),
                payer: l.payer.to_proto(),
                amount: Some(money(&l.amount)),
            })
            .collect(),
        company_total: Some(money(&s.company_total)),
        customer_total: Some(money(&s.customer_total)),
        total: Some(money(&s.total)),
        dispute_reason: s.dispute_reason.clone(),
        generated_at: Some(timestamp(s.generated_at)),
        updated_at: Some(timestamp(s.updated_at)),
    }
}

pub fn key(k: &PartnerKey) -> pb::PartnerKey {
    pb::PartnerKey {
        id: k.id.clone(),
        partner_id: k.partner_id.clone(),
        prefix: k.prefix.clone(),
        label: k.label.clone(),
        created_at: Some(timestamp(k.created_at)),
        expires_at: k.expires_at.map(timestamp),
        revoked_at: k.revoked_at.map(timestamp),
    }
}
