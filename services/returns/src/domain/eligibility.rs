//! Whether a return may go ahead, by the policy of each line's product line: no-reason
//! returns within 7 days of delivery; for a fault, a refund within 7 days, an exchange
//! within 15, repair under warranty after that; excluded goods get no no-reason return.
//! Days are counted in calendar days in the customer's time zone: delivered on the 1st,
//! the 8th is day 7.

use std::collections::HashMap;

use chrono::{DateTime, Months, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{DomainError, Exclusion, Outcome, Reason, rma::ReturnLine};

/// The product line whose policy applies when a line has no policy of its own.
pub const DEFAULT_PRODUCT_LINE: &str = "default";
/// The zone days are counted in when the request names none.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnPolicy {
    pub product_line: String,
    pub no_reason_days: u32,
    pub exchange_days: u32,
    pub warranty_months: u32,
    pub exclusion: Option<Exclusion>,
    pub auto_approve: bool,
    /// Percent of a line's price deducted (rule `customer_damage`) when a no-reason
    /// return comes back damaged.
    pub damage_deduction_percent: u8,
    /// Refund-only (no goods come back) without a reason like "not received": allowed up
    /// to this total, in minor units; 0 allows none.
    #[serde(default = "defaults::refund_only_max_minor")]
    pub refund_only_max_minor: i64,
    /// The most a negotiated partial refund may be, in percent of the paid amount.
    #[serde(default = "defaults::partial_refund_max_percent")]
    pub partial_refund_max_percent: u8,
    /// Days after purchase a price drop is refunded; 0 offers no price protection.
    #[serde(default = "defaults::price_protection_days")]
    pub price_protection_days: u32,
    /// The most one order line's price difference refunds; 0 means no cap.
    #[serde(default)]
    pub price_protection_max_minor: i64,
}

/// The refund variants' defaults, also for policies stored before they existed.
mod defaults {
    /// Low-value goods are cheaper to refund than to bring back (50.00).
    pub fn refund_only_max_minor() -> i64 {
        5_000
    }

    /// Beyond half the price, the goods should come back instead.
    pub fn partial_refund_max_percent() -> u8 {
        50
    }

    pub fn price_protection_days() -> u32 {
        15
    }
}

impl ReturnPolicy {
    /// The national defaults: 7-day no-reason returns, exchange within 15 days, one year
    /// of warranty, approved without a reviewer when the rules allow.
    pub fn default_for(product_line: &str) -> Self {
        Self {
            product_line: product_line.to_owned(),
            no_reason_days: 7,
            exchange_days: 15,
            warranty_months: 12,
            exclusion: None,
            auto_approve: true,
            damage_deduction_percent: 0,
            refund_only_max_minor: defaults::refund_only_max_minor(),
            partial_refund_max_percent: defaults::partial_refund_max_percent(),
            price_protection_days: defaults::price_protection_days(),
            price_protection_max_minor: 0,
        }
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        if self.product_line.trim().is_empty() {
            return Err(DomainError::invalid("policy.product_line", "is required"));
        }
        if self.exchange_days < self.no_reason_days {
            return Err(DomainError::invalid(
                "policy.exchange_days",
                "must not be shorter than no_reason_days",
            ));
        }
        if self.damage_deduction_percent > 100 {
            return Err(DomainError::invalid(
                "policy.damage_deduction_percent",
                "must be at most 100",
            ));
        }
        if self.partial_refund_max_percent > 100 {
            return Err(DomainError::invalid(
                "policy.partial_refund_max_percent",
                "must be at most 100",
            ));
        }
        if self.refund_only_max_minor < 0 || self.price_protection_max_minor < 0 {
            return Err(DomainError::invalid(
                "policy",
                "refund_only_max_minor and price_protection_max_minor must not be negative",
            ));
        }
        Ok(())
    }
}

/// Policies by product line, with the default for the rest.
#[derive(Debug, Clone)]
pub struct Policies {
    by_line: HashMap<String, ReturnPolicy>,
    fallback: ReturnPolicy,
}

impl Policies {
    pub fn new(policies: impl IntoIterator<Item = ReturnPolicy>) -> Self {
        let mut by_line: HashMap<String, ReturnPolicy> = policies
            .into_iter()
            .map(|p| (p.product_line.clone(), p))
            .collect();
        let fallback = by_line
            .remove(DEFAULT_PRODUCT_LINE)
            .unwrap_or_else(|| ReturnPolicy::default_for(DEFAULT_PRODUCT_LINE));
        Self { by_line, fallback }
    }

