//! The conversation on a ticket: a public reply by an agent or the customer, or an
//! internal note by an agent (keyed by the caller's idempotency key). A reply may meet the
//! first-response clock, restart the periodic-update clock, or bring a ticket back from
//! waiting on the customer; a note answers no one and touches no clock. Also reading the
//! thread and the activity log back, a page at a time, oldest first. An agent's public
//! reply that makes a forbidden commitment (`domain::commitments`) is refused, or held
//! back as an internal note for a supervisor, as configured.

use aftersales_platform::{db::corrupt, idempotency::Idempotency};
use aftersales_runtime::command::{Begun, Remembered};

use crate::{
    domain::{
        Actor, Author, Visibility,
        activity::{self, ActivityEntry},
        commitments::{Commitments, OnForbidden},
        thread::{self, Attachment, Reply},
        ticket::{Ticket, new_id},
    },
    error::TicketsError,
    store,
};

use super::{Audit, PolicyChoice, TicketsCore, masked, not_found, record};

const REPLY_SCOPE: &str = "tickets.AddReply";

/// An entry to add to a thread, as the request gave it.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub author: Author,
    /// The customer a customer's reply names, if it names one; ignored for agents, whose
    /// entries are the verified caller's.
    pub claimed_author_id: Option<String>,
    pub body: String,
    pub visibility: Visibility,
    pub attachments: Vec<Attachment>,
}

/// A page of a ticket's thread or log, oldest first, and where the next page starts.
#[derive(Debug, Clone)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// `rows` read with one more than `page_size` asked for: the extra row says there is
    /// a next page, which starts after the last row kept.
    fn of(mut rows: Vec<T>, page_size: u64, cursor: impl Fn(&T) -> C) -> Self {
        let size = usize::try_from(page_size).unwrap_or(usize::MAX);
        let more = rows.len() > size;
        rows.truncate(size);
        let next = more.then(|| rows.last().map(&cursor)).flatten();
        Self { items: rows, next }
    }
}

impl TicketsCore {
    /// Adds a reply or note entered by `recorder` (the verified caller), its body and
    /// attachment references masked. A retry with the same key answers with the entry the
    /// first attempt added and its ticket, both as they are now.
    pub async fn add_reply(
        &self,
        ticket_id: &str,
        mut entry: NewEntry,
        recorder: &Actor,
        idem: Option<&Idempotency>,
    ) -> Result<(Reply, Ticket), TicketsError> {
        entry.body = masked(&entry.body);
        for attachment in &mut entry.attachments {
            attachment.url = masked(&attachment.url);
        }
        let mut held = false;
        if entry.author == Author::Agent
            && entry.visibility == Visibility::Public
            && let Some(rule) = self.commitments.broken_by(&entry.body)
        {
            match self.commitments.on_forbidden {
                OnForbidden::Refuse => return Err(Commitments::refusal(rule).into()),
                OnForbidden::Hold => {
                    entry.visibility = Visibility::Internal;
                    held = true;
                }
            }
        }
        self.pipeline
            .keyed(idem, || {
                self.try_add_reply(ticket_id, &entry, held, recorder, idem)
            })
            .await
    }

    async fn try_add_reply(
        &self,
        ticket_id: &str,
        entry: &NewEntry,
        held: bool,
        recorder: &Actor,
        idem: Option<&Idempotency>,
    ) -> Result<(Reply, Ticket), TicketsError> {
        let mut cmd = match self.pipeline.begin(REPLY_SCOPE, idem).await? {
            Begun::Replay(remembered) => return self.replay_reply(ticket_id, &remembered).await,
            Begun::Fresh(cmd) => cmd,
        };
        let (mut agg, judged) = self.lock(cmd.txn(), ticket_id, PolicyChoice::Kept).await?;
        let now = cmd.now();
        let author_id = thread::author_id(
            entry.author,
            entry.claimed_author_id.as_deref(),
            &recorder.id,
            &agg.ticket.customer_id,
        )?;
        let before = agg.ticket.clone();
        let (events, action) = match entry.visibility {
            Visibility::Public => (
                agg.add_reply(entry.author, &judged.policy, &judged.schedules, now)?,
                "reply",
            ),
            // A note answers no one: no clock, no status, nothing of the ticket changes;
            // neither does a reply held back for a supervisor.
            Visibility::Internal if held => (Vec::new(), "reply_held"),
            Visibility::Internal => (Vec::new(), "note"),
        };
        let reply = Reply {
            id: new_id(),
            ticket_id: ticket_id.to_owned(),
            author: entry.author,
            author_id,
            body: entry.body.clone(),
            visibility: entry.visibility,
            attachments: entry.attachments.clone(),
            recorded_by: recorder.id.clone(),
            created_at: now,
            held,
        };
        store::insert_reply(cmd.txn(), &reply).await?;
        if agg.ticket != before {
            store::save_aggregate(cmd.txn(), &agg).await?;
        }
        let audit = Audit {
            changes: activity::changes(&before, &agg.ticket),
            ..Audit::new(recorder, action, reply.id.clone())
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
    pub(super) async fn replay_reply(
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

    /// A page of the ticket's thread after the entry `after_id`: every entry, or those of
    /// one visibility.
    pub async fn thread(
        &self,
        ticket_id: &str,
        visibility: Option<Visibility>,
        after_id: Option<&str>,
        page_size: u64,
    ) -> Result<Page<Reply, String>, TicketsError> {
        self.get_ticket(ticket_id).await?;
        let rows =
            store::list_replies(self.db(), ticket_id, visibility, after_id, page_size + 1).await?;
        Ok(Page::of(rows, page_size, |r| r.id.clone()))
    }

    /// A page of the ticket's activity log after the line `after_seq`.
    pub async fn activity(
        &self,
        ticket_id: &str,
        after_seq: Option<u64>,
        page_size: u64,
    ) -> Result<Page<ActivityEntry, u64>, TicketsError> {
        self.get_ticket(ticket_id).await?;
        let rows = store::list_activity(self.db(), ticket_id, after_seq, page_size + 1).await?;
        Ok(Page::of(rows, page_size, |a| a.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::Page;

    #[test]
    fn a_page_read_one_row_long_says_where_the_next_starts() {
        let page = Page::of(vec![1, 2, 3], 2, |n: &i32| *n);
        assert_eq!((page.items, page.next), (vec![1, 2], Some(2)));
        let last = Page::of(vec![3], 2, |n: &i32| *n);
        assert_eq!((last.items, last.next), (vec![3], None));
        let empty = Page::of(Vec::<i32>::new(), 2, |n: &i32| *n);
        assert_eq!((empty.items, empty.next), (vec![], None));
    }
}
