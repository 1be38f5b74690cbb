//! The webhooks database schema, oldest migration first. Shared tables (idempotency keys,
//! outbox, processed events, dead letters, audit) come from the crates that own them.

use aftersales_platform::db::schema::{index, long_text, text, ts, ts_null};
use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(aftersales_platform::idempotency::migration::CreateIdempotencyKeys),
            Box::new(aftersales_eventbus::migration::CreateOutbox),
            Box::new(aftersales_eventbus::migration::CreateProcessedEvents),
            Box::new(aftersales_eventbus::migration::CreateDeadLetters),
            Box::new(aftersales_platform::audit::migration::CreateAuditRecords),
            Box::new(CreateWebhookTables),
        ]
    }
}

struct CreateWebhookTables;

impl MigrationName for CreateWebhookTables {
    fn name(&self) -> &str {
        "m20261202_000010_create_webhook_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWebhookTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("endpoints")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("partner_id"))
                .col(long_text("url"))
                .col(long_text("event_types"))
                .col(text("state"))
                .col(long_text("description"))
                .col(long_text("secret"))
                .col(ColumnDef::new("previous_secret").text().null())
                .col(ts_null("previous_secret_expires_at"))
                .col(ts_null("failing_since"))
                .col(long_text("disabled_reason"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "endpoints_by_partner",
            "endpoints",
            &["partner_id", "id"],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table("deliveries")
                .if_not_exists()
                .col(text("endpoint_id"))
                .col(text("id"))
                .col(text("event_type"))
                .col(long_text("body"))
                .col(text("state"))
                .col(long_text("attempts"))
                .col(ts_null("next_attempt_at"))
                .col(ts("created_at"))
                .col(ts_null("delivered_at"))
                .primary_key(Index::create().col("endpoint_id").col("id"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "deliveries_pending",
            "deliveries",
            &["state", "next_attempt_at"],
        ))
        .await
    }
}
