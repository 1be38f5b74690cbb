//! The care service: protected customer profiles and tiers, follow-up visits after a
//! resolution, CSAT surveys, proactive care and KPI analytics.
//!
//! A request flows `api` (tonic: decode, validate, map errors) → `usecases` (one module
//! per capability, every command run through the shared command pipeline) → `domain`
//! (pure rules) and `store` (sea-orm; entities never leave it); the name and contact
//! fields are sealed with the suite's scheme (`aftersales_platform::seal`); `projection` folds the other services' events into care's read model inside
//! the consumer's transaction; `ports` holds the tickets client that reopens tickets. The
//! deadline worker fires follow-up due times and reopen retries through
//! `usecases::deadlines`; `worker` runs the event consumers and the retention run.

pub mod api;
pub mod app;
pub mod domain;
pub mod error;
pub mod events;
pub mod ports;
pub mod projection;
pub mod proto;
pub mod store;
pub mod usecases;
pub mod worker;
