//! What the tickets service keeps on its deadline queue and what firing it means: an SLA
//! clock's next instant (a warning, or a breach that may escalate the ticket, once per
//! cycle), a shift's end (its open work handed over, see `routing`), and a reassignment a
//! warning threshold asked for (routed in routing's lock order, see `routing`). The deadline worker claims due members and hands them here in batches; the
//! database is the truth, and [`Deadlines::reconcile`] rebuilds the schedule from it.
//! Also the SLA status read, the ticket and its clocks as one snapshot.

use std::collections::HashMap;

use aftersales_deadlines::{
    DeadlineQueue,
    worker::{Deadlines, Due, Member},
};
use aftersales_runtime::{command::Remembered, firing::schedule_all};
use sea_orm::{AccessMode, DbBackend, IsolationLevel, TransactionTrait};

use crate::{
    domain::{
        Actor, activity,
        clock::SlaClock,
        ticket::{Ticket, TicketAggregate, TicketEvent},
    },
    error::TicketsError,
    store,
};

use super::{Audit, TicketsCore, not_found, record_all, reschedule};

const FIRE_SCOPE: &str = "tickets.FireClocks";

/// A deadline of the tickets service, as the queue keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TicketsDeadline {
    /// An SLA clock's next warning or breach, by the clock id.
    Clock(String),
    /// A shift's end, when its open work is handed over, by the shift id.
    ShiftEnd(String),
    /// A reassignment a warning threshold asked for, by the ticket id.
    Reassign(String),
}

/// The text form of a shift's end: `shift-end:<shift id>`.
const SHIFT_END: &str = "shift-end:";
/// The text form of a reassignment: `reassign:<ticket id>`.
const REASSIGN: &str = "reassign:";

/// A clock's text form is its bare id: released versions scheduled that, so it never
/// changes. Clock ids are UUIDs; text with a `:` is a prefixed member (another service's
/// form, or a variant added later) and no clock.
impl Member for TicketsDeadline {
    fn to_text(&self) -> String {
        match self {
            Self::Clock(id) => id.clone(),
            Self::ShiftEnd(id) => format!("{SHIFT_END}{id}"),
            Self::Reassign(id) => format!("{REASSIGN}{id}"),
        }
    }

    fn from_text(text: &str) -> Option<Self> {
        if let Some(id) = text.strip_prefix(SHIFT_END) {
            return (!id.is_empty()).then(|| Self::ShiftEnd(id.to_owned()));
        }
        if let Some(id) = text.strip_prefix(REASSIGN) {
            return (!id.is_empty()).then(|| Self::Reassign(id.to_owned()));
        }
        (!text.is_empty() && !text.contains(':')).then(|| Self::Clock(text.to_owned()))
    }
}

impl Deadlines for TicketsCore {
    type Member = TicketsDeadline;
    type Error = TicketsError;

    /// Clocks fire together in one command; each shift's end and each reassignment in
    /// one of its own.
    async fn fire(&self, batch: &[Due<TicketsDeadline>]) -> Result<(), TicketsError> {
        let mut clocks = Vec::with_capacity(batch.len());
        let mut shift_ends = Vec::new();
        let mut reassignments = Vec::new();
        for due in batch {
            match &due.member {
                TicketsDeadline::Clock(id) => clocks.push(id.clone()),
                TicketsDeadline::ShiftEnd(id) => shift_ends.push(id.as_str()),
                TicketsDeadline::Reassign(id) => reassignments.push(id.as_str()),
            }
        }
        self.fire_clocks(&clocks).await?;
        for shift_id in shift_ends {
            self.end_shift(shift_id).await?;
        }
        for ticket_id in reassignments {
            self.reassign(ticket_id).await?;
        }
        Ok(())
    }

    /// Puts every clock that can still fire, and every shift end not handled, back on the
    /// schedule.
    async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, TicketsError> {
        let db = self.db();
        let clocks = schedule_all(queue, TicketsDeadline::Clock, |after, limit| async move {
            Ok::<_, TicketsError>(store::pending_fire_times(db, &after, limit).await?)
        })
        .await?;
        let shift_ends = schedule_all(
            queue,
            TicketsDeadline::ShiftEnd,
            |after, limit| async move {
                Ok::<_, TicketsError>(store::pending_shift_ends(db, &after, limit).await?)
            },
        )
        .await?;
        let reassignments = schedule_all(
            queue,
            TicketsDeadline::Reassign,
            |after, limit| async move {
                Ok::<_, TicketsError>(store::pending_reassignments(db, &after, limit).await?)
            },
        )
        .await?;
        Ok(clocks + shift_ends + reassignments)
    }
}

