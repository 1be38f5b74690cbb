//! The one command pipeline of the suite. Every command of every service runs the same
//! sequence, and only this module knows it:
//!
//! 1. [`Pipeline::begin`]: open a transaction, read "now" from the service's clock, and
//!    look the idempotency key up — a key seen with the same request is a
//!    [`Begun::Replay`], one seen with a different request is refused;
//! 2. the service loads and locks its aggregate through its store, applies its pure rule,
//!    saves, writes its audit line, and hands the rule's events and deadline changes to
//!    the [`Command`] ([`Command::publish`], [`Command::schedule`], [`Command::cancel`]);
//! 3. [`Command::commit`]: remember what the command produced under its key, commit, and
//!    only then schedule and cancel deadlines, wake the outbox relay and count breaches.
//!
//! **The replay rule** (one for the whole suite): a keyed command remembers the *ids* of
//! what it produced ([`Remembered`]), never a snapshot of a domain type, and a replay
//! answers with those records as they are now. A change of a domain type's serialised form
//! can therefore never break a replay within the retention window, and a replay never
//! shows a state older than what a plain read would. Responses stored by earlier versions
//! (a bare id, or a snapshot with an `id`) are still understood.

use std::{marker::PhantomData, sync::Arc};

use aftersales_deadlines::{DeadlineQueue, worker::Member};
use aftersales_eventbus::outbox::{self, NewEvent};
use aftersales_platform::{
    clock::SharedClock,
    idempotency::{self, Idempotency, IdempotencyError, Recall},
    metrics,
};
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::firing::due_millis;

/// What a keyed command remembers: the ids of the records it produced, in an order the
/// command defines (for example `[ticket_id, reply_id]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    pub ids: Vec<String>,
}

impl Remembered {
    pub fn id(id: impl Into<String>) -> Self {
        Self {
            ids: vec![id.into()],
        }
    }

    pub fn ids(ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            ids: ids.into_iter().map(Into::into).collect(),
        }
    }

    /// The first id (the command's aggregate).
    pub fn first(&self) -> Option<&str> {
        self.ids.first().map(String::as_str)
    }

    /// Reads a stored response: this form, or what earlier versions stored (a JSON
    /// string id, an object with an `id`, or a list of such objects).
    pub fn decode(bytes: &[u8]) -> Result<Self, DbErr> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| aftersales_platform::db::corrupt("idempotency_keys", e))?;
        // A string, or an object's `id` (else its first `…_id` string field).
        let id_of = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Object(o) => o
                .get("id")
                .or_else(|| {
                    o.iter()
                        .find(|(k, v)| k.ends_with("_id") && v.is_string())
                        .map(|(_, v)| v)
                })
                .and_then(|id| id.as_str())
                .map(str::to_owned),
            _ => None,
        };
        if let Ok(remembered) = serde_json::from_value::<Self>(value.clone()) {
            return Ok(remembered);
        }
        let ids: Vec<String> = match &value {
            serde_json::Value::Array(items) => items.iter().filter_map(id_of).collect(),
            other => id_of(other).into_iter().collect(),
        };
        if ids.is_empty() {
            return Err(aftersales_platform::db::corrupt(
                "idempotency_keys",
                "a stored response without ids",
            ));
        }
        Ok(Self { ids })
    }
}

/// How a command starts.
pub enum Begun<M> {
    /// A new command, inside its transaction.
    Fresh(Command<M>),
    /// The key was used before with this very request: what the first run produced.
    Replay(Remembered),
}

/// Why a command could not start or finish in the pipeline itself.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// The services' shared sequence around their rules; one per service, cheap to share.
pub struct Pipeline<M> {
    db: DatabaseConnection,
    queue: DeadlineQueue,
    relay: Arc<Notify>,
    clock: SharedClock,
    /// The label of the service's metrics.
    service: &'static str,
    _member: PhantomData<fn() -> M>,
}

