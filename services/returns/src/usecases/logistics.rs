//! Reverse logistics: booking a pickup with a carrier, applying the carrier's tracking
//! events (each once), and a carrier's monthly statement for reconciling its invoice.

use aftersales_runtime::command::Remembered;
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc};

use crate::{
    domain::{
        DomainError, Money, TrackingKind,
        listing::CarrierLine,
        rma::{Actor, ReturnAggregate, Shipment},
    },
    error::ReturnsError,
    ports::PickupRequest,
    store,
};

use super::{Changes, ReturnsCore, masked, not_found, save};

/// A pickup to book.
#[derive(Debug, Clone)]
pub struct PickupOrder {
    pub carrier: String,
    pub tracking_number: Option<String>,
    pub fee: Option<Money>,
}

/// A carrier's tracking event.
#[derive(Debug, Clone)]
pub struct TrackingUpdate {
    pub carrier: String,
    pub event_id: String,
    pub tracking_number: String,
    pub kind: TrackingKind,
    pub occurred_at: DateTime<Utc>,
    pub detail: String,
}

impl ReturnsCore {
    pub async fn book_pickup(
        &self,
        id: &str,
        order: PickupOrder,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        let (mut cmd, mut agg) = self.open("returns.BookPickup", id).await?;
        let now = cmd.now();
        let currency = agg
            .rma
            .lines
            .first()
            .map(|l| l.unit_price.currency.clone())
            .unwrap_or_default();
        if order
            .fee
            .as_ref()
            .is_some_and(|fee| fee.currency != currency)
        {
            return Err(DomainError::invalid(
                "fee.currency",
                format!("must be {currency}, the currency of the return"),
            )
            .into());
        }
        let booking = self.carriers.book(
            &order.carrier,
            &PickupRequest {
                return_id: id.to_owned(),
                tracking_number: order.tracking_number,
                fee: order.fee,
                currency,
            },
        )?;
        let shipment = Shipment {
            carrier: order.carrier,
            tracking_number: booking.tracking_number,
            label_ref: booking.label_ref,
            fee: booking.fee,
            booked_at: now,
            last_event: String::new(),
        };
        let events = agg.book_pickup(shipment.clone(), actor, now)?;
        store::insert_shipment(cmd.txn(), id, &shipment).await?;
        save(&mut cmd, &agg, Changes::from(events)).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&agg.rma.id))
            .await?;
        Ok(agg)
    }

    /// Applies a carrier's event once: a redelivery of the same event id changes nothing.
    pub async fn record_tracking(
        &self,
        mut update: TrackingUpdate,
    ) -> Result<ReturnAggregate, ReturnsError> {
        update.detail = masked(&update.detail);
        let id = store::return_by_tracking(self.db(), &update.carrier, &update.tracking_number)
            .await?
            .ok_or_else(|| {
                not_found(
                    "shipment",
                    &format!("{} {}", update.carrier, update.tracking_number),
                )
            })?;
        let (mut cmd, mut agg) = self.open("returns.RecordTrackingEvent", &id).await?;
        let now = cmd.now();
        let fresh = store::insert_tracking_event(
            cmd.txn(),
            &store::TrackingRow {
                carrier: &update.carrier,
                event_id: &update.event_id,
                return_id: &id,
                kind: update.kind,
                detail: &update.detail,
                occurred_at: update.occurred_at,
            },
            now,
        )
        .await?;
        if !fresh {
            cmd.abandon().await?;
            return Ok(agg);
        }
        let changes = agg.track(update.kind, &update.detail, &self.targets, now)?;
        save(&mut cmd, &agg, Changes::from(changes)).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&agg.rma.id))
            .await?;
        Ok(agg)
    }

    /// A carrier's shipments booked in a UTC month (`YYYY-MM`), for reconciling its invoice.
    pub async fn carrier_month(
        &self,
        carrier: &str,
        month: &str,
    ) -> Result<Vec<CarrierLine>, ReturnsError> {
        let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
            .map_err(|_| DomainError::invalid("month", "must be YYYY-MM"))?;
        let next = if first.month() == 12 {
            NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
        }
        .ok_or_else(|| DomainError::invalid("month", "is out of range"))?;
        let start = |d: NaiveDate| Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN));
        Ok(store::carrier_shipments(self.db(), carrier, start(first), start(next)).await?)
    }
}
