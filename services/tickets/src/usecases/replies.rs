//! The conversation on a ticket: a reply by an agent or the customer (keyed by the
//! caller's idempotency key), which may meet the first-response clock, restart the
//! periodic-update clock, or bring a ticket back from waiting on the customer.

use aftersales_platform::{db::corrupt, idempotency::Idempotency};
use aftersales_runtime::command::{Begun, Remembered};

use crate::{
    domain::{
        Actor, Author,
        ticket::{Reply, Ticket, new_id},
    },
    error::TicketsError,
    store,
};

use super::{Audit, PolicyChoice, TicketsCore, masked, not_found, record};

const REPLY_SCOPE: &str = "tickets.AddReply";

impl TicketsCore {
    /// Adds a reply, its body masked. A retry with the same key answers with the reply the
    /// first attempt added and its ticket, both as they are now.
    pub async fn add_reply(
        &self,
        ticket_id: &str,
        author: Author,
        author_id: &str,
        body: &str,
        idem: Option<&Idempotency>,
    ) -> Result<(Reply, Ticket), TicketsError> {
        let body = masked(body);
        self.pipeline
            .keyed(idem, || {
                self.try_add_reply(ticket_id, author, author_id, &body, idem)
            })
            .await
    }

    async fn try_add_reply(
        &self,
        ticket_id: &str,
        author: Author,
        author_id: &str,
        body: &str,
        idem: Option<&Idempotency>,
    ) -> Result<(Reply, Ticket), TicketsError> {
        let mut cmd = match self.pipeline.begin(REPLY_SCOPE, idem).await? {
            Begun::Replay(remembered) => return self.replay_reply(ticket_id, &remembered).await,
            Begun::Fresh(cmd) => cmd,
        };
        let (mut agg, judged) = self.lock(cmd.txn(), ticket_id, PolicyChoice::Kept).await?;
        let now = cmd.now();
        let events = agg.add_reply(author, &judged.policy, &judged.schedules, now)?;
        let reply = Reply {
            id: new_id(),
            ticket_id: ticket_id.to_owned(),
            author,
            author_id: author_id.to_owned(),
            body: body.to_owned(),
            created_at: now,
        };
        store::insert_reply(cmd.txn(), &reply).await?;
        store::save_aggregate(cmd.txn(), &agg).await?;
        let actor = Actor::new(author_id, author.as_str());
        let audit = Audit {
            actor: &actor,
            action: "reply",
            detail: reply.id.clone(),
        };
        record(&mut cmd, &agg, &events, audit).await?;
        cmd.commit(&self.pipeline, &Remembered::ids([ticket_id, &reply.id]))
            .await?;
        Ok((reply, agg.ticket))
    }

    /// The reply a keyed AddReply added, and its ticket, as they are now. The ticket is
    /// the request's (a replay is the same request); the reply is the other remembered
    /// id, whichever order it was stored in: `[ticket, reply]` now, `[reply, ticket]` by
    /// versions that stored snapshots.
    async fn replay_reply(
        &self,
        ticket_id: &str,
        remembered: &Remembered,
    ) -> Result<(Reply, Ticket), TicketsError> {
        let reply_id = remembered
            .ids
            .iter()
            .find(|id| *id != ticket_id)
            .ok_or_else(|| corrupt("idempotency_keys", "a remembered reply without its id"))?;
        let reply = store::reply(self.db(), reply_id)
            .await?
            .ok_or_else(|| not_found("reply", reply_id))?;
        let ticket = self.get_ticket(ticket_id).await?;
        Ok((reply, ticket))
    }
}
