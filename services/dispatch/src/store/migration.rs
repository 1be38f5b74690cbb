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
            Box::new(MoveContactReadsToAuditRecords),
            Box::new(CreateOfferLoad),
            Box::new(super::parts_migration::CreatePartsTables),
            Box::new(super::load_migration::CountOfferLoadPerStatement),
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

/// Partners' reads of customers' contacts were logged in a table of dispatch's own
/// (`contact_reads`); they become records of the suite's one audit trail
/// (`audit_records`, target `job:<id>`, the partner and the fields shown as notes, as the
/// layer now records them), and the old table goes. The old rows did not keep the token's
/// subject (the gateway's account), so the partner stands as the subject as well as the
/// one acted for, and the roles are empty.
struct MoveContactReadsToAuditRecords;

impl MigrationName for MoveContactReadsToAuditRecords {
    fn name(&self) -> &str {
        "m20261202_000033_move_contact_reads_to_audit_records"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for MoveContactReadsToAuditRecords {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use aftersales_platform::audit::{AuditLog, AuditRecord};
        use sea_orm::{ConnectionTrait, Statement};

        if !m.has_table("contact_reads").await? {
            return Ok(());
        }
        let db = m.get_connection();
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT job_id, partner_id, operation, read_at FROM contact_reads ORDER BY read_at",
            ))
            .await?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let get = |column: &str| row.try_get::<String>("", column);
            let partner = get("partner_id")?;
            let mut detail = serde_json::Map::new();
            detail.insert("contact".into(), "clear".into());
            detail.insert(
                "fields".into(),
                serde_json::json!(["name", "phone", "address"]),
            );
            detail.insert("partner".into(), partner.clone().into());
            let at: chrono::DateTime<chrono::Utc> = row.try_get("", "read_at")?;
            records.push(AuditRecord {
                id: AuditRecord::id_at(at),
                at,
                subject: partner.clone(),
                on_behalf_of: Some(partner),
                roles: Vec::new(),
                client_id: None,
                rpc: format!(
                    "/aftersales.dispatch.v1.DispatchService/{}",
                    get("operation")?
                ),
                target: Some(format!("job:{}", get("job_id")?)),
                outcome: "OK".into(),
                detail,
            });
        }
        AuditLog::insert(db, records).await?;
        m.drop_table(Table::drop().table("contact_reads").to_owned())
            .await
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

/// Counters of offers taken per partner and quarter hour (`store::load`), kept by a
/// trigger on `offers` (PostgreSQL) and filled from the open and accepted offers of the
/// last two days: no partner's day reaches further back, so older quarters are never
/// summed. Creating the trigger locks `offers` against writes until this migration's
/// transaction commits, so no offer is counted twice or missed. SQLite gets the table
/// only: there the offers are counted.
struct CreateOfferLoad;

impl MigrationName for CreateOfferLoad {
    fn name(&self) -> &str {
        "m20261202_000034_create_offer_load"
    }
}

/// Adds `delta` to the counter of `partner_id` for the quarter hour of `offered_at`, on
/// the row of this connection's slot.
const ADD_TO_COUNTER: &str = "INSERT INTO offer_load (partner_id, bucket, slot, taken) \
     VALUES ($1, to_timestamp(floor(extract(epoch FROM $2) / 900) * 900), \
     pg_backend_pid() % 64, $3) \
     ON CONFLICT (partner_id, bucket, slot) DO UPDATE SET taken = offer_load.taken + EXCLUDED.taken";

#[async_trait::async_trait]
impl MigrationTrait for CreateOfferLoad {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use sea_orm::{ConnectionTrait, DbBackend};

