//! Handling a ticket: status changes and reopening, escalation (also when
//! another service's event asks for it, inside the consumer's transaction), and severity
//! and complexity changes, which match the ticket to the current policy again (one path
//! for both: [`Refact`], then the domain's re-match of the clocks). Every reason is masked
//! before the ticket's history keeps it.

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::Nested;

use crate::{
    domain::{Actor, Complexity, Level, Severity, Status, policy::TicketFacts, ticket::Ticket},
    error::TicketsError,
};

use super::{Audit, PolicyChoice, TicketsCore, TicketsDeadline, masked};

const SET_COMPLEXITY_SCOPE: &str = "tickets.SetComplexity";

/// A change of the facts a ticket's policy is matched on.
#[derive(Debug, Clone, Copy)]
pub(super) enum Refact {
    Severity(Severity),
    Complexity(Complexity),
}

impl Refact {
    /// `facts` with this change made.
    pub(super) fn applied_to(self, facts: TicketFacts) -> TicketFacts {
        match self {
            Refact::Severity(severity) => TicketFacts { severity, ..facts },
            Refact::Complexity(complexity) => TicketFacts {
                complexity,
                ..facts
            },
        }
    }
}

impl TicketsCore {
    pub async fn change_status(
        &self,
        ticket_id: &str,
        to: Status,
        reason: &str,
        actor: &Actor,
    ) -> Result<Ticket, TicketsError> {
        let reason = &masked(reason);
        let audit = Audit::new(actor, "change_status", format!("{to}: {reason}"));
        self.command(
            "tickets.ChangeStatus",
            ticket_id,
            PolicyChoice::Kept,
            audit,
            |agg, j, now| agg.change_status(to, reason, &j.policy, &j.schedules, now),
        )
        .await
    }

    pub async fn reopen(
        &self,
        ticket_id: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<Ticket, TicketsError> {
        let reason = &masked(reason);
        let audit = Audit::new(actor, "reopen", reason.to_owned());
        self.command(
            "tickets.ReopenTicket",
            ticket_id,
            PolicyChoice::Kept,
            audit,
            |agg, j, now| agg.reopen(reason, &j.policy, &j.schedules, now),
        )
        .await
    }

    /// Escalates to `to`, or one level up.
    pub async fn escalate(
        &self,
        ticket_id: &str,
        to: Option<Level>,
        reason: &str,
        actor: &Actor,
    ) -> Result<Ticket, TicketsError> {
        let reason = &masked(reason);
        self.command(
            "tickets.Escalate",
            ticket_id,
            PolicyChoice::Kept,
            escalation(actor, reason),
            |agg, _, now| agg.escalate(to, reason, now),
        )
        .await
    }

    /// [`Self::escalate`] inside a transaction the caller owns and commits, such as an
    /// event consumer's, which records the event processed in the same transaction:
    /// opening another would wait for the connection the caller holds (on SQLite, the
    /// pool's only one). The caller runs the effects of `cmd` with
    /// [`aftersales_runtime::command::Pipeline::after_commit`] once it has committed.
    pub async fn escalate_in(
        &self,
        cmd: &mut Nested<'_, TicketsDeadline>,
        ticket_id: &str,
        to: Option<Level>,
        reason: &str,
        actor: &Actor,
    ) -> Result<Ticket, TicketsError> {
        let reason = &masked(reason);
        let agg = self
            .change(
                cmd,
                ticket_id,
                PolicyChoice::Kept,
                escalation(actor, reason),
                |agg, _, now| agg.escalate(to, reason, now),
            )
            .await?;
        Ok(agg.ticket)
    }

    /// A new severity: the ticket is matched to the current policies again.
    pub async fn set_severity(
        &self,
        ticket_id: &str,
        severity: Severity,
        reason: &str,
        actor: &Actor,
    ) -> Result<Ticket, TicketsError> {
        let reason = &masked(reason);
        let audit = Audit::new(actor, "set_severity", format!("{severity}: {reason}"));
        self.command(
            "tickets.SetSeverity",
            ticket_id,
            PolicyChoice::Rematch(Refact::Severity(severity)),
            audit,
            |agg, j, now| agg.set_severity(severity, reason, &j.policy, &j.schedules, now),
        )
        .await
    }
}

impl TicketsCore {
    /// A new complexity (keyed by the caller's idempotency key): the ticket is matched to
    /// the current policies again, as for a new severity. A retry answers with the ticket
    /// as it is now and changes nothing.
    pub async fn set_complexity(
        &self,
        ticket_id: &str,
        complexity: Complexity,
        reason: &str,
        actor: &Actor,
        idem: Option<&Idempotency>,
    ) -> Result<Ticket, TicketsError> {
        let reason = &masked(reason);
        self.keyed_command(
            SET_COMPLEXITY_SCOPE,
            ticket_id,
            PolicyChoice::Rematch(Refact::Complexity(complexity)),
            idem,
            || Audit::new(actor, "set_complexity", format!("{complexity}: {reason}")),
            |agg, j, now| agg.set_complexity(complexity, reason, &j.policy, &j.schedules, now),
        )
        .await
    }
}

fn escalation<'a>(actor: &'a Actor, reason: &str) -> Audit<'a> {
    Audit::new(actor, "escalate", reason.to_owned())
}
