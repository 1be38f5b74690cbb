//! Black-box tests of the dispatch service: each test spawns the real service on port 0
//! with a fresh database (PostgreSQL + Redis, or SQLite + in-process queue) and talks gRPC
//! to it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod capacity;
mod contacts;
mod costs;
mod deadlines;
mod flow;
mod helpers;
mod history;
mod partner_events;
mod parts;
mod parts_month;
mod remote;
mod returns;
