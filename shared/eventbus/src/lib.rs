//! Events between services: a transactional outbox in each service's own database, a
//! relay that publishes it to Redis Streams (or an in-process bus for the embedded
//! default), and consumer groups whose handlers apply each event once (processed-event
//! table in the consumer's database, written in the handler's transaction). A delivery
//! that is not an event envelope is dead-lettered at once, for every consumer alike.
//!
//! Delivery is at least once: the relay may publish a row twice if it dies between
//! publishing and marking it, and a consumer sees an event again if it dies before
//! acknowledging; both are absorbed by the processed-event table.
//!
//! A service adds [`migration::CreateOutbox`] and [`migration::CreateProcessedEvents`]
//! to its migrator.

mod bus;
pub mod consumer;
pub mod entity;
pub mod envelope;
mod memory;
pub mod migration;
pub mod outbox;
mod redis_bus;
pub mod relay;

pub use bus::{BusError, BusMessage, Delivery, EventBus};
pub use memory::MemoryBus;
pub use redis_bus::RedisBus;
