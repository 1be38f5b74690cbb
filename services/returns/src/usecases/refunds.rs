//! Settling an inspected return (refund, exchange, repair or rejection) and paying its
//! refund: the payment provider is called outside any transaction, keyed by the refund
//! id, and its answer is recorded in a command of its own, so a retry from anywhere (the
//! API, the worker's safety net, a backoff) pays at most once.

use aftersales_runtime::command::Remembered;

use crate::{
    domain::{
        DomainError, RefundState, Resolution,
        eligibility::Policies,
        refund::{self, Refund},
        rma::{Actor, ReturnAggregate, ReturnEvent, new_id},
    },
    error::ReturnsError,
    store,
};

use super::{Changes, ReturnsCore, masked, not_found, save};

impl ReturnsCore {
    /// Settles an inspected return. A refund is created and paid at once; asking again
    /// while it is pending or paid changes nothing. An approved refund-only return whose
    /// refund failed is refunded again this way.
    pub async fn resolve(
        &self,
        id: &str,
        resolution: Resolution,
        reason: &str,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        let reason = &masked(reason);
        let (mut cmd, mut agg) = self.open("returns.ResolveReturn", id).await?;
        let now = cmd.now();
        let mut changes = Changes::default();
        if resolution == Resolution::Refund {
            if let Some(existing) = &agg.rma.refund_id {
                let state = store::get_refund(cmd.txn(), existing)
                    .await?
                    .map(|r| r.state);
                if matches!(state, Some(RefundState::Pending | RefundState::Succeeded)) {
                    cmd.abandon().await?;
                    return Ok(agg);
                }
            }
            if agg.needs_refund_only_refund() {
                changes.refund = self.refund_only_refund(&mut agg, now)?;
            } else {
                let policies = Policies::new(store::policies(cmd.txn()).await?);
                let (amount, lines) = refund::compute(&agg.rma, &policies)?;
                let refund = Refund::start(&agg.rma, amount, lines, self.refund_safety_net, now);
                changes.events =
                    agg.resolve(resolution, reason, Some(refund.id.clone()), actor, now)?;
                changes.refund = Some(refund);
            }
        } else {
            if resolution == Resolution::Repair {
                agg.rma.repair.region_code = Some(self.repair.region_code.clone());
                agg.rma.repair.job_id = Some(new_id());
            }
            changes.events = agg.resolve(resolution, reason, None, actor, now)?;
        }
        let refund_id = changes.refund.as_ref().map(|r| r.id.clone());
        save(&mut cmd, &agg, changes).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&agg.rma.id))
            .await?;
        match refund_id {
            Some(refund_id) => {
                self.pay_refund(&refund_id).await?;
                self.get_return(id).await
            }
            None => Ok(agg),
        }
    }

    /// Tries to pay a pending refund and records the answer. Safe to run any number of
    /// times, concurrently, from any process: the provider dedupes on the refund id and
    /// only a pending refund takes an answer.
    pub async fn pay_refund(&self, refund_id: &str) -> Result<(), ReturnsError> {
        let Some(pending) = store::get_refund(self.db(), refund_id).await? else {
            return Ok(());
        };
        if pending.state != RefundState::Pending {
            return Ok(());
        }
        let outcome = self
            .payments
            .refund(
                pending.idempotency_key(),
                &pending.order_id,
                &pending.amount,
            )
            .await;
        if pending.return_id.is_empty() {
            return self.record_standalone(refund_id, outcome).await;
        }
        let (mut cmd, mut agg) = self
            .open("returns.RecordRefund", &pending.return_id)
            .await?;
        let now = cmd.now();
        let Some(mut refund) = store::get_refund(cmd.txn(), refund_id).await? else {
            cmd.abandon().await?;
            return Ok(());
        };
        if !refund.record(outcome, now) {
            cmd.abandon().await?;
            return Ok(());
        }
        let mut changes = Changes::default();
        match refund.state {
            RefundState::Succeeded => {
                let reference = refund.provider_reference.clone().unwrap_or_default();
                agg.refunded(&reference, now)?;
                changes.events.push(ReturnEvent::RefundSucceeded {
                    refund_id: refund.id.clone(),
                    kind: refund.kind,
                    amount: refund.amount.clone(),
                    reference,
                });
            }
            RefundState::Failed => {
                agg.refund_without_goods_failed(now);
                changes.events.push(ReturnEvent::RefundFailed {
                    refund_id: refund.id.clone(),
                    kind: refund.kind,
                    error: refund.last_error.clone().unwrap_or_default(),
                });
            }
            RefundState::Pending => {
                tracing::warn!(refund_id, attempts = refund.attempts, error = ?refund.last_error, "refund attempt failed; will retry");
            }
        }
        changes.refund = Some(refund);
        save(&mut cmd, &agg, changes).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&agg.rma.id))
            .await?;
        Ok(())
    }

    /// A refund by its id, or the refund of a return.
    pub async fn refund(
        &self,
        refund_id: Option<&str>,
        return_id: Option<&str>,
    ) -> Result<Refund, ReturnsError> {
        let id = match (refund_id, return_id) {
            (Some(id), _) => id.to_owned(),
            (None, Some(return_id)) => self
                .get_return(return_id)
                .await?
                .rma
                .refund_id
                .ok_or_else(|| not_found("refund of return", return_id))?,
            (None, None) => {
                return Err(DomainError::invalid(
                    "refund_id",
                    "refund_id or return_id is required",
                )
                .into());
            }
        };
        store::get_refund(self.db(), &id)
            .await?
            .ok_or_else(|| not_found("refund", &id))
    }
}
