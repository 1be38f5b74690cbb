//! The returns service: return and exchange requests with eligibility rules, reverse
//! logistics through carriers, inspection into the after-sales stock ledger, and refunds
//! paid exactly once through a payment provider.
//!
//! A request flows `api` (tonic: decode, validate, map errors) → `service` (use cases:
//! one transaction each) → `domain` (pure rules) and `store` (sea-orm); `ports` holds the
//! carrier and payment-provider adapters; `worker` fires step deadlines and retries refunds.

pub mod api;
pub mod app;
pub mod domain;
pub mod error;
pub mod events;
pub mod ports;
pub mod proto;
pub mod service;
pub mod store;
pub mod worker;
