//! The dispatch service: the repair-partner network, repair jobs offered to the best
//! partner, visits against the on-site SLA, quotes price-checked against fee schedules,
//! scorecards and monthly settlement.
//!
//! A request flows `api` (tonic: decode, validate, map errors) → `service` (use cases:
//! one transaction each) → `domain` (pure rules) and `store` (sea-orm); `worker` fires
//! offer and visit deadlines.

pub mod api;
pub mod app;
pub mod domain;
pub mod error;
pub mod events;
pub mod proto;
pub mod service;
pub mod store;
pub mod worker;
