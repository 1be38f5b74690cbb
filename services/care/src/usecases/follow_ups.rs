//! Follow-up visits after a resolution: listing and reading them, and recording one. An
//! unsolved or unsatisfied customer gets the ticket reopened: the tickets service is
//! asked after the record's commit, outside any transaction, and its answer recorded in
//! a short command of its own; until tickets confirms, the deadline worker asks again.

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::{Begun, Remembered};
use chrono::Duration;

use crate::{
    domain::{
        TimelineKind,
        followup::{FollowUp, Outcome},
        listing::FollowUpFilter,
        records::TimelineEntry,
    },
    error::{CareError, not_found},
    events,
    ports::Reopen,
    store,
};

use super::{CareCore, CareDeadline, paged, replayed};

const RECORD_FOLLOW_UP_SCOPE: &str = "care.RecordFollowUp";
const RECORD_REOPEN_SCOPE: &str = "care.RecordTicketReopen";

/// How long to wait before asking tickets again after a failed reopen.
pub(super) const REOPEN_RETRY: Duration = Duration::seconds(15);

impl CareCore {
    pub async fn list_follow_ups(
        &self,
        filter: &FollowUpFilter,
        before: Option<&str>,
        size: u64,
    ) -> Result<(Vec<FollowUp>, Option<String>), CareError> {
        let page = store::list_follow_ups(self.db(), filter, before, size + 1).await?;
        Ok(paged(page, size, |f| f.id.clone()))
    }

    pub async fn get_follow_up(&self, id: &str) -> Result<FollowUp, CareError> {
        store::load_follow_up(self.db(), id, false)
            .await?
            .ok_or_else(|| not_found("follow-up", id))
    }

    /// Records the visit; an unsolved or unsatisfied customer gets the ticket reopened.
    /// A retry with the same key answers with the follow-up as it is now (and asks
    /// tickets again if the reopen is still not confirmed).
    pub async fn record_follow_up(
        &self,
        id: &str,
        outcome: Outcome,
        idem: Option<&Idempotency>,
    ) -> Result<FollowUp, CareError> {
        let recorded = self
            .pipeline
            .keyed(idem, || self.try_record_follow_up(id, &outcome, idem))
            .await?;
        if recorded.reopen_pending() {
            return self.reopen(&recorded).await;
        }
        Ok(recorded)
    }

    async fn try_record_follow_up(
        &self,
        id: &str,
        outcome: &Outcome,
        idem: Option<&Idempotency>,
    ) -> Result<FollowUp, CareError> {
        let mut cmd = match self.pipeline.begin(RECORD_FOLLOW_UP_SCOPE, idem).await? {
            Begun::Replay(remembered) => return self.get_follow_up(replayed(&remembered)?).await,
            Begun::Fresh(cmd) => cmd,
        };
        let now = cmd.now();
        let Some(mut follow_up) = store::load_follow_up(cmd.txn(), id, true).await? else {
            cmd.abandon().await?;
            return Err(not_found("follow-up", id));
        };
        follow_up.record(Outcome {
            recorded_at: now,
            ..outcome.clone()
        })?;
        store::save_follow_up(cmd.txn(), &follow_up).await?;
        let summary = match (outcome.reached, follow_up.reopen_requested) {
            (false, _) => "follow-up: customer not reached",
            (true, true) => "follow-up: not solved or not satisfied, ticket reopened",
            (true, false) => "follow-up: solved and satisfied",
        };
        let entry = TimelineEntry::own(
            &follow_up.customer_id,
            TimelineKind::FollowUp,
            &follow_up.id,
            "care.FollowUpRecorded",
            summary.to_owned(),
            now,
        );
        store::add_timeline(cmd.txn(), &entry).await?;
        cmd.publish(vec![events::follow_up_recorded(&follow_up, now)])
            .await?;
        cmd.cancel(CareDeadline::FollowUp(follow_up.id.clone()));
        if follow_up.reopen_pending() {
            // Tickets is asked at once after the commit; should this process stop before
            // its answer is recorded, the worker asks again.
            cmd.schedule(
                CareDeadline::Reopen(follow_up.id.clone()),
                now + REOPEN_RETRY,
            );
        }
        cmd.commit(&self.pipeline, &Remembered::id(&follow_up.id))
            .await?;
        Ok(follow_up)
    }

    /// Asks tickets to reopen the follow-up's ticket and records the answer. Safe to run
    /// any number of times: a ticket already reopened (or gone) settles it too.
    pub(super) async fn reopen(&self, follow_up: &FollowUp) -> Result<FollowUp, CareError> {
        let reason = format!(
            "follow-up {}: customer not solved or not satisfied",
            follow_up.id
        );
        let confirmed = match self.tickets.reopen(&follow_up.ticket_id, &reason).await {
            Ok(Reopen::Done) => true,
            Ok(Reopen::Settled(why)) => {
                tracing::info!(ticket_id = %follow_up.ticket_id, %why, "ticket needs no reopen");
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, ticket_id = %follow_up.ticket_id, "reopening the ticket failed; retrying later");
                false
            }
        };
        self.record_reopen(&follow_up.id, confirmed).await
    }

    /// Records tickets' answer: a confirmed reopen ends the retries; an unconfirmed one
    /// still pending is asked again after [`REOPEN_RETRY`].
    async fn record_reopen(&self, id: &str, confirmed: bool) -> Result<FollowUp, CareError> {
        let mut cmd = self.pipeline.begin_unkeyed(RECORD_REOPEN_SCOPE).await?;
        let Some(mut follow_up) = store::load_follow_up(cmd.txn(), id, true).await? else {
            cmd.abandon().await?;
            return Err(not_found("follow-up", id));
        };
        let member = CareDeadline::Reopen(follow_up.id.clone());
        if confirmed {
            follow_up.ticket_reopened = true;
            store::save_follow_up(cmd.txn(), &follow_up).await?;
            cmd.cancel(member);
        } else if follow_up.reopen_pending() {
            let at = cmd.now() + REOPEN_RETRY;
            cmd.schedule(member, at);
        }
        cmd.commit(&self.pipeline, &Remembered::id(&follow_up.id))
            .await?;
        Ok(follow_up)
    }
}
