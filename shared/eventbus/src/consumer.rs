//! Consumer groups that apply each event once: the processed-event row is written in the
//! same transaction as the handler's changes, then the delivery is acknowledged. A
//! duplicate delivery finds the row and is only acknowledged; a failed handler rolls
//! back and the delivery is retried (taken over from a dead consumer after `stale_after`).

use std::{future::Future, sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    TransactionTrait, sea_query::OnConflict,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{BusError, BusMessage, Delivery, EventBus, entity::processed_event};

/// How often a running consumer reports its group's lag and pending deliveries.
const STATS_EVERY: Duration = Duration::from_secs(10);

/// What a consumer does with one event, inside the transaction that records it processed.
pub trait EventHandler: Send + Sync + 'static {
    fn handle(
        &self,
        txn: &DatabaseTransaction,
        message: &BusMessage,
    ) -> impl Future<Output = Result<(), String>> + Send;
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
}

pub struct Consumer<H> {
    db: DatabaseConnection,
    bus: EventBus,
    settings: ConsumerSettings,
    handler: Arc<H>,
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
        }
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
        let mut outcomes = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            outcomes.push(self.apply(delivery).await?);
        }
        Ok(outcomes)
    }

    async fn apply(&self, delivery: Delivery) -> Result<Outcome, ConsumeError> {
        let span = tracing::info_span!(
            "consume",
            otel.name = %format!("consume {}", delivery.message.event_type),
            otel.kind = "consumer",
            event.id = %delivery.message.event_id,
            group = %self.settings.group,
        );
        aftersales_platform::telemetry::adopt_trace_headers(&span, &delivery.message.headers);
        async {
            let s = &self.settings;
            let txn = self.db.begin().await?;
            let inserted = processed_event::Entity::insert(processed_event::ActiveModel {
                consumer_group: Set(s.group.clone()),
                event_id: Set(delivery.message.event_id.clone()),
                processed_at: Set(Utc::now()),
            })
            .on_conflict(
                OnConflict::columns([processed_event::Column::ConsumerGroup, processed_event::Column::EventId])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
            let outcome = if inserted == 0 {
                txn.rollback().await?;
                Outcome::Duplicate
            } else {
                match self.handler.handle(&txn, &delivery.message).await {
                    Ok(()) => {
                        txn.commit().await?;
                        Outcome::Applied
                    }
                    Err(reason) => {
                        txn.rollback().await?;
                        tracing::warn!(%reason, "event handler failed; the delivery will be retried");
                        return Ok(Outcome::Failed(reason));
                    }
                }
            };
            self.bus
                .ack(&s.stream, &s.group, std::slice::from_ref(&delivery.delivery_id))
                .await?;
            Ok(outcome)
        }
        .instrument(span)
        .await
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
