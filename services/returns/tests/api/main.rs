//! Black-box tests of the returns service: each test spawns the real service on port 0
//! with a fresh database (PostgreSQL + Redis, or SQLite + in-process queue), a simulated
//! carrier and payment provider, and talks gRPC to it.

mod flow;
mod helpers;
