//! Spot checks: the instant each ticket was first resolved, as a column the week's sample
//! is read by, and one row per scored spot check (the sample itself is computed, never
//! stored). Facts folded before this migration have no such instant until their next
//! event, so tickets resolved before the upgrade are not sampled.

use aftersales_platform::db::schema::{index, long_text, text, ts, ts_null};
use sea_orm_migration::prelude::*;

pub struct AddSpotChecks;

impl MigrationName for AddSpotChecks {
    fn name(&self) -> &str {
        "m20261202_000070_add_spot_checks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddSpotChecks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if !m.has_column("ticket_facts", "resolved_at").await? {
            m.alter_table(
                Table::alter()
                    .table("ticket_facts")
                    .add_column(ts_null("resolved_at"))
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(index(
            "ticket_facts_resolved_at",
            "ticket_facts",
            &["resolved_at"],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table("spot_check_scores")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("ticket_id"))
                .col(ts("week_start"))
                .col(text("agent_id"))
                .col(text("group_id"))
                .col(ts("resolved_at"))
                .col(ColumnDef::new("score").integer().not_null().to_owned())
                .col(long_text("note"))
                .col(text("scored_by"))
                .col(ts("scored_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "spot_check_scores_week",
            "spot_check_scores",
            &["week_start"],
        ))
        .await?;
        m.create_index(index(
            "spot_check_scores_scored_at",
            "spot_check_scores",
            &["scored_at"],
        ))
        .await
    }
}
