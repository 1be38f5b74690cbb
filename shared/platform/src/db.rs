//! Opens the database a service owns (PostgreSQL in production, an SQLite file for the
//! embedded default) and runs that service's migrations.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::MigratorTrait;

/// How to reach the database and how large a pool to keep.
#[derive(Debug, Clone)]
pub struct DbSettings {
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout: Duration,
}

impl DbSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
        }
    }

    pub fn is_sqlite(&self) -> bool {
        self.url.starts_with("sqlite:")
    }
}

/// Connects with a bounded pool. SQLite gets one connection: writers then queue in the
/// pool instead of failing with "database is locked" when two transactions upgrade.
pub async fn connect(settings: &DbSettings) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(settings.url.clone());
    let max = if settings.is_sqlite() {
        1
    } else {
        settings.max_connections
    };
    options
        .max_connections(max)
        .min_connections(1)
        .connect_timeout(settings.connect_timeout)
        .acquire_timeout(settings.connect_timeout)
        .sqlx_logging(false);
    let db = Database::connect(options).await?;
    if db.get_database_backend() == DbBackend::Sqlite {
        db.execute_unprepared("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;")
            .await?;
    }
    Ok(db)
}

/// Applies every pending migration of `M`; safe to run on each start.
pub async fn migrate<M: MigratorTrait>(db: &DatabaseConnection) -> Result<(), DbErr> {
    M::up(db, None).await
}

/// True for a unique-constraint violation, which callers treat as "someone else won".
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// A stored value that no longer decodes: a bug or a hand-edited row, never user input.
pub fn corrupt(what: &str, err: impl std::fmt::Display) -> DbErr {
    DbErr::Custom(format!("corrupt {what} row: {err}"))
}

/// Parses a stored text code (an enum, a number).
pub fn parse_code<T: std::str::FromStr>(what: &str, text: &str) -> Result<T, DbErr>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| corrupt(what, e))
}

/// Encodes a value for a JSON text column.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<String, DbErr> {
    serde_json::to_string(value).map_err(|e| DbErr::Custom(format!("encoding JSON: {e}")))
}

/// Decodes a JSON text column.
pub fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, DbErr> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

/// Column and index shorthands for migrations, portable between PostgreSQL and SQLite.
pub mod schema {
    use sea_orm_migration::prelude::*;

    pub fn text(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).string().not_null().to_owned()
    }

    pub fn text_null(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).string().null().to_owned()
    }

    pub fn long_text(name: &'static str) -> ColumnDef {
        ColumnDef::new(name).text().not_null().to_owned()
    }

    pub fn ts(name: &'static str) -> ColumnDef {
        ColumnDef::new(name)
            .timestamp_with_time_zone()
            .not_null()
            .to_owned()
    }

    pub fn ts_null(name: &'static str) -> ColumnDef {
        ColumnDef::new(name)
            .timestamp_with_time_zone()
            .null()
            .to_owned()
    }

    pub fn index(
        name: &str,
        table: &'static str,
        columns: &[&'static str],
    ) -> IndexCreateStatement {
        let mut index = Index::create();
        index.name(name).table(table).if_not_exists();
        for column in columns {
            index.col(*column);
        }
        index.to_owned()
    }
}

/// The pool's connections `(in use, idle, limit)`, for the saturation metrics.
pub fn pool_stats(db: &sea_orm::DatabaseConnection) -> (u32, u32, u32) {
    fn of<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>) -> (u32, u32, u32) {
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
        (
            pool.size().saturating_sub(idle),
            idle,
            pool.options().get_max_connections(),
        )
    }
    // The getters panic on another backend, hence the check first.
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => of(db.get_postgres_connection_pool()),
        sea_orm::DbBackend::Sqlite => of(db.get_sqlite_connection_pool()),
        _ => (0, 0, 0),
    }
}
