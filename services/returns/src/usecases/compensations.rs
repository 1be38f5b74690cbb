//! Compensation on a ticket: requested, approved or rejected by the desk within the
//! approval limits of their roles, then paid (cash) or granted (coupon, gift, extended
//! warranty).
//!
//! Compensation is kept in returns because returns owns the payment port and its
//! exactly-once path: cash is paid like a refund without a return (see
//! `variants::price_difference`) — the provider is called outside any transaction,
//! keyed by the compensation id, its answer recorded in a command of its own under the
//! compensation's row lock, and the deadline worker's safety net
//! (`ReturnsDeadline::Compensation`) retries whatever was never recorded. So a retry from
//! the API, the worker or after a crash pays at most once. Requests, approvals and
//! rejections are keyed commands and audited (see `api::permissions::AUDITED`).

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::{Begun, Remembered};

use crate::{
    domain::compensation::{
        Compensation, CompensationEvent, CompensationStatus, Decider, DeskRole, NewCompensation,
    },
    error::ReturnsError,
    events, store,
};

use super::{Cmd, ReturnsCore, ReturnsDeadline, masked, not_found, remembered_id};

const REQUEST_SCOPE: &str = "returns.RequestCompensation";
const APPROVE_SCOPE: &str = "returns.ApproveCompensation";
const REJECT_SCOPE: &str = "returns.RejectCompensation";

/// Who calls, as the verified token and the recorded actor say: the actor's id, the
/// token's subject, and the token's desk roles (never a role a request body names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskCaller {
    pub actor_id: String,
    pub subject: String,
    pub roles: Vec<DeskRole>,
}

/// Which compensations a listing shows; `None` does not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompensationFilter {
    pub ticket_id: Option<String>,
    pub status: Option<CompensationStatus>,
}

/// A decision on a waiting compensation.
enum Decision {
    Approve,
    Reject(String),
}

impl ReturnsCore {
    fn decider(&self, caller: &DeskCaller) -> Decider {
        Decider {
            actor_id: caller.actor_id.clone(),
            subject: caller.subject.clone(),
            authority: self.compensation_limits.authority(&caller.roles),
        }
    }

    /// Records a compensation; approved at once within the caller's limit (cash is then
    /// paid right after the commit), else left waiting for approval. A retry with the same
    /// key answers with the first compensation as it is now.
    pub async fn request_compensation(
        &self,
        new: NewCompensation,
        caller: &DeskCaller,
        idem: Option<&Idempotency>,
    ) -> Result<Compensation, ReturnsError> {
        let new = NewCompensation {
            reason: masked(&new.reason),
            ..new
        };
        let requester = self.decider(caller);
        let id = self
            .pipeline
            .keyed(idem, || self.try_request(&new, &requester, idem))
            .await?;
        self.pay_then_read_compensation(&id).await
    }

