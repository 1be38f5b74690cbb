//! Offers taken per partner (open or accepted), read from counters instead of counting
//! the partner's offers (thousands for a busy partner, read on every dispatch).
//!
//! On PostgreSQL a trigger on `offers` keeps the counters (`offer_load`) in the very
//! statement that records, declines, lapses or withdraws an offer, whichever code writes
//! it (see the migration `CreateOfferLoad`). A counter covers one partner and the quarter
//! hour the offer was made in: every time zone's midnight falls on a quarter hour, so
//! "offers since the start of the partner's day" is the sum of the quarters from that
//! start, whatever time zone the partner had when each offer was made. Each quarter has a
//! row per database connection (modulo 64), so concurrent offers to one partner do not
//! queue on one row's lock until they commit. A start off the quarter hour (an unknown
//! time zone's fallback) and SQLite (one writer, small databases) count the offers.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, ExprTrait},
};

use super::{entity::offer_load, facts::offers_taken_since};

/// Seconds in one counter's period.
const QUARTER_SECS: i64 = 900;
/// The start of the quarter hour `at` falls in.
pub fn quarter_of(at: DateTime<Utc>) -> DateTime<Utc> {
    let secs = at.timestamp().div_euclid(QUARTER_SECS) * QUARTER_SECS;
    DateTime::from_timestamp(secs, 0).unwrap_or(at)
}

fn on_a_quarter(at: DateTime<Utc>) -> bool {
    quarter_of(at) == at
}

/// Offers made to each partner since `since` that are open or accepted; partners without
/// any are left out.
pub async fn taken_since<C: ConnectionTrait>(
    conn: &C,
    partner_ids: &[String],
    since: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, DbErr> {
    if !on_a_quarter(since) || conn.get_database_backend() != DbBackend::Postgres {
        return offers_taken_since(conn, partner_ids, since).await;
    }
    offer_load::Entity::find()
        .select_only()
        .column(offer_load::Column::PartnerId)
        .column_as(
            Expr::col(offer_load::Column::Taken).sum().cast_as("BIGINT"),
            "n",
        )
        .filter(offer_load::Column::PartnerId.is_in(partner_ids.iter().map(String::as_str)))
        .filter(offer_load::Column::Bucket.gte(since))
        .group_by(offer_load::Column::PartnerId)
        .into_tuple()
        .all(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarters_start_on_the_quarter_hour() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T09:44:59.9+05:45")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(quarter_of(at).to_rfc3339(), "2026-12-01T03:45:00+00:00");
        assert!(on_a_quarter(quarter_of(at)));
        assert!(!on_a_quarter(at));
    }
}
