//! The returns service: return and exchange requests with eligibility rules, reverse
//! logistics through carriers, inspection into the after-sales stock ledger, and refunds
//! paid exactly once through a payment provider.
//!
//! A request flows `api` (tonic: decode, validate, map errors) → `usecases` (one module
//! per capability, every command run through the shared command pipeline) → `domain`
//! (pure rules) and `store` (sea-orm; entities never leave it); `ports` holds the carrier
//! and payment-provider adapters. The deadline worker fires step deadlines and refund
//! retries through `usecases::deadlines`; `consumer` applies other services' events
//! (care's anonymisations).

pub mod api;
pub mod app;
pub mod consumer;
pub mod domain;
pub mod error;
pub mod events;
pub mod ports;
pub mod proto;
pub mod store;
pub mod usecases;
