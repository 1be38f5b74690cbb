//! Consumer groups that apply each event once: the processed-event row is written in the
//! same transaction as the handler's changes, then the delivery is acknowledged. A
//! duplicate delivery finds the row and is only acknowledged; a failed handler rolls
//! back and the delivery is retried (taken over from a dead consumer after `stale_after`).
//!
//! Every delivery is decoded as an envelope of the suite's event contract
//! (`aftersales.events.v1`) before anything else. One that cannot be decoded never will
//! be, by any retry: it is a permanent failure, stored as a dead letter at once and
//! acknowledged, so the group moves on. This is the rule for every consumer of the suite.
//!
//! A read of several deliveries is applied in one transaction when all of them go
//! through, and acknowledged at once: its processed-event rows are checked with one
//! query and written with one insert, and the handler may write what it gathered from
//! all of them in one statement just before the commit (`before_commit`). When one
//! fails, the read is applied again one delivery at a time, so the rules above hold for
//! each.

use std::{collections::HashSet, future::Future, sync::Arc, time::Duration};

use aftersales_protos::events::v1::EventEnvelope;
use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QuerySelect, TransactionTrait, sea_query::OnConflict,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    BusError, BusMessage, Delivery, EventBus,
    entity::{dead_letter, processed_event},
    envelope,
};

/// How often a running consumer reports its group's lag and pending deliveries.
const STATS_EVERY: Duration = Duration::from_secs(10);

/// What a consumer does with one delivery, inside the transaction that records it
/// processed. The handler applies it in that transaction and opens no other: the
/// consumer holds a connection for it (on SQLite the pool's only one), so a second
/// transaction would wait for the first to end.
///
/// Handlers of the suite's events implement [`EventEnvelopeHandler`] and get the envelope
/// the consumer decoded; this trait is for handlers that only need the delivery.
pub trait EventHandler: Send + Sync + 'static {
    fn handle(
        &self,
        txn: &DatabaseTransaction,
        message: &BusMessage,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// What the consumer calls, with the envelope it decoded from `message`: by default
    /// [`Self::handle`].
    fn handle_decoded(
        &self,
        txn: &DatabaseTransaction,
        message: &BusMessage,
        _envelope: &EventEnvelope,
    ) -> impl Future<Output = Result<(), String>> + Send {
        self.handle(txn, message)
    }

    /// Called after the transaction that applied `message` committed (not for duplicates
    /// or failures): the place for what must follow the commit, such as waking the relay
    /// of an outbox the handler wrote to, or scheduling the deadlines it set.
    fn committed(&self, _message: &BusMessage, _envelope: &EventEnvelope) {}

    /// Called when a transaction for a new read (or a single delivery) begins, before any
    /// of its deliveries is handled. Every delivery handled until the next call was
    /// published before this one, so a handler may read what it matches events against
    /// once here, in the first handling after it, and reuse it for the rest.
    fn batch_started(&self) {}

    /// Called once a read's (or a single delivery's) handlings all succeeded, in their
    /// transaction, just before it commits: the place to write in one statement what the
    /// handlings gathered (rows of many events in one multi-row insert). A failure here
    /// rolls the transaction back as a failed handling would.
    fn before_commit(
        &self,
        _txn: &DatabaseTransaction,
    ) -> impl Future<Output = Result<(), String>> + Send {
        async { Ok(()) }
    }
}

/// A handler of the suite's events (`aftersales.events.v1`): gets each delivery as the
/// envelope the consumer decoded, inside the transaction that records it processed, and
/// applies it in that transaction (see [`EventHandler`]).
pub trait EventEnvelopeHandler: Send + Sync + 'static {
    fn handle_event(
        &self,
        txn: &DatabaseTransaction,
        envelope: &EventEnvelope,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// As [`EventHandler::committed`].
    fn committed(&self, _envelope: &EventEnvelope) {}

    /// As [`EventHandler::batch_started`].
    fn batch_started(&self) {}

    /// As [`EventHandler::before_commit`].
    fn before_commit(
        &self,
        _txn: &DatabaseTransaction,
    ) -> impl Future<Output = Result<(), String>> + Send {
        async { Ok(()) }
    }
}

