//! Compensation on a ticket — cash, a coupon, a gift or an extended warranty — and who may
//! approve it. Each desk role has an approval limit (minor units of the compensation's
//! currency); a request within the requester's limit is approved at once, one above it
//! waits for someone whose limit covers it, and nobody approves their own. Once approved,
//! cash is paid through the payment port (the same retry rule as refunds,
//! [`after_attempt`]); the other kinds are granted, with no payment.
//!
//! It lives in returns because returns owns the payment port and its exactly-once path:
//! the compensation id is the provider's idempotency key, the answer is recorded in a
//! command of its own, and the deadline worker retries what was never recorded.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use aftersales_platform::text_enum;

use super::{
    DomainError, Money,
    refund::{AfterAttempt, PaymentOutcome, after_attempt},
    rma::new_id,
};

text_enum!(
    CompensationKind {
        Cash = "cash",
        Coupon = "coupon",
        Gift = "gift",
        ExtendedWarranty = "extended_warranty",
    }
);

text_enum!(
    CompensationStatus {
        PendingApproval = "pending_approval",
        Approved = "approved",
        Paid = "paid",
        Granted = "granted",
        Rejected = "rejected",
        PaymentFailed = "payment_failed",
    }
);

text_enum!(
    /// The desk roles with an approval limit, least senior first.
    DeskRole {
        Agent = "agent",
        Supervisor = "supervisor",
        Manager = "manager",
    }
);

/// The longest extended warranty granted at once.
pub const MAX_WARRANTY_MONTHS: u32 = 120;

/// How much each desk role may approve, in minor units (the start-up configuration keeps
/// them rising with seniority, so the next level can always approve what waits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalLimits {
    pub agent: i64,
    pub supervisor: i64,
    pub manager: i64,
}

impl Default for ApprovalLimits {
    /// The handbook's "large amounts go to management": 50, 500 and 5000 in major units.
    fn default() -> Self {
        Self {
            agent: 5_000,
            supervisor: 50_000,
            manager: 500_000,
        }
    }
}

/// A desk role and what it may approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authority {
    pub role: DeskRole,
    pub limit: i64,
}

impl ApprovalLimits {
    pub fn limit(&self, role: DeskRole) -> i64 {
        match role {
            DeskRole::Agent => self.agent,
            DeskRole::Supervisor => self.supervisor,
            DeskRole::Manager => self.manager,
        }
    }

    /// The authority of someone holding `roles`: the role with the highest limit (a
    /// manager who is also an agent approves as a manager); `None` without a desk role.
    pub fn authority(&self, roles: &[DeskRole]) -> Option<Authority> {
        roles
            .iter()
            .map(|&role| Authority {
                role,
                limit: self.limit(role),
            })
            .max_by_key(|a| {
                (
                    a.limit,
                    a.role == DeskRole::Manager,
                    a.role != DeskRole::Agent,
                )
            })
    }
}

/// Who requests, approves or rejects: the actor recorded, the verified token's subject
/// (both are checked against the requester, so acting for someone does not open a way
/// round the four-eyes rule), and the authority of the token's roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decider {
    pub actor_id: String,
    pub subject: String,
    pub authority: Option<Authority>,
}

/// A compensation asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCompensation {
    pub ticket_id: String,
    pub customer_id: String,
    pub order_id: Option<String>,
    pub kind: CompensationKind,
    pub amount: Money,
    pub warranty_months: u32,
    /// Masked by the use case before it gets here.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compensation {
    pub id: String,
    pub ticket_id: String,
    pub customer_id: String,
    pub order_id: Option<String>,
    pub kind: CompensationKind,
    pub amount: Money,
    pub warranty_months: u32,
    pub reason: String,
    pub status: CompensationStatus,
    pub requested_by: String,
    pub requested_subject: String,
    pub requested_role: DeskRole,
    pub requester_limit: i64,
    pub decided_by: Option<String>,
    pub decided_role: Option<DeskRole>,
    pub decided_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    pub attempts: u32,
    pub provider_reference: Option<String>,
    pub last_error: Option<String>,
    /// Set while cash is approved and unpaid: when the payment is tried (again).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What happened to a compensation, for its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompensationEvent {
    /// Above the requester's limit: waits for approval.
    Requested,
    Approved,
    Rejected,
    Paid,
    Granted,
    PaymentFailed,
}

