//! The dispatch database schema, oldest migration first. Shared tables (idempotency keys,
//! outbox) come from the crates that own their code.

use aftersales_platform::db::schema::{index, long_text, text, text_null, ts, ts_null};
use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(aftersales_platform::idempotency::migration::CreateIdempotencyKeys),
            Box::new(aftersales_eventbus::migration::CreateOutbox),
            Box::new(CreateDispatchTables),
            Box::new(IndexPartnerLoad),
            Box::new(aftersales_platform::audit::migration::CreateAuditRecords),
            Box::new(aftersales_eventbus::migration::CreateProcessedEvents),
            Box::new(aftersales_eventbus::migration::CreateDeadLetters),
            Box::new(AddContactKeyId),
        ]
    }
}

struct CreateDispatchTables;

impl MigrationName for CreateDispatchTables {
    fn name(&self) -> &str {
        "m20261123_000030_create_dispatch_tables"
    }
}

fn flag(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).boolean().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateDispatchTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let tables = [
            Table::create()
                .table("partners")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("name"))
                .col(flag("active"))
                .col(flag("insured"))
                .col(ColumnDef::new("version").big_integer().not_null())
                .col(long_text("body"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .to_owned(),
            Table::create()
                .table("partner_regions")
                .if_not_exists()
                .col(text("partner_id"))
                .col(text("region_code"))
                .primary_key(Index::create().col("partner_id").col("region_code"))
                .to_owned(),
            Table::create()
                .table("jobs")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("ticket_id"))
                .col(text("customer_id"))
                .col(text("product_line"))
                .col(text("region_code"))
                .col(text("status"))
                .col(text_null("partner_id"))
                .col(ts_null("accepted_at"))
                .col(ts_null("completed_at"))
                .col(ts_null("visit_watch_at"))
                .col(long_text("body"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .to_owned(),
            Table::create()
                .table("offers")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("job_id"))
                .col(text("partner_id"))
                .col(text("status"))
                .col(ts("offered_at"))
                .col(ts("expires_at"))
                .col(long_text("body"))
                .to_owned(),
            Table::create()
                .table("quotes")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("job_id"))
                .col(text("partner_id"))
                .col(text("status"))
                .col(long_text("body"))
                .col(ts("submitted_at"))
                .to_owned(),
            Table::create()
                .table("settlements")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("partner_id"))
                .col(text("month"))
                .col(text("status"))
                .col(long_text("body"))
                .col(ts("updated_at"))
                .to_owned(),
            Table::create()
                .table("partner_keys")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("partner_id"))
                .col(text("prefix"))
                .col(text("secret_hash"))
                .col(text("label"))
                .col(ts("created_at"))
                .col(ts_null("expires_at"))
                .col(ts_null("revoked_at"))
                .to_owned(),
            Table::create()
                .table("contact_reads")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("job_id"))
                .col(text("partner_id"))
                .col(text("operation"))
                .col(ts("read_at"))
                .to_owned(),
        ];
        for table in tables {
            m.create_table(table).await?;
        }
        for (name, table, columns) in [
            (
                "partner_regions_region",
                "partner_regions",
                &["region_code"][..],
            ),
            ("jobs_status", "jobs", &["status", "id"][..]),
            ("jobs_partner", "jobs", &["partner_id", "id"][..]),
            ("jobs_ticket", "jobs", &["ticket_id", "product_line"][..]),
            ("jobs_accepted", "jobs", &["partner_id", "accepted_at"][..]),
            (
                "jobs_completed",
                "jobs",
                &["partner_id", "completed_at"][..],
            ),
            ("jobs_visit_watch", "jobs", &["visit_watch_at", "id"][..]),
            ("offers_job", "offers", &["job_id"][..]),
            (
                "offers_partner",
                "offers",
                &["partner_id", "offered_at"][..],
            ),
            ("offers_open", "offers", &["status", "expires_at"][..]),
            ("quotes_job", "quotes", &["job_id"][..]),
            (
                "settlements_partner",
                "settlements",
                &["partner_id", "id"][..],
            ),
            ("partner_keys_partner", "partner_keys", &["partner_id"][..]),
            ("contact_reads_job", "contact_reads", &["job_id"][..]),
        ] {
            m.create_index(index(name, table, columns)).await?;
        }
        let mut unique = index("settlements_month", "settlements", &["partner_id", "month"]);
        m.create_index(unique.unique().to_owned()).await?;
        let mut unique = index("partner_keys_hash", "partner_keys", &["secret_hash"]);
        m.create_index(unique.unique().to_owned()).await?;
        Ok(())
    }
}

/// Indexes for the per-dispatch load counts (offers taken today, jobs in hand), which
/// otherwise read every offer and job a partner ever had.
struct IndexPartnerLoad;

impl MigrationName for IndexPartnerLoad {
    fn name(&self) -> &str {
        "m20261123_000031_index_partner_load"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IndexPartnerLoad {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(index(
            "offers_partner_status",
            "offers",
            &["partner_id", "status", "offered_at"],
        ))
        .await?;
        m.create_index(index(
            "jobs_partner_status",
            "jobs",
            &["partner_id", "status"],
        ))
        .await
    }
}

/// Jobs' contacts are sealed in their bodies; the row says under which key. Rows from
/// before keep NULL here, which is how start-up (holding the keys a migration does not)
/// finds and seals them. The customer index serves the consumer of `CustomerAnonymised`.
struct AddContactKeyId;

impl MigrationName for AddContactKeyId {
    fn name(&self) -> &str {
        "m20261201_000032_add_job_contact_key_id"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddContactKeyId {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("jobs")
                .add_column(text_null("contact_key_id"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("jobs_customer", "jobs", &["customer_id", "id"]))
            .await?;
        m.create_index(index("jobs_contact_key", "jobs", &["contact_key_id", "id"]))
            .await
    }
}
