//! Loading and saving many returns at once, for the deadline worker: a claimed batch is
//! read in two queries and written in two statements, whatever its size, instead of four
//! round trips per return.

use std::collections::HashMap;

use aftersales_platform::db::from_json;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    sea_query::OnConflict,
};

use super::{
    deadline_row, deadlines_of,
    entity::{deadline, rma},
    rma_row,
};
use crate::domain::rma::{Deadline, ReturnAggregate};

/// Loads the returns among `ids` that exist, with their deadlines, in id order. With
/// `lock`, their rows stay locked until the transaction ends, taken in id order
/// (PostgreSQL locks the rows as the sorted scan returns them), so two batches can never
/// wait on each other in a cycle.
pub async fn load_aggregates<C: ConnectionTrait>(
    conn: &C,
    ids: &[String],
    lock: bool,
) -> Result<Vec<ReturnAggregate>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = rma::Entity::find()
        .filter(rma::Column::Id.is_in(ids.iter().map(String::as_str)))
        .order_by_asc(rma::Column::Id);
    if lock && conn.get_database_backend() == DbBackend::Postgres {
        query = sea_orm::QuerySelect::lock_exclusive(query);
    }
    let rows = query.all(conn).await?;
    let found: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
    let mut deadlines: HashMap<String, Vec<Deadline>> = HashMap::new();
    for d in deadlines_of(conn, &found).await? {
        deadlines.entry(d.return_id.clone()).or_default().push(d);
    }
    rows.into_iter()
        .map(|row| {
            Ok(ReturnAggregate {
                deadlines: deadlines.remove(&row.id).unwrap_or_default(),
                rma: from_json("return", &row.body)?,
            })
        })
        .collect()
}

/// Updates several returns and their deadlines: one statement for the returns, one for
/// the deadlines. The returns must be distinct (one row may change once per statement).
pub async fn save_aggregates<C: ConnectionTrait>(
    conn: &C,
    aggs: &[&ReturnAggregate],
) -> Result<(), DbErr> {
    if aggs.is_empty() {
        return Ok(());
    }
    let rows = aggs
        .iter()
        .map(|agg| rma_row(agg))
        .collect::<Result<Vec<_>, _>>()?;
    rma::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::column(rma::Column::Id)
                .update_columns([
                    rma::Column::Status,
                    rma::Column::Carrier,
                    rma::Column::TrackingNumber,
                    rma::Column::Overdue,
                    rma::Column::Body,
                    rma::Column::UpdatedAt,
                    rma::Column::RepairJobId,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    let deadlines: Vec<_> = aggs
        .iter()
        .flat_map(|agg| agg.deadlines.iter().map(deadline_row))
        .collect();
    if !deadlines.is_empty() {
        deadline::Entity::insert_many(deadlines)
            .on_conflict(
                OnConflict::column(deadline::Column::Id)
                    .update_columns([deadline::Column::State, deadline::Column::NextFireAt])
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}
