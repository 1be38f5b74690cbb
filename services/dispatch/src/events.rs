//! The events the dispatch service publishes on the `dispatch` stream: a job's (about the
//! job, by its id), a settlement's (about the settlement), a low-stock warning and a stock
//! level change (about the part), and a finished job's cost (about the job). Each event a
//! partner must be pushed names that partner.

use aftersales_eventbus::{envelope::new_event, outbox::NewEvent};
use aftersales_platform::codes::{ProtoEnum, timestamp};
use aftersales_protos::events::v1::{self as ev, event_envelope::Payload};
use chrono::{DateTime, Utc};

use crate::{
    domain::{
        Money, Payer, QuoteLineKind, QuoteStatus,
        job::{JobAggregate, JobEvent},
        parts::Stock,
        quote::Quote,
        settlement::{Settlement, SettlementEvent},
    },
    proto,
};

pub const STREAM: &str = "dispatch";

pub fn encode(agg: &JobAggregate, events: &[JobEvent], now: DateTime<Utc>) -> Vec<NewEvent> {
    events
        .iter()
        .map(|event| new_event(STREAM, "dispatch", &agg.job.id, payload(agg, event), now))
        .collect()
}

pub fn encode_settlement(
    settlement: &Settlement,
    events: &[SettlementEvent],
    now: DateTime<Utc>,
) -> Vec<NewEvent> {
    events
        .iter()
        .map(|event| {
            let payload = match event {
                SettlementEvent::Issued => Payload::SettlementIssued(ev::SettlementIssued {
                    settlement_id: settlement.id.clone(),
                    partner_id: settlement.partner_id.clone(),
                    month: settlement.month.clone(),
                    total: Some(proto::money(&settlement.total)),
                    issued_at: Some(timestamp(settlement.updated_at)),
                }),
            };
            new_event(STREAM, "dispatch", &settlement.id, payload, now)
        })
        .collect()
}

/// A `PartLowStock` for each stock row that just fell below its threshold, about the part.
pub fn encode_low_stock(rows: &[Stock], now: DateTime<Utc>) -> Vec<NewEvent> {
    let units = |n: i64| u64::try_from(n).unwrap_or_default();
    rows.iter()
        .map(|s| {
            let payload = Payload::PartLowStock(ev::PartLowStock {
                part_id: s.part_id.clone(),
                site_id: s.site_id.clone(),
                available: units(s.available()),
                threshold: units(s.threshold),
                on_hand: units(s.on_hand),
                in_transit: units(s.in_transit),
            });
            new_event(STREAM, "dispatch", &s.part_id, payload, now)
        })
        .collect()
}

/// One part a finished job consumed, with its fee-schedule value if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub part_id: String,
    pub site_id: String,
    pub quantity: i64,
    pub unit_value: Option<Money>,
}

/// A stock row's on-hand change in one command, with the site's region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelChange {
    pub part_id: String,
    pub site_id: String,
    pub region_code: String,
    pub delta: i64,
    pub consumed: i64,
    pub on_hand: i64,
}

/// What an approved quote costs, split into labour (labour and call-out lines) and the
/// parts the partner supplied; `None` for a quote not approved.
fn quote_cost(q: &Quote) -> Option<ev::QuoteCost> {
    if q.status != QuoteStatus::Approved {
        return None;
    }
    let sum = |labour: bool| {
        let minor = q
            .lines
            .iter()
            .filter(|l| (l.kind == QuoteLineKind::Part) != labour)
            .map(|l| l.unit_price.minor.saturating_mul(i64::from(l.quantity)))
            .fold(0_i64, i64::saturating_add);
        proto::money(&Money::new(minor, &q.total.currency))
    };
    Some(ev::QuoteCost {
        quote_id: q.id.clone(),
        labour: Some(sum(true)),
        parts: Some(sum(false)),
        company_pays: q.payer == Payer::Company,
        approved_at: Some(timestamp(q.reviewed_at.unwrap_or(q.submitted_at))),
    })
}

/// The `RepairCosted` of a job that just finished: its approved quotes and the parts it
/// consumed from stock.
pub fn encode_repair_cost(
    agg: &JobAggregate,
    consumed: &[Consumed],
    now: DateTime<Utc>,
) -> NewEvent {
    new_event(
        STREAM,
        "dispatch",
        &agg.job.id,
        repair_cost(agg, consumed, now),
        now,
    )
}

fn repair_cost(agg: &JobAggregate, consumed: &[Consumed], now: DateTime<Utc>) -> Payload {
    let j = &agg.job;
    Payload::RepairCosted(ev::RepairCosted {
        job_id: j.id.clone(),
        ticket_id: j.ticket_id.clone(),
        return_id: j.return_id.clone().unwrap_or_default(),
        partner_id: j.partner_id.clone().unwrap_or_default(),
        product_line: j.product_line.clone(),
        region_code: j.region_code.clone(),
        quotes: agg.quotes.iter().filter_map(quote_cost).collect(),
        parts: consumed
            .iter()
            .map(|c| ev::ConsumedPart {
                part_id: c.part_id.clone(),
                site_id: c.site_id.clone(),
                quantity: u64::try_from(c.quantity).unwrap_or_default(),
                unit_value: c.unit_value.as_ref().map(proto::money),
            })
            .collect(),
        completed_at: Some(timestamp(
            j.completion.as_ref().map_or(now, |c| c.completed_at),
        )),
    })
}

