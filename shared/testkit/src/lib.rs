//! Test support for integration tests against real PostgreSQL and Redis: a fresh database
//! per test, a unique Redis key prefix per test, and clear messages when a backend is down.
//! `make test` runs `tests/setup/backends.sh` first, which installs and starts both.

pub mod oidc;

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database};

/// The PostgreSQL server used to create test databases (`TEST_POSTGRES_URL`).
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The Redis server tests use (`TEST_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A database of its own for one test, on the test PostgreSQL server. Names start with
/// `aftersales_test_`, so the set-up script can drop what earlier runs left.
pub async fn fresh_postgres_url() -> anyhow::Result<String> {
    let admin_url = postgres_admin_url();
    let admin = Database::connect(&admin_url).await.with_context(|| {
        format!("PostgreSQL at {admin_url} is not reachable: run tests/setup/backends.sh (make test does)")
    })?;
    let name = format!("aftersales_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .context("creating a test database")?;
    admin.close().await.ok();
    let base = admin_url
        .rsplit_once('/')
        .map(|(base, _)| base)
        .unwrap_or(&admin_url);
    Ok(format!("{base}/{name}"))
}

/// An SQLite database file of its own for one test, under the system temp directory.
pub fn fresh_sqlite_url() -> String {
    let path = std::env::temp_dir().join(format!(
        "aftersales-test-{}.db",
        uuid::Uuid::new_v4().simple()
    ));
    format!("sqlite://{}?mode=rwc", path.display())
}

/// A Redis key prefix of its own for one test, so tests share one server safely.
pub fn unique_prefix() -> String {
    format!("test-{}:", uuid::Uuid::new_v4().simple())
}

/// A connection manager to the test Redis, failing with a hint when it is down.
pub async fn redis_connection() -> anyhow::Result<redis::aio::ConnectionManager> {
    let url = redis_url();
    let client = redis::Client::open(url.as_str())?;
    // Generous timeouts: tests share two cores with builds and each other, and the
    // default half-second response timeout turns a busy moment into a failed test.
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(std::time::Duration::from_secs(5)))
        .set_response_timeout(Some(std::time::Duration::from_secs(5)))
        .set_number_of_retries(3);
    redis::aio::ConnectionManager::new_with_config(client, config)
        .await
        .with_context(|| {
            format!("Redis at {url} is not reachable: run tests/setup/backends.sh (make test does)")
        })
}

/// Which database a service test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub async fn fresh_url(self) -> anyhow::Result<String> {
        match self {
            Backend::Postgres => fresh_postgres_url().await,
            Backend::Sqlite => Ok(fresh_sqlite_url()),
        }
    }
}
