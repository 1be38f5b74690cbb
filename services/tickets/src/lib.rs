//! The tickets service: complaints and service requests with severity, assignment,
//! escalation and SLA clocks that fire within a second of their due time.
//!
//! A request flows `api` (tonic: decode, validate, map errors) → `usecases` (one module
//! per capability; every command runs through the suite's command pipeline) → `domain`
//! (pure rules) and `store` (sea-orm; entities never leave it). `usecases::deadlines`
//! says what the SLA clocks on the queue mean and fires them in batches; `consumer`
//! applies other services' events.

pub mod api;
pub mod app;
pub mod consumer;
pub mod domain;
pub mod error;
pub mod events;
pub mod proto;
pub mod store;
pub mod usecases;
