//! Loading and saving many tickets at once, for the SLA worker: a claimed batch of clocks
//! is read in two queries and written in three statements (tickets, clocks, audit
//! lines), whatever its size, instead of five round trips per ticket.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, Iterable, QueryFilter, QueryOrder,
    QuerySelect, sea_query::OnConflict,
};

use super::{
    Activity, clock_from_row, clock_to_row,
    entity::{activity, clock, ticket},
    ticket_from_row, ticket_to_row,
};
use crate::domain::{clock::SlaClock, ticket::TicketAggregate};

/// Loads the tickets among `ids` that exist, with their clocks, in id order. With `lock`,
/// their rows stay locked until the transaction ends, taken in id order (PostgreSQL locks
/// the rows as the sorted scan returns them), so two batches can never wait on each other
/// in a cycle.
pub async fn load_aggregates<C: ConnectionTrait>(
    conn: &C,
    ids: &[String],
    lock: bool,
) -> Result<Vec<TicketAggregate>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = ticket::Entity::find()
        .filter(ticket::Column::Id.is_in(ids.iter().map(String::as_str)))
        .order_by_asc(ticket::Column::Id);
    if lock && conn.get_database_backend() == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    let rows = query.all(conn).await?;
    let mut clocks: HashMap<String, Vec<SlaClock>> = HashMap::new();
    let clock_rows = clock::Entity::find()
        .filter(clock::Column::TicketId.is_in(rows.iter().map(|row| row.id.as_str())))
        .order_by_asc(clock::Column::Id)
        .all(conn)
        .await?;
    for row in clock_rows {
        clocks
            .entry(row.ticket_id.clone())
            .or_default()
            .push(clock_from_row(row)?);
    }
    rows.into_iter()
        .map(|row| {
            Ok(TicketAggregate {
                clocks: clocks.remove(&row.id).unwrap_or_default(),
                ticket: ticket_from_row(row)?,
            })
        })
        .collect()
}

/// Writes back several changed tickets with their clocks: one statement for the tickets,
/// one for the clocks. The tickets must exist and be distinct (one row may change once
/// per statement).
pub async fn save_aggregates<C: ConnectionTrait>(
    conn: &C,
    aggs: &[&TicketAggregate],
) -> Result<(), DbErr> {
    if aggs.is_empty() {
        return Ok(());
    }
    let rows = aggs
        .iter()
        .map(|agg| ticket_to_row(agg))
        .collect::<Result<Vec<_>, _>>()?;
    let columns = ticket::Column::iter().filter(|c| !matches!(c, ticket::Column::Id));
    ticket::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::column(ticket::Column::Id)
                .update_columns(columns)
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    upsert_clocks(conn, aggs.iter().flat_map(|agg| agg.clocks.iter())).await
}

/// Inserts or updates clocks in one statement, every column but the id and ticket.
pub(super) async fn upsert_clocks<'a, C: ConnectionTrait>(
    conn: &C,
    clocks: impl Iterator<Item = &'a SlaClock>,
) -> Result<(), DbErr> {
    let rows: Vec<_> = clocks.map(clock_to_row).collect();
    if rows.is_empty() {
        return Ok(());
    }
    let columns = clock::Column::iter().filter(|c| {
        !matches!(
            c,
            clock::Column::Id | clock::Column::TicketId | clock::Column::Kind
        )
    });
    clock::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::column(clock::Column::Id)
                .update_columns(columns)
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Appends lines to the tickets' audit trails in one statement.
pub async fn record_activities<C: ConnectionTrait>(
    conn: &C,
    lines: Vec<Activity<'_>>,
) -> Result<(), DbErr> {
    if lines.is_empty() {
        return Ok(());
    }
    use sea_orm::ActiveValue::Set;
    let rows = lines
        .into_iter()
        .map(|a| {
            Ok(activity::ActiveModel {
                ticket_id: Set(a.ticket_id.to_owned()),
                actor_id: Set(a.actor_id.to_owned()),
                actor_role: Set(a.actor_role.to_owned()),
                action: Set(a.action.to_owned()),
                detail: Set(a.detail),
                changes: Set(aftersales_platform::db::to_json(&a.changes)?),
                at: Set(a.at),
                ..Default::default()
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    activity::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}
