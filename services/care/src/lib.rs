//! The care service: protected customer profiles and tiers, follow-up visits after a
//! resolution, CSAT surveys, proactive care and KPI analytics.
//!
//! A request flows `api` (tonic: decode, validate, map errors) → `service` (use cases:
//! one transaction each) → `domain` (pure rules) and `store` (sea-orm); `vault` seals
//! contact fields; `projection` folds the other services' events into care's read model;
//! `worker` fires follow-up deadlines and retries ticket reopens through `ports`.

pub mod api;
pub mod app;
pub mod domain;
pub mod error;
pub mod events;
pub mod ports;
pub mod projection;
pub mod proto;
pub mod service;
pub mod store;
pub mod vault;
pub mod worker;
