//! The dispatch service: the repair-partner network, repair jobs offered to the best
//! partner, visits against the on-site SLA, quotes price-checked against fee schedules,
//! scorecards and monthly settlement.
//!
//! A request flows `api` (tonic: decode, validate, map errors) → `usecases` (one module
//! per capability; every command runs through the suite's command pipeline) → `domain`
//! (pure rules) and `store` (sea-orm; entities never leave it). `usecases::deadlines`
//! says what the offer and visit deadlines on the queue mean and fires them in batches.
//! Customers' contacts are sealed (`usecases::contacts`); `anonymisation` consumes care's
//! `CustomerAnonymised` and erases them; `repairs` consumes returns' `RepairJobRequested`
//! and creates the return's repair job.

pub mod anonymisation;
pub mod api;
pub mod app;
pub mod domain;
pub mod error;
pub mod events;
pub mod proto;
pub mod repairs;
pub mod store;
pub mod usecases;