impl TicketsCore {
    /// Fires a claimed batch of clocks in one command: their tickets are locked in id
    /// order (so concurrent batches cannot deadlock), each due clock warns or breaches
    /// once, and one commit covers them all. Idempotent: a clock already warned or
    /// breached does nothing, one not due yet is only put back on the schedule, one that
    /// is gone is left out.
    async fn fire_clocks(&self, clock_ids: &[String]) -> Result<(), TicketsError> {
        if clock_ids.is_empty() {
            return Ok(());
        }
        let mut cmd = self.pipeline.begin_unkeyed(FIRE_SCOPE).await?;
        let now = cmd.now();
        let mut by_ticket: Vec<(String, String)> = store::clock_ticket_ids(cmd.txn(), clock_ids)
            .await?
            .into_iter()
            .map(|(clock, ticket)| (ticket, clock))
            .collect();
        by_ticket.sort();
        let mut due_of: HashMap<&str, Vec<&str>> = HashMap::new();
        for (ticket_id, clock_id) in &by_ticket {
            due_of.entry(ticket_id).or_default().push(clock_id);
        }
        let mut ticket_ids: Vec<String> = due_of.keys().map(|id| (*id).to_owned()).collect();
        ticket_ids.sort();
        // One locked read and a few bulk writes per batch, whatever its size: at catch-up,
        // per-ticket round trips were the cost.
        let mut aggs = store::load_aggregates(cmd.txn(), &ticket_ids, true).await?;
        let mut policies = Vec::with_capacity(aggs.len());
        for agg in &aggs {
            policies.push(self.policy_of(cmd.txn(), &agg.ticket).await?);
        }
        // The calendars of every clock and policy of the batch, read once.
        let schedules = self
            .batch_schedules(cmd.txn(), &policies, aggs.iter().flat_map(|a| &a.clocks))
            .await?;
        let mut fired = Vec::new();
        for (agg, policy) in aggs.iter_mut().zip(&policies) {
            let due = due_of.remove(agg.ticket.id.as_str()).unwrap_or_default();
            let before = agg.ticket.clone();
            let events: Vec<TicketEvent> = due
                .iter()
                .flat_map(|clock_id| agg.fire_clock(clock_id, policy, &schedules, now))
                .collect();
            if events.is_empty() {
                reschedule(&mut cmd, agg);
                continue;
            }
            for event in &events {
                if let TicketEvent::SlaBreached { clock } = event {
                    let late_ms = (now - clock.due_at).num_milliseconds();
                    tracing::info!(ticket_id = %agg.ticket.id, clock_id = %clock.id, kind = %clock.kind, late_ms, "SLA breached");
                }
            }
            let changes = activity::changes(&before, &agg.ticket);
            fired.push((&*agg, events, due.join(","), changes));
        }
        let changed: Vec<&TicketAggregate> = fired.iter().map(|(agg, ..)| *agg).collect();
        store::save_aggregates(cmd.txn(), &changed).await?;
        let system = Actor::system("tickets");
        let changes = fired
            .iter()
            .map(|(agg, events, detail, changes)| {
                let audit = Audit {
                    changes: changes.clone(),
                    ..Audit::new(&system, "sla", detail.clone())
                };
                (*agg, events.as_slice(), audit)
            })
            .collect();
        record_all(&mut cmd, changes).await?;
        cmd.commit(&self.pipeline, &Remembered::ids(clock_ids.iter().cloned()))
            .await?;
        Ok(())
    }

    /// A ticket and its clocks, read in one snapshot so a breach committed between the
    /// two reads cannot show a breached clock on a ticket that is not.
    pub async fn sla_status(
        &self,
        ticket_id: &str,
    ) -> Result<(Ticket, Vec<SlaClock>), TicketsError> {
        let db = self.db();
        let txn = match db.get_database_backend() {
            DbBackend::Postgres => {
                db.begin_with_config(
                    Some(IsolationLevel::RepeatableRead),
                    Some(AccessMode::ReadOnly),
                )
                .await?
            }
            _ => db.begin().await?,
        };
        let agg = store::load_aggregate(&txn, ticket_id, false)
            .await?
            .ok_or_else(|| not_found("ticket", ticket_id))?;
        txn.commit().await?;
        Ok((agg.ticket, agg.clocks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_keeps_the_bare_id_already_on_the_queue() {
        let id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        let member = TicketsDeadline::Clock(id.into());
        assert_eq!(member.to_text(), id, "what earlier versions scheduled");
        assert_eq!(TicketsDeadline::from_text(id), Some(member.clone()));
        assert_eq!(TicketsDeadline::from_text(&member.to_text()), Some(member));
    }

    #[test]
    fn a_shift_end_has_a_prefixed_form_of_its_own() {
        let member = TicketsDeadline::ShiftEnd("night:2030-01-07".into());
        assert_eq!(member.to_text(), "shift-end:night:2030-01-07");
        assert_eq!(TicketsDeadline::from_text(&member.to_text()), Some(member));
        assert_eq!(TicketsDeadline::from_text("shift-end:"), None);
    }

    #[test]
    fn a_reassignment_has_a_prefixed_form_of_its_own() {
        let member = TicketsDeadline::Reassign("t-1".into());
        assert_eq!(member.to_text(), "reassign:t-1");
        assert_eq!(TicketsDeadline::from_text(&member.to_text()), Some(member));
        assert_eq!(TicketsDeadline::from_text("reassign:"), None);
    }

    #[test]
    fn empty_or_prefixed_text_is_no_clock() {
        for text in ["", "step:d-1", "offer:o-1", "clock:c-1", ":"] {
            assert_eq!(TicketsDeadline::from_text(text), None, "{text:?}");
        }
    }
}
