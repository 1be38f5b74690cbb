//! Keeps the counters of offers taken (`offer_load`, see `store::load`) once per statement
//! instead of once per row (PostgreSQL). A batch of lapsed offers re-offers dozens of
//! jobs in one upsert of `offers`; per row, the trigger ran a PL/pgSQL upsert of the same
//! counter row for every offer (about a quarter of a millisecond each, all of it under
//! the partners' locks). Per statement, the offers the statement inserted or changed are
//! summed by partner and quarter hour and each counter row is written once.

use sea_orm_migration::prelude::*;

pub struct CountOfferLoadPerStatement;

impl MigrationName for CountOfferLoadPerStatement {
    fn name(&self) -> &str {
        "m20261202_000036_count_offer_load_per_statement"
    }
}

/// The quarter hour an offer made at `at` is counted in.
fn quarter(at: &str) -> String {
    format!("to_timestamp(floor(extract(epoch FROM {at}) / 900) * 900)")
}

/// Adds the `(partner_id, bucket, delta)` rows of `deltas`, summed, to this connection's
/// slot of each counter. Summing first makes each counter row appear once, as one upsert
/// statement requires.
fn add_to_counters(deltas: &str) -> String {
    format!(
        "INSERT INTO offer_load (partner_id, bucket, slot, taken) \
         SELECT partner_id, bucket, pg_backend_pid() % 64, SUM(delta) \
         FROM ({deltas}) AS deltas GROUP BY partner_id, bucket HAVING SUM(delta) <> 0 \
         ON CONFLICT (partner_id, bucket, slot) DO UPDATE SET taken = offer_load.taken + EXCLUDED.taken"
    )
}

/// What counts: an offer open or accepted.
const TAKEN: &str = "('open', 'accepted')";

#[async_trait::async_trait]
impl MigrationTrait for CountOfferLoadPerStatement {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use sea_orm::{ConnectionTrait, DbBackend};

        let db = m.get_connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let inserted = add_to_counters(&format!(
            "SELECT partner_id, {} AS bucket, 1 AS delta FROM inserted_offers \
             WHERE status IN {TAKEN}",
            quarter("offered_at")
        ));
        // Only a change of status (or, were it ever written, of partner or time) moves a
        // count; saving a job rewrites its offers' status unchanged.
        let changed = "FROM old_offers o JOIN new_offers n ON n.id = o.id \
             WHERE (o.status IS DISTINCT FROM n.status \
               OR o.partner_id IS DISTINCT FROM n.partner_id \
               OR o.offered_at IS DISTINCT FROM n.offered_at)";
        let updated = add_to_counters(&format!(
            "SELECT o.partner_id, {} AS bucket, -1 AS delta {changed} AND o.status IN {TAKEN} \
             UNION ALL \
             SELECT n.partner_id, {} AS bucket, 1 AS delta {changed} AND n.status IN {TAKEN}",
            quarter("o.offered_at"),
            quarter("n.offered_at"),
        ));
        // Replaced in this migration's transaction: no offer is written between the two
        // ways of counting, so none is counted twice or missed.
        for statement in [
            "DROP TRIGGER IF EXISTS offers_insert_load ON offers".to_owned(),
            "DROP TRIGGER IF EXISTS offers_update_load ON offers".to_owned(),
            "DROP FUNCTION IF EXISTS offer_load_track()".to_owned(),
            format!(
                "CREATE OR REPLACE FUNCTION offer_load_inserted() RETURNS trigger AS $body$ \
                 BEGIN {inserted}; RETURN NULL; END $body$ LANGUAGE plpgsql"
            ),
            format!(
                "CREATE OR REPLACE FUNCTION offer_load_updated() RETURNS trigger AS $body$ \
                 BEGIN {updated}; RETURN NULL; END $body$ LANGUAGE plpgsql"
            ),
            // An upsert's inserted rows reach the insert trigger, its updated rows the
            // update trigger.
            "CREATE TRIGGER offers_insert_load AFTER INSERT ON offers \
             REFERENCING NEW TABLE AS inserted_offers \
             FOR EACH STATEMENT EXECUTE FUNCTION offer_load_inserted()"
                .to_owned(),
            "CREATE TRIGGER offers_update_load AFTER UPDATE ON offers \
             REFERENCING OLD TABLE AS old_offers NEW TABLE AS new_offers \
             FOR EACH STATEMENT EXECUTE FUNCTION offer_load_updated()"
                .to_owned(),
        ] {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