/// The rule a refusal names when someone's limit does not cover an amount.
pub const OVER_LIMIT: &str = "compensation_over_approval_limit";

fn over_limit(amount: &Money, authority: Authority) -> DomainError {
    DomainError::refused(
        OVER_LIMIT,
        format!(
            "{} {} is above the {} approval limit of {}",
            amount.minor, amount.currency, authority.role, authority.limit
        ),
    )
}

impl Compensation {
    /// Records a request. Within the requester's limit it is approved at once (cash then
    /// waits for its payment, `safety_net` being when the worker pays it should the
    /// caller's attempt never be recorded; other kinds are granted); above it, it waits for
    /// approval, unless no role could ever approve it.
    pub fn request(
        new: NewCompensation,
        requester: &Decider,
        limits: &ApprovalLimits,
        safety_net: Duration,
        now: DateTime<Utc>,
    ) -> Result<(Self, Vec<CompensationEvent>), DomainError> {
        check(&new)?;
        let authority = requester.authority.ok_or_else(|| {
            DomainError::refused(
                "compensation_needs_a_desk_role",
                "only an agent, supervisor or manager may request compensation",
            )
        })?;
        if new.amount.minor > limits.manager {
            return Err(DomainError::refused(
                "compensation_over_every_limit",
                format!(
                    "{} is above the highest approval limit, the manager's {}",
                    new.amount.minor, limits.manager
                ),
            ));
        }
        let mut compensation = Self {
            id: new_id(),
            ticket_id: new.ticket_id,
            customer_id: new.customer_id,
            order_id: new.order_id,
            kind: new.kind,
            amount: new.amount,
            warranty_months: new.warranty_months,
            reason: new.reason,
            status: CompensationStatus::PendingApproval,
            requested_by: requester.actor_id.clone(),
            requested_subject: requester.subject.clone(),
            requested_role: authority.role,
            requester_limit: authority.limit,
            decided_by: None,
            decided_role: None,
            decided_at: None,
            rejection_reason: None,
            attempts: 0,
            provider_reference: None,
            last_error: None,
            next_attempt_at: None,
            created_at: now,
            updated_at: now,
        };
        if compensation.amount.minor > authority.limit {
            return Ok((compensation, vec![CompensationEvent::Requested]));
        }
        let events = compensation.decide_approved(requester, authority, safety_net, now);
        Ok((compensation, events))
    }