impl<T: EventEnvelopeHandler> EventHandler for T {
    async fn handle(&self, txn: &DatabaseTransaction, message: &BusMessage) -> Result<(), String> {
        let envelope = envelope::decode(&message.payload).map_err(|e| undecodable(&e))?;
        self.handle_event(txn, &envelope).await
    }

    fn handle_decoded(
        &self,
        txn: &DatabaseTransaction,
        _message: &BusMessage,
        envelope: &EventEnvelope,
    ) -> impl Future<Output = Result<(), String>> + Send {
        self.handle_event(txn, envelope)
    }

    fn committed(&self, _message: &BusMessage, envelope: &EventEnvelope) {
        EventEnvelopeHandler::committed(self, envelope);
    }

    fn batch_started(&self) {
        EventEnvelopeHandler::batch_started(self);
    }

    fn before_commit(
        &self,
        txn: &DatabaseTransaction,
    ) -> impl Future<Output = Result<(), String>> + Send {
        EventEnvelopeHandler::before_commit(self, txn)
    }
}

/// The span one delivery is handled in, continuing the publisher's trace.
fn consume_span(message: &BusMessage, group: &str) -> tracing::Span {
    let span = tracing::info_span!(
        "consume",
        otel.name = %format!("consume {}", message.event_type),
        otel.kind = "consumer",
        event.id = %message.event_id,
        group = %group,
    );
    aftersales_platform::telemetry::adopt_trace_headers(&span, &message.headers);
    span
}

/// The dead letter's reason for a delivery that is no event envelope.
fn undecodable(err: &prost::DecodeError) -> String {
    format!("undecodable event: {err}")
}

#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub stream: String,
    pub group: String,
    /// Unique per process, e.g. host name plus a random suffix.
    pub consumer: String,
    pub batch: usize,
    /// How long one read waits for new events.
    pub block: Duration,
    /// Unacknowledged for this long, a delivery is taken over from its consumer.
    pub stale_after: Duration,
    /// Failed handlings of one event before it is dead-lettered (stored whole in
    /// `dead_letters` and acknowledged, so the group moves on). An event that cannot be
    /// decoded is dead-lettered on its first delivery.
    pub max_attempts: u32,
}

impl ConsumerSettings {
    pub fn new(stream: impl Into<String>, group: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            group: group.into(),
            consumer: format!("consumer-{}", uuid::Uuid::new_v4().simple()),
            batch: 64,
            block: Duration::from_secs(1),
            stale_after: Duration::from_secs(30),
            max_attempts: 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("bus: {0}")]
    Bus(#[from] BusError),
}

/// How one delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Duplicate,
    Failed(String),
    /// Failed `max_attempts` times, or could not be decoded at all: stored in
    /// `dead_letters` and acknowledged.
    DeadLettered(String),
}

pub struct Consumer<H> {
    db: DatabaseConnection,
    bus: EventBus,
    settings: ConsumerSettings,
    handler: Arc<H>,
    /// Failed handlings per event id in this process (a restart starts counting again).
    failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
}

impl<H: EventHandler> Consumer<H> {
    pub fn new(
        db: DatabaseConnection,
        bus: EventBus,
        settings: ConsumerSettings,
        handler: Arc<H>,
    ) -> Self {
        Self {
            db,
            bus,
            settings,
            handler,
            failures: std::sync::Mutex::default(),
        }
    }

    /// One consumer for each of `streams` in `group`, on the default settings, all
    /// applying through the one `handler`.
    pub fn per_stream(
        db: &DatabaseConnection,
        bus: &EventBus,
        streams: &[&str],
        group: &str,
        handler: Arc<H>,
    ) -> Vec<Self> {
        streams
            .iter()
            .map(|stream| {
                Self::new(
                    db.clone(),
                    bus.clone(),
                    ConsumerSettings::new(*stream, group),
                    handler.clone(),
                )
            })
            .collect()
    }

