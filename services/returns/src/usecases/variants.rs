//! The refund variants: refund-only returns (refunded once approved, nothing picked up),
//! negotiated partial refunds (the customer keeps the goods), and price-difference refunds
//! (no return at all, one per order line). Each is started in a command and paid after its
//! commit through the same path as every refund ([`ReturnsCore::pay_refund`]): the
//! provider is called outside any transaction, keyed by the refund id, the answer recorded
//! in a command of its own, and the worker's safety net retries whatever was not recorded.
//! Each RPC starting one is audited (see `api::permissions::AUDITED`).

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::{Begun, Remembered};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::{
    domain::{
        DomainError, Money, RefundKind, RefundState,
        eligibility::Policies,
        refund::{PaymentOutcome, Refund},
        refund_variants::{self, PriceClaim},
        rma::{Actor, ReturnAggregate, variants::Agreement},
    },
    error::ReturnsError,
    events, store,
};

use super::{Changes, ReturnsCore, ReturnsDeadline, masked, not_found, remembered_id, save};

const PRICE_SCOPE: &str = "returns.RequestPriceDifferenceRefund";

/// A partial refund to agree.
#[derive(Debug, Clone)]
pub struct PartialOffer {
    pub amount: Money,
    pub customer_agreement: String,
    pub reason: String,
}

impl ReturnsCore {
    /// The refund of a refund-only return just approved, if it is one: the whole paid
    /// amount, of kind refund-only. The caller saves it with the return and pays it after
    /// the commit.
    pub(super) fn refund_only_refund(
        &self,
        agg: &mut ReturnAggregate,
        now: DateTime<Utc>,
    ) -> Result<Option<Refund>, DomainError> {
        if !agg.needs_refund_only_refund() {
            return Ok(None);
        }
        let (amount, lines) = refund_variants::refund_only_amount(&agg.rma)?;
        let refund = Refund::open(
            RefundKind::RefundOnly,
            &agg.rma.id,
            &agg.rma.order_id,
            amount,
            lines,
            self.refund_safety_net,
            now,
        );
        agg.refund_only_started(refund.id.clone(), now);
        Ok(Some(refund))
    }

    /// Pays the refund of a return if it is pending, then reads the return as it is.
    pub(super) async fn pay_then_read(
        &self,
        agg: ReturnAggregate,
    ) -> Result<ReturnAggregate, ReturnsError> {
        match &agg.rma.refund_id {
            Some(refund_id) => {
                self.pay_refund(refund_id).await?;
                self.get_return(&agg.rma.id).await
            }
            None => Ok(agg),
        }
    }

