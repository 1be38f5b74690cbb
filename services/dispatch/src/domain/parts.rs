//! Spare parts and their stock, free of I/O: parts, the sites that hold them, stock per
//! part and site (on hand, reserved for jobs, in transit towards the site), the low-stock
//! rule, jobs' reservations, transfers, stocktakes and the turnover figure.
//!
//! **Why parts live in dispatch and not in a service of their own.** Dispatch owns the
//! repair jobs, the partner outlets that hold stock and the fee schedule parts are priced
//! by; the only writer of reservations and consumption is the job lifecycle (a job asks
//! for parts, a fix consumes them, a cancellation or failed repair gives them back); and a
//! job waiting for parts must become schedulable again in the very transaction that books
//! the receipt making its reservation whole. As a separate service, every one of those
//! steps would become a cross-service saga over events (reserve → confirm → resume, with
//! compensation on cancel) for data nobody else writes; receipts, transfers and stocktakes
//! are operations on the same rows. Other services see parts through dispatch's API and
//! its events (`PartLowStock`, `JobPartsReady`).
//!
//! Quantities are whole units and never negative: every change goes through [`Stock`],
//! which refuses a result with a negative figure or more reserved than on hand, and the
//! store repeats the check in its conditional update.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::DomainError;
use aftersales_platform::text_enum;

text_enum!(
    SiteKind {
        CentralWarehouse = "central_warehouse",
        RegionalCentre = "regional_centre",
        PartnerOutlet = "partner_outlet",
    }
);

text_enum!(TransferStatus { InTransit = "in_transit", Received = "received" });

text_enum!(
    ReservationStatus {
        Open = "open",
        Consumed = "consumed",
        Released = "released",
    }
);

text_enum!(
    MovementKind {
        Receipt = "receipt",
        Reserve = "reserve",
        Release = "release",
        Consume = "consume",
        Ship = "ship",
        Arrive = "arrive",
        Count = "count",
    }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub id: String,
    pub name: String,
    /// The `part_code` of partners' fee schedules this part is priced by, if any.
    pub fee_code: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub id: String,
    pub name: String,
    pub kind: SiteKind,
    pub region_code: String,
    /// The partner whose outlet this is (partner outlets only).
    pub partner_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One change of a stock row, as the ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Movement {
    pub kind: MovementKind,
    pub on_hand: i64,
    pub reserved: i64,
    pub in_transit: i64,
}

/// The stock of one part at one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stock {
    pub part_id: String,
    pub site_id: String,
    /// Physically at the site (reserved units included).
    pub on_hand: i64,
    /// Held for jobs: on hand, but not available to anyone else.
    pub reserved: i64,
    /// Shipped towards this site and not yet received.
    pub in_transit: i64,
    /// Low stock is *available* stock below this; 0 never warns.
    pub threshold: i64,
    /// Whether the stock is below its threshold now: the warning was given and is not
    /// given again until the stock has recovered.
    pub low: bool,
}

fn positive(field: &str, quantity: i64) -> Result<(), DomainError> {
    if quantity <= 0 {
        return Err(DomainError::invalid(field, "must be at least 1"));
    }
    Ok(())
}

impl Stock {
    pub fn empty(part_id: &str, site_id: &str) -> Self {
        Self {
            part_id: part_id.to_owned(),
            site_id: site_id.to_owned(),
            on_hand: 0,
            reserved: 0,
            in_transit: 0,
            threshold: 0,
            low: false,
        }
    }