    pub fn for_line(&self, product_line: &str) -> &ReturnPolicy {
        self.by_line.get(product_line).unwrap_or(&self.fallback)
    }
}

/// The verdict on a request, with the rule that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve { rule: String },
    Review { rule: String },
    Refuse { rule: String },
}

impl Decision {
    pub fn rule(&self) -> &str {
        match self {
            Decision::Approve { rule } | Decision::Review { rule } | Decision::Refuse { rule } => {
                rule
            }
        }
    }
}

/// Calendar days from delivery to `now`, in `tz`.
pub fn days_since_delivery(delivered_at: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> i64 {
    (now.with_timezone(&tz).date_naive() - delivered_at.with_timezone(&tz).date_naive()).num_days()
}

fn within_warranty(delivered_at: DateTime<Utc>, now: DateTime<Utc>, months: u32, tz: Tz) -> bool {
    let delivered = delivered_at.with_timezone(&tz).date_naive();
    delivered
        .checked_add_months(Months::new(months))
        .is_some_and(|end| now.with_timezone(&tz).date_naive() <= end)
}

/// One line's verdict: `Ok(rule)` when allowed, `Err(rule)` when refused.
fn judge_line(
    line: &ReturnLine,
    reason: Reason,
    desired: Outcome,
    policy: &ReturnPolicy,
    now: DateTime<Utc>,
    tz: Tz,
) -> Result<String, String> {
    let days = days_since_delivery(line.delivered_at, now, tz);
    if days < 0 {
        return Err("delivered_in_the_future".into());
    }
    let p = policy;
    if reason == Reason::NoReason {
        if let Some(exclusion) = p.exclusion {
            return Err(format!("excluded_{exclusion}"));
        }
        if desired == Outcome::Repair {
            return Err("repair_needs_a_fault".into());
        }
        if days > i64::from(p.no_reason_days) {
            return Err(format!("no_reason_period_over_{}_days", p.no_reason_days));
        }
        return Ok(format!("no_reason_within_{}_days", p.no_reason_days));
    }
    if days <= i64::from(p.no_reason_days) {
        return Ok(format!("fault_within_{}_days", p.no_reason_days));
    }
    if days <= i64::from(p.exchange_days) {
        return match desired {
            Outcome::Refund => Err(format!(
                "refund_period_over_{}_days_exchange_or_repair",
                p.no_reason_days
            )),
            Outcome::Exchange | Outcome::Repair => {
                Ok(format!("fault_exchange_within_{}_days", p.exchange_days))
            }
        };
    }
    if within_warranty(line.delivered_at, now, p.warranty_months, tz) {
        return match desired {
            Outcome::Repair => Ok(format!("repair_under_{}_month_warranty", p.warranty_months)),
            Outcome::Refund | Outcome::Exchange => Err(format!(
                "exchange_period_over_{}_days_repair_only",
                p.exchange_days
            )),
        };
    }
    Err(format!("warranty_of_{}_months_expired", p.warranty_months))
}

/// Judges a request line by line: any refused line refuses it (naming the line's rule);
/// otherwise it is approved at once when every line's policy allows that and a fault
/// claim comes with evidence, else it waits for a reviewer.
pub fn decide(
    lines: &[ReturnLine],
    reason: Reason,
    desired: Outcome,
    has_evidence: bool,
    policies: &Policies,
    now: DateTime<Utc>,
    tz: Tz,
) -> Decision {
    let mut rules = Vec::new();
    let mut auto = true;
    for line in lines {
        let policy = policies.for_line(&line.product_line);
        match judge_line(line, reason, desired, policy, now, tz) {
            Ok(rule) => {
                if !rules.contains(&rule) {
                    rules.push(rule);
                }
                auto &= policy.auto_approve;
            }
            Err(rule) => {
                return Decision::Refuse {
                    rule: format!("{rule} (sku {})", line.sku),
                };
            }
        }
    }
    let rule = rules.join(",");
    if auto && (has_evidence || !reason.seller_at_fault()) {
        Decision::Approve { rule }
    } else {
        Decision::Review { rule }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::Money;

    fn line(product_line: &str, delivered_at: DateTime<Utc>) -> ReturnLine {
        ReturnLine {
            sku: "SKU-1".into(),
            product_line: product_line.into(),
            quantity: 1,
            unit_price: Money::new(19_900, "CNY"),
            delivered_at,
        }
    }

    fn shanghai() -> Tz {
        DEFAULT_TIME_ZONE.parse().unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn no_reason(delivered: DateTime<Utc>, now: DateTime<Utc>, policies: &Policies) -> Decision {
        decide(
            &[line("kettle", delivered)],
            Reason::NoReason,
            Outcome::Refund,
            false,
            policies,
            now,
            shanghai(),
        )
    }

    #[test]
    fn day_7_is_in_and_day_8_is_out_counted_in_the_customers_zone() {
        let policies = Policies::new([]);
        // Delivered 2026-11-01 23:30 Shanghai (15:30Z): that is the 1st locally.
        let delivered = utc(2026, 11, 1, 15, 30);
        // 2026-11-08 23:59 Shanghai is day 7.
        assert!(matches!(
            no_reason(delivered, utc(2026, 11, 8, 15, 59), &policies),
            Decision::Approve { .. }
        ));
        // 2026-11-09 00:00 Shanghai is day 8, though in UTC it is still the 8th.
        let refused = no_reason(delivered, utc(2026, 11, 8, 16, 0), &policies);
        assert_eq!(
            refused,
            Decision::Refuse {
                rule: "no_reason_period_over_7_days (sku SKU-1)".into()
            }
        );
    }

    #[test]
    fn the_same_instants_count_differently_in_another_zone() {
        let policies = Policies::new([]);
        let delivered = utc(2026, 11, 1, 15, 30);
        let now = utc(2026, 11, 8, 16, 0);
        // In London delivery was on the 1st and now is the 8th: day 7.
        let london: Tz = "Europe/London".parse().unwrap();
        let d = decide(
            &[line("kettle", delivered)],
            Reason::NoReason,
            Outcome::Refund,
            false,
            &policies,
            now,
            london,
        );
        assert!(matches!(d, Decision::Approve { .. }));
    }

    #[test]
    fn excluded_categories_are_refused_with_the_rule_named() {
        let policies = Policies::new([ReturnPolicy {
            exclusion: Some(Exclusion::Perishable),
            ..ReturnPolicy::default_for("fresh_food")
        }]);
        let now = utc(2026, 11, 2, 0, 0);
        let d = decide(
            &[line("fresh_food", utc(2026, 11, 1, 0, 0))],
            Reason::NoReason,
            Outcome::Refund,
            false,
            &policies,
            now,
            shanghai(),
        );
        assert_eq!(
            d,
            Decision::Refuse {
                rule: "excluded_perishable (sku SKU-1)".into()
            }
        );
        // A defect in excluded goods still follows the quality rules.
        let d = decide(
            &[line("fresh_food", utc(2026, 11, 1, 0, 0))],
            Reason::QualityDefect,
            Outcome::Refund,
            true,
            &policies,
            now,
            shanghai(),
        );
        assert!(matches!(d, Decision::Approve { .. }));
    }

    #[test]
    fn faults_go_refund_then_exchange_then_repair() {
        let policies = Policies::new([]);
        let delivered = utc(2026, 1, 10, 4, 0);
        let judge = |days: i64, outcome| {
            decide(
                &[line("kettle", delivered)],
                Reason::QualityDefect,
                outcome,
                true,
                &policies,
                delivered + chrono::Duration::days(days),
                shanghai(),
            )
        };
        assert!(matches!(
            judge(7, Outcome::Refund),
            Decision::Approve { .. }
        ));
        assert!(matches!(judge(8, Outcome::Refund), Decision::Refuse { .. }));
        assert!(matches!(
            judge(15, Outcome::Exchange),
            Decision::Approve { .. }
        ));
        assert!(matches!(
            judge(16, Outcome::Exchange),
            Decision::Refuse { .. }
        ));
        assert!(
            matches!(judge(200, Outcome::Repair), Decision::Approve { ref rule } if rule == "repair_under_12_month_warranty")
        );
        assert!(matches!(
            judge(400, Outcome::Repair),
            Decision::Refuse { .. }
        ));
    }

    #[test]
    fn a_fault_without_evidence_or_a_reviewed_line_waits_for_a_reviewer() {
        let now = utc(2026, 11, 2, 0, 0);
        let delivered = utc(2026, 11, 1, 0, 0);
        let policies = Policies::new([]);
        let d = decide(
            &[line("kettle", delivered)],
            Reason::WrongItem,
            Outcome::Exchange,
            false,
            &policies,
            now,
            shanghai(),
        );
        assert!(matches!(d, Decision::Review { .. }));
        let reviewed = Policies::new([ReturnPolicy {
            auto_approve: false,
            ..ReturnPolicy::default_for("tv")
        }]);
        let d = decide(
            &[line("tv", delivered)],
            Reason::NoReason,
            Outcome::Refund,
            false,
            &reviewed,
            now,
            shanghai(),
        );
        assert!(matches!(d, Decision::Review { .. }));
    }
}
