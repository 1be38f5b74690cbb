//! The rules and amounts of the refund variants besides a returned return's refund:
//! refund-only (no goods come back), a negotiated partial refund (the customer keeps the
//! goods), and the price difference under price protection. Each rule refuses with its
//! name ([`DomainError::Refused`]); every limit comes from the return policy of the
//! product line (the strictest one when a return has several).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{
    DomainError, Money, Reason,
    eligibility::{Policies, ReturnPolicy, days_since_delivery},
    refund::RefundLine,
    rma::{ReturnLine, Rma},
};

/// What the lines of a return were paid, in their currency.
fn paid(lines: &[ReturnLine]) -> Result<Money, DomainError> {
    let currency = lines
        .first()
        .map(|l| l.unit_price.currency.clone())
        .ok_or_else(|| {
            DomainError::Precondition("a return without lines refunds nothing".into())
        })?;
    Ok(Money::new(
        lines.iter().map(ReturnLine::total).sum(),
        &currency,
    ))
}

/// Whether a request may be refund-only: goods that never arrived always may (there is
/// nothing to send back); other goods when the total is within every line's
/// `refund_only_max_minor`. Answers the rule that allowed it.
pub fn refund_only(
    lines: &[ReturnLine],
    reason: Reason,
    policies: &Policies,
) -> Result<String, DomainError> {
    if reason == Reason::NotReceived {
        return Ok("refund_only_not_received".into());
    }
    let total = paid(lines)?;
    let limit = lines
        .iter()
        .map(|l| policies.for_line(&l.product_line).refund_only_max_minor)
        .min()
        .unwrap_or(0);
    if limit <= 0 {
        return Err(DomainError::refused(
            "refund_only_not_offered",
            "the policy of these goods allows refund-only only for goods not received",
        ));
    }
    if total.minor > limit {
        return Err(DomainError::refused(
            "refund_only_over_limit",
            format!(
                "the total {} is over the refund-only limit {limit}",
                total.minor
            ),
        ));
    }
    Ok(format!("refund_only_up_to_{limit}"))
}

/// What a refund-only return refunds: every line's price. Nothing was shipped back, so
/// there is no return shipping, and no inspection, so no deduction.
pub fn refund_only_amount(rma: &Rma) -> Result<(Money, Vec<RefundLine>), DomainError> {
    let amount = paid(&rma.lines)?;
    let lines = rma
        .lines
        .iter()
        .map(|line| RefundLine {
            kind: "item".into(),
            description: format!("{} x {} (not returned)", line.quantity, line.sku),
            amount: line.total(),
            rule: None,
        })
        .collect();
    Ok((amount, lines))
}

/// A partial refund agreed with the customer: positive, in the order's currency, at most
/// the paid amount and at most the strictest line policy's `partial_refund_max_percent`
/// of it.
pub fn partial(
    rma: &Rma,
    amount: &Money,
    policies: &Policies,
) -> Result<Vec<RefundLine>, DomainError> {
    let paid = paid(&rma.lines)?;
    if amount.currency != paid.currency {
        return Err(DomainError::invalid(
            "amount.currency",
            format!("must be {}, the order's currency", paid.currency),
        ));
    }
    if amount.minor <= 0 {
        return Err(DomainError::invalid(
            "amount.minor_units",
            "must be positive",
        ));
    }
    if amount.minor > paid.minor {
        return Err(DomainError::refused(
            "partial_refund_above_paid",
            format!("{} is more than the {} paid", amount.minor, paid.minor),
        ));
    }
    let percent = rma
        .lines
        .iter()
        .map(|l| {
            policies
                .for_line(&l.product_line)
                .partial_refund_max_percent
        })
        .min()
        .unwrap_or(0);
    if i128::from(amount.minor) * 100 > i128::from(paid.minor) * i128::from(percent) {
        return Err(DomainError::refused(
            "partial_refund_over_percent",
            format!(
                "{} is more than {percent}% of the {} paid",
                amount.minor, paid.minor
            ),
        ));
    }
    Ok(vec![RefundLine {
        kind: "partial".into(),
        description: format!("agreed partial refund of the {} paid", paid.minor),
        amount: amount.minor,
        rule: Some("negotiated_partial".into()),
    }])
}

/// An order line whose price dropped after it was bought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceClaim {
    pub order_id: String,
    pub customer_id: String,
    pub sku: String,
    pub product_line: String,
    pub quantity: u32,
    pub paid_unit_price: Money,
    pub current_unit_price: Money,
    pub purchased_at: DateTime<Utc>,
    pub customer_time_zone: String,
}

