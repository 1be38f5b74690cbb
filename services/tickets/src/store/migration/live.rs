//! The live desk's order of the outbox (issue 16): on PostgreSQL each outbox row records
//! the transaction that inserted it, so the desk can read rows in the order they became
//! final (see `store::live`). SQLite needs nothing: its one writer commits in `seq` order.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;

pub struct AddOutboxTxid;

impl MigrationName for AddOutboxTxid {
    fn name(&self) -> &str {
        "m20261202_000017_add_outbox_txid"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddOutboxTxid {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        // The default is the inserting transaction's id, whichever code writes the row.
        db.execute_unprepared(
            "ALTER TABLE outbox ADD COLUMN IF NOT EXISTS txid xid8 NOT NULL \
             DEFAULT pg_current_xact_id()",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS outbox_final_order ON outbox (txid, seq)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("ALTER TABLE outbox DROP COLUMN IF EXISTS txid")
                .await?;
        }
        Ok(())
    }
}
