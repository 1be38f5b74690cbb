//! The use cases of the tickets service, one module per capability. Every command runs
//! through the suite's command pipeline ([`Pipeline`]): it opens the command (a keyed one
//! answers a retry with what the first run produced, as it is now), loads and locks the
//! ticket through `store`, applies a `domain` rule at the command's "now", saves the
//! ticket with its clocks, writes its audit line and outbox events, hands the command
//! every clock to schedule or drop, and commits; the pipeline schedules them, wakes the
//! relay and counts breaches after the commit. An escalation caused by another service's
//! event runs the same steps inside the consumer's transaction ([`Pipeline::within`]).
//!
//! Every change's activity line says which fields of the ticket it changed, before and
//! after ([`crate::domain::activity::changes`]), so the log can be read back as history.
//!
//! Free text (subjects, descriptions, evidence, replies, reasons) is masked on the way in
//! ([`masked`]): nothing here stores a phone number, e-mail address or ID number in clear,
//! so neither the tables, the outbox nor a replay ever holds one.
//!
//! May depend on `domain`, `store` and `events`; never on `api` or protobuf.

mod create;
mod deadlines;
mod emergencies;
mod erasure;
mod flow;
mod handling;
mod held_replies;
mod incidents;
pub mod live;
mod policies;
mod replies;
mod routing;
mod teams;
mod watchers;

use std::sync::Arc;

use aftersales_platform::{
    coalesce::Coalescer, db::corrupt, idempotency::Idempotency, pii::masked,
};
use aftersales_runtime::command::{Begun, Pipeline, Remembered};
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DatabaseTransaction};

pub use create::TicketPage;
pub use deadlines::TicketsDeadline;
pub use incidents::IncidentUpdate;
pub use replies::{NewEntry, Page};
pub use routing::Risk;
pub use teams::Coverage;

use crate::{
    domain::{
        Actor, DomainError,
        activity::{self, FieldChange},
        commitments::Commitments,
        policy::{self, SlaPolicy},
        ticket::{Schedules, Ticket, TicketAggregate, TicketEvent},
    },
    error::TicketsError,
    events,
    store::{self, Activity},
};

use policies::PolicyCache;

/// Batch reads of tickets in flight at once, each holding a pooled connection.
const READ_LANES: usize = 4;
/// Tickets read by one batch query at most.
const READ_BATCH: usize = 64;

/// The tickets service's core: the pipeline every command runs through, the policies it
/// judges tickets by, and the batched readers of GetTicket and ListTickets.
pub struct TicketsCore {
    pipeline: Pipeline<TicketsDeadline>,
    policies: PolicyCache,
    /// GetTicket's reads, batched while the database is busy.
    tickets_by_id: Coalescer<String, Ticket>,
    /// What agents must not promise in a public reply.
    commitments: Commitments,
    /// ListTickets' pages: the same listing asked while the database is busy is read once.
    ticket_pages: Coalescer<create::PageQuery, Arc<Vec<Ticket>>>,
}

impl TicketsCore {
    pub fn new(pipeline: Pipeline<TicketsDeadline>) -> Self {
        let reader = pipeline.db().clone();
        let tickets_by_id = Coalescer::spawn(READ_LANES, READ_BATCH, move |ids: Vec<String>| {
            let db = reader.clone();
            async move {
                let tickets = store::get_tickets(&db, ids).await?;
                Ok(tickets.into_iter().map(|t| (t.id.clone(), t)).collect())
            }
        });
        let ticket_pages = create::page_reader(pipeline.db().clone());
        Self {
            pipeline,
            policies: PolicyCache::default(),
            tickets_by_id,
            ticket_pages,
            commitments: Commitments::default(),
        }
    }

    /// The forbidden commitments checked on agents' public replies (the handbook's list
    /// unless configured).
    pub fn with_commitments(mut self, commitments: Commitments) -> Self {
        self.commitments = commitments;
        self
    }

    pub fn db(&self) -> &DatabaseConnection {
        self.pipeline.db()
    }

