//! Black-box tests of the care service: each test spawns the real service on port 0 with
//! a fresh database (PostgreSQL + Redis, or SQLite + in-process bus and queue) and talks
//! gRPC to it; follow-up tests run a real tickets service on the same bus.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod clock_lateness;
mod costs;
mod data_rights;
mod follow_ups;
mod helpers;
mod incidents;
mod kpis;
mod proactive;
mod profiles;
mod spot_checks;
mod ticket_events;
