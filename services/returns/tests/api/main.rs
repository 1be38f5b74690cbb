//! Black-box tests of the returns service: each test spawns the real service on port 0
//! with a fresh database (PostgreSQL + Redis, or SQLite + in-process queue), a simulated
//! carrier and payment provider, and talks gRPC to it.

// A panic here is a failed test, not a crashed service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod compensation;
mod deadlines;
mod flow;
mod helpers;
mod permissions;
mod personal_data;
mod pickup_cost;
mod repairs;
mod replay;
mod third_party;
mod variants;
