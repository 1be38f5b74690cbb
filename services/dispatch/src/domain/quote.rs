//! Quotes and the price check (核价): each line is compared with the partner's fee
//! schedule; a quote whose every line is within the schedule (plus a tolerance) is
//! approved at once, any other waits for a reviewer. Warranty jobs bill the company.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Actor, DomainError, Money, Payer, QuoteLineKind, QuoteStatus, new_id, partner::FeeSchedule,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteLine {
    pub kind: QuoteLineKind,
    pub part_code: String,
    pub description: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub within_schedule: bool,
    pub schedule_price: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub id: String,
    pub job_id: String,
    pub partner_id: String,
    pub lines: Vec<QuoteLine>,
    pub status: QuoteStatus,
    pub auto_approved: bool,
    pub total: Money,
    pub payer: Payer,
    pub review_note: String,
    pub reviewed_by: String,
    pub submitted_at: DateTime<Utc>,
    pub reviewed_at: Option<DateTime<Utc>>,
}

/// What the price check needs to know about the job.
#[derive(Debug, Clone, Copy)]
pub struct PriceCheck<'a> {
    pub fees: &'a FeeSchedule,
    pub product_line: &'a str,
    pub warranty: bool,
    /// Lines up to this many percent above the schedule still pass.
    pub tolerance_percent: u32,
}

impl Quote {
    /// Prices every line against the schedule and decides: approved, or pending review.
    pub fn submit(
        job_id: &str,
        partner_id: &str,
        lines: Vec<QuoteLine>,
        check: PriceCheck<'_>,
        now: DateTime<Utc>,
    ) -> Result<Quote, DomainError> {
        if lines.is_empty() {
            return Err(DomainError::invalid(
                "lines",
                "at least one line is required",
            ));
        }
        let currency = check
            .fees
            .currency()
            .unwrap_or(&lines[0].unit_price.currency)
            .to_owned();
        let mut total: i64 = 0;
        let mut checked = Vec::with_capacity(lines.len());
        for (i, mut line) in lines.into_iter().enumerate() {
            if line.unit_price.currency != currency {
                return Err(DomainError::invalid(
                    format!("lines[{i}].unit_price.currency"),
                    format!("must be {currency}, the currency of the partner's fee schedule"),
                ));
            }
            let line_total = line
                .unit_price
                .minor
                .checked_mul(i64::from(line.quantity))
                .and_then(|t| total.checked_add(t))
                .ok_or_else(|| DomainError::invalid(format!("lines[{i}]"), "amount too large"))?;
            total = line_total;
            line.schedule_price = match line.kind {
                QuoteLineKind::Labour => check.fees.labour_for(check.product_line).cloned(),
                QuoteLineKind::Part => check.fees.part(&line.part_code).cloned(),
                QuoteLineKind::CallOut => check.fees.call_out_fee.clone(),
            };
            line.within_schedule = line.schedule_price.as_ref().is_some_and(|schedule| {
                within(
                    line.unit_price.minor,
                    schedule.minor,
                    check.tolerance_percent,
                )
            }) && (line.kind != QuoteLineKind::CallOut
                || line.quantity == 1);
            checked.push(line);
        }
        let auto = checked.iter().all(|l| l.within_schedule);
        Ok(Quote {
            id: new_id(),
            job_id: job_id.to_owned(),
            partner_id: partner_id.to_owned(),
            lines: checked,
            status: if auto {
                QuoteStatus::Approved
            } else {
                QuoteStatus::PendingReview
            },
            auto_approved: auto,
            total: Money::new(total, &currency),
            payer: if check.warranty {
                Payer::Company
            } else {
                Payer::Customer
            },
            review_note: String::new(),
            reviewed_by: String::new(),
            submitted_at: now,
            reviewed_at: auto.then_some(now),
        })
    }

