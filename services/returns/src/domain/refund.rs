//! Refunds: the amount, line by line (item prices; return shipping when the seller is at
//! fault; deductions only by a named rule), and the payment's state with safe retries.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Condition, DomainError, Money, Reason, RefundKind, RefundState,
    eligibility::Policies,
    rma::{Rma, new_id},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundLine {
    /// `item`, `return_shipping` or `deduction`.
    pub kind: String,
    pub description: String,
    /// Negative for deductions.
    pub amount: i64,
    pub rule: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub id: String,
    pub return_id: String,
    pub order_id: String,
    /// What the refund is for; refunds stored before the variants are returns' refunds.
    #[serde(default = "return_kind")]
    pub kind: RefundKind,
    pub amount: Money,
    pub lines: Vec<RefundLine>,
    pub state: RefundState,
    pub attempts: u32,
    pub provider_reference: Option<String>,
    pub last_error: Option<String>,
    /// When to try the payment (again) while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn return_kind() -> RefundKind {
    RefundKind::Return
}

/// The most payment attempts before a refund is given up as failed.
pub const MAX_ATTEMPTS: u32 = 8;

/// The rule name of the damage deduction.
pub const CUSTOMER_DAMAGE: &str = "customer_damage";

/// Computes what an inspected return refunds.
pub fn compute(rma: &Rma, policies: &Policies) -> Result<(Money, Vec<RefundLine>), DomainError> {
    let currency = rma
        .lines
        .first()
        .map(|l| l.unit_price.currency.clone())
        .ok_or_else(|| {
            DomainError::Precondition("a return without lines refunds nothing".into())
        })?;
    let mut lines = Vec::new();
    for line in &rma.lines {
        lines.push(RefundLine {
            kind: "item".into(),
            description: format!("{} x {}", line.quantity, line.sku),
            amount: line.total(),
            rule: None,
        });
        let condition = rma
            .inspection
            .iter()
            .find(|i| i.sku == line.sku)
            .map(|i| i.condition);
        let percent = policies
            .for_line(&line.product_line)
            .damage_deduction_percent;
        if rma.reason == Reason::NoReason && condition == Some(Condition::Damaged) && percent > 0 {
            lines.push(RefundLine {
                kind: "deduction".into(),
                description: format!("{percent}% of {} returned damaged", line.sku),
                amount: -(line.total() * i64::from(percent) / 100),
                rule: Some(CUSTOMER_DAMAGE.into()),
            });
        }
    }
    let defect_found = rma.inspection.iter().any(|i| i.quality_defect);
    if let Some(shipment) = &rma.shipment
        && (rma.reason.seller_at_fault() || defect_found)
        && shipment.fee.minor > 0
        && shipment.fee.currency == currency
    {
        lines.push(RefundLine {
            kind: "return_shipping".into(),
            description: format!("return shipping by {}", shipment.carrier),
            amount: shipment.fee.minor,
            rule: None,
        });
    }
    let total: i64 = lines.iter().map(|l| l.amount).sum();
    Ok((Money::new(total.max(0), &currency), lines))
}

/// What the payment provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    Paid {
        reference: String,
    },
    /// Worth retrying (timeouts, provider busy).
    Transient(String),
    /// Not worth retrying (account closed, amount refused).
    Permanent(String),
}

impl Refund {
    /// A pending refund. It is paid right away by whoever creates it; `safety_net` is when
    /// the worker tries instead, should that first attempt never be recorded.
    pub fn start(
        rma: &Rma,
        amount: Money,
        lines: Vec<RefundLine>,
        safety_net: Duration,
        now: DateTime<Utc>,
    ) -> Self {
        Self::open(
            RefundKind::Return,
            &rma.id,
            &rma.order_id,
            amount,
            lines,
            safety_net,
            now,
        )
    }

    /// A pending refund of `kind`; `return_id` is empty for a refund without a return (a
    /// price difference).
    pub fn open(
        kind: RefundKind,
        return_id: &str,
        order_id: &str,
        amount: Money,
        lines: Vec<RefundLine>,
        safety_net: Duration,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: new_id(),
            return_id: return_id.to_owned(),
            order_id: order_id.to_owned(),
            kind,
            amount,
            lines,
            state: RefundState::Pending,
            attempts: 0,
            provider_reference: None,
            last_error: None,
            next_attempt_at: Some(now + safety_net),
            created_at: now,
            updated_at: now,
        }
    }

    /// The key the provider dedupes on: the refund's own id, so every retry of this
    /// refund, from any process, pays at most once.
    pub fn idempotency_key(&self) -> &str {
        &self.id
    }

    /// Applies an attempt's outcome; true when it changed the refund. A refund that is
    /// no longer pending ignores late answers.
    pub fn record(&mut self, outcome: PaymentOutcome, now: DateTime<Utc>) -> bool {
        if self.state != RefundState::Pending {
            return false;
        }
        self.attempts += 1;
        self.updated_at = now;
        match after_attempt(outcome, self.attempts, now) {
            AfterAttempt::Paid(reference) => {
                self.state = RefundState::Succeeded;
                self.provider_reference = Some(reference);
                self.last_error = None;
                self.next_attempt_at = None;
            }
            AfterAttempt::RetryAt(at, error) => {
                self.last_error = Some(error);
                self.next_attempt_at = Some(at);
            }
            AfterAttempt::Failed(error) => {
                self.state = RefundState::Failed;
                self.last_error = Some(error);
                self.next_attempt_at = None;
            }
        }
        true
    }
}

