//! Loading and saving many jobs at once, for the deadline worker: a claimed batch's jobs
//! are read in three queries (jobs, offers, quotes) and written in three statements,
//! whatever its size, instead of three reads and three writes per job; and the partners
//! its re-offers may go to are locked and read in one.

use aftersales_platform::db::from_json;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    sea_query::OnConflict,
};

use super::{
    entity::{job, offer, partner, quote},
    jobs::{assemble, job_row, offer_row, quote_row},
    lock_if_postgres,
};
use crate::domain::{job::JobAggregate, partner::Partner};

/// Loads the jobs among `ids` that exist, with their offers and quotes, in id order. With
/// `lock`, their rows stay locked until the transaction ends, taken in id order
/// (PostgreSQL locks the rows as the sorted scan returns them): the service's lock order
/// for several jobs.
pub async fn load_jobs<C: ConnectionTrait>(
    conn: &C,
    ids: &[String],
    lock: bool,
) -> Result<Vec<JobAggregate>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let query = job::Entity::find()
        .filter(job::Column::Id.is_in(ids.iter().map(String::as_str)))
        .order_by_asc(job::Column::Id);
    let jobs = lock_if_postgres(conn, query, lock).all(conn).await?;
    assemble(conn, jobs).await
}

/// Inserts or updates jobs with their offers and quotes: one statement each for the jobs,
/// their offers and their quotes. The jobs must be distinct (a row may change once per
/// statement).
pub async fn save_jobs<C: ConnectionTrait>(conn: &C, aggs: &[&JobAggregate]) -> Result<(), DbErr> {
    if aggs.is_empty() {
        return Ok(());
    }
    let jobs = aggs
        .iter()
        .map(|agg| job_row(agg))
        .collect::<Result<Vec<_>, _>>()?;
    job::Entity::insert_many(jobs)
        .on_conflict(
            OnConflict::column(job::Column::Id)
                .update_columns([
                    job::Column::Status,
                    job::Column::PartnerId,
                    job::Column::AcceptedAt,
                    job::Column::CompletedAt,
                    job::Column::VisitWatchAt,
                    job::Column::ContactKeyId,
                    job::Column::Body,
                    job::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    let offers = aggs
        .iter()
        .flat_map(|agg| agg.offers.iter().map(offer_row))
        .collect::<Result<Vec<_>, _>>()?;
    if !offers.is_empty() {
        offer::Entity::insert_many(offers)
            .on_conflict(
                OnConflict::column(offer::Column::Id)
                    .update_columns([offer::Column::Status, offer::Column::Body])
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    let quotes = aggs
        .iter()
        .flat_map(|agg| agg.quotes.iter().map(quote_row))
        .collect::<Result<Vec<_>, _>>()?;
    if !quotes.is_empty() {
        quote::Entity::insert_many(quotes)
            .on_conflict(
                OnConflict::column(quote::Column::Id)
                    .update_columns([quote::Column::Status, quote::Column::Body])
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Locks the partners among `ids` that exist, in id order, until the transaction ends
/// (PostgreSQL), and reads them as they are under the lock: what a batch of re-offers
/// counts capacity against.
pub async fn lock_and_load_partners<C: ConnectionTrait>(
    conn: &C,
    ids: &[String],
) -> Result<Vec<Partner>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let query = partner::Entity::find()
        .filter(partner::Column::Id.is_in(ids.iter().map(String::as_str)))
        .order_by_asc(partner::Column::Id);
    lock_if_postgres(conn, query, true)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| from_json("partner", &row.body))
        .collect()
}