/// A `StockLevelChanged` for each stock row whose quantity on hand changed, about the part.
pub fn encode_stock_levels(changes: &[LevelChange], now: DateTime<Utc>) -> Vec<NewEvent> {
    changes
        .iter()
        .map(|c| {
            let payload = Payload::StockLevelChanged(ev::StockLevelChanged {
                part_id: c.part_id.clone(),
                site_id: c.site_id.clone(),
                region_code: c.region_code.clone(),
                on_hand_delta: c.delta,
                consumed: u64::try_from(c.consumed).unwrap_or_default(),
                on_hand: c.on_hand,
                changed_at: Some(timestamp(now)),
            });
            new_event(STREAM, "dispatch", &c.part_id, payload, now)
        })
        .collect()
}

fn payload(agg: &JobAggregate, event: &JobEvent) -> Payload {
    let j = &agg.job;
    let job_id = j.id.clone();
    let partner_of = |offer_id: &str| {
        agg.offers
            .iter()
            .find(|o| o.id == offer_id)
            .map(|o| o.partner_id.clone())
            .unwrap_or_default()
    };
    match event {
        JobEvent::Created => Payload::JobCreated(ev::JobCreated {
            job_id,
            ticket_id: j.ticket_id.clone(),
            return_id: j.return_id.clone().unwrap_or_default(),
            customer_id: j.customer_id.clone(),
            product_line: j.product_line.clone(),
            region_code: j.region_code.clone(),
            urgency: j.urgency.to_proto(),
            warranty: j.warranty,
            repeat_of_job_id: j.repeat_of_job_id.clone().unwrap_or_default(),
        }),
        JobEvent::Offered { offer_id, attempt } => Payload::JobOffered(ev::JobOffered {
            job_id,
            offer_id: offer_id.clone(),
            partner_id: partner_of(offer_id),
            expires_at: agg
                .offers
                .iter()
                .find(|o| o.id == *offer_id)
                .map(|o| timestamp(o.expires_at)),
            attempt: *attempt,
        }),
        JobEvent::Accepted { offer_id } => Payload::JobAccepted(ev::JobAccepted {
            job_id,
            offer_id: offer_id.clone(),
            partner_id: partner_of(offer_id),
            visit_due_at: j.visit_due_at.map(timestamp),
        }),
        JobEvent::Declined {
            offer_id,
            partner_id,
            reason,
            expired,
        } => Payload::JobDeclined(ev::JobDeclined {
            job_id,
            offer_id: offer_id.clone(),
            partner_id: partner_id.clone(),
            reason: reason.clone(),
            expired: *expired,
        }),
        JobEvent::Unassigned { reason } => Payload::JobUnassigned(ev::JobUnassigned {
            job_id,
            ticket_id: j.ticket_id.clone(),
            reason: reason.clone(),
            offers_made: agg.offers.len() as u32,
        }),
        JobEvent::VisitLate => Payload::VisitLate(ev::VisitLate {
            job_id,
            partner_id: j.partner_id.clone().unwrap_or_default(),
            due_at: j.visit_due_at.map(timestamp),
        }),
        JobEvent::Completed => Payload::JobCompleted(ev::JobCompleted {
            job_id,
            ticket_id: j.ticket_id.clone(),
            customer_id: j.customer_id.clone(),
            partner_id: j.partner_id.clone().unwrap_or_default(),
            product_line: j.product_line.clone(),
            outcome: j.completion.as_ref().map_or(0, |c| c.outcome.to_proto()),
            completed_at: j.completion.as_ref().map(|c| timestamp(c.completed_at)),
            return_id: j.return_id.clone().unwrap_or_default(),
            mode: j.completion.as_ref().map_or(0, |c| c.mode.to_proto()),
        }),
        // A quote approved after the job finished: its parts were counted at completion.
        JobEvent::Costed => repair_cost(agg, &[], j.updated_at),
        JobEvent::PartsReady => Payload::JobPartsReady(ev::JobPartsReady {
            job_id,
            partner_id: j.partner_id.clone().unwrap_or_default(),
            ticket_id: j.ticket_id.clone(),
        }),
        JobEvent::QuoteNeedsReview { quote_id } => {
            let quote = agg.quotes.iter().find(|q| q.id == *quote_id);
            Payload::QuoteNeedsReview(ev::QuoteNeedsReview {
                job_id,
                quote_id: quote_id.clone(),
                partner_id: quote.map(|q| q.partner_id.clone()).unwrap_or_default(),
                total: quote.map(|q| proto::money(&q.total)),
            })
        }
        JobEvent::QuoteReviewed { quote_id } => {
            let quote = agg.quotes.iter().find(|q| q.id == *quote_id);
            Payload::QuoteReviewed(ev::QuoteReviewed {
                job_id,
                quote_id: quote_id.clone(),
                partner_id: quote.map(|q| q.partner_id.clone()).unwrap_or_default(),
                approved: quote.is_some_and(|q| q.status == QuoteStatus::Approved),
                total: quote.map(|q| proto::money(&q.total)),
            })
        }
        JobEvent::Cancelled { reason, partner_id } => Payload::JobCancelled(ev::JobCancelled {
            job_id,
            reason: reason.clone(),
            partner_id: partner_id.clone().unwrap_or_default(),
        }),
        JobEvent::OfferWithdrawn {
            offer_id,
            partner_id,
            reason,
        } => Payload::OfferWithdrawn(ev::OfferWithdrawn {
            job_id,
            offer_id: offer_id.clone(),
            partner_id: partner_id.clone(),
            reason: reason.clone(),
        }),
    }
}
