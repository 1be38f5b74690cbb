//! Loading many jobs at once, for the deadline worker: a claimed batch's jobs are read in
//! three queries (jobs, offers, quotes), whatever its size, instead of three per job.

use aftersales_platform::db::from_json;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use super::{entity::job, jobs::assemble, lock_if_postgres};
use crate::domain::job::{Job, JobAggregate};

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
    let jobs = lock_if_postgres(conn, query, lock)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| from_json("job", &row.body))
        .collect::<Result<Vec<Job>, _>>()?;
    assemble(conn, jobs).await
}
