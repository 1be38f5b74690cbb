//! The use cases of the tickets service. Each command is one database transaction that
//! locks the ticket, applies a domain rule, writes the ticket, its clocks, an audit line,
//! the outbox events (and the idempotency record) together; after the commit the clocks
//! are put on the deadline queue and the outbox relay is woken. The database is the
//! truth: if the queue write is lost, the worker's rebuild puts the clock back.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use aftersales_deadlines::DeadlineQueue;
use aftersales_platform::coalesce::Coalescer;
use aftersales_platform::db::now as db_now;
use aftersales_platform::idempotency::{
    Idempotency, once_more_after_a_twin, recall_json, remember_json,
};
use aftersales_runtime::firing::schedule_all;
use chrono::{DateTime, Utc};
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    IsolationLevel, TransactionTrait,
};
use tokio::sync::Notify;

use crate::{
    domain::{
        Author, DomainError, Level, Severity, Status, Tier,
        calendar::{BusinessCalendar, default_calendar},
        clock::SlaClock,
        policy::{self, SlaPolicy, TicketFacts, check_catch_all_remains, default_policies},
        ticket::{NewTicket, Reply, Schedules, Ticket, TicketAggregate, TicketEvent, new_id},
    },
    error::TicketsError,
    events,
    store::{self, Activity, TicketFilter},
};

/// Who issues a command, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub role: String,
}

impl Actor {
    pub fn system() -> Self {
        Self {
            id: "tickets".into(),
            role: "system".into(),
        }
    }
}

/// Which policy a change is judged by.
enum PolicyChoice {
    /// The version the ticket already has.
    Kept,
    /// The current policy matching the ticket with this new severity.
    Rematch(Severity),
}

/// A change in progress: the locked ticket before and after, inside its transaction.
struct Change {
    txn: DatabaseTransaction,
    agg: TicketAggregate,
    policy: SlaPolicy,
    schedules: Schedules,
    now: DateTime<Utc>,
}

const CREATE_SCOPE: &str = "tickets.CreateTicket";
const REPLY_SCOPE: &str = "tickets.AddReply";

pub struct TicketsCore {
    db: DatabaseConnection,
    queue: DeadlineQueue,
    relay_nudge: Arc<Notify>,
    /// Policy versions never change once written, so they are cached for good.
    policy_versions: RwLock<HashMap<(String, u32), SlaPolicy>>,
    /// The current policies new tickets are matched against, for [`CURRENT_POLICIES_TTL`];
    /// dropped at once when this process changes a policy.
    current: RwLock<Option<(std::time::Instant, Arc<Vec<SlaPolicy>>)>>,
    /// GetTicket's reads, batched while the database is busy.
    tickets_by_id: Coalescer<String, Ticket>,
}

/// Batch reads of tickets in flight at once, each holding a pooled connection.
const READ_LANES: usize = 4;
/// Tickets read by one batch query at most.
const READ_BATCH: usize = 64;

/// How long another replica's policy change may take to reach new tickets here.
const CURRENT_POLICIES_TTL: std::time::Duration = std::time::Duration::from_secs(5);

