//! The cost of after-sales: one row per cost entry (by its natural id, so a redelivered
//! or repeated event adds nothing) and one per change of a part's stock at a site (by the
//! event's id), for parts turnover.

use aftersales_platform::db::schema::{index, text, text_null, ts};
use sea_orm_migration::prelude::*;

pub struct CreateCosts;

impl MigrationName for CreateCosts {
    fn name(&self) -> &str {
        "m20261202_000060_create_costs"
    }
}

fn big(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCosts {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("cost_entries")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("kind"))
                .col(text("ticket_id"))
                .col(text_null("product_line"))
                .col(text_null("region"))
                .col(big("amount_minor"))
                .col(text("currency"))
                .col(ts("at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("stock_changes")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("part_id"))
                .col(text("site_id"))
                .col(text("region"))
                .col(big("delta"))
                .col(big("consumed"))
                .col(ts("at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("cost_entries_at", "cost_entries", &["at"]))
            .await?;
        m.create_index(index(
            "stock_changes_region_at",
            "stock_changes",
            &["region", "at"],
        ))
        .await
    }
}
