//! Black-box tests of the partner gateway: each test runs the real dispatch service (and
//! returns, for carrier webhooks; webhooks, for partners' webhook endpoints) on fresh
//! PostgreSQL databases with Redis, seeds partners and jobs through dispatch's API, and
//! talks to gateways on port 0 over gRPC and HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod api_contract;
mod carriers;
mod connections;
mod door;
mod helpers;
mod isolation;
mod keys;
mod limits;
mod parts;
mod remote;
mod serving;
mod tokens;
mod webhooks;
