//! Follow-ups, stored whole as JSON with the columns queries filter on beside them (the
//! status, the due time, whether a reopen still waits for the tickets service).

use aftersales_platform::db::{from_json, to_json};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::OnConflict,
};

use crate::domain::{FollowUpStatus, followup::FollowUp, listing::FollowUpFilter};

use super::{entity::follow_up, lock_if_postgres};

pub async fn save_follow_up<C: ConnectionTrait>(conn: &C, f: &FollowUp) -> Result<(), DbErr> {
    save_follow_ups(conn, &[f]).await
}

/// Inserts or updates several follow-ups in one statement (the deadline worker's batch).
/// They must be distinct: one row may change once per statement.
pub async fn save_follow_ups<C: ConnectionTrait>(
    conn: &C,
    follow_ups: &[&FollowUp],
) -> Result<(), DbErr> {
    if follow_ups.is_empty() {
        return Ok(());
    }
    let rows = follow_ups
        .iter()
        .map(|f| {
            Ok(follow_up::ActiveModel {
                id: Set(f.id.clone()),
                ticket_id: Set(f.ticket_id.clone()),
                customer_id: Set(f.customer_id.clone()),
                status: Set(f.status.as_str().to_owned()),
                resolved_at: Set(f.resolved_at),
                due_at: Set(f.due_at),
                reopen_pending: Set(f.reopen_pending()),
                body: Set(to_json(f)?),
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    follow_up::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::column(follow_up::Column::Id)
                .update_columns([
                    follow_up::Column::Status,
                    follow_up::Column::ReopenPending,
                    follow_up::Column::Body,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

fn follow_ups(rows: Vec<follow_up::Model>) -> Result<Vec<FollowUp>, DbErr> {
    rows.iter()
        .map(|row| from_json("follow_up", &row.body))
        .collect()
}

pub async fn load_follow_up<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    lock: bool,
) -> Result<Option<FollowUp>, DbErr> {
    lock_if_postgres(conn, follow_up::Entity::find_by_id(id.to_owned()), lock)
        .one(conn)
        .await?
        .map(|row| from_json("follow_up", &row.body))
        .transpose()
}

/// The follow-ups among `ids` that exist, in id order. With `lock`, their rows stay
/// locked until the transaction ends, taken in id order (PostgreSQL locks the rows as the
/// sorted scan returns them), so concurrent batches cannot deadlock.
pub async fn load_follow_ups<C: ConnectionTrait>(
    conn: &C,
    ids: &[String],
    lock: bool,
) -> Result<Vec<FollowUp>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let query = follow_up::Entity::find()
        .filter(follow_up::Column::Id.is_in(ids.iter().map(String::as_str)))
        .order_by_asc(follow_up::Column::Id);
    follow_ups(lock_if_postgres(conn, query, lock).all(conn).await?)
}

/// The follow-ups of a ticket, oldest first.
pub async fn follow_ups_of_ticket<C: ConnectionTrait>(
    conn: &C,
    ticket_id: &str,
) -> Result<Vec<FollowUp>, DbErr> {
    follow_ups(
        follow_up::Entity::find()
            .filter(follow_up::Column::TicketId.eq(ticket_id))
            .order_by_asc(follow_up::Column::Id)
            .all(conn)
            .await?,
    )
}

/// A page of follow-ups, newest first, before the cursor id.
pub async fn list_follow_ups<C: ConnectionTrait>(
    conn: &C,
    f: &FollowUpFilter,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<FollowUp>, DbErr> {
    let mut q = follow_up::Entity::find();
    if let Some(customer) = &f.customer_id {
        q = q.filter(follow_up::Column::CustomerId.eq(customer.as_str()));
    }
    if let Some(ticket) = &f.ticket_id {
        q = q.filter(follow_up::Column::TicketId.eq(ticket.as_str()));
    }
    if let Some(status) = f.status {
        q = q.filter(follow_up::Column::Status.eq(status.as_str()));
    }
    if let Some(before) = before {
        q = q.filter(follow_up::Column::Id.lt(before));
    }
    follow_ups(
        q.order_by_desc(follow_up::Column::Id)
            .limit(limit)
            .all(conn)
            .await?,
    )
}

/// Follow-ups of resolutions in `[from, to)`.
pub async fn follow_ups_resolved<C: ConnectionTrait>(
    conn: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<FollowUp>, DbErr> {
    follow_ups(
        follow_up::Entity::find()
            .filter(follow_up::Column::ResolvedAt.gte(from))
            .filter(follow_up::Column::ResolvedAt.lt(to))
            .all(conn)
            .await?,
    )
}

/// `(id, due_at)` of pending follow-ups after `after`, in id order: the due times the
/// deadline worker still has to fire.
pub async fn pending_follow_ups<C: ConnectionTrait>(
    conn: &C,
    after: &str,
    limit: u64,
) -> Result<Vec<(String, DateTime<Utc>)>, DbErr> {
    Ok(follow_up::Entity::find()
        .filter(follow_up::Column::Id.gt(after))
        .filter(follow_up::Column::Status.eq(FollowUpStatus::Pending.as_str()))
        .order_by_asc(follow_up::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|f| (f.id, f.due_at))
        .collect())
}

/// Ids after `after`, in id order, of follow-ups whose reopen the tickets service has not
/// confirmed yet.
pub async fn unconfirmed_reopens<C: ConnectionTrait>(
    conn: &C,
    after: &str,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    Ok(follow_up::Entity::find()
        .filter(follow_up::Column::Id.gt(after))
        .filter(follow_up::Column::ReopenPending.eq(true))
        .order_by_asc(follow_up::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|f| f.id)
        .collect())
}

pub async fn follow_ups_of<C: ConnectionTrait>(
    conn: &C,
    customer_id: &str,
) -> Result<Vec<FollowUp>, DbErr> {
    follow_ups(
        follow_up::Entity::find()
            .filter(follow_up::Column::CustomerId.eq(customer_id))
            .order_by_asc(follow_up::Column::Id)
            .all(conn)
            .await?,
    )
}
