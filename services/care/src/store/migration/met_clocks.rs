//! Met SLA clocks (tickets.SlaClockMet), one row per clock and cycle: the primary key is
//! what makes a redelivered or republished event count once. Read by the instant met,
//! for the KPIs' clock lateness.

use aftersales_platform::db::schema::{index, text, ts, ts_null};
use sea_orm_migration::prelude::*;

pub struct CreateMetClocks;

impl MigrationName for CreateMetClocks {
    fn name(&self) -> &str {
        "m20261202_000080_create_met_clocks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateMetClocks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("met_clocks")
                .if_not_exists()
                .col(text("clock_id"))
                // A u32 on the wire: a big integer holds all of it on both backends.
                .col(ColumnDef::new("cycle").big_integer().not_null().to_owned())
                .col(text("ticket_id"))
                .col(ColumnDef::new("kind").integer().not_null().to_owned())
                .col(ts_null("due_at"))
                .col(ts("met_at"))
                .col(
                    ColumnDef::new("actual_minus_standard_ms")
                        .big_integer()
                        .not_null()
                        .to_owned(),
                )
                .primary_key(Index::create().col("clock_id").col("cycle"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("met_clocks_met_at", "met_clocks", &["met_at"]))
            .await
    }
}