impl<M: Member> Pipeline<M> {
    pub fn new(
        service: &'static str,
        db: DatabaseConnection,
        queue: DeadlineQueue,
        relay: Arc<Notify>,
        clock: SharedClock,
    ) -> Self {
        Self {
            db,
            queue,
            relay,
            clock,
            service,
            _member: PhantomData,
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn queue(&self) -> &DeadlineQueue {
        &self.queue
    }

    /// Now, by the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Opens a command under `scope` (e.g. `tickets.CreateTicket`) with its key, if any.
    pub async fn begin(
        &self,
        scope: &'static str,
        idem: Option<&Idempotency>,
    ) -> Result<Begun<M>, PipelineError> {
        let txn = self.db.begin().await?;
        if let Some(idem) = idem {
            match idempotency::recall(&txn, scope, &idem.key, &idem.fingerprint).await? {
                Recall::Fresh => {}
                Recall::Replay(bytes) => {
                    txn.rollback().await?;
                    return Ok(Begun::Replay(Remembered::decode(&bytes)?));
                }
                Recall::Mismatch => {
                    txn.rollback().await?;
                    return Err(IdempotencyError::Reused {
                        key: idem.key.clone(),
                    }
                    .into());
                }
            }
        }
        Ok(Begun::Fresh(self.open(scope, idem.cloned(), txn)))
    }

    /// Opens a command that has no idempotency key (deadline firings, event handlers).
    pub async fn begin_unkeyed(&self, scope: &'static str) -> Result<Command<M>, DbErr> {
        let txn = self.db.begin().await?;
        Ok(self.open(scope, None, txn))
    }

    /// A command inside a transaction someone else opened and commits (an event consumer
    /// applies its event inside the transaction that records the event as handled). Its
    /// effects are returned by [`Command::into_effects`] and run with
    /// [`Pipeline::after_commit`] once that transaction has committed.
    pub fn within<'t>(&self, txn: &'t DatabaseTransaction) -> Nested<'t, M> {
        Nested {
            txn,
            now: self.clock.now(),
            effects: Effects::default(),
        }
    }

    fn open(
        &self,
        scope: &'static str,
        idem: Option<Idempotency>,
        txn: DatabaseTransaction,
    ) -> Command<M> {
        Command {
            txn,
            now: self.clock.now(),
            scope,
            idem,
            effects: Effects::default(),
        }
    }

    /// Runs a keyed command; if a concurrent twin with the same key committed first (this
    /// attempt's idempotency insert hit its row), runs it again to answer with the twin's
    /// result.
    pub async fn keyed<T, E, F, Fut>(&self, idem: Option<&Idempotency>, attempt: F) -> Result<T, E>
    where
        E: idempotency::CarriesDbErr,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        idempotency::once_more_after_a_twin(idem, attempt).await
    }

    /// What happens once a command's transaction committed: its deadlines are scheduled
    /// or cancelled, the relay is woken, breaches are counted. The database is the truth:
    /// a lost queue write is put back by the worker's rebuild.
    pub async fn after_commit(&self, effects: Effects<M>) {
        let Effects {
            schedule,
            cancel,
            breaches,
            published,
        } = effects;
        if !schedule.is_empty() {
            let items: Vec<(String, i64)> = schedule
                .iter()
                .map(|(m, at)| (m.to_text(), due_millis(*at)))
                .collect();
            if let Err(err) = self.queue.schedule(&items).await {
                tracing::warn!(error = %err, "scheduling deadlines failed; the next rebuild restores them");
            }
        }
        if !cancel.is_empty() {
            let ids: Vec<String> = cancel.iter().map(Member::to_text).collect();
            if let Err(err) = self.queue.cancel(&ids).await {
                tracing::debug!(error = %err, "unscheduling finished deadlines failed; the worker skips them");
            }
        }
        if published {
            self.relay.notify_one();
        }
        for _ in 0..breaches {
            metrics::breach(self.service);
        }
    }
}

