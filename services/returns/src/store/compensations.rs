//! Reading and writing compensations: whole as JSON, with the ticket, status and next
//! payment attempt as columns for listings and the worker.

use aftersales_platform::db::{from_json, to_json};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::OnConflict,
};

use super::entity::compensation;
use crate::domain::compensation::{Compensation, CompensationStatus};

/// Inserts or updates a compensation.
pub async fn save_compensation<C: ConnectionTrait>(
    conn: &C,
    c: &Compensation,
) -> Result<(), DbErr> {
    compensation::Entity::insert(compensation::ActiveModel {
        id: Set(c.id.clone()),
        ticket_id: Set(c.ticket_id.clone()),
        customer_id: Set(c.customer_id.clone()),
        status: Set(c.status.as_str().into()),
        next_attempt_at: Set(c.next_attempt_at),
        body: Set(to_json(c)?),
        updated_at: Set(c.updated_at),
    })
    .on_conflict(
        OnConflict::column(compensation::Column::Id)
            .update_columns([
                compensation::Column::Status,
                compensation::Column::NextAttemptAt,
                compensation::Column::Body,
                compensation::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// A compensation; with `lock`, its row stays locked until the transaction ends
/// (PostgreSQL; SQLite's single writer serialises anyway).
pub async fn get_compensation<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    lock: bool,
) -> Result<Option<Compensation>, DbErr> {
    let mut query = compensation::Entity::find_by_id(id.to_owned());
    if lock && conn.get_database_backend() == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    query
        .one(conn)
        .await?
        .map(|row| from_json("compensation", &row.body))
        .transpose()
}

/// Newest first (UUIDv7 ids), before the cursor `before`; `None` filters do not filter.
pub async fn list_compensations<C: ConnectionTrait>(
    conn: &C,
    ticket_id: Option<&str>,
    status: Option<CompensationStatus>,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<Compensation>, DbErr> {
    let mut q = compensation::Entity::find();
    if let Some(ticket_id) = ticket_id {
        q = q.filter(compensation::Column::TicketId.eq(ticket_id));
    }
    if let Some(status) = status {
        q = q.filter(compensation::Column::Status.eq(status.as_str()));
    }
    if let Some(before) = before {
        q = q.filter(compensation::Column::Id.lt(before));
    }
    q.order_by_desc(compensation::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| from_json("compensation", &row.body))
        .collect()
}

/// Unpaid approved cash with when it is tried next, a page at a time by id after
/// `after_id`.
pub async fn pending_compensations<C: ConnectionTrait>(
    conn: &C,
    after_id: &str,
    limit: u64,
) -> Result<Vec<(String, DateTime<Utc>)>, DbErr> {
    compensation::Entity::find()
        .select_only()
        .column(compensation::Column::Id)
        .column(compensation::Column::NextAttemptAt)
        .filter(compensation::Column::NextAttemptAt.is_not_null())
        .filter(compensation::Column::Id.gt(after_id))
        .order_by_asc(compensation::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}

/// The ids of a customer's compensations, oldest first.
pub async fn compensation_ids_of_customer<C: ConnectionTrait>(
    conn: &C,
    customer_id: &str,
) -> Result<Vec<String>, DbErr> {
    compensation::Entity::find()
        .select_only()
        .column(compensation::Column::Id)
        .filter(compensation::Column::CustomerId.eq(customer_id))
        .order_by_asc(compensation::Column::Id)
        .into_tuple()
        .all(conn)
        .await
}
