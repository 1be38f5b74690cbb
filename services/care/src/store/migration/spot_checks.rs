//! Spot checks: the instant each ticket was first resolved, as a column the week's sample
//! is read by, and one row per scored spot check (the sample itself is computed, never
//! stored). Facts folded before this migration get the column from their stored body.

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
        backfill_resolved_at(m).await?;
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

/// Facts in one backfill read.
const BACKFILL_PAGE: u64 = 500;

/// Copies `first_resolved_at` of every stored fact body into the new column, a page of
/// facts at a time (in ticket id order) so a large table is never read whole.
async fn backfill_resolved_at(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = m.get_connection();
    let backend = db.get_database_backend();
    let mut after = String::new();
    loop {
        let page = Query::select()
            .columns([Alias::new("ticket_id"), Alias::new("body")])
            .from(Alias::new("ticket_facts"))
            .and_where(Expr::col(Alias::new("ticket_id")).gt(after.clone()))
            .order_by(Alias::new("ticket_id"), Order::Asc)
            .limit(BACKFILL_PAGE)
            .to_owned();
        let rows = db.query_all_raw(backend.build(&page)).await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.try_get("", "ticket_id")?;
        for row in &rows {
            let id: String = row.try_get("", "ticket_id")?;
            let body: String = row.try_get("", "body")?;
            // A body that does not parse is left for the next event about the ticket.
            let resolved = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("first_resolved_at")?.as_str().map(str::to_owned))
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.to_utc());
            if let Some(resolved) = resolved {
                let update = Query::update()
                    .table(Alias::new("ticket_facts"))
                    .value(Alias::new("resolved_at"), resolved)
                    .and_where(Expr::col(Alias::new("ticket_id")).eq(id))
                    .to_owned();
                db.execute_raw(backend.build(&update)).await?;
            }
        }
        if (rows.len() as u64) < BACKFILL_PAGE {
            return Ok(());
        }
    }
}
