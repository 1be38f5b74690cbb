//! The bus both backends implement: append to a stream, read it through a consumer group,
//! acknowledge, and take over deliveries another consumer left unacknowledged.

use std::{collections::HashMap, time::Duration};

use crate::{MemoryBus, RedisBus};

/// One event on a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMessage {
    pub event_id: String,
    pub event_type: String,
    pub subject_id: String,
    pub payload: Vec<u8>,
    /// Trace context (`traceparent`, `tracestate`).
    pub headers: HashMap<String, String>,
}

/// A message handed to one consumer of a group; ack it by `delivery_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub delivery_id: String,
    pub message: BusMessage,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("malformed message {delivery_id} on {stream}: {reason}")]
    Malformed {
        stream: String,
        delivery_id: String,
        reason: String,
    },
}

#[derive(Clone, Debug)]
pub enum EventBus {
    Redis(RedisBus),
    Memory(MemoryBus),
}

impl EventBus {
    pub async fn publish(&self, stream: &str, messages: &[BusMessage]) -> Result<(), BusError> {
        match self {
            Self::Redis(bus) => bus.publish(stream, messages).await,
            Self::Memory(bus) => {
                bus.publish(stream, messages);
                Ok(())
            }
        }
    }

    /// True once after the bus lost its data (a flushed or restarted Redis) — and on the
    /// very first call against a fresh Redis, and once per owner from the in-process bus,
    /// which starts empty with its process.
    /// Each `owner` (a publishing service) sees each loss once.
    pub async fn check_lost(&self, owner: &str) -> Result<bool, BusError> {
        match self {
            Self::Redis(bus) => bus.check_lost(owner).await,
            Self::Memory(bus) => Ok(bus.check_lost(owner)),
        }
    }

    /// Creates the group if missing; a new group starts at the beginning of the stream.
    pub async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), BusError> {
        match self {
            Self::Redis(bus) => bus.ensure_group(stream, group).await,
            Self::Memory(bus) => {
                bus.ensure_group(stream, group);
                Ok(())
            }
        }
    }

    /// New messages for `consumer`, waiting up to `block` when there are none.
    pub async fn read(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, BusError> {
        match self {
            Self::Redis(bus) => bus.read(stream, group, consumer, count, block).await,
            Self::Memory(bus) => Ok(bus.read(stream, group, consumer, count, block).await),
        }
    }

    pub async fn ack(
        &self,
        stream: &str,
        group: &str,
        delivery_ids: &[String],
    ) -> Result<(), BusError> {
        if delivery_ids.is_empty() {
            return Ok(());
        }
        match self {
            Self::Redis(bus) => bus.ack(stream, group, delivery_ids).await,
            Self::Memory(bus) => {
                bus.ack(stream, group, delivery_ids);
                Ok(())
            }
        }
    }

    /// Deliveries unacknowledged for at least `min_idle` (their consumer died), now
    /// handed to `consumer`.
    /// `(not yet delivered, delivered and unacknowledged)` for a consumer group.
    pub async fn group_stats(&self, stream: &str, group: &str) -> Result<(u64, u64), BusError> {
        match self {
            Self::Redis(bus) => bus.group_stats(stream, group).await,
            Self::Memory(bus) => Ok(bus.group_stats(stream, group)),
        }
    }

    pub async fn claim_stale(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>, BusError> {
        match self {
            Self::Redis(bus) => {
                bus.claim_stale(stream, group, consumer, min_idle, count)
                    .await
            }
            Self::Memory(bus) => Ok(bus.claim_stale(stream, group, consumer, min_idle, count)),
        }
    }
}
