#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test
//! A statement larger than one write of the driver on PostgreSQL, against a small one. With
//! TCP_NODELAY on the driver's sockets (the patched `shared/vendor/sqlx-core`, see Cargo.toml)
//! both take about a round trip; without it each large one waits ~40 ms for the server's
//! delayed ACK. A measurement: it prints the medians and asserts no timing.

use std::time::{Duration, Instant};

use aftersales_testkit::Backend;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

const ROUNDS: usize = 40;

async fn median(db: &sea_orm::DatabaseConnection, statement: &Statement) -> Duration {
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        db.query_one_raw(statement.clone()).await.unwrap().unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    times[ROUNDS / 2]
}

#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn measure_a_large_statement_against_a_small_one() {
    let db = Database::connect(Backend::Postgres.fresh_url().await.unwrap())
        .await
        .unwrap();
    let small = Statement::from_string(DbBackend::Postgres, "SELECT 1 AS n");
    let large = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT length($1) AS n",
        ["x".repeat(64 * 1024).into()],
    );
    let (small, large) = (median(&db, &small).await, median(&db, &large).await);
    println!(
        "statement latency on PostgreSQL, median of {ROUNDS}: small {small:?}, 64 KiB {large:?} \
         ({:.1} x)",
        large.as_secs_f64() / small.as_secs_f64()
    );
}