    async fn try_request(
        &self,
        new: &NewCompensation,
        requester: &Decider,
        idem: Option<&Idempotency>,
    ) -> Result<String, ReturnsError> {
        let mut cmd = match self.pipeline.begin(REQUEST_SCOPE, idem).await? {
            Begun::Replay(remembered) => return remembered_id(&remembered).map(str::to_owned),
            Begun::Fresh(cmd) => cmd,
        };
        let now = cmd.now();
        let (compensation, events) = Compensation::request(
            new.clone(),
            requester,
            &self.compensation_limits,
            self.refund_safety_net,
            now,
        )?;
        tracing::info!(compensation_id = %compensation.id, ticket_id = %compensation.ticket_id, status = %compensation.status, "compensation requested");
        save(&mut cmd, &compensation, &events).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&compensation.id))
            .await?;
        Ok(compensation.id)
    }

    /// Approves a waiting compensation (cash is paid right after the commit).
    pub async fn approve_compensation(
        &self,
        id: &str,
        caller: &DeskCaller,
        idem: Option<&Idempotency>,
    ) -> Result<Compensation, ReturnsError> {
        let approver = self.decider(caller);
        self.pipeline
            .keyed(idem, || {
                self.try_decide(APPROVE_SCOPE, id, &approver, Decision::Approve, idem)
            })
            .await?;
        self.pay_then_read_compensation(id).await
    }

    /// Rejects a waiting compensation (or its requester withdraws it).
    pub async fn reject_compensation(
        &self,
        id: &str,
        caller: &DeskCaller,
        reason: &str,
        idem: Option<&Idempotency>,
    ) -> Result<Compensation, ReturnsError> {
        let decider = self.decider(caller);
        let reason = masked(reason);
        self.pipeline
            .keyed(idem, || {
                let decision = Decision::Reject(reason.clone());
                self.try_decide(REJECT_SCOPE, id, &decider, decision, idem)
            })
            .await?;
        self.get_compensation(id).await
    }

    async fn try_decide(
        &self,
        scope: &'static str,
        id: &str,
        decider: &Decider,
        decision: Decision,
        idem: Option<&Idempotency>,
    ) -> Result<String, ReturnsError> {
        let mut cmd = match self.pipeline.begin(scope, idem).await? {
            Begun::Replay(remembered) => return remembered_id(&remembered).map(str::to_owned),
            Begun::Fresh(cmd) => cmd,
        };
        let now = cmd.now();
        let Some(mut compensation) = store::get_compensation(cmd.txn(), id, true).await? else {
            cmd.abandon().await?;
            return Err(not_found("compensation", id));
        };
        let decided = match decision {
            Decision::Approve => compensation.approve(decider, self.refund_safety_net, now),
            Decision::Reject(reason) => compensation.reject(decider, reason, now),
        };
        let events = match decided {
            Ok(events) => events,
            Err(refused) => {
                cmd.abandon().await?;
                // A twin with the same key may have decided it a moment ago (this command
                // waited on its lock): its answer is this request's answer.
                if idem.is_some()
                    && let Begun::Replay(remembered) = self.pipeline.begin(scope, idem).await?
                {
                    return remembered_id(&remembered).map(str::to_owned);
                }
                return Err(refused.into());
            }
        };
        tracing::info!(compensation_id = %id, status = %compensation.status, "compensation decided");
        save(&mut cmd, &compensation, &events).await?;
        cmd.commit(&self.pipeline, &Remembered::id(id)).await?;
        Ok(id.to_owned())
    }

    /// Pays the compensation if it is approved cash, then reads it as it is.
    async fn pay_then_read_compensation(&self, id: &str) -> Result<Compensation, ReturnsError> {
        self.pay_compensation(id).await?;
        self.get_compensation(id).await
    }

    /// Tries to pay approved cash compensation and records the answer. Safe to run any
    /// number of times, concurrently, from any process: the provider dedupes on the
    /// compensation id, and the answer is recorded under the row's lock by a compensation
    /// still awaiting payment, once.
    pub async fn pay_compensation(&self, id: &str) -> Result<(), ReturnsError> {
        let Some(pending) = store::get_compensation(self.db(), id, false).await? else {
            return Ok(());
        };
        if !pending.awaits_payment() {
            return Ok(());
        }
        let outcome = self
            .payments
            .compensate(
                pending.idempotency_key(),
                &pending.customer_id,
                pending.order_id.as_deref(),
                &pending.amount,
            )
            .await;
        let mut cmd = self
            .pipeline
            .begin_unkeyed("returns.RecordCompensationPayment")
            .await?;
        let now = cmd.now();
        let Some(mut compensation) = store::get_compensation(cmd.txn(), id, true).await? else {
            cmd.abandon().await?;
            return Ok(());
        };
        let Some(event) = compensation.record(outcome, now) else {
            cmd.abandon().await?;
            return Ok(());
        };
        if compensation.status == CompensationStatus::Approved {
            tracing::warn!(compensation_id = id, attempts = compensation.attempts, error = ?compensation.last_error, "compensation payment failed; will retry");
        }
        save(&mut cmd, &compensation, &Vec::from_iter(event)).await?;
        cmd.commit(&self.pipeline, &Remembered::id(id)).await?;
        Ok(())
    }

    pub async fn get_compensation(&self, id: &str) -> Result<Compensation, ReturnsError> {
        store::get_compensation(self.db(), id, false)
            .await?
            .ok_or_else(|| not_found("compensation", id))
    }

    /// A page of compensations, newest first, and the cursor of the next page.
    pub async fn list_compensations(
        &self,
        filter: &CompensationFilter,
        cursor: Option<&str>,
        size: u64,
    ) -> Result<(Vec<Compensation>, Option<String>), ReturnsError> {
        let mut page = store::list_compensations(
            self.db(),
            filter.ticket_id.as_deref(),
            filter.status,
            cursor,
            size + 1,
        )
        .await?;
        let next = (page.len() as u64 > size).then(|| {
            page.truncate(size as usize);
            page.last().map(|c| c.id.clone())
        });
        Ok((page, next.flatten()))
    }
}

/// Writes a compensation with its events, and has its payment scheduled (or dropped)
/// once the command commits.
async fn save(
    cmd: &mut Cmd,
    compensation: &Compensation,
    changes: &[CompensationEvent],
) -> Result<(), ReturnsError> {
    store::save_compensation(cmd.txn(), compensation).await?;
    cmd.reschedule(
        ReturnsDeadline::Compensation(compensation.id.clone()),
        compensation.next_attempt_at,
    );
    cmd.publish(events::compensation(compensation, changes, cmd.now()))
        .await?;
    Ok(())
}
