//! The customer timeline: one entry per event about a customer (keyed by the event id)
//! and per record care keeps itself.

use aftersales_platform::db::parse_code;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::OnConflict,
};

use crate::domain::records::TimelineEntry;

use super::{customers::touch_customer, entity::timeline};

/// Adds an entry once (a replayed event finds its entry and adds nothing) and moves the
/// customer's last activity forward to it. An entry about no customer is not kept.
pub async fn add_timeline<C: ConnectionTrait>(conn: &C, e: &TimelineEntry) -> Result<(), DbErr> {
    if e.customer_id.is_empty() {
        return Ok(());
    }
    timeline::Entity::insert(timeline::ActiveModel {
        id: Set(e.id.clone()),
        customer_id: Set(e.customer_id.clone()),
        kind: Set(e.kind.as_str().to_owned()),
        subject_id: Set(e.subject_id.clone()),
        event: Set(e.event.clone()),
        summary: Set(e.summary.clone()),
        channel: Set(e.channel.map(|c| c.as_str().to_owned())),
        occurred_at: Set(e.occurred_at),
    })
    .on_conflict(
        OnConflict::column(timeline::Column::Id)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    touch_customer(conn, &e.customer_id, e.occurred_at).await
}

fn entry(row: timeline::Model) -> Result<TimelineEntry, DbErr> {
    Ok(TimelineEntry {
        kind: parse_code("timeline kind", &row.kind)?,
        channel: row
            .channel
            .as_deref()
            .map(|c| parse_code("timeline channel", c))
            .transpose()?,
        id: row.id,
        customer_id: row.customer_id,
        subject_id: row.subject_id,
        event: row.event,
        summary: row.summary,
        occurred_at: row.occurred_at,
    })
}

/// A page of a customer's timeline, newest first, after the entry `before` (exclusive).
pub async fn timeline_page<C: ConnectionTrait>(
    conn: &C,
    customer_id: &str,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<TimelineEntry>, DbErr> {
    let mut q = timeline::Entity::find().filter(timeline::Column::CustomerId.eq(customer_id));
    if let Some(before) = before
        && let Some(cursor) = timeline::Entity::find_by_id(before.to_owned())
            .one(conn)
            .await?
    {
        q = q.filter(
            Condition::any()
                .add(timeline::Column::OccurredAt.lt(cursor.occurred_at))
                .add(
                    Condition::all()
                        .add(timeline::Column::OccurredAt.eq(cursor.occurred_at))
                        .add(timeline::Column::Id.lt(cursor.id)),
                ),
        );
    }
    q.order_by_desc(timeline::Column::OccurredAt)
        .order_by_desc(timeline::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(entry)
        .collect()
}
