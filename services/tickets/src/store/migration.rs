//! The tickets database schema, oldest migration first. Shared tables (idempotency keys,
//! outbox) come from the crates that own their code.

use aftersales_platform::db::schema::{index, long_text, text, text_null, ts, ts_null};
use sea_orm_migration::prelude::*;

mod complexity;
mod emergencies;
mod held_replies;
mod live;
mod milestones;
mod teams;

pub struct Migrator;

/// Adds each `(table, column)` a table does not have yet, one statement per column:
/// SQLite alters a table one column at a time.
async fn add_missing_columns(
    m: &SchemaManager<'_>,
    columns: impl IntoIterator<Item = (&'static str, ColumnDef)>,
) -> Result<(), DbErr> {
    for (table, mut column) in columns {
        let name = column.get_column_name();
        if !m.has_column(table, &name).await? {
            m.alter_table(
                Table::alter()
                    .table(table)
                    .add_column(&mut column)
                    .to_owned(),
            )
            .await?;
        }
    }
    Ok(())
}

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(aftersales_platform::idempotency::migration::CreateIdempotencyKeys),
            Box::new(aftersales_eventbus::migration::CreateOutbox),
            Box::new(CreateTicketTables),
            Box::new(aftersales_eventbus::migration::CreateProcessedEvents),
            Box::new(CreateCustomerTiers),
            Box::new(aftersales_eventbus::migration::CreateDeadLetters),
            Box::new(aftersales_platform::audit::migration::CreateAuditRecords),
            Box::new(AddProductFacts),
            Box::new(AddDeskColumns),
            Box::new(emergencies::AddEmergencyHolds),
            Box::new(emergencies::AddIncidentLinks),
            Box::new(teams::AddTeams),
            Box::new(live::AddOutboxTxid),
            Box::new(teams::AddQueueRisk),
            Box::new(complexity::AddTicketComplexity),
            Box::new(held_replies::AddHeldReplies),
            Box::new(milestones::AddMilestones),
        ]
    }
}

/// The product facts of tickets (issue 15): nullable columns, so tickets created before
/// keep none, and an index per fact a listing filters on, newest first within it.
struct AddProductFacts;

/// The product-fact columns, with the index of the ones a listing filters on.
const PRODUCT_FACTS: [(&str, Option<&str>); 5] = [
    ("sku", Some("tickets_sku")),
    ("product_line", Some("tickets_product_line")),
    ("batch", Some("tickets_batch")),
    ("region_code", Some("tickets_region")),
    ("order_line_id", None),
];

impl MigrationName for AddProductFacts {
    fn name(&self) -> &str {
        "m20261202_000012_add_ticket_product_facts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddProductFacts {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (column, index_name) in PRODUCT_FACTS {
            // One column per statement: SQLite alters one at a time.
            if !m.has_column("tickets", column).await? {
                m.alter_table(
                    Table::alter()
                        .table("tickets")
                        .add_column(text_null(column))
                        .to_owned(),
                )
                .await?;
            }
            if let Some(name) = index_name {
                m.create_index(index(name, "tickets", &[column, "id"]))
                    .await?;
            }
        }
        Ok(())
    }
}

/// The agent's desk (issue 15): watchers on tickets, notes and attachments in the thread
/// (with who entered each entry), and the fields each activity line changed. Existing rows
/// get the defaults: no watchers, public replies without attachments, no changes.
struct AddDeskColumns;

impl MigrationName for AddDeskColumns {
    fn name(&self) -> &str {
        "m20261202_000013_add_ticket_desk_columns"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddDeskColumns {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            ("tickets", long_text("watchers").default("[]").to_owned()),
            (
                "ticket_replies",
                text("visibility").default("public").to_owned(),
            ),
            (
                "ticket_replies",
                long_text("attachments").default("[]").to_owned(),
            ),
            ("ticket_replies", text_null("recorded_by")),
            (
                "ticket_activity",
                long_text("changes").default("[]").to_owned(),
            ),
        ];
        add_missing_columns(m, columns).await?;
        // The thread is read in id order, page after page.
        m.create_index(index(
            "ticket_replies_thread",
            "ticket_replies",
            &["ticket_id", "id"],
        ))
        .await
    }
}

