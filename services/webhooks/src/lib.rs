//! The webhooks service: the suite's events pushed to partners and internal subscribers
//! as signed HTTP calls (Standard Webhooks 1.0), at least once, retried with back-off on
//! the suite's deadline engine, with a delivery log per endpoint and replay.
//!
//! A request flows `api` (tonic: decode, validate, map errors) → `usecases` (every
//! command through the suite's command pipeline) → `domain` (pure rules: catalogue,
//! signing, retry schedule, target rules) and `store` (sea-orm). `intake` consumes the
//! event streams into deliveries; `sender` makes the HTTP attempts.

pub mod api;
pub mod app;
pub mod domain;
pub mod error;
pub mod events;
pub mod intake;
pub mod proto;
pub mod sender;
pub mod store;
pub mod usecases;
