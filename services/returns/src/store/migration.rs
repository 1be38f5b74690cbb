//! The returns database schema, oldest migration first. Shared tables (idempotency keys,
//! outbox) come from the crates that own their code.

use aftersales_platform::db::schema::{index, long_text, text, text_null, ts, ts_null};
use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(aftersales_platform::idempotency::migration::CreateIdempotencyKeys),
            Box::new(aftersales_eventbus::migration::CreateOutbox),
            Box::new(CreateReturnTables),
            Box::new(aftersales_platform::audit::migration::CreateAuditRecords),
            Box::new(aftersales_eventbus::migration::CreateProcessedEvents),
            Box::new(aftersales_eventbus::migration::CreateDeadLetters),
            Box::new(AddRepairJobs),
            Box::new(AddPriceProtections),
            Box::new(AddCompensations),
        ]
    }
}

struct CreateReturnTables;

impl MigrationName for CreateReturnTables {
    fn name(&self) -> &str {
        "m20261123_000020_create_return_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateReturnTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("returns")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("order_id"))
                .col(text("customer_id"))
                .col(text("status"))
                .col(text("reason"))
                .col(text_null("carrier"))
                .col(text_null("tracking_number"))
                .col(ColumnDef::new("overdue").boolean().not_null())
                .col(long_text("body"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await?;
        for (name, columns) in [
            ("returns_status", &["status", "id"][..]),
            ("returns_order", &["order_id"][..]),
            ("returns_customer", &["customer_id", "id"][..]),
            ("returns_tracking", &["carrier", "tracking_number"][..]),
        ] {
            m.create_index(index(name, "returns", columns)).await?;
        }

        m.create_table(
            Table::create()
                .table("return_deadlines")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("return_id"))
                .col(text("step"))
                .col(ts("due_at"))
                .col(text("state"))
                .col(ts_null("next_fire_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "return_deadlines_return",
            "return_deadlines",
            &["return_id"],
        ))
        .await?;
        m.create_index(index(
            "return_deadlines_next",
            "return_deadlines",
            &["next_fire_at", "id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("refunds")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("return_id"))
                .col(text("state"))
                .col(ts_null("next_attempt_at"))
                .col(long_text("body"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("refunds_return", "refunds", &["return_id"]))
            .await?;
        m.create_index(index("refunds_next", "refunds", &["next_attempt_at", "id"]))
            .await?;

        m.create_table(
            Table::create()
                .table("tracking_events")
                .if_not_exists()
                .col(text("carrier"))
                .col(text("carrier_event_id"))
                .col(text("return_id"))
                .col(text("kind"))
                .col(long_text("detail"))
                .col(ts("occurred_at"))
                .col(ts("recorded_at"))
                .primary_key(Index::create().col("carrier").col("carrier_event_id"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("shipments")
                .if_not_exists()
                .col(text("return_id").primary_key())
                .col(text("carrier"))
                .col(text("tracking_number"))
                .col(ColumnDef::new("fee_minor").big_integer().not_null())
                .col(text("fee_currency"))
                .col(ts("booked_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("shipments_tracking")
                .table("shipments")
                .col("carrier")
                .col("tracking_number")
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "shipments_month",
            "shipments",
            &["carrier", "booked_at"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("stock_ledger")
                .if_not_exists()
                .col(
                    ColumnDef::new("seq")
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(text("return_id"))
                .col(text("sku"))
                .col(ColumnDef::new("quantity").integer().not_null())
                .col(text("movement"))
                .col(ts("at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("stock_ledger_sku", "stock_ledger", &["sku", "seq"]))
            .await?;

        m.create_table(
            Table::create()
                .table("return_policies")
                .if_not_exists()
                .col(text("product_line").primary_key())
                .col(long_text("body"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "return_policies",
            "stock_ledger",
            "shipments",
            "tracking_events",
            "refunds",
            "return_deadlines",
            "returns",
        ] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// The repair job of a return sent to repair, as a column: dispatch's events about the job
/// name the job, and the return is found by it.
struct AddRepairJobs;

impl MigrationName for AddRepairJobs {
    fn name(&self) -> &str {
        "m20261202_000030_add_repair_jobs"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddRepairJobs {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("returns")
                .add_column(text_null("repair_job_id"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("returns_repair_job", "returns", &["repair_job_id"]))
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("returns_repair_job")
                .table("returns")
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("returns")
                .drop_column("repair_job_id")
                .to_owned(),
        )
        .await
    }
}

/// One price-difference refund per order line: the primary key is the rule.
struct AddPriceProtections;

impl MigrationName for AddPriceProtections {
    fn name(&self) -> &str {
        "m20261202_000040_add_price_protections"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddPriceProtections {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("price_protections")
                .if_not_exists()
                .col(text("order_id"))
                .col(text("sku"))
                .col(text("refund_id"))
                .col(ts("claimed_at"))
                .primary_key(Index::create().col("order_id").col("sku"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table("price_protections")
                .if_exists()
                .to_owned(),
        )
        .await
    }
}

/// Compensations on tickets, listed by ticket or status and paid by the worker.
struct AddCompensations;

impl MigrationName for AddCompensations {
    fn name(&self) -> &str {
        "m20261202_000050_add_compensations"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddCompensations {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("compensations")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("ticket_id"))
                .col(text("customer_id"))
                .col(text("status"))
                .col(ts_null("next_attempt_at"))
                .col(long_text("body"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await?;
        for (name, columns) in [
            ("compensations_ticket", &["ticket_id", "id"][..]),
            ("compensations_customer", &["customer_id", "id"][..]),
            ("compensations_status", &["status", "id"][..]),
            ("compensations_next", &["next_attempt_at", "id"][..]),
        ] {
            m.create_index(index(name, "compensations", columns))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("compensations").if_exists().to_owned())
            .await
    }
}