/// What a command leaves for after its commit.
/// What consumed events left for after their transactions commit, by event id: an event
/// handler keeps it while the consumer's transaction is open, and takes it when the
/// consumer reports the commit. A retry of a delivery whose commit failed replaces what
/// its first run left.
pub struct Pending<T> {
    by_event: std::sync::Mutex<std::collections::HashMap<String, T>>,
}

/// A nested command's effects, kept until the consumer's commit.
pub type PendingEffects<M> = Pending<Effects<M>>;

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self {
            by_event: std::sync::Mutex::default(),
        }
    }
}

impl<T> Pending<T> {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, T>> {
        self.by_event
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn keep(&self, event_id: &str, value: T) {
        self.map().insert(event_id.to_owned(), value);
    }

    pub fn take(&self, event_id: &str) -> Option<T> {
        self.map().remove(event_id)
    }
}

impl<M: Member> Pipeline<M> {
    /// Applies, on a task of its own, what an event's committed transaction left (see
    /// [`PendingEffects`]): for a consumer's `committed`, which must not wait.
    pub fn spawn_after_commit(&self, effects: Effects<M>) {
        let pipeline = self.clone();
        tokio::spawn(async move { pipeline.after_commit(effects).await });
    }
}

impl<M> Clone for Pipeline<M> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            queue: self.queue.clone(),
            relay: self.relay.clone(),
            clock: self.clock.clone(),
            service: self.service,
            _member: PhantomData,
        }
    }
}

#[derive(Debug)]
pub struct Effects<M> {
    schedule: Vec<(M, DateTime<Utc>)>,
    cancel: Vec<M>,
    breaches: u32,
    published: bool,
}

impl<M> Default for Effects<M> {
    fn default() -> Self {
        Self {
            schedule: Vec::new(),
            cancel: Vec::new(),
            breaches: 0,
            published: false,
        }
    }
}

impl<M> Effects<M> {
    /// Adds another command's effects (several commands inside one consumer transaction).
    pub fn extend(&mut self, other: Effects<M>) {
        self.schedule.extend(other.schedule);
        self.cancel.extend(other.cancel);
        self.breaches += other.breaches;
        self.published |= other.published;
    }
}

/// The parts of a command that do not depend on who owns the transaction.
macro_rules! command_effects {
    () => {
        /// Now, by the service's clock, read once when the command began.
        pub fn now(&self) -> DateTime<Utc> {
            self.now
        }

        /// Enqueues events in the outbox, in this transaction; the relay is woken after
        /// the commit.
        pub async fn publish(&mut self, events: Vec<NewEvent>) -> Result<(), DbErr> {
            if events.is_empty() {
                return Ok(());
            }
            outbox::enqueue(self.txn(), events, self.now).await?;
            self.effects.published = true;
            Ok(())
        }

        /// Schedules `member` for `at` once the command commits (an earlier instant
        /// already scheduled wins).
        pub fn schedule(&mut self, member: M, at: DateTime<Utc>) {
            self.effects.schedule.push((member, at));
        }

        /// Takes `member` off the schedule once the command commits.
        pub fn cancel(&mut self, member: M) {
            self.effects.cancel.push(member);
        }

        /// Schedules `member` when `at` is some, else cancels it.
        pub fn reschedule(&mut self, member: M, at: Option<DateTime<Utc>>) {
            match at {
                Some(at) => self.schedule(member, at),
                None => self.cancel(member),
            }
        }

        /// Counts a breached deadline in the service's metrics once committed.
        pub fn breached(&mut self) {
            self.effects.breaches += 1;
        }
    };
}

/// A command in progress: its transaction, its "now" and what it leaves for after commit.
pub struct Command<M> {
    txn: DatabaseTransaction,
    now: DateTime<Utc>,
    scope: &'static str,
    idem: Option<Idempotency>,
    effects: Effects<M>,
}

