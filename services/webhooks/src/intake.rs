//! The consumer that turns the suite's events into deliveries: one consumer per stream
//! (tickets, returns, dispatch, care and this service's own), all in the group
//! `webhooks`. The deliveries of a whole read are inserted together, in the transaction
//! that records its events processed, so a redelivered event adds none; the first
//! attempts are made once it commits (and the schedule's periodic rebuild restores any a
//! crash lost in between).

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use aftersales_eventbus::{
    EventBus,
    consumer::{Consumer, ConsumerSettings, EventEnvelopeHandler},
};
use aftersales_platform::CancellationToken;
use aftersales_protos::events::v1::EventEnvelope;
use aftersales_runtime::command::Pending;
use sea_orm::DatabaseTransaction;
use tokio::task::JoinHandle;

use crate::{
    events::STREAMS,
    usecases::{Intaken, NewDeliveries, NextAttempt, Subscriber, WebhooksCore},
};

pub const GROUP: &str = "webhooks";

/// How long a delivery may stay unacknowledged before another read takes it over.
const STALE_AFTER: Duration = Duration::from_secs(5);

pub struct Intake {
    core: Arc<WebhooksCore>,
    /// Each applied event's first attempts, made once its transaction commits.
    first_attempts: Pending<Vec<NextAttempt>>,
    /// The enabled endpoints as read in the current transaction, for the rest of its read:
    /// every event of a read was published before the read began, so an endpoint created
    /// after this was read is newer than all of them and owed none. One per consumer.
    subscribers: Mutex<Option<Arc<Vec<Subscriber>>>>,
    /// The deliveries of the current transaction's events, written just before it
    /// commits.
    deliveries: Mutex<NewDeliveries>,
}

impl Intake {
    pub fn new(core: Arc<WebhooksCore>) -> Arc<Self> {
        Arc::new(Self {
            core,
            first_attempts: Pending::default(),
            subscribers: Mutex::default(),
            deliveries: Mutex::default(),
        })
    }
}

impl EventEnvelopeHandler for Intake {
    async fn handle_event(
        &self,
        txn: &DatabaseTransaction,
        envelope: &EventEnvelope,
    ) -> Result<(), String> {
        let cached = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let subscribers = match cached {
            Some(subscribers) => subscribers,
            None => {
                let read = Arc::new(
                    self.core
                        .subscribers(txn)
                        .await
                        .map_err(|e| e.to_string())?,
                );
                *self
                    .subscribers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(read.clone());
                read
            }
        };
        let Intaken {
            deliveries,
            first_attempts,
        } = self
            .core
            .intake(envelope, &subscribers)
            .map_err(|e| e.to_string())?;
        self.deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .append(deliveries);
        // A retry of a delivery whose commit failed replaces what its first run left.
        self.first_attempts.keep(&envelope.id, first_attempts);
        Ok(())
    }

    fn batch_started(&self) {
        *self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        // What a rolled-back transaction gathered is its handlings' again when retried.
        *self
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = NewDeliveries::default();
    }

    async fn before_commit(&self, txn: &DatabaseTransaction) -> Result<(), String> {
        let deliveries = std::mem::take(
            &mut *self
                .deliveries
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        self.core
            .insert_intaken(txn, deliveries)
            .await
            .map_err(|e| e.to_string())
    }

    fn committed(&self, envelope: &EventEnvelope) {
        if let Some(first_attempts) = self.first_attempts.take(&envelope.id) {
            self.core.attempt_now(first_attempts);
        }
    }
}

/// Starts `per_stream` consumers on each stream, until `stop`.
pub fn spawn(
    core: &Arc<WebhooksCore>,
    bus: &EventBus,
    block: Duration,
    per_stream: usize,
    stop: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    STREAMS
        .iter()
        .flat_map(|stream| std::iter::repeat_n(*stream, per_stream.max(1)))
        .map(|stream| {
            // One handler per consumer: its endpoint list belongs to that consumer's read.
            let intake = Intake::new(core.clone());
            let mut settings = ConsumerSettings::new(stream, GROUP);
            settings.block = block;
            settings.stale_after = STALE_AFTER;
            let consumer = Consumer::new(core.db().clone(), bus.clone(), settings, intake);
            tokio::spawn(consumer.run(stop.clone()))
        })
        .collect()
}