/// The tier care last published for each customer (`care.CustomerTierChanged`).
struct CreateCustomerTiers;

impl MigrationName for CreateCustomerTiers {
    fn name(&self) -> &str {
        "m20261123_000011_create_customer_tiers"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCustomerTiers {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("customer_tiers")
                .if_not_exists()
                .col(text("customer_id").primary_key())
                .col(text("tier"))
                .col(ts("changed_at"))
                .to_owned(),
        )
        .await
    }
}

struct CreateTicketTables;

impl MigrationName for CreateTicketTables {
    fn name(&self) -> &str {
        "m20261123_000010_create_ticket_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateTicketTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("tickets")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("customer_id"))
                .col(text("order_id"))
                .col(text("channel"))
                .col(text("category"))
                .col(text("severity"))
                .col(text("subject"))
                .col(long_text("description"))
                .col(long_text("evidence"))
                .col(text("customer_tier"))
                .col(text_null("assignee"))
                .col(text("escalation_level"))
                .col(text("status"))
                .col(text("policy_id"))
                .col(ColumnDef::new("policy_version").integer().not_null())
                .col(ColumnDef::new("breached").boolean().not_null())
                .col(ColumnDef::new("reopen_count").integer().not_null())
                .col(ts_null("first_response_at"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts_null("resolved_at"))
                .to_owned(),
        )
        .await?;
        for (name, columns) in [
            ("tickets_status", &["status", "id"][..]),
            ("tickets_customer", &["customer_id", "id"][..]),
            ("tickets_order", &["order_id"][..]),
            ("tickets_assignee", &["assignee", "id"][..]),
        ] {
            m.create_index(index(name, "tickets", columns)).await?;
        }

        m.create_table(
            Table::create()
                .table("sla_clocks")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("ticket_id"))
                .col(text("kind"))
                .col(text("state"))
                .col(ColumnDef::new("target_seconds").big_integer().not_null())
                .col(text_null("calendar_id"))
                .col(ColumnDef::new("warning_percent").integer().not_null())
                .col(ts("started_at"))
                .col(ColumnDef::new("paused_seconds").big_integer().not_null())
                .col(ts_null("paused_at"))
                .col(ts("due_at"))
                .col(ts("warning_at"))
                .col(ColumnDef::new("warned").boolean().not_null())
                .col(ts_null("met_at"))
                .col(ts_null("breached_at"))
                .col(ColumnDef::new("cycle").integer().not_null())
                .col(ts_null("next_fire_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("sla_clocks_ticket", "sla_clocks", &["ticket_id"]))
            .await?;
        m.create_index(index(
            "sla_clocks_next_fire",
            "sla_clocks",
            &["next_fire_at", "id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("ticket_replies")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("ticket_id"))
                .col(text("author"))
                .col(text("author_id"))
                .col(long_text("body"))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ticket_replies_ticket",
            "ticket_replies",
            &["ticket_id", "created_at"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("ticket_activity")
                .if_not_exists()
                .col(
                    ColumnDef::new("seq")
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(text("ticket_id"))
                .col(text("actor_id"))
                .col(text("actor_role"))
                .col(text("action"))
                .col(long_text("detail"))
                .col(ts("at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ticket_activity_ticket",
            "ticket_activity",
            &["ticket_id", "seq"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("sla_policies")
                .if_not_exists()
                .col(text("id"))
                .col(ColumnDef::new("version").integer().not_null())
                .col(ColumnDef::new("is_current").boolean().not_null())
                .col(ColumnDef::new("priority").integer().not_null())
                .col(long_text("body"))
                .col(ts("created_at"))
                .primary_key(Index::create().col("id").col("version"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("business_calendars")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(long_text("body"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "business_calendars",
            "sla_policies",
            "ticket_activity",
            "ticket_replies",
            "sla_clocks",
            "tickets",
        ] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