    pub fn review(
        &mut self,
        approve: bool,
        note: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        if self.status != QuoteStatus::PendingReview {
            return Err(DomainError::Precondition(format!(
                "quote {} is {}, not pending_review",
                self.id, self.status
            )));
        }
        self.status = if approve {
            QuoteStatus::Approved
        } else {
            QuoteStatus::Rejected
        };
        self.review_note = note.to_owned();
        self.reviewed_by = actor.id.clone();
        self.reviewed_at = Some(now);
        Ok(())
    }
}

/// `price ≤ schedule × (100 + tolerance) / 100`, in integers so no rounding decides.
fn within(price: i64, schedule: i64, tolerance_percent: u32) -> bool {
    i128::from(price) * 100 <= i128::from(schedule) * (100 + i128::from(tolerance_percent))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::{AreaKind, partner::tests::spec};

    fn line(kind: QuoteLineKind, code: &str, qty: u32, minor: i64) -> QuoteLine {
        QuoteLine {
            kind,
            part_code: code.into(),
            description: String::new(),
            quantity: qty,
            unit_price: Money::new(minor, "CNY"),
            within_schedule: false,
            schedule_price: None,
        }
    }

    fn submit(lines: Vec<QuoteLine>, warranty: bool) -> Result<Quote, DomainError> {
        let fees = spec("310104", AreaKind::Urban).fees;
        let check = PriceCheck {
            fees: &fees,
            product_line: "appliance",
            warranty,
            tolerance_percent: 5,
        };
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap();
        Quote::submit("job", "partner", lines, check, now)
    }

    #[test]
    fn lines_within_schedule_and_tolerance_are_approved_at_once() {
        let q = submit(
            vec![
                line(QuoteLineKind::Labour, "", 1, 10_500), // exactly +5 %
                line(QuoteLineKind::Part, "PUMP-1", 2, 5_000),
                line(QuoteLineKind::CallOut, "", 1, 3_000),
            ],
            false,
        )
        .unwrap();
        assert_eq!(q.status, QuoteStatus::Approved);
        assert!(q.auto_approved);
        assert_eq!(q.total, Money::new(10_500 + 10_000 + 3_000, "CNY"));
        assert_eq!(q.payer, Payer::Customer);
    }

    #[test]
    fn a_line_over_tolerance_or_off_schedule_waits_for_review() {
        let over = submit(vec![line(QuoteLineKind::Labour, "", 1, 10_501)], true).unwrap();
        assert_eq!(over.status, QuoteStatus::PendingReview);
        assert!(!over.lines[0].within_schedule);
        assert_eq!(
            over.lines[0].schedule_price,
            Some(Money::new(10_000, "CNY"))
        );
        assert_eq!(over.payer, Payer::Company);
        let unknown_part = submit(vec![line(QuoteLineKind::Part, "VALVE-9", 1, 1)], false).unwrap();
        assert_eq!(unknown_part.status, QuoteStatus::PendingReview);
        assert_eq!(unknown_part.lines[0].schedule_price, None);
        let two_call_outs =
            submit(vec![line(QuoteLineKind::CallOut, "", 2, 3_000)], false).unwrap();
        assert_eq!(two_call_outs.status, QuoteStatus::PendingReview);
    }

    #[test]
    fn review_decides_once() {
        let mut q = submit(vec![line(QuoteLineKind::Part, "VALVE-9", 1, 1)], false).unwrap();
        let now = q.submitted_at;
        q.review(false, "too dear", &Actor::system("dispatch"), now)
            .unwrap();
        assert_eq!(q.status, QuoteStatus::Rejected);
        assert!(q.review(true, "", &Actor::system("dispatch"), now).is_err());
    }

    #[test]
    fn another_currency_is_refused_naming_the_line() {
        let mut l = line(QuoteLineKind::Labour, "", 1, 100);
        l.unit_price.currency = "USD".into();
        let err = submit(vec![line(QuoteLineKind::CallOut, "", 1, 1), l], false).unwrap_err();
        assert!(
            matches!(err, DomainError::Invalid { field, .. } if field == "lines[1].unit_price.currency")
        );
    }
}
