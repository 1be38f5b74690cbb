//! Met SLA clocks, one row per (clock, cycle): the first delivery of a clock's
//! `SlaClockMet` is stored and any later one (redelivered, or published again under
//! another event id) changes nothing.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    sea_query::OnConflict,
};

use crate::domain::clock_lateness::MetClock;

use super::entity::met_clock;

/// Stores a met clock; `false` when its (clock, cycle) was stored already (the first
/// stands).
pub async fn insert_met_clock<C: ConnectionTrait>(conn: &C, c: &MetClock) -> Result<bool, DbErr> {
    let inserted = met_clock::Entity::insert(met_clock::ActiveModel {
        clock_id: Set(c.clock_id.clone()),
        cycle: Set(i64::from(c.cycle)),
        ticket_id: Set(c.ticket_id.clone()),
        kind: Set(c.kind),
        due_at: Set(c.due_at),
        met_at: Set(c.met_at),
        actual_minus_standard_ms: Set(c.actual_minus_standard_ms),
    })
    .on_conflict(
        OnConflict::columns([met_clock::Column::ClockId, met_clock::Column::Cycle])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(inserted == 1)
}

/// Clocks met in `[from, to)`, in (met instant, clock, cycle) order.
pub async fn clocks_met<C: ConnectionTrait>(
    conn: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<MetClock>, DbErr> {
    Ok(met_clock::Entity::find()
        .filter(met_clock::Column::MetAt.gte(from))
        .filter(met_clock::Column::MetAt.lt(to))
        .order_by_asc(met_clock::Column::MetAt)
        .order_by_asc(met_clock::Column::ClockId)
        .order_by_asc(met_clock::Column::Cycle)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| MetClock {
            ticket_id: row.ticket_id,
            clock_id: row.clock_id,
            // Written from a u32, so it fits; a hand-edited row saturates.
            cycle: u32::try_from(row.cycle).unwrap_or(u32::MAX),
            kind: row.kind,
            due_at: row.due_at,
            met_at: row.met_at,
            actual_minus_standard_ms: row.actual_minus_standard_ms,
        })
        .collect())
}
