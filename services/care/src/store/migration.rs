//! The care database schema, oldest migration first. Shared tables (idempotency keys,
//! outbox, processed events) come from the crates that own their code.

use aftersales_platform::db::schema::{index, long_text, text, text_null, ts, ts_null};

mod costs;
mod incidents;
mod met_clocks;
mod spot_checks;
use costs::CreateCosts;
use incidents::CreateIncidents;
use met_clocks::CreateMetClocks;
use sea_orm_migration::prelude::*;
use spot_checks::AddSpotChecks;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(aftersales_platform::idempotency::migration::CreateIdempotencyKeys),
            Box::new(aftersales_eventbus::migration::CreateOutbox),
            Box::new(aftersales_eventbus::migration::CreateProcessedEvents),
            Box::new(CreateCareTables),
            Box::new(aftersales_eventbus::migration::CreateDeadLetters),
            Box::new(AddSealedName),
            Box::new(aftersales_platform::audit::migration::CreateAuditRecords),
            Box::new(MovePiiReadsToAuditRecords),
            Box::new(CreateIncidents),
            Box::new(CreateCosts),
            Box::new(AddSpotChecks),
            Box::new(CreateMetClocks),
        ]
    }
}

struct CreateCareTables;

impl MigrationName for CreateCareTables {
    fn name(&self) -> &str {
        "m20261123_000040_create_care_tables"
    }
}

fn flag(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).boolean().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCareTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let tables = [
            Table::create()
                .table("customers")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("name"))
                .col(text("region_code"))
                .col(text("key_id"))
                .col(long_text("phone_sealed"))
                .col(long_text("email_sealed"))
                .col(long_text("address_sealed"))
                .col(text("phone_hash"))
                .col(text("tier"))
                .col(long_text("purchases"))
                .col(flag("anonymised"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts("last_activity_at"))
                .to_owned(),
            Table::create()
                .table("pii_reads")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("customer_id"))
                .col(text("actor_id"))
                .col(text("actor_role"))
                .col(text("purpose"))
                .col(text("operation"))
                .col(text("fields"))
                .col(ts("read_at"))
                .to_owned(),
            Table::create()
                .table("care_settings")
                .if_not_exists()
                .col(text("name").primary_key())
                .col(long_text("body"))
                .col(ts("updated_at"))
                .to_owned(),
            Table::create()
                .table("ticket_facts")
                .if_not_exists()
                .col(text("ticket_id").primary_key())
                .col(text("customer_id"))
                .col(text_null("category"))
                .col(text_null("region"))
                .col(flag("open"))
                .col(ts_null("created_at"))
                .col(long_text("body"))
                .to_owned(),
            Table::create()
                .table("job_facts")
                .if_not_exists()
                .col(text("job_id").primary_key())
                .col(text("ticket_id"))
                .col(text("customer_id"))
                .col(flag("open"))
                .col(ts_null("created_at"))
                .col(long_text("body"))
                .to_owned(),
            Table::create()
                .table("timeline")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("customer_id"))
                .col(text("kind"))
                .col(text("subject_id"))
                .col(text("event"))
                .col(long_text("summary"))
                .col(text_null("channel"))
                .col(ts("occurred_at"))
                .to_owned(),
            Table::create()
                .table("follow_ups")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("ticket_id"))
                .col(text("customer_id"))
                .col(text("status"))
                .col(ts("resolved_at"))
                .col(ts("due_at"))
                .col(flag("reopen_pending"))
                .col(long_text("body"))
                .to_owned(),
            Table::create()
                .table("surveys")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("customer_id"))
                .col(text("subject"))
                .col(text("subject_id"))
                .col(ColumnDef::new("csat").integer().not_null())
                .col(long_text("comment"))
                .col(ts("recorded_at"))
                .to_owned(),
            Table::create()
                .table("warranties")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("customer_id"))
                .col(long_text("body"))
                .col(ts("updated_at"))
                .to_owned(),
            Table::create()
                .table("care_tasks")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("customer_id"))
                .col(text("kind"))
                .col(text("subject_id"))
                .col(ts("due_at"))
                .col(text("dedupe_key"))
                .col(long_text("body"))
                .to_owned(),
        ];
        for table in tables {
            m.create_table(table).await?;
        }
        for (name, table, columns) in [
            ("customers_phone_hash", "customers", &["phone_hash"][..]),
            ("customers_region", "customers", &["region_code"][..]),
            (
                "customers_activity",
                "customers",
                &["anonymised", "last_activity_at"][..],
            ),
            (
                "pii_reads_customer",
                "pii_reads",
                &["customer_id", "read_at"][..],
            ),
            ("ticket_facts_created", "ticket_facts", &["created_at"][..]),
            (
                "ticket_facts_customer",
                "ticket_facts",
                &["customer_id", "open"][..],
            ),
            ("job_facts_created", "job_facts", &["created_at"][..]),
            (
                "job_facts_customer",
                "job_facts",
                &["customer_id", "open"][..],
            ),
            ("timeline_customer", "timeline", &["customer_id", "id"][..]),
            ("follow_ups_ticket", "follow_ups", &["ticket_id"][..]),
            (
                "follow_ups_customer",
                "follow_ups",
                &["customer_id", "id"][..],
            ),
            ("follow_ups_status", "follow_ups", &["status", "due_at"][..]),
            ("follow_ups_resolved", "follow_ups", &["resolved_at"][..]),
            ("follow_ups_reopen", "follow_ups", &["reopen_pending"][..]),
            ("surveys_customer", "surveys", &["customer_id"][..]),
            ("surveys_recorded", "surveys", &["recorded_at"][..]),
            ("warranties_customer", "warranties", &["customer_id"][..]),
            (
                "care_tasks_customer",
                "care_tasks",
                &["customer_id", "id"][..],
            ),
            ("care_tasks_subject", "care_tasks", &["subject_id"][..]),
        ] {
            m.create_index(index(name, table, columns)).await?;
        }
        let mut unique = index("care_tasks_dedupe", "care_tasks", &["dedupe_key"]);
        m.create_index(unique.unique().to_owned()).await?;
        Ok(())
    }
}

