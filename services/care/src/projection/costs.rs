//! The cost entries and stock changes of dispatch's and returns' events: approved quotes
//! the company pays and parts a repair consumed (`RepairCosted`), carrier fees
//! (`PickupBooked`), compensation paid or granted, the order value of returned goods
//! (`ReturnRequested`) and changes of stock on hand (`StockLevelChanged`). Each entry is
//! keyed by what it is about, never by the event, so a cost reported twice (a job's quote
//! at completion and again after a later review, a redelivered event) counts once.

use aftersales_platform::{codes::instant, money::Money};
use aftersales_protos::{common::v1 as common, events::v1::event_envelope::Payload};
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};

use crate::{
    domain::cost::{CostEntry, CostKind, StockChange},
    store,
};

fn named(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_owned())
}

/// A positive amount in a named currency; anything else is no cost.
fn money(m: Option<&common::Money>) -> Option<Money> {
    m.filter(|m| m.minor_units > 0 && !m.currency.is_empty())
        .map(|m| Money::new(m.minor_units, &m.currency))
}

fn at_or(t: Option<&prost_types::Timestamp>, fallback: DateTime<Utc>) -> DateTime<Utc> {
    t.and_then(instant).unwrap_or(fallback)
}

/// Where a cost of a ticket lands, before its amount.
struct Of<'a> {
    ticket_id: &'a str,
    product_line: Option<String>,
    region: Option<String>,
}

impl Of<'_> {
    fn entry(&self, id: String, kind: CostKind, amount: Money, at: DateTime<Utc>) -> CostEntry {
        CostEntry {
            id,
            kind,
            ticket_id: self.ticket_id.to_owned(),
            product_line: self.product_line.clone(),
            region: self.region.clone(),
            amount,
            at,
        }
    }
}

/// Folds the costs an event reports; other events change nothing here.
pub(super) async fn apply(
    txn: &DatabaseTransaction,
    event_id: &str,
    payload: &Payload,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut entries = Vec::new();
    match payload {
        Payload::RepairCosted(r) => {
            let of = Of {
                ticket_id: &r.ticket_id,
                product_line: named(&r.product_line),
                region: named(&r.region_code),
            };
            // What the customer pays (work outside warranty) is no cost of the company's.
            for q in r.quotes.iter().filter(|q| q.company_pays) {
                let approved = at_or(q.approved_at.as_ref(), at);
                if let Some(labour) = money(q.labour.as_ref()) {
                    let id = format!("labour:{}", q.quote_id);
                    entries.push(of.entry(id, CostKind::Labour, labour, approved));
                }
                if let Some(parts) = money(q.parts.as_ref()) {
                    let id = format!("quoted-parts:{}", q.quote_id);
                    entries.push(of.entry(id, CostKind::Parts, parts, approved));
                }
            }
            let completed = at_or(r.completed_at.as_ref(), at);
            for p in &r.parts {
                let quantity = i64::try_from(p.quantity).unwrap_or(i64::MAX);
                let value = money(p.unit_value.as_ref()).and_then(|unit| {
                    let minor = unit.minor.checked_mul(quantity)?;
                    Some(Money::new(minor, &unit.currency))
                });
                if let Some(value) = value {
                    let id = format!("stock-parts:{}:{}:{}", r.job_id, p.part_id, p.site_id);
                    entries.push(of.entry(id, CostKind::Parts, value, completed));
                }
            }
        }
        Payload::PickupBooked(p) => {
            let booked = at_or(p.booked_at.as_ref(), at);
            if let Some(fee) = money(p.fee.as_ref()) {
                let of = Of {
                    ticket_id: &p.ticket_id,
                    product_line: None,
                    region: None,
                };
                // A return booked again after a failed pickup pays again.
                let id = format!("pickup:{}:{}", p.return_id, booked.timestamp_millis());
                entries.push(of.entry(id, CostKind::Logistics, fee, booked));
            }
        }
        Payload::CompensationPaid(c) => {
            entries.extend(compensation(
                &c.compensation_id,
                &c.ticket_id,
                c.amount.as_ref(),
                at,
            ));
        }
        Payload::CompensationGranted(c) => {
            entries.extend(compensation(
                &c.compensation_id,
                &c.ticket_id,
                c.amount.as_ref(),
                at,
            ));
        }
        Payload::ReturnRequested(requested) => {
            let Some(r) = &requested.r#return else {
                return Ok(());
            };
            let of = Of {
                ticket_id: &r.ticket_id,
                product_line: r.lines.iter().map(|l| l.product_line.clone()).min(),
                region: None,
            };
            let created = at_or(r.created_at.as_ref(), at);
            // One entry per currency of the order's lines (never converted).
            let mut values: std::collections::BTreeMap<String, i64> = Default::default();
            for line in &r.lines {
                if let Some(price) = money(line.unit_price.as_ref()) {
                    let value = price.minor.saturating_mul(i64::from(line.quantity));
                    let sum = values.entry(price.currency).or_default();
                    *sum = sum.saturating_add(value);
                }
            }
            for (currency, minor) in values {
                let id = format!("returned-goods:{}:{currency}", r.id);
                let value = Money::new(minor, &currency);
                entries.push(of.entry(id, CostKind::ReturnedGoods, value, created));
            }
        }
        Payload::StockLevelChanged(s) => {
            let change = StockChange {
                part_id: s.part_id.clone(),
                site_id: s.site_id.clone(),
                region: s.region_code.clone(),
                delta: s.on_hand_delta,
                consumed: i64::try_from(s.consumed).unwrap_or(i64::MAX),
                at: at_or(s.changed_at.as_ref(), at),
            };
            return store::add_stock_change(txn, event_id, &change).await;
        }
        _ => return Ok(()),
    }
    store::add_cost_entries(txn, &entries).await
}

/// Compensation paid (cash) or granted (coupon, gift, extended warranty): once each.
fn compensation(
    id: &str,
    ticket_id: &str,
    amount: Option<&common::Money>,
    at: DateTime<Utc>,
) -> Option<CostEntry> {
    let of = Of {
        ticket_id,
        product_line: None,
        region: None,
    };
    let amount = money(amount)?;
    Some(of.entry(
        format!("compensation:{id}"),
        CostKind::Compensation,
        amount,
        at,
    ))
}
