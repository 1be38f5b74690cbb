//! A ticket's thread (replies and notes) and its activity log: writing entries and
//! reading them back a page at a time, oldest first.

use aftersales_platform::db::{from_json, parse_code, to_json};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entity::{activity, reply};
use crate::domain::{Visibility, activity::ActivityEntry, thread::Reply};

fn reply_from_row(row: reply::Model) -> Result<Reply, DbErr> {
    Ok(Reply {
        author: parse_code("ticket_reply", &row.author)?,
        visibility: parse_code("ticket_reply", &row.visibility)?,
        attachments: from_json("ticket_reply", &row.attachments)?,
        recorded_by: row.recorded_by.unwrap_or_default(),
        id: row.id,
        ticket_id: row.ticket_id,
        author_id: row.author_id,
        body: row.body,
        created_at: row.created_at,
        held: row.held,
    })
}

/// One entry, by its id.
pub async fn reply<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<Reply>, DbErr> {
    reply::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .map(reply_from_row)
        .transpose()
}

pub async fn insert_reply<C: ConnectionTrait>(conn: &C, r: &Reply) -> Result<(), DbErr> {
    reply::Entity::insert(reply::ActiveModel {
        id: Set(r.id.clone()),
        ticket_id: Set(r.ticket_id.clone()),
        author: Set(r.author.as_str().into()),
        author_id: Set(r.author_id.clone()),
        body: Set(r.body.clone()),
        created_at: Set(r.created_at),
        visibility: Set(r.visibility.as_str().into()),
        attachments: Set(to_json(&r.attachments)?),
        recorded_by: Set(Some(r.recorded_by.clone())),
        held: Set(r.held),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Up to `limit` entries of the ticket's thread after the one with id `after_id`, oldest
/// first (ids are UUIDv7: id order is the order they were written); all of them, or those
/// of one visibility.
pub async fn list_replies<C: ConnectionTrait>(
    conn: &C,
    ticket_id: &str,
    visibility: Option<Visibility>,
    after_id: Option<&str>,
    limit: u64,
) -> Result<Vec<Reply>, DbErr> {
    let mut query = reply::Entity::find().filter(reply::Column::TicketId.eq(ticket_id));
    if let Some(visibility) = visibility {
        query = query.filter(reply::Column::Visibility.eq(visibility.as_str()));
    }
    if let Some(after) = after_id {
        query = query.filter(reply::Column::Id.gt(after));
    }
    query
        .order_by_asc(reply::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(reply_from_row)
        .collect()
}

/// Up to `limit` lines of the ticket's activity log after the one numbered `after_seq`,
/// oldest first.
pub async fn list_activity<C: ConnectionTrait>(
    conn: &C,
    ticket_id: &str,
    after_seq: Option<u64>,
    limit: u64,
) -> Result<Vec<ActivityEntry>, DbErr> {
    let mut query = activity::Entity::find().filter(activity::Column::TicketId.eq(ticket_id));
    if let Some(after) = after_seq {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        query = query.filter(activity::Column::Seq.gt(after));
    }
    query
        .order_by_asc(activity::Column::Seq)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| {
            Ok(ActivityEntry {
                seq: u64::try_from(row.seq).unwrap_or_default(),
                changes: from_json("ticket_activity", &row.changes)?,
                ticket_id: row.ticket_id,
                actor_id: row.actor_id,
                actor_role: row.actor_role,
                action: row.action,
                detail: row.detail,
                at: row.at,
            })
        })
        .collect()
}

/// Marks a held entry released (public, no longer held) or discarded (kept as a note).
pub async fn settle_held_reply<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    visibility: Visibility,
) -> Result<(), DbErr> {
    reply::Entity::update_many()
        .col_expr(
            reply::Column::Visibility,
            sea_orm::sea_query::Expr::value(visibility.as_str()),
        )
        .col_expr(reply::Column::Held, sea_orm::sea_query::Expr::value(false))
        .filter(reply::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}