        m.create_table(
            Table::create()
                .table("offer_load")
                .if_not_exists()
                .col(text("partner_id"))
                .col(ts("bucket"))
                .col(ColumnDef::new("slot").integer().not_null())
                .col(ColumnDef::new("taken").big_integer().not_null())
                .primary_key(Index::create().col("partner_id").col("bucket").col("slot"))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let add = |partner: &str, at: &str, delta: &str| {
            ADD_TO_COUNTER
                .replace("$1", partner)
                .replace("$2", at)
                .replace("$3", delta)
        };
        db.execute_unprepared(&format!(
            "CREATE OR REPLACE FUNCTION offer_load_track() RETURNS trigger AS $body$ \
             BEGIN \
               IF TG_OP = 'UPDATE' AND OLD.status IN ('open', 'accepted') THEN {}; END IF; \
               IF NEW.status IN ('open', 'accepted') THEN {}; END IF; \
               RETURN NULL; \
             END $body$ LANGUAGE plpgsql",
            add("OLD.partner_id", "OLD.offered_at", "-1"),
            add("NEW.partner_id", "NEW.offered_at", "1"),
        ))
        .await?;
        db.execute_unprepared(
            "CREATE TRIGGER offers_insert_load AFTER INSERT ON offers \
             FOR EACH ROW EXECUTE FUNCTION offer_load_track()",
        )
        .await?;
        // Only a change of status (or, were it ever written, of partner or time) moves a
        // count; saving a job rewrites its offers' status unchanged.
        db.execute_unprepared(
            "CREATE TRIGGER offers_update_load AFTER UPDATE ON offers FOR EACH ROW \
             WHEN (OLD.status IS DISTINCT FROM NEW.status \
               OR OLD.partner_id IS DISTINCT FROM NEW.partner_id \
               OR OLD.offered_at IS DISTINCT FROM NEW.offered_at) \
             EXECUTE FUNCTION offer_load_track()",
        )
        .await?;
        db.execute_unprepared(
            "INSERT INTO offer_load (partner_id, bucket, slot, taken) \
             SELECT partner_id, to_timestamp(floor(extract(epoch FROM offered_at) / 900) * 900), 0, count(*) \
             FROM offers WHERE status IN ('open', 'accepted') AND offered_at >= now() - interval '2 days' \
             GROUP BY 1, 2",
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aftersales_platform::audit::{AuditFilter, AuditLog};
    use sea_orm::{ConnectionTrait, Database};

    use super::*;

    #[tokio::test]
    async fn contact_reads_logged_before_the_audit_trail_move_into_it() {
        let db = Database::connect(aftersales_testkit::fresh_sqlite_url())
            .await
            .unwrap();
        let before = Migrator::migrations()
            .iter()
            .position(|m| m.name() == MoveContactReadsToAuditRecords.name())
            .unwrap();
        Migrator::up(
            &db,
            Some(<u32 as TryFrom<usize>>::try_from(before).unwrap()),
        )
        .await
        .unwrap();
        db.execute_unprepared(
            "INSERT INTO contact_reads (id, job_id, partner_id, operation, read_at) VALUES \
             ('r-1', 'job-1', 'p-1', 'GetJob', '2026-11-30 10:00:00+00:00'), \
             ('r-2', 'job-1', 'p-1', 'RespondToOffer', '2026-11-30 09:00:00+00:00')",
        )
        .await
        .unwrap();
        Migrator::up(&db, None).await.unwrap();

        let manager = SchemaManager::new(&db);
        assert!(!manager.has_table("contact_reads").await.unwrap());
        let filter = AuditFilter {
            target: Some("job:job-1".into()),
            ..AuditFilter::default()
        };
        let records = AuditLog::query(&db, &filter, None, 10).await.unwrap();
        let rpcs: Vec<&str> = records.iter().map(|r| r.rpc.as_str()).collect();
        assert_eq!(
            rpcs,
            [
                "/aftersales.dispatch.v1.DispatchService/GetJob",
                "/aftersales.dispatch.v1.DispatchService/RespondToOffer",
            ],
            "newest first, by the reads' times"
        );
        let record = &records[0];
        assert_eq!(record.subject, "p-1");
        assert_eq!(record.on_behalf_of.as_deref(), Some("p-1"));
        assert_eq!(record.detail["partner"], "p-1");
        assert_eq!(record.detail["contact"], "clear");
        assert_eq!(record.at.to_rfc3339(), "2026-11-30T10:00:00+00:00");
    }
}
