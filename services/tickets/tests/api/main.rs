//! Black-box tests of the tickets service: each test spawns the real service on port 0
//! with a fresh database (PostgreSQL + Redis, or SQLite + in-process queue) and talks
//! gRPC to it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod commitments;
mod complexity;
mod desk;
mod desk_access;
mod emergencies;
mod helpers;
mod live_desk;
mod milestone_edges;
mod milestones;
mod other_services;
mod personal_data;
mod policy_editions;
mod product_facts;
mod replays;
mod routing;
mod routing_admin;
mod sla;
mod team_support;
mod tickets;
mod tiers;
mod week;
mod week_model;
mod week_script;
