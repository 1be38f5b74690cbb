//! What the returns service keeps on its deadline queue and what firing it means: step
//! deadlines (a step not done in time makes the return overdue, once), refund retries
//! (a pending refund is tried again) and cash compensation retries (likewise). The deadline worker claims due members and hands
//! them here in batches; the database is the truth, and [`Deadlines::reconcile`] rebuilds
//! the schedule from it.

use std::collections::HashMap;

use aftersales_deadlines::{
    DeadlineQueue,
    worker::{Deadlines, Due},
};
use aftersales_runtime::{command::Remembered, firing::schedule_all};

use crate::{domain::rma::ReturnEvent, error::ReturnsError, events, store};

use super::{ReturnsCore, reschedule_steps};

aftersales_deadlines::deadline_members! {
    /// A deadline of the returns service, as the queue keeps it.
    pub enum ReturnsDeadline {
        /// A step deadline, by its id.
        Step = "step:",
        /// A refund's next payment attempt, by the refund id.
        Refund = "refund:",
        /// Approved cash compensation's next payment attempt, by the compensation id.
        Compensation = "compensation:",
    }
}

impl Deadlines for ReturnsCore {
    type Member = ReturnsDeadline;
    type Error = ReturnsError;

    /// Step deadlines fire together in one command; refund retries are paid one at a
    /// time after them.
    async fn fire(&self, batch: &[Due<ReturnsDeadline>]) -> Result<(), ReturnsError> {
        let mut steps = Vec::new();
        let mut refunds = Vec::new();
        let mut compensations = Vec::new();
        for due in batch {
            match &due.member {
                ReturnsDeadline::Step(id) => steps.push(id.clone()),
                ReturnsDeadline::Refund(id) => refunds.push(id.as_str()),
                ReturnsDeadline::Compensation(id) => compensations.push(id.as_str()),
            }
        }
        self.fire_steps(&steps).await?;
        // A refund retry calls the payment provider, a network call of unknown length:
        // inside the batch's transaction it would hold the row locks of every return in
        // the batch, and a database connection, for as long as the provider takes. Each
        // refund is paid on its own instead (the provider dedupes on the refund id) and
        // its answer recorded in a short command of its own, see `pay_refund`.
        for refund_id in refunds {
            self.pay_refund(refund_id).await?;
        }
        // Cash compensation is paid the same way, for the same reason.
        for compensation_id in compensations {
            self.pay_compensation(compensation_id).await?;
        }
        Ok(())
    }

    async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, ReturnsError> {
        let db = self.db();
        let steps = schedule_all(queue, ReturnsDeadline::Step, |after, limit| async move {
            Ok::<_, ReturnsError>(store::pending_steps(db, &after, limit).await?)
        })
        .await?;
        let refunds = schedule_all(queue, ReturnsDeadline::Refund, |after, limit| async move {
            Ok::<_, ReturnsError>(store::pending_refunds(db, &after, limit).await?)
        })
        .await?;
        let compensations = schedule_all(
            queue,
            ReturnsDeadline::Compensation,
            |after, limit| async move {
                Ok::<_, ReturnsError>(store::pending_compensations(db, &after, limit).await?)
            },
        )
        .await?;
        Ok(steps + refunds + compensations)
    }
}

impl ReturnsCore {
    /// Fires step deadlines in one command: their returns are loaded and locked together,
    /// in id order (so concurrent batches cannot deadlock), each due deadline is missed
    /// once, the changed returns are saved together with one outbox insert, and one
    /// commit covers them all. A deadline that is not due yet is only put back on the
    /// schedule; one already settled or gone changes nothing. A batch costs the same few
    /// statements whatever its size: at catch-up, per-return round trips were the cost.
    async fn fire_steps(&self, deadline_ids: &[String]) -> Result<(), ReturnsError> {
        if deadline_ids.is_empty() {
            return Ok(());
        }
        let mut cmd = self
            .pipeline
            .begin_unkeyed("returns.FireStepDeadlines")
            .await?;
        let now = cmd.now();
        let mut owners = store::deadline_owners(cmd.txn(), deadline_ids).await?;
        owners.sort();
        let mut due_of: HashMap<&str, Vec<&str>> = HashMap::new();
        for (return_id, deadline_id) in &owners {
            due_of.entry(return_id).or_default().push(deadline_id);
        }
        let mut return_ids: Vec<String> = due_of.keys().map(|id| (*id).to_owned()).collect();
        return_ids.sort();
        let mut aggs = store::load_aggregates(cmd.txn(), &return_ids, true).await?;
        let mut changed = Vec::new();
        let mut outbox = Vec::new();
        for agg in &mut aggs {
            let due = due_of.remove(agg.rma.id.as_str()).unwrap_or_default();
            let events: Vec<ReturnEvent> = due
                .iter()
                .flat_map(|deadline_id| agg.fire_deadline(deadline_id, now))
                .collect();
            reschedule_steps(&mut cmd, agg);
            if events.is_empty() {
                continue;
            }
            // A missed step moves no stock and makes no refund: what `save` writes
            // besides the return and its events is empty here.
            for event in &events {
                if matches!(event, ReturnEvent::StepOverdue { .. }) {
                    cmd.breached();
                }
            }
            outbox.extend(events::encode(agg, &events, now));
            changed.push(&*agg);
        }
        store::save_aggregates(cmd.txn(), &changed).await?;
        cmd.publish(outbox).await?;
        cmd.commit(&self.pipeline, &Remembered::ids(deadline_ids))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aftersales_deadlines::worker::Member;

    use super::*;

    #[test]
    fn members_keep_the_text_forms_already_on_the_queue() {
        for member in [
            ReturnsDeadline::Step("0193a1b2-step".into()),
            ReturnsDeadline::Refund("0193a1b2-refund".into()),
            ReturnsDeadline::Compensation("0193a1b2-comp".into()),
        ] {
            assert_eq!(ReturnsDeadline::from_text(&member.to_text()), Some(member));
        }
        assert_eq!(
            ReturnsDeadline::Step("d-1".into()).to_text(),
            "step:d-1",
            "what earlier versions scheduled"
        );
        assert_eq!(
            ReturnsDeadline::Refund("r-1".into()).to_text(),
            "refund:r-1"
        );
        assert_eq!(
            ReturnsDeadline::from_text("refund:r-1"),
            Some(ReturnsDeadline::Refund("r-1".into()))
        );
    }

    #[test]
    fn unknown_text_is_no_member() {
        for text in [
            "",
            "step:",
            "refund:",
            "clock-1",
            "steps:d-1",
            "Step:d-1",
            "refund",
        ] {
            assert_eq!(ReturnsDeadline::from_text(text), None, "{text:?}");
        }
    }
}
