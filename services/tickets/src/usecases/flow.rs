//! The complaint flow's commands (record, propose and decide a solution, schedule the
//! remedy), each keyed and judged by the policy version the ticket has, so its milestone
//! clocks are met or started by the domain's rules (`domain::ticket::flow`).

use aftersales_platform::idempotency::Idempotency;
use chrono::{DateTime, Utc};

use crate::{
    domain::{
        Actor,
        ticket::{QualityJudgement, SolutionKind, Ticket},
    },
    error::TicketsError,
};

use super::{Audit, PolicyChoice, TicketsCore};

impl TicketsCore {
    /// Step 1: the complaint is recorded with the desk's quality judgement.
    pub async fn record_complaint(
        &self,
        ticket_id: &str,
        quality: QualityJudgement,
        actor: &Actor,
        idem: Option<&Idempotency>,
    ) -> Result<Ticket, TicketsError> {
        self.keyed_command(
            "tickets.RecordComplaint",
            ticket_id,
            PolicyChoice::Kept,
            idem,
            || Audit::new(actor, "record_complaint", quality.as_str()),
            |agg, j, now| agg.record_complaint(quality, &j.schedules, now),
        )
        .await
    }

    /// Step 3: a solution is proposed to the customer.
    pub async fn propose_solution(
        &self,
        ticket_id: &str,
        kind: SolutionKind,
        actor: &Actor,
        idem: Option<&Idempotency>,
    ) -> Result<Ticket, TicketsError> {
        self.keyed_command(
            "tickets.ProposeSolution",
            ticket_id,
            PolicyChoice::Kept,
            idem,
            || Audit::new(actor, "propose_solution", kind.as_str()),
            |agg, _, now| agg.propose_solution(kind, now),
        )
        .await
    }

    /// The customer's decision on the proposed solution.
    pub async fn decide_solution(
        &self,
        ticket_id: &str,
        accepted: bool,
        actor: &Actor,
        idem: Option<&Idempotency>,
    ) -> Result<Ticket, TicketsError> {
        let decision = if accepted { "accepted" } else { "rejected" };
        self.keyed_command(
            "tickets.DecideSolution",
            ticket_id,
            PolicyChoice::Kept,
            idem,
            || Audit::new(actor, "decide_solution", decision),
            |agg, j, now| agg.decide_solution(accepted, &j.policy, &j.schedules, now),
        )
        .await
    }

    /// The agreed remedy is scheduled.
    pub async fn schedule_remedy(
        &self,
        ticket_id: &str,
        reference: Option<String>,
        planned_for: Option<DateTime<Utc>>,
        actor: &Actor,
        idem: Option<&Idempotency>,
    ) -> Result<Ticket, TicketsError> {
        let detail = reference.clone().unwrap_or_default();
        self.keyed_command(
            "tickets.ScheduleRemedy",
            ticket_id,
            PolicyChoice::Kept,
            idem,
            || Audit::new(actor, "schedule_remedy", detail.clone()),
            |agg, j, now| agg.schedule_remedy(reference.clone(), planned_for, &j.schedules, now),
        )
        .await
    }
}
