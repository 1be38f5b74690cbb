//! Returns refunded without their goods coming back: a refund-only return (refunded once
//! approved, no pickup, receipt or inspection) and a negotiated partial refund (agreed
//! with the customer, who keeps the goods). While such a refund is under way the return
//! can only become `refunded`: no pickup, cancellation or review can overtake the money.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ReturnAggregate, StepTargets};
use crate::domain::{DeadlineState, DomainError, Money, Status, Step};

/// A partial refund the customer agreed to, keeping the goods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    pub amount: Money,
    /// Where the customer's agreement is recorded (a chat message id, a call recording).
    pub customer_agreement: String,
    pub agreed_by: String,
    pub agreed_at: DateTime<Utc>,
    /// Why it was agreed, as the person agreeing wrote it (masked).
    #[serde(default)]
    pub reason: String,
}

impl ReturnAggregate {
    /// A refund-only return or an agreed partial refund has its refund started.
    pub fn refund_without_goods_under_way(&self) -> bool {
        (self.rma.refund_only || self.rma.agreement.is_some()) && self.rma.refund_id.is_some()
    }

    /// The refund of a return without goods failed for good (the provider refused it):
    /// the return is released, so a partial refund may be agreed again, a refund-only
    /// return refunded again (ResolveReturn), or the return go on or be cancelled like any.
    /// The failed refund stays on record, named by its `RefundFailed` event; the agreement
    /// stays until another replaces it.
    pub fn refund_without_goods_failed(&mut self, now: DateTime<Utc>) {
        if self.refund_without_goods_under_way() {
            self.rma.refund_id = None;
            self.rma.updated_at = now;
        }
    }

    /// An approved refund-only return waits for its refund, started now.
    pub fn needs_refund_only_refund(&self) -> bool {
        self.rma.refund_only && self.rma.status == Status::Approved && self.rma.refund_id.is_none()
    }

    /// The refund of an approved refund-only return started.
    pub fn refund_only_started(&mut self, refund_id: String, now: DateTime<Utc>) {
        self.rma.refund_id = Some(refund_id);
        self.rma.updated_at = now;
    }

    /// Records a partial refund agreed with the customer, who keeps the goods: allowed
    /// while the goods have not left them (requested or approved, before pickup). Review
    /// and pickup will not happen; the refund step's clock starts.
    pub fn agree_partial(
        &mut self,
        agreement: Agreement,
        refund_id: String,
        targets: &StepTargets,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let from = self.rma.status;
        if !matches!(from, Status::Requested | Status::Approved) {
            return Err(DomainError::IllegalTransition {
                from,
                to: Status::Refunded,
            });
        }
        if self.rma.refund_id.is_some() {
            return Err(DomainError::refused(
                "refund_already_under_way",
                "this return already has a refund",
            ));
        }
        self.complete(Step::Review);
        // An earlier agreement's refund clock (its refund failed) starts again with this one.
        for d in self.deadlines.iter_mut().filter(|d| {
            matches!(d.step, Step::Pickup | Step::Refund) && d.state == DeadlineState::Running
        }) {
            d.state = DeadlineState::Cancelled;
        }
        self.start(Step::Refund, targets, now);
        self.rma.agreement = Some(agreement);
        self.rma.refund_id = Some(refund_id);
        self.rma.updated_at = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::rma::{Actor, tests::approved};

    #[test]
    fn an_agreed_partial_refund_stops_pickup_and_only_lets_the_return_be_refunded() {
        let now = Utc.timestamp_opt(1_800_000_100, 0).unwrap();
        let mut agg = approved();
        let agreement = Agreement {
            amount: Money::new(5_000, "CNY"),
            customer_agreement: "chat-1".into(),
            agreed_by: "agent-1".into(),
            agreed_at: now,
            reason: "a scratch".into(),
        };
        agg.agree_partial(
            agreement.clone(),
            "R1".into(),
            &StepTargets::handbook(),
            now,
        )
        .unwrap();
        assert!(agg.refund_without_goods_under_way());
        assert!(
            agg.deadlines
                .iter()
                .any(|d| d.step == Step::Refund && d.state == DeadlineState::Running)
        );
        let actor = Actor::new("c", "customer");
        assert!(matches!(
            agg.cancel("changed my mind", &actor, now),
            Err(DomainError::Precondition(_))
        ));
        assert!(matches!(
            agg.agree_partial(agreement, "R2".into(), &StepTargets::handbook(), now),
            Err(DomainError::Refused { .. })
        ));
        agg.refunded("ref-1", now).unwrap();
        assert_eq!(agg.rma.status, Status::Refunded);
    }
}