/// Customers' names are sealed like their contact fields, in a column of their own. The
/// column `name` keeps a name stored before this migration, in clear text, until start-up
/// (which holds the keys a migration does not) seals it and empties `name`.
struct AddSealedName;

impl MigrationName for AddSealedName {
    fn name(&self) -> &str {
        "m20261201_000041_add_sealed_customer_name"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddSealedName {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("customers")
                .add_column(long_text("name_sealed").default(""))
                .to_owned(),
        )
        .await
    }
}

/// Care's own log of clear-text reads (`pii_reads`) becomes records of the suite's one
/// audit trail (`audit_records`, target `customer:<id>`, the read's details as notes),
/// and the old table goes.
struct MovePiiReadsToAuditRecords;

impl MigrationName for MovePiiReadsToAuditRecords {
    fn name(&self) -> &str {
        "m20261201_000002_move_pii_reads_to_audit_records"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for MovePiiReadsToAuditRecords {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use aftersales_platform::audit::{AuditLog, AuditRecord};
        use sea_orm::{ConnectionTrait, Statement};

        if !m.has_table("pii_reads").await? {
            return Ok(());
        }
        let db = m.get_connection();
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT id, customer_id, actor_id, actor_role, purpose, operation, fields, read_at \
                 FROM pii_reads ORDER BY read_at",
            ))
            .await?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let get = |column: &str| row.try_get::<String>("", column);
            let operation = get("operation")?;
            let fields: Vec<serde_json::Value> = get("fields")?
                .split(',')
                .filter(|f| !f.is_empty())
                .map(|f| f.into())
                .collect();
            let actor = get("actor_id")?;
            let mut detail = serde_json::Map::new();
            detail.insert("actor".into(), actor.clone().into());
            detail.insert("actor_role".into(), get("actor_role")?.into());
            detail.insert("purpose".into(), get("purpose")?.into());
            detail.insert("operation".into(), operation.clone().into());
            detail.insert("fields".into(), fields.into());
            let at: chrono::DateTime<chrono::Utc> = row.try_get("", "read_at")?;
            records.push(AuditRecord {
                id: AuditRecord::id_at(at),
                at,
                subject: actor,
                on_behalf_of: None,
                roles: Vec::new(),
                client_id: None,
                rpc: format!("/aftersales.care.v1.CareService/{operation}"),
                target: Some(format!("customer:{}", get("customer_id")?)),
                outcome: "OK".into(),
                detail,
            });
        }
        AuditLog::insert(db, records).await?;
        m.drop_table(Table::drop().table("pii_reads").to_owned())
            .await
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aftersales_platform::audit::{AuditFilter, AuditLog};
    use sea_orm::{ConnectionTrait, Database};

    use super::*;

    #[tokio::test]
    async fn reads_logged_before_the_audit_trail_move_into_it() {
        let db = Database::connect(aftersales_testkit::fresh_sqlite_url())
            .await
            .unwrap();
        let before = Migrator::migrations()
            .iter()
            .position(|m| m.name() == MovePiiReadsToAuditRecords.name())
            .unwrap();
        Migrator::up(
            &db,
            Some(<u32 as TryFrom<usize>>::try_from(before).unwrap()),
        )
        .await
        .unwrap();
        db.execute_unprepared(
            "INSERT INTO pii_reads (id, customer_id, actor_id, actor_role, purpose, operation, \
             fields, read_at) VALUES ('r-1', 'c-1', 'agent-7', 'agent', 'callback', \
             'GetCustomer', 'phone,email', '2026-11-30 10:00:00+00:00')",
        )
        .await
        .unwrap();
        Migrator::up(&db, None).await.unwrap();

        let manager = SchemaManager::new(&db);
        assert!(!manager.has_table("pii_reads").await.unwrap());
        let filter = AuditFilter {
            target: Some("customer:c-1".into()),
            ..AuditFilter::default()
        };
        let records = AuditLog::query(&db, &filter, None, 10).await.unwrap();
        assert_eq!(records.len(), 1);
        let record = &records[0];
        assert_eq!(record.subject, "agent-7");
        assert_eq!(record.rpc, "/aftersales.care.v1.CareService/GetCustomer");
        assert_eq!(record.detail["purpose"], "callback");
        assert_eq!(
            record.detail["fields"],
            serde_json::json!(["phone", "email"])
        );
        assert_eq!(record.at.to_rfc3339(), "2026-11-30T10:00:00+00:00");
    }
}
