//! The webhooks store: endpoints and deliveries as rows (entities never leave this module
//! except as the plain [`EndpointRow`] and [`DeliveryRow`] the use cases seal and open).

pub mod entity;
pub mod migration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, OnConflict},
};

use entity::{delivery, endpoint};
pub use entity::{delivery::Model as DeliveryRow, endpoint::Model as EndpointRow};

use crate::domain::{DeliveryState, EndpointState};

fn lock_if_postgres<C: ConnectionTrait, Q: QuerySelect>(conn: &C, query: Q, lock: bool) -> Q {
    if lock && conn.get_database_backend() == DbBackend::Postgres {
        query.lock_exclusive()
    } else {
        query
    }
}

/// Inserts or replaces an endpoint.
pub async fn save_endpoint<C: ConnectionTrait>(conn: &C, row: EndpointRow) -> Result<(), DbErr> {
    let active = endpoint::ActiveModel::from(row).reset_all();
    endpoint::Entity::insert(active)
        .on_conflict(
            OnConflict::column(endpoint::Column::Id)
                .update_columns([
                    endpoint::Column::Url,
                    endpoint::Column::EventTypes,
                    endpoint::Column::State,
                    endpoint::Column::Description,
                    endpoint::Column::Secret,
                    endpoint::Column::PreviousSecret,
                    endpoint::Column::PreviousSecretExpiresAt,
                    endpoint::Column::FailingSince,
                    endpoint::Column::DisabledReason,
                    endpoint::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec(conn)
        .await?;
    Ok(())
}

/// An endpoint that is not deleted, locked for the command when `lock`.
pub async fn get_endpoint<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    lock: bool,
) -> Result<Option<EndpointRow>, DbErr> {
    let query = endpoint::Entity::find_by_id(id.to_owned())
        .filter(endpoint::Column::State.ne(EndpointState::Deleted.code()));
    lock_if_postgres(conn, query, lock).one(conn).await
}

/// An endpoint, deleted or not (what a retried delete answers with).
pub async fn find_endpoint<C: ConnectionTrait>(
    conn: &C,
    id: &str,
) -> Result<Option<EndpointRow>, DbErr> {
    endpoint::Entity::find_by_id(id.to_owned()).one(conn).await
}

/// Endpoints of one owner (`""` for internal ones), oldest first, after the cursor.
pub async fn list_endpoints<C: ConnectionTrait>(
    conn: &C,
    partner_id: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<EndpointRow>, DbErr> {
    let mut query = endpoint::Entity::find()
        .filter(endpoint::Column::PartnerId.eq(partner_id))
        .filter(endpoint::Column::State.ne(EndpointState::Deleted.code()));
    if let Some(after) = after {
        query = query.filter(endpoint::Column::Id.gt(after));
    }
    query
        .order_by_asc(endpoint::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// Every enabled endpoint: what an incoming event is matched against.
pub async fn enabled_endpoints<C: ConnectionTrait>(conn: &C) -> Result<Vec<EndpointRow>, DbErr> {
    endpoint::Entity::find()
        .filter(endpoint::Column::State.eq(EndpointState::Enabled.code()))
        .all(conn)
        .await
}

/// Records a failure: the endpoint is failing since now unless it already was. Returns
/// since when it fails.
pub async fn mark_failing<C: ConnectionTrait>(
    conn: &C,
    endpoint_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    endpoint::Entity::update_many()
        .col_expr(endpoint::Column::FailingSince, Expr::value(now))
        .filter(endpoint::Column::Id.eq(endpoint_id))
        .filter(endpoint::Column::FailingSince.is_null())
        .exec(conn)
        .await?;
    Ok(endpoint::Entity::find_by_id(endpoint_id.to_owned())
        .one(conn)
        .await?
        .and_then(|e| e.failing_since))
}

/// Records a success: the endpoint no longer fails.
pub async fn mark_succeeding<C: ConnectionTrait>(conn: &C, endpoint_id: &str) -> Result<(), DbErr> {
    endpoint::Entity::update_many()
        .col_expr(
            endpoint::Column::FailingSince,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(endpoint::Column::Id.eq(endpoint_id))
        .filter(endpoint::Column::FailingSince.is_not_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// Disables an enabled endpoint that has failed since `failing_since`; true when this
/// call did it (so its event is published once however many attempts decide it).
pub async fn disable<C: ConnectionTrait>(
    conn: &C,
    endpoint_id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = endpoint::Entity::update_many()
        .col_expr(
            endpoint::Column::State,
            Expr::value(EndpointState::Disabled.code()),
        )
        .col_expr(endpoint::Column::DisabledReason, Expr::value(reason))
        .col_expr(endpoint::Column::UpdatedAt, Expr::value(now))
        .filter(endpoint::Column::Id.eq(endpoint_id))
        .filter(endpoint::Column::State.eq(EndpointState::Enabled.code()))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Inserts new deliveries; one that exists already is left as it is.
pub async fn insert_deliveries<C: ConnectionTrait>(
    conn: &C,
    rows: Vec<DeliveryRow>,
) -> Result<(), DbErr> {
    // Bounded statements: well under both backends' limits on bound parameters.
    const ROWS_PER_INSERT: usize = 500;
    let mut rows = rows.into_iter().map(delivery::ActiveModel::from).peekable();
    while rows.peek().is_some() {
        let chunk: Vec<delivery::ActiveModel> = rows.by_ref().take(ROWS_PER_INSERT).collect();
        delivery::Entity::insert_many(chunk)
            .on_conflict(
                OnConflict::columns([delivery::Column::EndpointId, delivery::Column::Id])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

pub async fn get_delivery<C: ConnectionTrait>(
    conn: &C,
    endpoint_id: &str,
    id: &str,
    lock: bool,
) -> Result<Option<DeliveryRow>, DbErr> {
    let query = delivery::Entity::find_by_id((endpoint_id.to_owned(), id.to_owned()));
    lock_if_postgres(conn, query, lock).one(conn).await
}

/// The deliveries of `keys` (endpoint, delivery) that exist, in key order, locked for the
/// command when `lock` (in that order, so concurrent batches cannot deadlock).
pub async fn get_deliveries<C: ConnectionTrait>(
    conn: &C,
    keys: &[(&str, &str)],
    lock: bool,
) -> Result<Vec<DeliveryRow>, DbErr> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_endpoint: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (endpoint_id, id) in keys {
        by_endpoint.entry(endpoint_id).or_default().push(id);
    }
    let mut any = Condition::any();
    for (endpoint_id, ids) in by_endpoint {
        any = any.add(
            Condition::all()
                .add(delivery::Column::EndpointId.eq(endpoint_id))
                .add(delivery::Column::Id.is_in(ids)),
        );
    }
    let query = delivery::Entity::find()
        .filter(any)
        .order_by_asc(delivery::Column::EndpointId)
        .order_by_asc(delivery::Column::Id);
    lock_if_postgres(conn, query, lock).all(conn).await
}

/// Replaces a delivery's state, attempts and times.
pub async fn update_delivery<C: ConnectionTrait>(conn: &C, row: DeliveryRow) -> Result<(), DbErr> {
    let active = delivery::ActiveModel::from(row).reset_all();
    delivery::Entity::update(active).exec(conn).await?;
    Ok(())
}

/// One endpoint's deliveries, newest first, before the cursor, optionally of one state.
pub async fn list_deliveries<C: ConnectionTrait>(
    conn: &C,
    endpoint_id: &str,
    state: Option<DeliveryState>,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<DeliveryRow>, DbErr> {
    let mut query = delivery::Entity::find().filter(delivery::Column::EndpointId.eq(endpoint_id));
    if let Some(state) = state {
        query = query.filter(delivery::Column::State.eq(state.code()));
    }
    if let Some(before) = before {
        query = query.filter(delivery::Column::Id.lt(before));
    }
    query
        .order_by_desc(delivery::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// A page of pending deliveries of enabled endpoints in key order after `(endpoint, id)`:
/// what the schedule is rebuilt from.
pub async fn pending_page<C: ConnectionTrait>(
    conn: &C,
    after: Option<(&str, &str)>,
    limit: u64,
) -> Result<Vec<PendingDelivery>, DbErr> {
    let enabled: Vec<String> = endpoint::Entity::find()
        .select_only()
        .column(endpoint::Column::Id)
        .filter(endpoint::Column::State.eq(EndpointState::Enabled.code()))
        .into_tuple()
        .all(conn)
        .await?;
    if enabled.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = delivery::Entity::find()
        .filter(delivery::Column::State.eq(DeliveryState::Pending.code()))
        .filter(delivery::Column::NextAttemptAt.is_not_null())
        .filter(delivery::Column::EndpointId.is_in(enabled));
    if let Some((endpoint_id, id)) = after {
        query = query.filter(
            Condition::any()
                .add(delivery::Column::EndpointId.gt(endpoint_id))
                .add(
                    Condition::all()
                        .add(delivery::Column::EndpointId.eq(endpoint_id))
                        .add(delivery::Column::Id.gt(id)),
                ),
        );
    }
    let rows = query
        .order_by_asc(delivery::Column::EndpointId)
        .order_by_asc(delivery::Column::Id)
        .limit(limit)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let never_tried = r.attempts.trim() == "[]";
            let next = r.next_attempt_at?;
            Some(PendingDelivery {
                endpoint_id: r.endpoint_id,
                id: r.id,
                next_attempt_at: next,
                first_attempt_since: never_tried.then_some(r.created_at),
            })
        })
        .collect())
}

/// A pending delivery as the schedule is rebuilt from it.
#[derive(Debug, Clone)]
pub struct PendingDelivery {
    pub endpoint_id: String,
    pub id: String,
    pub next_attempt_at: DateTime<Utc>,
    /// When it was created, if it was never attempted.
    pub first_attempt_since: Option<DateTime<Utc>>,
}

/// The pending deliveries of one endpoint with their next attempt.
pub async fn pending_of<C: ConnectionTrait>(
    conn: &C,
    endpoint_id: &str,
) -> Result<Vec<(String, DateTime<Utc>)>, DbErr> {
    let rows = delivery::Entity::find()
        .filter(delivery::Column::EndpointId.eq(endpoint_id))
        .filter(delivery::Column::State.eq(DeliveryState::Pending.code()))
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.id, r.next_attempt_at?)))
        .collect())
}

/// Gives up the pending deliveries of an endpoint that was disabled or deleted.
pub async fn fail_pending_of<C: ConnectionTrait>(
    conn: &C,
    endpoint_id: &str,
) -> Result<u64, DbErr> {
    let res = delivery::Entity::update_many()
        .col_expr(
            delivery::Column::State,
            Expr::value(DeliveryState::Failed.code()),
        )
        .col_expr(
            delivery::Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(delivery::Column::EndpointId.eq(endpoint_id))
        .filter(delivery::Column::State.eq(DeliveryState::Pending.code()))
        .exec(conn)
        .await?;
    Ok(res.rows_affected)
}