    /// The pipeline, for work inside a transaction someone else owns (the event
    /// consumer's): [`Pipeline::within`], then [`Pipeline::after_commit`].
    pub fn pipeline(&self) -> &Pipeline<TicketsDeadline> {
        &self.pipeline
    }

    /// Now, by the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.pipeline.now()
    }

    /// One command on one ticket in a transaction of its own: lock it, apply `rule`,
    /// save, commit.
    async fn command(
        &self,
        scope: &'static str,
        ticket_id: &str,
        choice: PolicyChoice,
        audit: Audit<'_>,
        rule: impl FnOnce(
            &mut TicketAggregate,
            &Judged,
            DateTime<Utc>,
        ) -> Result<Vec<TicketEvent>, DomainError>,
    ) -> Result<Ticket, TicketsError> {
        let mut cmd = self.pipeline.begin_unkeyed(scope).await?;
        let agg = self
            .change(&mut cmd, ticket_id, choice, audit, rule)
            .await?;
        cmd.commit(&self.pipeline, &Remembered::id(&agg.ticket.id))
            .await?;
        Ok(agg.ticket)
    }

    /// [`Self::command`] keyed by the caller's idempotency key: a retry answers with the
    /// ticket as it is now and changes nothing.
    async fn keyed_command<'a>(
        &self,
        scope: &'static str,
        ticket_id: &str,
        choice: PolicyChoice,
        idem: Option<&Idempotency>,
        audit: impl Fn() -> Audit<'a>,
        rule: impl Fn(
            &mut TicketAggregate,
            &Judged,
            DateTime<Utc>,
        ) -> Result<Vec<TicketEvent>, DomainError>,
    ) -> Result<Ticket, TicketsError> {
        self.pipeline
            .keyed(idem, || async {
                let mut cmd = match self.pipeline.begin(scope, idem).await? {
                    Begun::Replay(remembered) => {
                        return self.get_ticket(replayed(&remembered)?).await;
                    }
                    Begun::Fresh(cmd) => cmd,
                };
                let agg = self
                    .change(&mut cmd, ticket_id, choice, audit(), &rule)
                    .await?;
                cmd.commit(&self.pipeline, &Remembered::id(&agg.ticket.id))
                    .await?;
                Ok(agg.ticket)
            })
            .await
    }

    /// Locks the ticket in the command's transaction, applies `rule` and writes what it
    /// changed; the command (owned or nested) commits.
    async fn change<C: InCommand>(
        &self,
        cmd: &mut C,
        ticket_id: &str,
        choice: PolicyChoice,
        audit: Audit<'_>,
        rule: impl FnOnce(
            &mut TicketAggregate,
            &Judged,
            DateTime<Utc>,
        ) -> Result<Vec<TicketEvent>, DomainError>,
    ) -> Result<TicketAggregate, TicketsError> {
        let (mut agg, judged) = self.lock(cmd.txn(), ticket_id, choice).await?;
        let before = agg.ticket.clone();
        let events = rule(&mut agg, &judged, cmd.now())?;
        store::save_aggregate(cmd.txn(), &agg).await?;
        let audit = Audit {
            changes: activity::changes(&before, &agg.ticket),
            ..audit
        };
        record(cmd, &agg, &events, audit).await?;
        Ok(agg)
    }

    /// The ticket, locked in `txn`, with the policy and calendars a rule judges it by.
    async fn lock(
        &self,
        txn: &DatabaseTransaction,
        ticket_id: &str,
        choice: PolicyChoice,
    ) -> Result<(TicketAggregate, Judged), TicketsError> {
        let agg = store::load_aggregate(txn, ticket_id, true)
            .await?
            .ok_or_else(|| not_found("ticket", ticket_id))?;
        let policy = match choice {
            PolicyChoice::Kept => self.policy_of(txn, &agg.ticket).await?,
            PolicyChoice::Rematch(change) => {
                let facts = change.applied_to(agg.ticket.facts());
                let current = self.current_policies(txn).await?;
                policy::select(&current, &facts)
                    .cloned()
                    .ok_or(TicketsError::NoPolicy)?
            }
        };
        let schedules = self.schedules(txn, &policy, &agg.clocks).await?;
        Ok((agg, Judged { policy, schedules }))
    }
}