    /// Approves a compensation waiting for approval: the approver's limit must cover it,
    /// and the approver must not be its requester.
    pub fn approve(
        &mut self,
        approver: &Decider,
        safety_net: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<CompensationEvent>, DomainError> {
        self.must_be_pending("approved")?;
        if self.is_requester(approver) {
            return Err(DomainError::refused(
                "compensation_self_approval",
                "the requester cannot approve their own compensation",
            ));
        }
        let authority = self.covering(approver)?;
        Ok(self.decide_approved(approver, authority, safety_net, now))
    }

    /// Rejects a compensation waiting for approval: by someone whose limit covers it, or
    /// by its requester (who withdraws it).
    pub fn reject(
        &mut self,
        decider: &Decider,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<Vec<CompensationEvent>, DomainError> {
        self.must_be_pending("rejected")?;
        let role = if self.is_requester(decider) {
            decider
                .authority
                .map_or(self.requested_role, |authority| authority.role)
        } else {
            self.covering(decider)?.role
        };
        self.status = CompensationStatus::Rejected;
        self.decided(decider, role, now);
        self.rejection_reason = Some(reason);
        Ok(vec![CompensationEvent::Rejected])
    }

    /// Applies a payment attempt's outcome; `None` when it changed nothing (not approved
    /// cash any more: a late or twin answer), else the event it caused, if any.
    pub fn record(
        &mut self,
        outcome: PaymentOutcome,
        now: DateTime<Utc>,
    ) -> Option<Option<CompensationEvent>> {
        if !self.awaits_payment() {
            return None;
        }
        self.attempts += 1;
        self.updated_at = now;
        let event = match after_attempt(outcome, self.attempts, now) {
            AfterAttempt::Paid(reference) => {
                self.status = CompensationStatus::Paid;
                self.provider_reference = Some(reference);
                self.last_error = None;
                self.next_attempt_at = None;
                Some(CompensationEvent::Paid)
            }
            AfterAttempt::RetryAt(at, error) => {
                self.last_error = Some(error);
                self.next_attempt_at = Some(at);
                None
            }
            AfterAttempt::Failed(error) => {
                self.status = CompensationStatus::PaymentFailed;
                self.last_error = Some(error);
                self.next_attempt_at = None;
                Some(CompensationEvent::PaymentFailed)
            }
        };
        Some(event)
    }

    /// Replaces what people wrote (the reason, a rejection's reason) with `marker`: the
    /// customer was anonymised. Ids, kind, amount and decisions stay, so costs still add
    /// up. Doing it again changes nothing.
    pub fn erase_free_text(&mut self, marker: &str) {
        if !self.reason.is_empty() {
            marker.clone_into(&mut self.reason);
        }
        if let Some(reason) = self.rejection_reason.as_mut() {
            marker.clone_into(reason);
        }
    }

    /// Approved cash not paid yet.
    pub fn awaits_payment(&self) -> bool {
        self.kind == CompensationKind::Cash && self.status == CompensationStatus::Approved
    }

    /// The key the provider dedupes on: the compensation's own id, so every attempt to
    /// pay it, from any process, pays at most once.
    pub fn idempotency_key(&self) -> &str {
        &self.id
    }

    fn decide_approved(
        &mut self,
        decider: &Decider,
        authority: Authority,
        safety_net: Duration,
        now: DateTime<Utc>,
    ) -> Vec<CompensationEvent> {
        self.decided(decider, authority.role, now);
        if self.kind == CompensationKind::Cash {
            self.status = CompensationStatus::Approved;
            self.next_attempt_at = Some(now + safety_net);
            vec![CompensationEvent::Approved]
        } else {
            self.status = CompensationStatus::Granted;
            vec![CompensationEvent::Approved, CompensationEvent::Granted]
        }
    }

    fn decided(&mut self, decider: &Decider, role: DeskRole, now: DateTime<Utc>) {
        self.decided_by = Some(decider.actor_id.clone());
        self.decided_role = Some(role);
        self.decided_at = Some(now);
        self.updated_at = now;
    }

    fn must_be_pending(&self, to: &str) -> Result<(), DomainError> {
        if self.status == CompensationStatus::PendingApproval {
            return Ok(());
        }
        Err(DomainError::Precondition(format!(
            "a compensation in status {} cannot be {to}",
            self.status
        )))
    }

    fn is_requester(&self, who: &Decider) -> bool {
        [&who.actor_id, &who.subject]
            .iter()
            .any(|id| **id == self.requested_by || **id == self.requested_subject)
    }

    /// The decider's authority when it covers the amount.
    fn covering(&self, decider: &Decider) -> Result<Authority, DomainError> {
        match decider.authority {
            Some(authority) if authority.limit >= self.amount.minor => Ok(authority),
            Some(authority) => Err(over_limit(&self.amount, authority)),
            None => Err(DomainError::refused(
                OVER_LIMIT,
                "only an agent, supervisor or manager may decide on compensation",
            )),
        }
    }
}

/// What every compensation must be: a positive amount, and months exactly for a warranty.
fn check(new: &NewCompensation) -> Result<(), DomainError> {
    if new.amount.minor <= 0 {
        return Err(DomainError::invalid(
            "amount.minor_units",
            "must be positive",
        ));
    }
    match new.kind {
        CompensationKind::ExtendedWarranty
            if new.warranty_months == 0 || new.warranty_months > MAX_WARRANTY_MONTHS =>
        {
            Err(DomainError::invalid(
                "warranty_months",
                format!("must be between 1 and {MAX_WARRANTY_MONTHS} for an extended warranty"),
            ))
        }
        CompensationKind::ExtendedWarranty => Ok(()),
        _ if new.warranty_months != 0 => Err(DomainError::invalid(
            "warranty_months",
            "is only for an extended warranty",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