impl<M: Member> Command<M> {
    /// The command's transaction, for the service's store.
    pub fn txn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    command_effects!();

    /// Remembers `result` under the key (if any), commits, then runs the effects.
    pub async fn commit(self, pipeline: &Pipeline<M>, result: &Remembered) -> Result<(), DbErr> {
        if let Some(idem) = &self.idem {
            let bytes = aftersales_platform::db::to_json(result)?.into_bytes();
            idempotency::remember(
                &self.txn,
                self.scope,
                &idem.key,
                &idem.fingerprint,
                bytes,
                self.now,
            )
            .await?;
        }
        self.txn.commit().await?;
        pipeline.after_commit(self.effects).await;
        Ok(())
    }

    /// Gives up: nothing is written, and the effects gathered so far are dropped.
    pub async fn abandon(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

/// A command inside a transaction it does not own (see [`Pipeline::within`]).
pub struct Nested<'t, M> {
    txn: &'t DatabaseTransaction,
    now: DateTime<Utc>,
    effects: Effects<M>,
}

impl<M: Member> Nested<'_, M> {
    pub fn txn(&self) -> &DatabaseTransaction {
        self.txn
    }

    command_effects!();

    /// The effects to run with [`Pipeline::after_commit`] once the owner committed.
    pub fn into_effects(self) -> Effects<M> {
        self.effects
    }
}

/// What a use case needs of a command, whether it owns its transaction ([`Command`]) or
/// runs inside one an event consumer owns ([`Nested`]): code written against it serves
/// both.
pub trait InCommand<M>: Send {
    fn txn(&self) -> &DatabaseTransaction;
    fn now(&self) -> DateTime<Utc>;
    fn publish(&mut self, events: Vec<NewEvent>) -> impl Future<Output = Result<(), DbErr>> + Send;
    fn reschedule(&mut self, member: M, at: Option<DateTime<Utc>>);
    fn breached(&mut self);
}

/// Both command kinds have these methods already; this forwards to them.
macro_rules! in_command {
    ($ty:ty) => {
        fn txn(&self) -> &DatabaseTransaction {
            <$ty>::txn(self)
        }

        fn now(&self) -> DateTime<Utc> {
            <$ty>::now(self)
        }

        fn publish(
            &mut self,
            events: Vec<NewEvent>,
        ) -> impl Future<Output = Result<(), DbErr>> + Send {
            <$ty>::publish(self, events)
        }

        fn reschedule(&mut self, member: M, at: Option<DateTime<Utc>>) {
            <$ty>::reschedule(self, member, at)
        }

        fn breached(&mut self) {
            <$ty>::breached(self)
        }
    };
}

impl<M: Member> InCommand<M> for Command<M> {
    in_command!(Command<M>);
}

impl<M: Member> InCommand<M> for Nested<'_, M> {
    in_command!(Nested<'_, M>);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_stored_by_earlier_versions_are_still_understood() {
        let current = serde_json::to_vec(&Remembered::ids(["t1", "r1"])).unwrap();
        assert_eq!(Remembered::decode(&current).unwrap().ids, ["t1", "r1"]);
        assert_eq!(Remembered::decode(b"\"ret-1\"").unwrap().ids, ["ret-1"]);
        let snapshot = br#"{"id":"t-9","subject":"kettle","status":"open"}"#;
        assert_eq!(Remembered::decode(snapshot).unwrap().ids, ["t-9"]);
        let pair = br#"[{"id":"reply-1","body":"x"},{"id":"t-9","status":"open"}]"#;
        assert_eq!(Remembered::decode(pair).unwrap().ids, ["reply-1", "t-9"]);
        let notice = br#"{"notice_id":"n-1","customer_ids":["c1","c2"]}"#;
        assert_eq!(Remembered::decode(notice).unwrap().ids, ["n-1"]);
        assert!(Remembered::decode(b"42").is_err());
    }
}
