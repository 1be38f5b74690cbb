//! Loading and saving many jobs at once, for the deadline worker: a claimed batch's jobs
//! are read in three queries (jobs, offers, quotes) and written in a few statements of at
//! most [`STATEMENT_BYTES`] each, instead of three reads and three writes per job; and
//! the partners its re-offers may go to are locked and read in one.

use aftersales_platform::db::from_json;
use sea_orm::{
    ActiveValue, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
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

/// The most bytes of row data one statement of a batch carries. The database connection
/// (TLS, without `TCP_NODELAY`) sends a statement larger than one TLS record (16 KiB) in
/// several writes, and the socket holds each later write back until the server
/// acknowledges the earlier one, which Linux delays by up to 40 ms. A batch of 64
/// re-offers wrote its jobs, offers and events in three such statements and waited
/// ~120 ms on them, all under its partners' locks; statements of at most this size go
/// out in one write.
pub const STATEMENT_BYTES: usize = 12 * 1024;

/// Splits `items` into runs of at most [`STATEMENT_BYTES`] by `size` (one item at least).
pub fn by_size<T>(items: Vec<T>, size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut runs: Vec<Vec<T>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let n = size(&item);
        match runs.last_mut() {
            Some(run) if bytes + n <= STATEMENT_BYTES => run.push(item),
            _ => {
                bytes = 0;
                runs.push(vec![item]);
            }
        }
        bytes += n;
    }
    runs
}

/// A row's size in a statement: its JSON body and, roughly, its other columns.
fn row_bytes(body: &ActiveValue<String>) -> usize {
    const OTHER_COLUMNS: usize = 256;
    match body {
        ActiveValue::Set(body) | ActiveValue::Unchanged(body) => body.len() + OTHER_COLUMNS,
        ActiveValue::NotSet => OTHER_COLUMNS,
    }
}

/// Inserts or updates jobs with their offers and quotes: one statement each for the jobs,
/// their offers and their quotes, or a few where a batch's rows exceed
/// [`STATEMENT_BYTES`]. The jobs must be distinct (a row may change once per statement).
pub async fn save_jobs<C: ConnectionTrait>(conn: &C, aggs: &[&JobAggregate]) -> Result<(), DbErr> {
    if aggs.is_empty() {
        return Ok(());
    }
    let jobs = aggs
        .iter()
        .map(|agg| job_row(agg))
        .collect::<Result<Vec<_>, _>>()?;
    for run in by_size(jobs, |row| row_bytes(&row.body)) {
        job::Entity::insert_many(run)
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
    }
    let offers = aggs
        .iter()
        .flat_map(|agg| agg.offers.iter().map(offer_row))
        .collect::<Result<Vec<_>, _>>()?;
    for run in by_size(offers, |row| row_bytes(&row.body)) {
        offer::Entity::insert_many(run)
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
    for run in by_size(quotes, |row| row_bytes(&row.body)) {
        quote::Entity::insert_many(run)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_stay_within_the_budget_and_keep_every_item_in_order() {
        let third = STATEMENT_BYTES / 3;
        let items = vec![third, third, third, 1, STATEMENT_BYTES * 2, 5, 6];
        let runs = by_size(items.clone(), |n| *n);
        assert_eq!(
            runs,
            vec![
                vec![third, third, third],
                vec![1],
                vec![STATEMENT_BYTES * 2],
                vec![5, 6]
            ],
            "a run is cut before it would pass the budget; a larger item goes alone"
        );
        assert_eq!(runs.concat(), items);
        assert!(by_size(Vec::<usize>::new(), |n| *n).is_empty());
    }
}