    /// On hand and not reserved.
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }

    /// Applies a change, or refuses it whole when any figure would go negative or more
    /// would be reserved than is on hand.
    fn change(
        &mut self,
        kind: MovementKind,
        on_hand: i64,
        reserved: i64,
        in_transit: i64,
    ) -> Result<Movement, DomainError> {
        let after = (
            self.on_hand.checked_add(on_hand),
            self.reserved.checked_add(reserved),
            self.in_transit.checked_add(in_transit),
        );
        let (Some(h), Some(r), Some(t)) = after else {
            return Err(DomainError::Precondition("stock figure overflows".into()));
        };
        if h < 0 || r < 0 || t < 0 || r > h {
            return Err(DomainError::Precondition(format!(
                "stock of part {} at site {} cannot {kind} that much: {} on hand, {} reserved, \
                 {} in transit",
                self.part_id, self.site_id, self.on_hand, self.reserved, self.in_transit
            )));
        }
        (self.on_hand, self.reserved, self.in_transit) = (h, r, t);
        Ok(Movement {
            kind,
            on_hand,
            reserved,
            in_transit,
        })
    }

    /// Goods received at the site (a delivery from a supplier).
    pub fn receive(&mut self, quantity: i64) -> Result<Movement, DomainError> {
        positive("quantity", quantity)?;
        self.change(MovementKind::Receipt, quantity, 0, 0)
    }

    /// Reserves what is available of `wanted`: how much was granted, and the change
    /// (`None` when nothing was available).
    pub fn reserve(&mut self, wanted: i64) -> Result<(i64, Option<Movement>), DomainError> {
        let granted = wanted.min(self.available()).max(0);
        if granted == 0 {
            return Ok((0, None));
        }
        Ok((
            granted,
            Some(self.change(MovementKind::Reserve, 0, granted, 0)?),
        ))
    }

    /// A reservation given back (job cancelled, or finished without using the parts).
    pub fn release(&mut self, quantity: i64) -> Result<Movement, DomainError> {
        self.change(MovementKind::Release, 0, -quantity, 0)
    }

    /// Reserved units used by a job: they leave the site.
    pub fn consume(&mut self, quantity: i64) -> Result<Movement, DomainError> {
        self.change(MovementKind::Consume, -quantity, -quantity, 0)
    }

    /// Available units shipped to another site.
    pub fn ship(&mut self, quantity: i64) -> Result<Movement, DomainError> {
        positive("quantity", quantity)?;
        if quantity > self.available() {
            return Err(DomainError::Precondition(format!(
                "only {} of part {} available at site {}",
                self.available(),
                self.part_id,
                self.site_id
            )));
        }
        self.change(MovementKind::Ship, -quantity, 0, 0)
    }

    /// A shipment towards this site is on its way.
    pub fn expect(&mut self, quantity: i64) -> Result<Movement, DomainError> {
        positive("quantity", quantity)?;
        self.change(MovementKind::Ship, 0, 0, quantity)
    }

    /// A shipment towards this site arrived.
    pub fn arrive(&mut self, quantity: i64) -> Result<Movement, DomainError> {
        self.change(MovementKind::Arrive, quantity, 0, -quantity)
    }

    /// A stocktake counted `counted` units: on hand becomes the count. The discrepancy is
    /// counted minus recorded (negative: units missing). A count below what is reserved
    /// for jobs is refused: those reservations must be released first, so no job believes
    /// in parts that are not there.
    pub fn count(&mut self, counted: i64) -> Result<(i64, Movement), DomainError> {
        if counted < 0 {
            return Err(DomainError::invalid("counted", "must not be negative"));
        }
        let discrepancy = counted - self.on_hand;
        let movement = self.change(MovementKind::Count, discrepancy, 0, 0)?;
        Ok((discrepancy, movement))
    }

    /// Re-evaluates the warning after a change: true exactly when the available stock has
    /// just fallen below the threshold (once per crossing; recovering re-arms it).
    pub fn check_low(&mut self) -> bool {
        let below = self.available() < self.threshold;
        let crossed = below && !self.low;
        self.low = below;
        crossed
    }
}

/// One part a job asked for at one site, and how much of it is held for the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: String,
    pub job_id: String,
    pub site_id: String,
    pub part_id: String,
    pub quantity: i64,
    pub reserved: i64,
    pub status: ReservationStatus,
    pub created_at: DateTime<Utc>,
}

impl Reservation {
    /// How much is still to come before the line is whole.
    pub fn missing(&self) -> i64 {
        if self.status == ReservationStatus::Open {
            self.quantity - self.reserved
        } else {
            0
        }
    }
}

/// Whether every open line of a job's reservations is whole.
pub fn whole(lines: &[Reservation]) -> bool {
    lines.iter().all(|l| l.missing() == 0)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: String,
    pub part_id: String,
    pub from_site_id: String,
    pub to_site_id: String,
    pub quantity: i64,
    pub status: TransferStatus,
    pub shipped_at: DateTime<Utc>,
    pub received_at: Option<DateTime<Utc>>,
}

/// One counted line of a stocktake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountLine {
    pub part_id: String,
    /// What the records said before the count.
    pub expected: i64,
    pub counted: i64,
    /// Counted minus expected.
    pub discrepancy: i64,
}

/// Goods received at a site, and the jobs the receipt made whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub id: String,
    pub site_id: String,
    /// `(part_id, quantity)`.
    pub lines: Vec<(String, i64)>,
    pub reference: String,
    pub received_at: DateTime<Utc>,
    pub resumed_job_ids: Vec<String>,
}