impl TicketsCore {
    pub fn new(db: DatabaseConnection, queue: DeadlineQueue, relay_nudge: Arc<Notify>) -> Self {
        let reader = db.clone();
        let tickets_by_id = Coalescer::spawn(READ_LANES, READ_BATCH, move |ids: Vec<String>| {
            let db = reader.clone();
            async move {
                let tickets = store::get_tickets(&db, ids).await?;
                Ok(tickets.into_iter().map(|t| (t.id.clone(), t)).collect())
            }
        });
        Self {
            db,
            queue,
            relay_nudge,
            policy_versions: RwLock::default(),
            current: RwLock::default(),
            tickets_by_id,
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Seeds the handbook's default policies and calendar into an empty database.
    pub async fn ensure_defaults(&self) -> Result<(), TicketsError> {
        let now = db_now();
        let txn = self.db.begin().await?;
        store::insert_calendar_if_missing(&txn, &default_calendar(), now).await?;
        if !store::has_policies(&txn).await? {
            for p in default_policies(now) {
                store::insert_policy_if_missing(&txn, &p).await?;
            }
        }
        txn.commit().await?;
        Ok(())
    }

    pub async fn create_ticket(
        &self,
        new: NewTicket,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<Ticket, TicketsError> {
        once_more_after_a_twin(idem, || self.try_create_ticket(&new, idem, actor)).await
    }

    async fn try_create_ticket(
        &self,
        new: &NewTicket,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<Ticket, TicketsError> {
        let now = db_now();
        let txn = self.db.begin().await?;
        if let Some(replayed) = recall_json::<_, Ticket>(&txn, CREATE_SCOPE, idem).await? {
            return Ok(replayed);
        }
        let policies = self.current_policies(&txn).await?;
        let policy = policy::select(&policies, &new.facts()).ok_or(TicketsError::NoPolicy)?;
        let schedules = self.schedules(&txn, policy, &[]).await?;
        let (agg, events) = TicketAggregate::open(new.clone(), policy, &schedules, now);
        store::insert_aggregate(&txn, &agg).await?;
        self.write_side_effects(&txn, &agg, &events, actor, "create", String::new(), now)
            .await?;
        remember_json(&txn, CREATE_SCOPE, idem, &agg.ticket, now).await?;
        txn.commit().await?;
        self.after_commit(&agg).await;
        Ok(agg.ticket)
    }

    /// The tier care last published for a customer (tickets created without a tier use
    /// it to match SLA policies).
    pub async fn known_tier(&self, customer_id: &str) -> Result<Option<Tier>, TicketsError> {
        Ok(store::known_tier(&self.db, customer_id).await?)
    }

    pub async fn get_ticket(&self, id: &str) -> Result<Ticket, TicketsError> {
        self.tickets_by_id
            .get(id.to_owned())
            .await?
            .ok_or_else(|| not_found("ticket", id))
    }

    /// A page of tickets, newest first, and the cursor of the next page if there is one.
    pub async fn list_tickets(
        &self,
        filter: &TicketFilter,
        before_id: Option<&str>,
        page_size: u64,
    ) -> Result<(Vec<Ticket>, Option<String>), TicketsError> {
        let mut tickets = store::list_tickets(&self.db, filter, before_id, page_size + 1).await?;
        let next = (tickets.len() as u64 > page_size).then(|| {
            tickets.truncate(page_size as usize);
            tickets.last().map(|t| t.id.clone())
        });
        Ok((tickets, next.flatten()))
    }

    pub async fn add_reply(
        &self,
        ticket_id: &str,
        author: Author,
        author_id: &str,
        body: &str,
        idem: Option<&Idempotency>,
    ) -> Result<(Reply, Ticket), TicketsError> {
        once_more_after_a_twin(idem, || {
            self.try_add_reply(ticket_id, author, author_id, body, idem)
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
        let mut change = self.begin_change(ticket_id, PolicyChoice::Kept).await?;
        if let Some(replayed) =
            recall_json::<_, (Reply, Ticket)>(&change.txn, REPLY_SCOPE, idem).await?
        {
            return Ok(replayed);
        }
        let events = change
            .agg
            .add_reply(author, &change.policy, &change.schedules, change.now)?;
        let reply = Reply {
            id: new_id(),
            ticket_id: ticket_id.to_owned(),
            author,
            author_id: author_id.to_owned(),
            body: body.to_owned(),
            created_at: change.now,
        };
        store::insert_reply(&change.txn, &reply).await?;
        let result = (reply, change.agg.ticket.clone());
        remember_json(&change.txn, REPLY_SCOPE, idem, &result, change.now).await?;
        let actor = Actor {
            id: author_id.to_owned(),
            role: author.as_str().to_owned(),
        };
        self.finish_change(change, events, &actor, "reply", result.0.id.clone())
            .await?;
        Ok(result)
    }

    pub async fn change_status(
        &self,
        ticket_id: &str,
        to: Status,
        reason: &str,
        actor: &Actor,
    ) -> Result<Ticket, TicketsError> {
        let detail = format!("{to}: {reason}");
        self.command(
            ticket_id,
            PolicyChoice::Kept,
            actor,
            "change_status",
            detail,
            |agg, p, s, now| agg.change_status(to, reason, p, s, now),
        )
        .await
    }

    pub async fn reopen(
        &self,
        ticket_id: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<Ticket, TicketsError> {
        self.command(
            ticket_id,
            PolicyChoice::Kept,
            actor,
            "reopen",
            reason.to_owned(),
            |agg, p, s, now| agg.reopen(reason, p, s, now),
        )
        .await
    }

    pub async fn assign(
        &self,
        ticket_id: &str,
        assignee: &str,
        actor: &Actor,
    ) -> Result<Ticket, TicketsError> {
        self.command(
            ticket_id,
            PolicyChoice::Kept,
            actor,
            "assign",
            assignee.to_owned(),
            |agg, _, _, now| agg.assign(assignee.to_owned(), now).map(|()| Vec::new()),
        )
        .await
    }

    pub async fn escalate(
        &self,
        ticket_id: &str,
        to: Option<Level>,
        reason: &str,
        actor: &Actor,
    ) -> Result<Ticket, TicketsError> {
        self.command(
            ticket_id,
            PolicyChoice::Kept,
            actor,
            "escalate",
            reason.to_owned(),
            |agg, _, _, now| agg.escalate(to, reason, now),
        )
        .await
    }

    /// [`Self::escalate`] inside a transaction the caller owns and commits, such as an
    /// event consumer's, which records the event processed in the same transaction:
    /// opening another would wait for the connection the caller holds (on SQLite, the
    /// pool's only one). An escalation moves no SLA clock, so once the caller has
    /// committed, all that is left is [`Self::wake_relay`] for its events.
    pub async fn escalate_in(
        &self,
        txn: &DatabaseTransaction,
        ticket_id: &str,
        to: Option<Level>,
        reason: &str,
        actor: &Actor,
    ) -> Result<Ticket, TicketsError> {
        let agg = self
            .command_in(
                txn,
                ticket_id,
                PolicyChoice::Kept,
                actor,
                "escalate",
                reason.to_owned(),
                |agg, _, _, now| agg.escalate(to, reason, now),
            )
            .await?;
        Ok(agg.ticket)
    }

    /// Sends events written by a transaction committed outside this core (see
    /// [`Self::escalate_in`]) on to the bus now rather than at the relay's next poll.
    pub fn wake_relay(&self) {
        self.relay_nudge.notify_one();
    }

    pub async fn set_severity(
        &self,
        ticket_id: &str,
        severity: Severity,
        reason: &str,
        actor: &Actor,
    ) -> Result<Ticket, TicketsError> {
        let detail = format!("{severity}: {reason}");
        let choice = PolicyChoice::Rematch(severity);
        self.command(
            ticket_id,
            choice,
            actor,
            "set_severity",
            detail,
            |agg, p, s, now| agg.set_severity(severity, reason, p, s, now),
        )
        .await
    }

    /// One command on one ticket: lock it, apply `rule`, store the result and its events.
    async fn command(
        &self,
        ticket_id: &str,
        choice: PolicyChoice,
        actor: &Actor,
        action: &str,
        detail: String,
        rule: impl FnOnce(
            &mut TicketAggregate,
            &SlaPolicy,
            &Schedules,
            DateTime<Utc>,
        ) -> Result<Vec<TicketEvent>, DomainError>,
    ) -> Result<Ticket, TicketsError> {
        let txn = self.db.begin().await?;
        let agg = self
            .command_in(&txn, ticket_id, choice, actor, action, detail, rule)
            .await?;
        txn.commit().await?;
        self.after_commit(&agg).await;
        Ok(agg.ticket)
    }

    /// [`Self::command`] inside `txn`, left for the caller to commit and follow with
    /// [`Self::after_commit`].
    #[allow(clippy::too_many_arguments)]
    async fn command_in(
        &self,
        txn: &DatabaseTransaction,
        ticket_id: &str,
        choice: PolicyChoice,
        actor: &Actor,
        action: &str,
        detail: String,
        rule: impl FnOnce(
            &mut TicketAggregate,
            &SlaPolicy,
            &Schedules,
            DateTime<Utc>,
        ) -> Result<Vec<TicketEvent>, DomainError>,
    ) -> Result<TicketAggregate, TicketsError> {
        let (mut agg, policy, schedules) = self.lock_for_change(txn, ticket_id, choice).await?;
        let now = db_now();
        let events = rule(&mut agg, &policy, &schedules, now)?;
        store::save_aggregate(txn, &agg).await?;
        self.write_side_effects(txn, &agg, &events, actor, action, detail, now)
            .await?;
        Ok(agg)
    }

    pub async fn sla_status(
        &self,
        ticket_id: &str,
    ) -> Result<(Ticket, Vec<SlaClock>), TicketsError> {
        // One snapshot for the ticket row and its clocks, so a breach committed between
        // the two reads cannot show a breached clock on a ticket that is not.
        let txn = match self.db.get_database_backend() {
            DbBackend::Postgres => {
                self.db
                    .begin_with_config(
                        Some(IsolationLevel::RepeatableRead),
                        Some(AccessMode::ReadOnly),
                    )
                    .await?
            }
            _ => self.db.begin().await?,
        };
        let agg = store::load_aggregate(&txn, ticket_id, false)
            .await?
            .ok_or_else(|| not_found("ticket", ticket_id))?;
        txn.commit().await?;
        Ok((agg.ticket, agg.clocks))
    }

    /// Fires one clock (called by the SLA worker). Idempotent: a clock already warned or
    /// breached does nothing, one not due yet is only put back on the schedule.
    pub async fn fire_clock(&self, clock_id: &str) -> Result<(), TicketsError> {
        self.fire_clocks(&[clock_id.to_owned()]).await
    }

    /// Fires a batch of clocks in one transaction: the tickets are locked in id order (so
    /// concurrent batches cannot deadlock), each due clock warns or breaches once, and one
    /// commit covers them all. Idempotent like [`Self::fire_clock`].
    pub async fn fire_clocks(&self, clock_ids: &[String]) -> Result<(), TicketsError> {
        let mut by_ticket: Vec<(String, String)> = store::clock_ticket_ids(&self.db, clock_ids)
            .await?
            .into_iter()
            .map(|(clock, ticket)| (ticket, clock))
            .collect();
        by_ticket.sort();
        let txn = self.db.begin().await?;
        let now = db_now();
        let mut touched = Vec::new();
        let mut breaches = 0;
        let mut rest = by_ticket.as_slice();
        while let Some((ticket_id, _)) = rest.first() {
            let count = rest.iter().take_while(|(t, _)| t == ticket_id).count();
            let (group, tail) = rest.split_at(count);
            rest = tail;
            let Some(mut agg) = store::load_aggregate(&txn, ticket_id, true).await? else {
                continue;
            };
            let policy = self.policy_of(&txn, &agg.ticket).await?;
            let mut events = Vec::new();
            for (_, clock_id) in group {
                events.extend(agg.fire_clock(clock_id, &policy, now));
            }
            for event in &events {
                if let TicketEvent::SlaBreached { clock } = event {
                    let late_ms = (now - clock.due_at).num_milliseconds();
                    tracing::info!(ticket_id, clock_id = %clock.id, kind = %clock.kind, late_ms, "SLA breached");
                    breaches += 1;
                }
            }
            if !events.is_empty() {
                store::save_aggregate(&txn, &agg).await?;
                let detail = group
                    .iter()
                    .map(|(_, c)| c.as_str())
                    .collect::<Vec<_>>()
                    .join(",");
                self.write_side_effects(&txn, &agg, &events, &Actor::system(), "sla", detail, now)
                    .await?;
            }
            touched.push(agg);
        }
        txn.commit().await?;
        for _ in 0..breaches {
            aftersales_platform::metrics::breach("tickets");
        }
        for agg in &touched {
            self.after_commit(agg).await;
        }
        Ok(())
    }

    /// Puts every clock that can still fire back on the schedule; returns how many.
    pub async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, TicketsError> {
        // Clock ids are the members as they are.
        schedule_all(queue, "", |after, limit| async move {
            Ok::<_, TicketsError>(store::pending_fire_times(&self.db, &after, limit).await?)
        })
        .await
    }

    pub async fn list_policies(&self) -> Result<Vec<SlaPolicy>, TicketsError> {
        Ok(store::current_policies(&self.db).await?)
    }

    /// Stores a policy as its next version. The same content again changes nothing.
    pub async fn upsert_policy(&self, mut candidate: SlaPolicy) -> Result<SlaPolicy, TicketsError> {
        candidate.validate()?;
        let txn = self.db.begin().await?;
        let current = store::current_policies(&txn).await?;
        check_catch_all_remains(&current, &candidate)?;
        let wanted: Vec<String> = candidate.calendar_ids().map(str::to_owned).collect();
        let found = store::calendars(&txn, &wanted).await?;
        if let Some(missing) = wanted.iter().find(|id| !found.iter().any(|c| &c.id == *id)) {
            return Err(DomainError::invalid(
                "policy.*.calendar_id",
                format!("unknown business calendar {missing:?}"),
            )
            .into());
        }
        let previous = current.iter().find(|p| p.id == candidate.id);
        if let Some(previous) = previous {
            let same = SlaPolicy {
                version: previous.version,
                created_at: previous.created_at,
                ..candidate.clone()
            };
            if &same == previous {
                return Ok(previous.clone());
            }
        }
        candidate.version = previous.map_or(1, |p| p.version + 1);
        candidate.created_at = db_now();
        store::insert_policy_version(&txn, &candidate).await?;
        txn.commit().await?;
        if let Ok(mut current) = self.current.write() {
            *current = None;
        }
        Ok(candidate)
    }

    pub async fn upsert_calendar(
        &self,
        calendar: BusinessCalendar,
    ) -> Result<BusinessCalendar, TicketsError> {
        store::upsert_calendar(&self.db, &calendar, db_now()).await?;
        Ok(calendar)
    }

    async fn begin_change(
        &self,
        ticket_id: &str,
        choice: PolicyChoice,
    ) -> Result<Change, TicketsError> {
        let txn = self.db.begin().await?;
        let (agg, policy, schedules) = self.lock_for_change(&txn, ticket_id, choice).await?;
        Ok(Change {
            txn,
            agg,
            policy,
            schedules,
            now: db_now(),
        })
    }

    /// The ticket, locked in `txn`, with the policy and calendars a rule judges it by.
    async fn lock_for_change(
        &self,
        txn: &DatabaseTransaction,
        ticket_id: &str,
        choice: PolicyChoice,
    ) -> Result<(TicketAggregate, SlaPolicy, Schedules), TicketsError> {
        let agg = store::load_aggregate(txn, ticket_id, true)
            .await?
            .ok_or_else(|| not_found("ticket", ticket_id))?;
        let policy = match choice {
            PolicyChoice::Kept => self.policy_of(txn, &agg.ticket).await?,
            PolicyChoice::Rematch(severity) => {
                let t = &agg.ticket;
                let facts = TicketFacts {
                    severity,
                    category: t.category,
                    tier: t.tier,
                    channel: t.channel,
                };
                let current = self.current_policies(txn).await?;
                policy::select(&current, &facts)
                    .cloned()
                    .ok_or(TicketsError::NoPolicy)?
            }
        };
        let schedules = self.schedules(txn, &policy, &agg.clocks).await?;
        Ok((agg, policy, schedules))
    }

    async fn finish_change(
        &self,
        change: Change,
        events: Vec<TicketEvent>,
        actor: &Actor,
        action: &str,
        detail: String,
    ) -> Result<TicketAggregate, TicketsError> {
        let Change { txn, agg, now, .. } = change;
        store::save_aggregate(&txn, &agg).await?;
        self.write_side_effects(&txn, &agg, &events, actor, action, detail, now)
            .await?;
        txn.commit().await?;
        self.after_commit(&agg).await;
        Ok(agg)
    }

    /// The audit line and the outbox events of a change.
    #[allow(clippy::too_many_arguments)]
    async fn write_side_effects<C: ConnectionTrait>(
        &self,
        conn: &C,
        agg: &TicketAggregate,
        events: &[TicketEvent],
        actor: &Actor,
        action: &str,
        detail: String,
        now: DateTime<Utc>,
    ) -> Result<(), TicketsError> {
        store::record_activity(
            conn,
            Activity {
                ticket_id: &agg.ticket.id,
                actor_id: &actor.id,
                actor_role: &actor.role,
                action,
                detail,
                at: now,
            },
        )
        .await?;
        aftersales_eventbus::outbox::enqueue(conn, events::encode(&agg.ticket, events, now), now)
            .await?;
        Ok(())
    }

    /// Schedules the clocks that can fire, drops the ones that cannot, wakes the relay.
    async fn after_commit(&self, agg: &TicketAggregate) {
        let (live, done): (Vec<_>, Vec<_>) =
            agg.clocks.iter().partition(|c| c.next_fire_at().is_some());
        let items: Vec<(String, i64)> = live
            .iter()
            .filter_map(|c| {
                c.next_fire_at()
                    .map(|at| (c.id.clone(), at.timestamp_millis()))
            })
            .collect();
        let finished: Vec<String> = done.iter().map(|c| c.id.clone()).collect();
        if let Err(err) = self.queue.schedule(&items).await {
            tracing::warn!(error = %err, ticket_id = %agg.ticket.id, "scheduling clocks failed; the next rebuild restores them");
        }
        if let Err(err) = self.queue.cancel(&finished).await {
            tracing::debug!(error = %err, "unscheduling finished clocks failed; the worker skips them");
        }
        self.relay_nudge.notify_one();
    }

    /// The current policies, from the short-lived cache or the database.
    async fn current_policies<C: ConnectionTrait>(
        &self,
        conn: &C,
    ) -> Result<Arc<Vec<SlaPolicy>>, TicketsError> {
        let cached = self.current.read().ok().and_then(|c| c.clone());
        if let Some((at, policies)) = cached
            && at.elapsed() < CURRENT_POLICIES_TTL
        {
            return Ok(policies);
        }
        let policies = Arc::new(store::current_policies(conn).await?);
        if let Ok(mut current) = self.current.write() {
            *current = Some((std::time::Instant::now(), policies.clone()));
        }
        Ok(policies)
    }

    async fn policy_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        ticket: &Ticket,
    ) -> Result<SlaPolicy, TicketsError> {
        let key = (ticket.policy_id.clone(), ticket.policy_version);
        if let Some(p) = self
            .policy_versions
            .read()
            .ok()
            .and_then(|cache| cache.get(&key).cloned())
        {
            return Ok(p);
        }
        let p = store::policy_version(conn, &key.0, key.1)
            .await?
            .ok_or(TicketsError::NoPolicy)?;
        if let Ok(mut cache) = self.policy_versions.write() {
            cache.insert(key, p.clone());
        }
        Ok(p)
    }

    /// The calendars a policy and a ticket's clocks measure on.
    async fn schedules<C: ConnectionTrait>(
        &self,
        conn: &C,
        policy: &SlaPolicy,
        clocks: &[SlaClock],
    ) -> Result<Schedules, TicketsError> {
        let mut ids: Vec<String> = policy
            .calendar_ids()
            .map(str::to_owned)
            .chain(clocks.iter().filter_map(|c| c.calendar_id.clone()))
            .collect();
        ids.sort();
        ids.dedup();
        Ok(Schedules::new(store::calendars(conn, &ids).await?))
    }
}

fn not_found(what: &'static str, id: &str) -> TicketsError {
    TicketsError::NotFound {
        what,
        id: id.to_owned(),
    }
}