/// Where a pending payment stands once its `attempts`-th attempt answered: the one retry
/// rule of every payment through the port (refunds and cash compensations alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterAttempt {
    /// Paid, with the provider's reference.
    Paid(String),
    /// Not paid yet: tried again at this time.
    RetryAt(DateTime<Utc>, String),
    /// Given up: refused for good, or too many transient failures.
    Failed(String),
}

/// Applies the retry rule to an attempt's outcome.
pub fn after_attempt(outcome: PaymentOutcome, attempts: u32, now: DateTime<Utc>) -> AfterAttempt {
    match outcome {
        PaymentOutcome::Paid { reference } => AfterAttempt::Paid(reference),
        PaymentOutcome::Transient(error) if attempts < MAX_ATTEMPTS => {
            AfterAttempt::RetryAt(now + backoff(attempts), error)
        }
        PaymentOutcome::Transient(error) | PaymentOutcome::Permanent(error) => {
            AfterAttempt::Failed(error)
        }
    }
}

/// 1 s, 2 s, 4 s … capped at 5 minutes.
pub fn backoff(attempts: u32) -> Duration {
    Duration::seconds((1_i64 << attempts.saturating_sub(1).min(9)).min(300))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Disposition, Outcome, Status,
        eligibility::ReturnPolicy,
        rma::{InspectionLine, ReturnLine, Shipment},
    };

    fn rma(reason: Reason, condition: Condition, defect: bool) -> Rma {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        Rma {
            id: "r".into(),
            order_id: "o".into(),
            customer_id: "c".into(),
            ticket_id: None,
            lines: vec![ReturnLine {
                sku: "K1".into(),
                product_line: "kettle".into(),
                quantity: 2,
                unit_price: Money::new(10_000, "CNY"),
                delivered_at: now,
            }],
            reason,
            evidence: vec![],
            desired: Outcome::Refund,
            status: Status::Inspected,
            eligibility_rule: String::new(),
            rejection_reason: None,
            customer_time_zone: "Asia/Shanghai".into(),
            shipment: Some(Shipment {
                carrier: "simulated".into(),
                tracking_number: "T".into(),
                label_ref: "L".into(),
                fee: Money::new(1_200, "CNY"),
                booked_at: now,
                last_event: String::new(),
            }),
            inspection: vec![InspectionLine {
                sku: "K1".into(),
                condition,
                quality_defect: defect,
                disposition: Disposition::Restock,
                note: String::new(),
            }],
            refund_id: None,
            repair: Default::default(),
            third_party: None,
            refund_only: false,
            agreement: None,
            history: vec![],
            created_at: now,
            updated_at: now,
        }
    }

    fn policies(percent: u8) -> Policies {
        Policies::new([ReturnPolicy {
            damage_deduction_percent: percent,
            ..ReturnPolicy::default_for("kettle")
        }])
    }

    #[test]
    fn a_no_reason_return_refunds_the_items_only() {
        let (amount, lines) = compute(
            &rma(Reason::NoReason, Condition::LikeNew, false),
            &policies(0),
        )
        .unwrap();
        assert_eq!(amount, Money::new(20_000, "CNY"));
        assert_eq!(lines.len(), 1);
    }

    #[test]
    fn the_seller_at_fault_also_pays_return_shipping() {
        let (amount, lines) = compute(
            &rma(Reason::QualityDefect, Condition::Used, true),
            &policies(0),
        )
        .unwrap();
        assert_eq!(amount.minor, 21_200);
        assert_eq!(lines[1].kind, "return_shipping");
        // A defect found at inspection counts too, whatever the customer said.
        let (amount, _) =
            compute(&rma(Reason::NoReason, Condition::Used, true), &policies(0)).unwrap();
        assert_eq!(amount.minor, 21_200);
    }

    #[test]
    fn deductions_come_only_from_the_named_rule() {
        let (amount, lines) = compute(
            &rma(Reason::NoReason, Condition::Damaged, false),
            &policies(10),
        )
        .unwrap();
        assert_eq!(amount.minor, 18_000);
        assert_eq!(lines[1].rule.as_deref(), Some(CUSTOMER_DAMAGE));
        let (amount, _) = compute(
            &rma(Reason::NoReason, Condition::Damaged, false),
            &policies(0),
        )
        .unwrap();
        assert_eq!(amount.minor, 20_000, "no rule, no deduction");
    }

    #[test]
    fn transient_failures_back_off_then_give_up_and_late_answers_change_nothing() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let r = rma(Reason::NoReason, Condition::LikeNew, false);
        let mut refund = Refund::start(&r, Money::new(1, "CNY"), vec![], Duration::zero(), now);
        assert!(refund.record(PaymentOutcome::Transient("timeout".into()), now));
        assert_eq!(
            (refund.state, refund.next_attempt_at),
            (RefundState::Pending, Some(now + Duration::seconds(1)))
        );
        for _ in 1..MAX_ATTEMPTS {
            refund.record(PaymentOutcome::Transient("timeout".into()), now);
        }
        assert_eq!(refund.state, RefundState::Failed);
        assert!(!refund.record(
            PaymentOutcome::Paid {
                reference: "late".into()
            },
            now
        ));
        assert_eq!(backoff(3), Duration::seconds(4));
        assert_eq!(backoff(20), Duration::seconds(300));
    }
}