/// A count of a site's stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stocktake {
    pub id: String,
    pub site_id: String,
    pub lines: Vec<CountLine>,
    pub counted_by: String,
    pub counted_at: DateTime<Utc>,
}

pub use aftersales_platform::stock::{OnHandChange, Turnover, turnover};

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn stock() -> Stock {
        Stock::empty("PUMP", "S1")
    }

    #[test]
    fn receipts_reservations_and_consumption_add_up() {
        let mut s = stock();
        s.receive(10).unwrap();
        assert_eq!(s.reserve(4).unwrap().0, 4);
        assert_eq!((s.on_hand, s.reserved, s.available()), (10, 4, 6));
        // Only what is available is granted.
        assert_eq!(s.reserve(9).unwrap().0, 6);
        assert_eq!(s.reserve(1).unwrap(), (0, None));
        s.consume(4).unwrap();
        assert_eq!((s.on_hand, s.reserved, s.available()), (6, 6, 0));
        s.release(6).unwrap();
        assert_eq!((s.on_hand, s.reserved, s.available()), (6, 0, 6));
    }

    #[test]
    fn nothing_goes_negative() {
        let mut s = stock();
        s.receive(3).unwrap();
        s.reserve(2).unwrap();
        let before = s.clone();
        assert!(s.ship(2).is_err(), "one available only");
        assert!(s.consume(3).is_err(), "two reserved only");
        assert!(s.release(5).is_err());
        assert!(s.arrive(1).is_err(), "nothing in transit");
        assert!(s.count(1).is_err(), "two are reserved");
        assert!(s.receive(0).is_err());
        assert!(s.receive(-4).is_err());
        assert_eq!(s, before, "a refused change changes nothing");
    }

    #[test]
    fn transfers_pass_through_in_transit() {
        let (mut from, mut to) = (stock(), Stock::empty("PUMP", "S2"));
        from.receive(5).unwrap();
        from.ship(3).unwrap();
        to.expect(3).unwrap();
        assert_eq!((from.on_hand, to.on_hand, to.in_transit), (2, 0, 3));
        to.arrive(3).unwrap();
        assert_eq!((to.on_hand, to.in_transit), (3, 0));
    }

    #[test]
    fn a_stocktake_reports_and_adjusts() {
        let mut s = stock();
        s.receive(10).unwrap();
        let (discrepancy, movement) = s.count(7).unwrap();
        assert_eq!(discrepancy, -3);
        assert_eq!(movement.on_hand, -3);
        assert_eq!(s.on_hand, 7);
        assert_eq!(s.count(9).unwrap().0, 2);
    }

    #[test]
    fn low_stock_warns_once_per_crossing() {
        let mut s = stock();
        s.threshold = 3;
        s.receive(5).unwrap();
        assert!(!s.check_low());
        s.reserve(3).unwrap(); // available 2 < 3
        assert!(s.check_low(), "crossed");
        s.reserve(1).unwrap();
        assert!(!s.check_low(), "still below: no second warning");
        s.receive(10).unwrap();
        assert!(!s.check_low(), "recovered");
        assert!(!s.low);
        s.ship(9).unwrap(); // available 2
        assert!(s.check_low(), "a new crossing warns again");
    }

    #[test]
    fn turnover_is_consumed_over_the_time_weighted_average() {
        let t =
            |days: i64| Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + Duration::days(days);
        // 10 on hand for 10 days, 20 for 10 days (a receipt of 10), then 16 for 10 days
        // (4 consumed): average (100 + 200 + 160) / 30 = 15.33…, turnover 4 / 15.33….
        let changes = [
            OnHandChange {
                at: t(10),
                delta: 10,
                consumed: 0,
            },
            OnHandChange {
                at: t(20),
                delta: -4,
                consumed: 4,
            },
            OnHandChange {
                at: t(40),
                delta: -16,
                consumed: 16,
            }, // after the period
        ];
        let figure = turnover(10, &changes, t(0), t(30));
        assert_eq!(figure.consumed, 4);
        assert!((figure.average_on_hand - 460.0 / 30.0).abs() < 1e-9);
        assert!((figure.turnover - 4.0 * 30.0 / 460.0).abs() < 1e-9);
        assert_eq!(turnover(0, &[], t(0), t(30)).turnover, 0.0);
    }
}
