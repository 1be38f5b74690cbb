//! Major incidents: the incidents, the tickets linked to them, and the batch of each
//! ticket fact (what the suite counts complaints by when it proposes one).

use aftersales_platform::db::schema::{index, long_text, text, text_null, ts, ts_null};
use sea_orm_migration::prelude::*;

pub struct CreateIncidents;

impl MigrationName for CreateIncidents {
    fn name(&self) -> &str {
        "m20261202_000050_create_incidents"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateIncidents {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("incidents")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("status"))
                .col(text_null("open_scope"))
                .col(ts("opened_at"))
                .col(ts_null("next_due_at"))
                .col(long_text("body"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("incident_tickets")
                .if_not_exists()
                .col(text("incident_id"))
                .col(text("ticket_id"))
                .col(ts("linked_at"))
                .primary_key(Index::create().col("incident_id").col("ticket_id"))
                .to_owned(),
        )
        .await?;
        // Null for closed incidents, and nulls never collide: one open incident a scope.
        m.create_index(
            index("incidents_open_scope", "incidents", &["open_scope"])
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(index("incidents_next_due", "incidents", &["next_due_at"]))
            .await?;
        m.create_index(index("incidents_opened", "incidents", &["opened_at", "id"]))
            .await?;
        if !m.has_column("ticket_facts", "batch").await? {
            m.alter_table(
                Table::alter()
                    .table("ticket_facts")
                    .add_column(text_null("batch"))
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(index(
            "ticket_facts_batch",
            "ticket_facts",
            &["batch", "created_at"],
        ))
        .await
    }
}