    /// Reads one batch (stale deliveries first) and applies it; returns the outcomes.
    pub async fn poll_once(&self) -> Result<Vec<Outcome>, ConsumeError> {
        let s = &self.settings;
        self.bus.ensure_group(&s.stream, &s.group).await?;
        let mut deliveries = self
            .bus
            .claim_stale(&s.stream, &s.group, &s.consumer, s.stale_after, s.batch)
            .await?;
        if deliveries.is_empty() {
            deliveries = self
                .bus
                .read(&s.stream, &s.group, &s.consumer, s.batch, s.block)
                .await?;
        }
        if deliveries.len() > 1
            && let Some(outcomes) = self.apply_batch(&deliveries).await
        {
            return Ok(outcomes);
        }
        let mut outcomes = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            outcomes.push(self.apply(delivery).await?);
        }
        Ok(outcomes)
    }

    /// Applies a whole read in one transaction — one commit and one acknowledgement for
    /// all of it, which is what lets a group keep up with a busy stream — when every
    /// delivery decodes and every handling succeeds. Otherwise nothing of it is kept
    /// (`None`), and the caller applies the deliveries one at a time, so a bad one is
    /// retried or dead-lettered alone and holds back none of the others.
    async fn apply_batch(&self, deliveries: &[Delivery]) -> Option<Vec<Outcome>> {
        let decoded: Vec<EventEnvelope> = deliveries
            .iter()
            .map(|d| envelope::decode(&d.message.payload).ok())
            .collect::<Option<_>>()?;
        let s = &self.settings;
        let txn = self.db.begin().await.ok()?;
        self.handler.batch_started();
        let ids: Vec<&str> = deliveries
            .iter()
            .map(|d| d.message.event_id.as_str())
            .collect();
        let fresh = match self.record_processed_many(&txn, &ids).await {
            Ok(Some(fresh)) => fresh,
            Ok(None) | Err(_) => {
                // Another consumer recorded one of them meanwhile (or the database
                // failed): one at a time sorts out which.
                let _ = txn.rollback().await;
                return None;
            }
        };
        let mut outcomes = Vec::with_capacity(deliveries.len());
        for ((delivery, envelope), fresh) in deliveries.iter().zip(&decoded).zip(fresh) {
            if !fresh {
                outcomes.push(Outcome::Duplicate);
                continue;
            }
            let message = &delivery.message;
            let span = consume_span(message, &s.group);
            let handled = self
                .handler
                .handle_decoded(&txn, message, envelope)
                .instrument(span)
                .await;
            if let Err(reason) = handled {
                tracing::debug!(%reason, "a batch of events failed; applying them one by one");
                let _ = txn.rollback().await;
                return None;
            }
            outcomes.push(Outcome::Applied);
        }
        if let Err(reason) = self.handler.before_commit(&txn).await {
            tracing::debug!(%reason, "a batch of events failed; applying them one by one");
            let _ = txn.rollback().await;
            return None;
        }
        txn.commit().await.ok()?;
        for ((delivery, envelope), outcome) in deliveries.iter().zip(&decoded).zip(&outcomes) {
            if *outcome == Outcome::Applied {
                self.forget_failures(&delivery.message.event_id);
                self.handler.committed(&delivery.message, envelope);
            }
        }
        let ids: Vec<String> = deliveries.iter().map(|d| d.delivery_id.clone()).collect();
        if let Err(err) = self.bus.ack(&s.stream, &s.group, &ids).await {
            // Applied and recorded: a redelivery finds them processed and is only
            // acknowledged.
            tracing::warn!(error = %err, "acknowledging a batch of events failed");
        }
        Some(outcomes)
    }

    /// Records `event_id` processed by the group in `txn`; false when it already was.
    async fn record_processed(
        &self,
        txn: &DatabaseTransaction,
        event_id: &str,
    ) -> Result<bool, DbErr> {
        Ok(self.insert_processed(txn, &[event_id]).await? > 0)
    }

    /// Inserts the group's processed-event rows of `event_ids` (distinct), skipping any
    /// already there; returns how many were inserted.
    async fn insert_processed(
        &self,
        txn: &DatabaseTransaction,
        event_ids: &[&str],
    ) -> Result<u64, DbErr> {
        if event_ids.is_empty() {
            return Ok(0);
        }
        let now = Utc::now();
        let rows = event_ids.iter().map(|id| processed_event::ActiveModel {
            consumer_group: Set(self.settings.group.clone()),
            event_id: Set((*id).to_owned()),
            processed_at: Set(now),
        });
        processed_event::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    processed_event::Column::ConsumerGroup,
                    processed_event::Column::EventId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(txn)
            .await
    }

    /// Records a read's `event_ids` processed by the group in `txn` with one read and one
    /// multi-row insert; says of each whether it is fresh (its first sighting: neither
    /// recorded before nor earlier in the same read). `None` when a concurrent consumer
    /// recorded one of them between the read and the insert.
    async fn record_processed_many(
        &self,
        txn: &DatabaseTransaction,
        event_ids: &[&str],
    ) -> Result<Option<Vec<bool>>, DbErr> {
        let group = &self.settings.group;
        let recorded: HashSet<String> = processed_event::Entity::find()
            .select_only()
            .column(processed_event::Column::EventId)
            .filter(processed_event::Column::ConsumerGroup.eq(group.as_str()))
            .filter(processed_event::Column::EventId.is_in(event_ids.iter().copied()))
            .into_tuple::<String>()
            .all(txn)
            .await?
            .into_iter()
            .collect();
        let mut seen = HashSet::with_capacity(event_ids.len());
        let fresh: Vec<bool> = event_ids
            .iter()
            .map(|id| !recorded.contains(*id) && seen.insert(*id))
            .collect();
        let fresh_ids: Vec<&str> = seen.into_iter().collect();
        let expected = fresh_ids.len() as u64;
        let inserted = self.insert_processed(txn, &fresh_ids).await?;
        Ok((inserted == expected).then_some(fresh))
    }

    async fn apply(&self, delivery: Delivery) -> Result<Outcome, ConsumeError> {
        let span = consume_span(&delivery.message, &self.settings.group);
        async {
            let outcome = match envelope::decode(&delivery.message.payload) {
                Ok(envelope) => self.apply_once(&delivery.message, &envelope).await?,
                Err(err) => {
                    self.dead_letter_undecodable(&delivery.message, &err)
                        .await?
                }
            };
            if matches!(outcome, Outcome::Failed(_)) {
                // Left unacknowledged: read again once stale.
                return Ok(outcome);
            }
            let s = &self.settings;
            self.bus
                .ack(
                    &s.stream,
                    &s.group,
                    std::slice::from_ref(&delivery.delivery_id),
                )
                .await?;
            Ok(outcome)
        }
        .instrument(span)
        .await
    }

    /// Records the event processed and has the handler apply it, in one transaction.
    async fn apply_once(
        &self,
        message: &BusMessage,
        envelope: &EventEnvelope,
    ) -> Result<Outcome, ConsumeError> {
        let s = &self.settings;
        let txn = self.db.begin().await?;
        self.handler.batch_started();
        if !self.record_processed(&txn, &message.event_id).await? {
            txn.rollback().await?;
            return Ok(Outcome::Duplicate);
        }
        let handled = match self.handler.handle_decoded(&txn, message, envelope).await {
            Ok(()) => self.handler.before_commit(&txn).await,
            Err(reason) => Err(reason),
        };
        match handled {
            Ok(()) => {
                txn.commit().await?;
                self.forget_failures(&message.event_id);
                self.handler.committed(message, envelope);
                Ok(Outcome::Applied)
            }
            Err(reason) => {
                txn.rollback().await?;
                if self.failed_again(&message.event_id) < s.max_attempts {
                    tracing::warn!(%reason, "event handler failed; the delivery will be retried");
                    return Ok(Outcome::Failed(reason));
                }
                self.dead_letter(message, &reason, s.max_attempts).await?;
                tracing::error!(%reason, attempts = s.max_attempts, "event dead-lettered after repeated failures");
                Ok(Outcome::DeadLettered(reason))
            }
        }
    }

    /// No retry decodes what could not be decoded once: dead-lettered at once. The log
    /// names the event but not its bytes, which may be anything.
    async fn dead_letter_undecodable(
        &self,
        message: &BusMessage,
        err: &prost::DecodeError,
    ) -> Result<Outcome, ConsumeError> {
        let reason = undecodable(err);
        self.dead_letter(message, &reason, 1).await?;
        tracing::error!(
            error = %err,
            event_type = %message.event_type,
            stream = %self.settings.stream,
            bytes = message.payload.len(),
            "undecodable event dead-lettered without retries"
        );
        Ok(Outcome::DeadLettered(reason))
    }

    /// An event that finally went through needs no failure count any more.
    fn forget_failures(&self, event_id: &str) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(event_id);
    }

    /// Counts one more failure of an event; returns how many so far.
    fn failed_again(&self, event_id: &str) -> u32 {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = failures.entry(event_id.to_owned()).or_default();
        *count += 1;
        let seen = *count;
        if seen >= self.settings.max_attempts {
            failures.remove(event_id);
        }
        seen
    }

    async fn dead_letter(
        &self,
        message: &BusMessage,
        reason: &str,
        attempts: u32,
    ) -> Result<(), DbErr> {
        let row = dead_letter::ActiveModel {
            consumer_group: Set(self.settings.group.clone()),
            event_id: Set(message.event_id.clone()),
            stream: Set(self.settings.stream.clone()),
            event_type: Set(message.event_type.clone()),
            subject_id: Set(message.subject_id.clone()),
            payload: Set(message.payload.clone()),
            headers: Set(crate::outbox::encode_headers(&message.headers)),
            error: Set(reason.to_owned()),
            attempts: Set(i32::try_from(attempts).unwrap_or(i32::MAX)),
            failed_at: Set(Utc::now()),
        };
        dead_letter::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    dead_letter::Column::ConsumerGroup,
                    dead_letter::Column::EventId,
                ])
                .update_columns([dead_letter::Column::Error, dead_letter::Column::FailedAt])
                .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Runs until `shutdown`, reporting the group's lag and pending count every
    /// `STATS_EVERY` as `event_consumer_lag` / `event_consumer_pending{group="<stream>:<group>"}`.
    pub async fn run(self, shutdown: CancellationToken) {
        let label = format!("{}:{}", self.settings.stream, self.settings.group);
        let mut last_stats: Option<std::time::Instant> = None;
        while !shutdown.is_cancelled() {
            let result = tokio::select! {
                r = self.poll_once() => r,
                () = shutdown.cancelled() => break,
            };
            if let Err(err) = result {
                tracing::warn!(error = %err, stream = %self.settings.stream, "consuming events failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    () = shutdown.cancelled() => {}
                }
            }
            // After a poll, so the group exists by the first report.
            if last_stats.is_none_or(|t| t.elapsed() >= STATS_EVERY) {
                last_stats = Some(std::time::Instant::now());
                self.report_stats(&label).await;
            }
        }
    }

    async fn report_stats(&self, label: &str) {
        let s = &self.settings;
        match self.bus.group_stats(&s.stream, &s.group).await {
            Ok((lag, pending)) => aftersales_platform::metrics::consumer(label, lag, pending),
            Err(err) => tracing::debug!(error = %err, "consumer group stats unavailable"),
        }
    }
}

/// Puts a dead-lettered event back on its stream (and forgets the dead letter): the
/// group that gave up on it tries again; groups that applied it skip it by event id.
/// False when `group` has no dead letter `event_id`.
pub async fn replay_dead_letter(
    db: &DatabaseConnection,
    bus: &EventBus,
    group: &str,
    event_id: &str,
) -> Result<bool, ConsumeError> {
    let Some(row) = dead_letter::Entity::find_by_id((group.to_owned(), event_id.to_owned()))
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    let message = BusMessage {
        event_id: row.event_id.clone(),
        event_type: row.event_type.clone(),
        subject_id: row.subject_id.clone(),
        payload: row.payload.clone(),
        headers: crate::outbox::decode_headers(&row.headers),
    };
    bus.publish(&row.stream, std::slice::from_ref(&message))
        .await?;
    dead_letter::Entity::delete_by_id((row.consumer_group, row.event_id))
        .exec(db)
        .await?;
    Ok(true)
}
