//! What the care service keeps on its deadline queue and what firing it means: a
//! follow-up's due time (an unrecorded follow-up turns overdue, once) and a reopen retry
//! (tickets is asked again to reopen a ticket a follow-up sent back), and the next
//! instant a major incident's clocks act at. The deadline worker
//! claims due members and hands them here in batches; the database is the truth, and
//! [`Deadlines::reconcile`] rebuilds the schedule from it.

use aftersales_deadlines::{
    DeadlineQueue,
    worker::{Deadlines, Due},
};
use aftersales_runtime::{command::Remembered, firing::schedule_all};

use crate::{domain::FollowUpStatus, error::CareError, events, store};

use super::CareCore;

const FIRE_FOLLOW_UPS_SCOPE: &str = "care.FireFollowUps";

aftersales_deadlines::deadline_members! {
    /// A deadline of the care service, as the queue keeps it.
    pub enum CareDeadline {
        /// A follow-up's due time, by the follow-up id.
        FollowUp = "followup:",
        /// The next request to reopen the ticket of a follow-up, by the follow-up id.
        Reopen = "reopen:",
        /// The next instant a major incident's clocks act at, by the incident id.
        Incident = "incident:",
    }
}

impl Deadlines for CareCore {
    type Member = CareDeadline;
    type Error = CareError;

    /// Follow-up due times fire together in one command; reopen retries are asked one at
    /// a time after them.
    async fn fire(&self, batch: &[Due<CareDeadline>]) -> Result<(), CareError> {
        let mut follow_ups = Vec::new();
        let mut reopens = Vec::new();
        for due in batch {
            match &due.member {
                CareDeadline::FollowUp(id) => follow_ups.push(id.clone()),
                CareDeadline::Reopen(id) => reopens.push(id.as_str()),
                CareDeadline::Incident(_) => {}
            }
        }
        self.fire_follow_ups(follow_ups).await?;
        self.fire_incidents(super::incidents::incident_ids(batch))
            .await?;
        // A reopen retry calls the tickets service over gRPC, a network call of unknown
        // length: inside the batch's transaction it would hold the row locks of every
        // follow-up in the batch, and a database connection, for as long as tickets
        // takes. Each is asked on its own instead (a ticket already reopened settles it)
        // and its answer recorded in a short command of its own, see `reopen`.
        for id in reopens {
            self.retry_reopen(id).await?;
        }
        Ok(())
    }

    /// Puts every pending follow-up and unconfirmed reopen back on the schedule; a
    /// reopen is asked again at once.
    async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, CareError> {
        let db = self.db();
        let follow_ups = schedule_all(queue, CareDeadline::FollowUp, |after, limit| async move {
            Ok::<_, CareError>(store::pending_follow_ups(db, &after, limit).await?)
        })
        .await?;
        let now = self.now();
        let reopens = schedule_all(queue, CareDeadline::Reopen, |after, limit| async move {
            let ids = store::unconfirmed_reopens(db, &after, limit).await?;
            Ok::<_, CareError>(ids.into_iter().map(|id| (id, now)).collect())
        })
        .await?;
        let incidents = self.reconcile_incidents(queue).await?;
        Ok(follow_ups + reopens + incidents)
    }
}

impl CareCore {
    /// Fires follow-up due times in one command: the follow-ups are locked in id order
    /// (so concurrent batches cannot deadlock), each one still pending and due turns
    /// overdue once, and one commit covers them all. One fired early (a clock skew) is
    /// only put back on the schedule for its due time; one recorded or gone changes
    /// nothing.
    async fn fire_follow_ups(&self, mut ids: Vec<String>) -> Result<(), CareError> {
        if ids.is_empty() {
            return Ok(());
        }
        ids.sort();
        ids.dedup();
        let mut cmd = self.pipeline.begin_unkeyed(FIRE_FOLLOW_UPS_SCOPE).await?;
        let now = cmd.now();
        // One locked read, one write and one outbox insert per batch, whatever its size.
        let mut follow_ups = store::load_follow_ups(cmd.txn(), &ids, true).await?;
        let lapsed: Vec<bool> = follow_ups.iter_mut().map(|f| f.lapse(now)).collect();
        let mut overdue = Vec::new();
        let mut changed = Vec::new();
        for (follow_up, lapsed) in follow_ups.iter().zip(lapsed) {
            if lapsed {
                overdue.push(events::follow_up_overdue(follow_up, now));
                changed.push(follow_up);
            } else if follow_up.status == FollowUpStatus::Pending {
                cmd.schedule(
                    CareDeadline::FollowUp(follow_up.id.clone()),
                    follow_up.due_at,
                );
            }
        }
        store::save_follow_ups(cmd.txn(), &changed).await?;
        cmd.publish(overdue).await?;
        cmd.commit(&self.pipeline, &Remembered::ids(ids)).await?;
        Ok(())
    }

    /// Asks tickets again for a follow-up whose reopen is still not confirmed.
    async fn retry_reopen(&self, id: &str) -> Result<(), CareError> {
        let Some(follow_up) = store::load_follow_up(self.db(), id, false).await? else {
            return Ok(());
        };
        if follow_up.reopen_pending() {
            self.reopen(&follow_up).await?;
        }
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
            CareDeadline::FollowUp("0193a1b2-follow-up".into()),
            CareDeadline::Reopen("0193a1b2-follow-up".into()),
        ] {
            assert_eq!(CareDeadline::from_text(&member.to_text()), Some(member));
        }
        assert_eq!(
            CareDeadline::FollowUp("f-1".into()).to_text(),
            "followup:f-1",
            "what earlier versions scheduled"
        );
        assert_eq!(CareDeadline::Reopen("f-1".into()).to_text(), "reopen:f-1");
        assert_eq!(
            CareDeadline::from_text("followup:f-1"),
            Some(CareDeadline::FollowUp("f-1".into()))
        );
        assert_eq!(
            CareDeadline::from_text("reopen:f-1"),
            Some(CareDeadline::Reopen("f-1".into()))
        );
    }

    #[test]
    fn unknown_text_is_no_member() {
        for text in [
            "",
            "followup:",
            "reopen:",
            "f-1",
            "follow_up:f-1",
            "FollowUp:f-1",
            "Reopen:f-1",
            "reopen",
            "step:d-1",
        ] {
            assert_eq!(CareDeadline::from_text(text), None, "{text:?}");
        }
    }
}
