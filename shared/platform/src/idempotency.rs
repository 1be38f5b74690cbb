//! Idempotency keys: the first result of a command is stored with a fingerprint of the
//! request, inside the command's own transaction, so a retry gets the same answer and
//! creates nothing, and a key reused for a different request is refused.
//!
//! Each service owns an `idempotency_keys` table: add [`migration::CreateIdempotencyKeys`]
//! to its migrator.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, entity::prelude::*};
use sha2::{Digest, Sha256};

pub mod entity {
    //! The stored first results.
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub scope: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub fingerprint: String,
        pub response: Vec<u8>,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod migration {
    //! The table, for the migrator of each service that stores keys.
    use sea_orm_migration::prelude::*;

    pub struct CreateIdempotencyKeys;

    impl MigrationName for CreateIdempotencyKeys {
        fn name(&self) -> &str {
            "m20261123_000003_create_idempotency_keys"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateIdempotencyKeys {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table("idempotency_keys")
                        .if_not_exists()
                        .col(ColumnDef::new("scope").string().not_null())
                        .col(ColumnDef::new("key").string().not_null())
                        .col(ColumnDef::new("fingerprint").string().not_null())
                        .col(ColumnDef::new("response").blob().not_null())
                        .col(
                            ColumnDef::new("created_at")
                                .timestamp_with_time_zone()
                                .not_null(),
                        )
                        .primary_key(Index::create().col("scope").col("key"))
                        .to_owned(),
                )
                .await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .drop_table(Table::drop().table("idempotency_keys").to_owned())
                .await
        }
    }
}

/// What a key says about a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Recall {
    /// Never seen: do the work, then [`remember`] the result.
    Fresh,
    /// Seen with the same request: answer with this stored response.
    Replay(Vec<u8>),
    /// Seen with a different request: refuse.
    Mismatch,
}

/// A stable fingerprint of a request's encoded bytes (without its idempotency key).
pub fn fingerprint(request_bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(request_bytes))
}

/// Looks the key up, inside the caller's transaction.
pub async fn recall<C: ConnectionTrait>(
    conn: &C,
    scope: &str,
    key: &str,
    fingerprint: &str,
) -> Result<Recall, DbErr> {
    let found = entity::Entity::find_by_id((scope.to_owned(), key.to_owned()))
        .one(conn)
        .await?;
    Ok(match found {
        None => Recall::Fresh,
        Some(row) if row.fingerprint == fingerprint => Recall::Replay(row.response),
        Some(_) => Recall::Mismatch,
    })
}

/// Stores the first result. A concurrent twin fails this insert with a unique violation,
/// its transaction rolls back, and its retry finds the stored result.
pub async fn remember<C: ConnectionTrait>(
    conn: &C,
    scope: &str,
    key: &str,
    fingerprint: &str,
    response: Vec<u8>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    entity::Entity::insert(entity::ActiveModel {
        scope: Set(scope.to_owned()),
        key: Set(key.to_owned()),
        fingerprint: Set(fingerprint.to_owned()),
        response: Set(response),
        created_at: Set(now),
    })
    .exec(conn)
    .await?;
    Ok(())
}

/// Drops keys older than `before`; run periodically so the table stays small.
pub async fn forget_before<C: ConnectionTrait>(
    conn: &C,
    before: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let res = entity::Entity::delete_many()
        .filter(entity::Column::CreatedAt.lt(before))
        .exec(conn)
        .await?;
    Ok(res.rows_affected)
}

/// An idempotency key with the fingerprint of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: String,
}

/// Why a keyed command cannot go ahead.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("idempotency key {key:?} was already used for a different request")]
    Reused { key: String },
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// Errors that may carry a database error (to spot a concurrent twin's unique violation).
pub trait CarriesDbErr {
    fn db_err(&self) -> Option<&DbErr>;
}

/// Runs a keyed command; if a concurrent twin with the same key committed first (this
/// attempt's idempotency insert hit its row), runs it again to answer with the twin's result.
pub async fn once_more_after_a_twin<T, E, F, Fut>(
    idem: Option<&Idempotency>,
    attempt: F,
) -> Result<T, E>
where
    E: CarriesDbErr,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    match attempt().await {
        Err(err) if idem.is_some() && err.db_err().is_some_and(crate::db::is_unique_violation) => {
            attempt().await
        }
        other => other,
    }
}
