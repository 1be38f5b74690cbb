//! Black-box tests of the dispatch service: each test spawns the real service on port 0
//! with a fresh database (PostgreSQL + Redis, or SQLite + in-process queue) and talks gRPC
//! to it.

mod flow;
mod helpers;
mod history;