    /// Agrees a partial refund with the customer, who keeps the goods, and pays it. A retry
    /// of the same agreement (the same amount) answers with the return and pays nothing
    /// more; a different one is refused.
    pub async fn agree_partial(
        &self,
        id: &str,
        offer: PartialOffer,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        let (mut cmd, mut agg) = self.open("returns.AgreePartialRefund", id).await?;
        let now = cmd.now();
        // An agreement whose refund failed (released, no refund any more) may be replaced.
        if let Some(agreed) = &agg.rma.agreement
            && agg.rma.refund_id.is_some()
        {
            cmd.abandon().await?;
            if agreed.amount != offer.amount {
                return Err(DomainError::refused(
                    "partial_refund_already_agreed",
                    format!("{} was agreed already", agreed.amount.minor),
                )
                .into());
            }
            return self.pay_then_read(agg).await;
        }
        let policies = Policies::new(store::policies(cmd.txn()).await?);
        let lines = refund_variants::partial(&agg.rma, &offer.amount, &policies)?;
        let refund = Refund::open(
            RefundKind::NegotiatedPartial,
            &agg.rma.id,
            &agg.rma.order_id,
            offer.amount.clone(),
            lines,
            self.refund_safety_net,
            now,
        );
        let agreement = Agreement {
            amount: offer.amount,
            customer_agreement: masked(&offer.customer_agreement),
            agreed_by: actor.id.clone(),
            agreed_at: now,
            reason: masked(&offer.reason),
        };
        agg.agree_partial(agreement, refund.id.clone(), &self.targets, now)?;
        tracing::info!(return_id = id, refund_id = %refund.id, "partial refund agreed");
        let changes = Changes {
            refund: Some(refund),
            ..Changes::default()
        };
        save(&mut cmd, &agg, changes).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&agg.rma.id))
            .await?;
        self.pay_then_read(agg).await
    }

    /// Refunds an order line's price difference, once per line, and pays it. A retry with
    /// the same key answers with the first refund as it is now.
    pub async fn price_difference(
        &self,
        claim: PriceClaim,
        idem: Option<&Idempotency>,
    ) -> Result<Refund, ReturnsError> {
        let refund = self
            .pipeline
            .keyed(idem, || self.try_price_difference(&claim, idem))
            .await?;
        self.pay_refund(&refund.id).await?;
        self.refund(Some(&refund.id), None).await
    }

    async fn try_price_difference(
        &self,
        claim: &PriceClaim,
        idem: Option<&Idempotency>,
    ) -> Result<Refund, ReturnsError> {
        let mut cmd = match self.pipeline.begin(PRICE_SCOPE, idem).await? {
            Begun::Replay(remembered) => return self.remembered_refund(&remembered).await,
            Begun::Fresh(cmd) => cmd,
        };
        let now = cmd.now();
        let tz: Tz = claim
            .customer_time_zone
            .parse()
            .map_err(|_| DomainError::invalid("customer_time_zone", "is not an IANA time zone"))?;
        let policies = Policies::new(store::policies(cmd.txn()).await?);
        let policy = policies.for_line(&claim.product_line);
        let (amount, lines) = refund_variants::price_difference(claim, policy, now, tz)?;
        let refund = Refund::open(
            RefundKind::PriceDifference,
            "",
            &claim.order_id,
            amount,
            lines,
            self.refund_safety_net,
            now,
        );
        let (order, sku) = (&claim.order_id, &claim.sku);
        let mut earlier =
            store::claim_price_protection(cmd.txn(), order, sku, &refund.id, false, now).await?;
        if let Some(first) = &earlier {
            let failed = store::get_refund(cmd.txn(), first)
                .await?
                .is_some_and(|r| r.state == RefundState::Failed);
            // A refund the provider refused paid nothing: the line may be claimed again.
            if failed {
                store::claim_price_protection(cmd.txn(), order, sku, &refund.id, true, now).await?;
                earlier = None;
            }
        }
        if let Some(first) = earlier {
            cmd.abandon().await?;
            // A twin with the same key may have claimed the line a moment ago: its answer
            // is this request's answer.
            if let Begun::Replay(remembered) = self.pipeline.begin(PRICE_SCOPE, idem).await? {
                return self.remembered_refund(&remembered).await;
            }
            return Err(DomainError::refused(
                "price_difference_already_refunded",
                format!("order {order} line {sku} has its price-difference refund {first}"),
            )
            .into());
        }
        store::save_refund(cmd.txn(), &refund).await?;
        cmd.reschedule(
            ReturnsDeadline::Refund(refund.id.clone()),
            refund.next_attempt_at,
        );
        tracing::info!(order_id = %order, sku = %sku, refund_id = %refund.id, customer_id = %claim.customer_id, "price difference refund started");
        cmd.commit(&self.pipeline, &Remembered::id(&refund.id))
            .await?;
        Ok(refund)
    }

    async fn remembered_refund(&self, remembered: &Remembered) -> Result<Refund, ReturnsError> {
        let id = remembered_id(remembered)?;
        store::get_refund(self.db(), id)
            .await?
            .ok_or_else(|| not_found("refund", id))
    }

    /// Records a payment attempt of a refund without a return (a price difference), its
    /// row locked so concurrent attempts record one answer.
    pub(super) async fn record_standalone(
        &self,
        refund_id: &str,
        outcome: PaymentOutcome,
    ) -> Result<(), ReturnsError> {
        let mut cmd = self.pipeline.begin_unkeyed("returns.RecordRefund").await?;
        let now = cmd.now();
        let Some(mut refund) = store::get_refund_locked(cmd.txn(), refund_id).await? else {
            cmd.abandon().await?;
            return Ok(());
        };
        if !refund.record(outcome, now) {
            cmd.abandon().await?;
            return Ok(());
        }
        store::save_refund(cmd.txn(), &refund).await?;
        cmd.reschedule(
            ReturnsDeadline::Refund(refund.id.clone()),
            refund.next_attempt_at,
        );
        cmd.publish(
            events::standalone_refund(&refund, now)
                .into_iter()
                .collect(),
        )
        .await?;
        cmd.commit(&self.pipeline, &Remembered::id(&refund.id))
            .await?;
        Ok(())
    }
}
