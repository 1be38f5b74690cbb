//! The webhooks service through its real gRPC API, on both backends (PostgreSQL with
//! Redis, SQLite with the in-process bus and queue), delivering to a real receiver that
//! verifies every call with the official Standard Webhooks library.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

/// One test per backend of an `async fn(Backend)`.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            use aftersales_testkit::Backend;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                super::$name(Backend::Postgres).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                super::$name(Backend::Sqlite).await;
            }
        }
    };
}

mod delivery;
mod endpoints;
mod helpers;
mod retries;
