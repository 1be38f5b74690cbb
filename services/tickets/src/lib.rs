//! The tickets service: complaints and service requests with severity, assignment,
//! escalation and SLA clocks that fire within a second of their due time.
//!
//! A request flows `api` (tonic: decode, validate, map errors) → `service` (use cases:
//! one transaction each) → `domain` (pure rules) and `store` (sea-orm); `worker` fires
//! the SLA clocks.

pub mod api;
pub mod app;
pub mod consumer;
pub mod domain;
pub mod error;
pub mod events;
pub mod proto;
pub mod service;
pub mod store;
pub mod worker;
