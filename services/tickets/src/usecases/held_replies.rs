//! A supervisor's decision on a reply held back for a forbidden commitment
//! (`domain::commitments`): released, the entry goes to the customer as the agent's public
//! reply at that moment, meeting the clocks a reply meets; discarded, it stays an internal
//! note. Keyed by the caller's idempotency key; logged as `reply_released` or
//! `reply_discarded` with the entry's id.

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::{Begun, Remembered};

use crate::{
    domain::{Actor, Author, DomainError, Visibility, activity, thread::Reply, ticket::Ticket},
    error::TicketsError,
    store,
};

use super::{Audit, PolicyChoice, TicketsCore, not_found, record};

const RELEASE_SCOPE: &str = "tickets.ReleaseHeldReply";

impl TicketsCore {
    pub async fn release_held_reply(
        &self,
        ticket_id: &str,
        reply_id: &str,
        release: bool,
        actor: &Actor,
        idem: Option<&Idempotency>,
    ) -> Result<(Reply, Ticket), TicketsError> {
        self.pipeline
            .keyed(idem, || {
                self.try_release(ticket_id, reply_id, release, actor, idem)
            })
            .await
    }

    async fn try_release(
        &self,
        ticket_id: &str,
        reply_id: &str,
        release: bool,
        actor: &Actor,
        idem: Option<&Idempotency>,
    ) -> Result<(Reply, Ticket), TicketsError> {
        let mut cmd = match self.pipeline.begin(RELEASE_SCOPE, idem).await? {
            Begun::Replay(remembered) => return self.replay_reply(ticket_id, &remembered).await,
            Begun::Fresh(cmd) => cmd,
        };
        // The ticket's lock orders decisions on its entries: two supervisors deciding at
        // once are one after the other, and the second finds it held no more.
        let (mut agg, judged) = self.lock(cmd.txn(), ticket_id, PolicyChoice::Kept).await?;
        let mut entry = store::reply(cmd.txn(), reply_id)
            .await?
            .filter(|r| r.ticket_id == ticket_id)
            .ok_or_else(|| not_found("reply", reply_id))?;
        if !entry.held {
            return Err(DomainError::Precondition(format!(
                "reply {reply_id} is not held for a supervisor"
            ))
            .into());
        }
        let now = cmd.now();
        let before = agg.ticket.clone();
        let (events, action) = if release {
            let events = agg.add_reply(Author::Agent, &judged.policy, &judged.schedules, now)?;
            (events, "reply_released")
        } else {
            (Vec::new(), "reply_discarded")
        };
        entry.held = false;
        entry.visibility = if release {
            Visibility::Public
        } else {
            Visibility::Internal
        };
        store::settle_held_reply(cmd.txn(), &entry.id, entry.visibility).await?;
        if agg.ticket != before {
            store::save_aggregate(cmd.txn(), &agg).await?;
        }
        let audit = Audit {
            changes: activity::changes(&before, &agg.ticket),
            ..Audit::new(actor, action, entry.id.clone())
        };
        record(&mut cmd, &agg, &events, audit).await?;
        cmd.commit(&self.pipeline, &Remembered::ids([ticket_id, &entry.id]))
            .await?;
        Ok((entry, agg.ticket))
    }
}