/// Which policy a change is judged by.
#[derive(Debug, Clone, Copy)]
enum PolicyChoice {
    /// The version the ticket already has.
    Kept,
    /// The current policy matching the ticket with this change of its facts.
    Rematch(handling::Refact),
}

/// What a rule judges a ticket by: its policy and the calendars its clocks run on.
struct Judged {
    policy: SlaPolicy,
    schedules: Schedules,
}

/// How a change appears in the ticket's activity log.
struct Audit<'a> {
    actor: &'a Actor,
    action: &'static str,
    detail: String,
    /// The fields the change made different; [`TicketsCore::change`] works them out.
    changes: Vec<FieldChange>,
}

impl<'a> Audit<'a> {
    fn new(actor: &'a Actor, action: &'static str, detail: impl Into<String>) -> Self {
        Self {
            actor,
            action,
            detail: detail.into(),
            changes: Vec::new(),
        }
    }
}

/// A command of this service, owning its transaction or nested in a consumer's.
trait InCommand: aftersales_runtime::command::InCommand<TicketsDeadline> {}

impl<T: aftersales_runtime::command::InCommand<TicketsDeadline>> InCommand for T {}

/// Writes what a change of `agg` produced in the command's transaction: its audit line
/// and outbox events; and hands the command every clock to schedule or drop once it
/// commits, and each breach to count. The caller has saved the ticket itself.
async fn record<C: InCommand>(
    cmd: &mut C,
    agg: &TicketAggregate,
    events: &[TicketEvent],
    audit: Audit<'_>,
) -> Result<(), TicketsError> {
    record_all(cmd, vec![(agg, events, audit)]).await
}

/// [`record`] for several changed tickets at once (a batch of fired clocks): one insert
/// for all their audit lines and one for all their events.
async fn record_all<C: InCommand>(
    cmd: &mut C,
    changes: Vec<(&TicketAggregate, &[TicketEvent], Audit<'_>)>,
) -> Result<(), TicketsError> {
    let now = cmd.now();
    let mut lines = Vec::with_capacity(changes.len());
    let mut outbox = Vec::new();
    for (agg, events, audit) in changes {
        lines.push(Activity {
            ticket_id: &agg.ticket.id,
            actor_id: &audit.actor.id,
            actor_role: &audit.actor.role,
            action: audit.action,
            detail: audit.detail,
            changes: audit.changes,
            at: now,
        });
        for event in events {
            if matches!(event, TicketEvent::SlaBreached { .. }) {
                cmd.breached();
            }
        }
        outbox.extend(events::encode(&agg.ticket, events, now));
        reschedule(cmd, agg);
    }
    store::record_activities(cmd.txn(), lines).await?;
    cmd.publish(outbox).await?;
    Ok(())
}

/// Schedules the clocks of `agg` that can still fire and drops the others, and a
/// reassignment a threshold asked for.
fn reschedule<C: InCommand>(cmd: &mut C, agg: &TicketAggregate) {
    for clock in &agg.clocks {
        cmd.reschedule(
            TicketsDeadline::Clock(clock.id.clone()),
            clock.next_fire_at(),
        );
    }
    if let Some(at) = agg.ticket.reassign_at {
        cmd.reschedule(TicketsDeadline::Reassign(agg.ticket.id.clone()), Some(at));
    }
}

/// The id a keyed command remembered first (its ticket's).
fn replayed(remembered: &Remembered) -> Result<&str, TicketsError> {
    remembered
        .first()
        .ok_or_else(|| corrupt("idempotency_keys", "a remembered command without ids").into())
}

fn not_found(what: &'static str, id: &str) -> TicketsError {
    TicketsError::NotFound {
        what,
        id: id.to_owned(),
    }
}
