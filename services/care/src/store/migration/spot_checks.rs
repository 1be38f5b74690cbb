//! Spot checks: the instant each ticket was first resolved and the agent and group it is
//! charged to, as columns the week's sample is read by without decoding fact bodies, and
//! one row per scored spot check (the sample itself is computed, never stored). Facts
//! folded before this migration get the columns from their stored body. Every step is
//! guarded (column checks, `if not exists`, an idempotent backfill), so it can run again.

use aftersales_platform::db::schema::{index, long_text, text, text_null, ts, ts_null};
use sea_orm_migration::prelude::*;

pub struct AddSpotChecks;

impl MigrationName for AddSpotChecks {
    fn name(&self) -> &str {
        "m20261202_000071_add_spot_checks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddSpotChecks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            ts_null("resolved_at"),
            text_null("agent_id"),
            text_null("group_id"),
        ] {
            if !m
                .has_column("ticket_facts", &column.get_column_name())
                .await?
            {
                m.alter_table(
                    Table::alter()
                        .table("ticket_facts")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
            }
        }
        backfill_columns(m).await?;
        m.create_index(index(
            "ticket_facts_resolved_at",
            "ticket_facts",
            &["resolved_at", "agent_id"],
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

/// Copies `first_resolved_at` and the agent and group of every stored fact body into the
/// new columns, a page of facts at a time (in ticket id order) so a large table is never
/// read whole.
async fn backfill_columns(m: &SchemaManager<'_>) -> Result<(), DbErr> {
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
            let Ok(fact) = serde_json::from_str::<serde_json::Value>(&body) else {
                continue;
            };
            let text =
                |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
            let resolved = text(fact.get("first_resolved_at"))
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.to_utc());
            let dims = fact.get("dims");
            let agent = text(dims.and_then(|d| d.get("agent")));
            let group = text(dims.and_then(|d| d.get("group")));
            if resolved.is_none() && agent.is_none() && group.is_none() {
                continue;
            }
            let update = Query::update()
                .table(Alias::new("ticket_facts"))
                .value(Alias::new("resolved_at"), resolved)
                .value(Alias::new("agent_id"), agent)
                .value(Alias::new("group_id"), group)
                .and_where(Expr::col(Alias::new("ticket_id")).eq(id))
                .to_owned();
            db.execute_raw(backend.build(&update)).await?;
        }
        if (rows.len() as u64) < BACKFILL_PAGE {
            return Ok(());
        }
    }
}