/// The price difference of an order line: (paid − current) × quantity, within the
/// policy's protection days (calendar days in the customer's zone, like the no-reason
/// period) and capped by its `price_protection_max_minor` (a deduction line names the cap).
pub fn price_difference(
    claim: &PriceClaim,
    policy: &ReturnPolicy,
    now: DateTime<Utc>,
    tz: Tz,
) -> Result<(Money, Vec<RefundLine>), DomainError> {
    let (paid, current) = (&claim.paid_unit_price, &claim.current_unit_price);
    if paid.currency != current.currency {
        return Err(DomainError::invalid(
            "current_unit_price.currency",
            format!("must be {}, like paid_unit_price", paid.currency),
        ));
    }
    if current.minor >= paid.minor {
        return Err(DomainError::refused(
            "price_not_lower",
            format!(
                "the current {} is not below the {} paid",
                current.minor, paid.minor
            ),
        ));
    }
    let days = days_since_delivery(claim.purchased_at, now, tz);
    if days < 0 {
        return Err(DomainError::invalid("purchased_at", "is in the future"));
    }
    if policy.price_protection_days == 0 {
        return Err(DomainError::refused(
            "price_protection_not_offered",
            format!("{} has no price protection", policy.product_line),
        ));
    }
    if days > i64::from(policy.price_protection_days) {
        return Err(DomainError::refused(
            "price_protection_window_over",
            format!(
                "bought {days} days ago, protected for {} days",
                policy.price_protection_days
            ),
        ));
    }
    let difference = (paid.minor - current.minor) * i64::from(claim.quantity);
    let mut lines = vec![RefundLine {
        kind: "price_difference".into(),
        description: format!(
            "{} x {}: {} paid, {} now",
            claim.quantity, claim.sku, paid.minor, current.minor
        ),
        amount: difference,
        rule: None,
    }];
    let cap = policy.price_protection_max_minor;
    if cap > 0 && difference > cap {
        lines.push(RefundLine {
            kind: "deduction".into(),
            description: format!("price protection is capped at {cap}"),
            amount: cap - difference,
            rule: Some("price_protection_cap".into()),
        });
    }
    let amount = lines.iter().map(|l| l.amount).sum();
    Ok((Money::new(amount, &paid.currency), lines))
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::domain::eligibility::DEFAULT_TIME_ZONE;

    fn line(unit: i64, quantity: u32) -> ReturnLine {
        ReturnLine {
            sku: "K1".into(),
            product_line: "kettle".into(),
            quantity,
            unit_price: Money::new(unit, "CNY"),
            delivered_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn refused_rule(err: DomainError) -> String {
        match err {
            DomainError::Refused { rule, .. } => rule,
            other => panic!("not a refusal: {other:?}"),
        }
    }

    #[test]
    fn refund_only_by_reason_or_within_the_limit() {
        let policies = Policies::new([]);
        assert_eq!(
            refund_only(&[line(100_000, 1)], Reason::NotReceived, &policies).unwrap(),
            "refund_only_not_received"
        );
        assert_eq!(
            refund_only(&[line(2_500, 2)], Reason::NoReason, &policies).unwrap(),
            "refund_only_up_to_5000"
        );
        let over = refund_only(&[line(2_501, 2)], Reason::NoReason, &policies).unwrap_err();
        assert_eq!(refused_rule(over), "refund_only_over_limit");
        let none = Policies::new([ReturnPolicy {
            refund_only_max_minor: 0,
            ..ReturnPolicy::default_for("kettle")
        }]);
        let off = refund_only(&[line(1, 1)], Reason::WrongItem, &none).unwrap_err();
        assert_eq!(refused_rule(off), "refund_only_not_offered");
    }

    #[test]
    fn a_partial_refund_is_at_most_the_paid_amount_and_the_policys_share() {
        let mut agg = crate::domain::rma::tests::approved();
        agg.rma.lines = vec![line(10_000, 2)];
        let rma = &agg.rma;
        let policies = Policies::new([]);
        let within = partial(rma, &Money::new(10_000, "CNY"), &policies).unwrap();
        assert_eq!(within[0].amount, 10_000);
        let over = partial(rma, &Money::new(10_001, "CNY"), &policies).unwrap_err();
        assert_eq!(refused_rule(over), "partial_refund_over_percent");
        let above = partial(rma, &Money::new(20_001, "CNY"), &policies).unwrap_err();
        assert_eq!(refused_rule(above), "partial_refund_above_paid");
        assert!(matches!(
            partial(rma, &Money::new(100, "USD"), &policies),
            Err(DomainError::Invalid { ref field, .. }) if field == "amount.currency"
        ));
        let generous = Policies::new([ReturnPolicy {
            partial_refund_max_percent: 100,
            ..ReturnPolicy::default_for("kettle")
        }]);
        assert!(partial(rma, &Money::new(20_000, "CNY"), &generous).is_ok());
    }

    fn claim(paid: i64, current: i64, days_ago: i64, now: DateTime<Utc>) -> PriceClaim {
        PriceClaim {
            order_id: "o".into(),
            customer_id: "c".into(),
            sku: "K1".into(),
            product_line: "kettle".into(),
            quantity: 2,
            paid_unit_price: Money::new(paid, "CNY"),
            current_unit_price: Money::new(current, "CNY"),
            purchased_at: now - Duration::days(days_ago),
            customer_time_zone: DEFAULT_TIME_ZONE.into(),
        }
    }

    #[test]
    fn the_price_difference_is_bounded_by_the_window_and_the_cap() {
        let now = Utc.with_ymd_and_hms(2026, 11, 20, 4, 0, 0).unwrap();
        let tz: Tz = DEFAULT_TIME_ZONE.parse().unwrap();
        let policy = ReturnPolicy::default_for("kettle");
        let (amount, _) =
            price_difference(&claim(19_900, 17_900, 15, now), &policy, now, tz).unwrap();
        assert_eq!(amount, Money::new(4_000, "CNY"));
        let late = price_difference(&claim(19_900, 17_900, 16, now), &policy, now, tz).unwrap_err();
        assert_eq!(refused_rule(late), "price_protection_window_over");
        let up = price_difference(&claim(19_900, 19_900, 1, now), &policy, now, tz).unwrap_err();
        assert_eq!(refused_rule(up), "price_not_lower");
        let capped = ReturnPolicy {
            price_protection_max_minor: 3_000,
            ..policy
        };
        let (amount, lines) =
            price_difference(&claim(19_900, 17_900, 1, now), &capped, now, tz).unwrap();
        assert_eq!(amount.minor, 3_000);
        assert_eq!(lines[1].rule.as_deref(), Some("price_protection_cap"));
    }
}
