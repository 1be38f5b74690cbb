//! Writing events into the outbox, inside the caller's transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};

use crate::entity::outbox;

/// An event to publish once the surrounding transaction commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Unique and stable: consumers dedupe on it.
    pub event_id: String,
    /// The stream it goes to, e.g. `tickets`.
    pub stream: String,
    pub event_type: String,
    pub subject_id: String,
    pub payload: Vec<u8>,
}

/// Adds events to the outbox with the current trace context, so the consumer's span
/// continues the trace of the request that caused it.
pub async fn enqueue<C: ConnectionTrait>(
    conn: &C,
    events: Vec<NewEvent>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    if events.is_empty() {
        return Ok(());
    }
    let headers = encode_headers(&aftersales_platform::telemetry::current_trace_headers());
    let rows = events.into_iter().map(|e| outbox::ActiveModel {
        event_id: Set(e.event_id),
        stream: Set(e.stream),
        event_type: Set(e.event_type),
        subject_id: Set(e.subject_id),
        payload: Set(e.payload),
        headers: Set(headers.clone()),
        created_at: Set(now),
        ..Default::default()
    });
    outbox::Entity::insert_many(rows).exec(conn).await?;
    Ok(())
}

/// Deletes rows published before `before`; the outbox is a hand-off, not an archive.
pub async fn purge_published_before<C: ConnectionTrait>(
    conn: &C,
    before: DateTime<Utc>,
) -> Result<u64, DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let res = outbox::Entity::delete_many()
        .filter(outbox::Column::PublishedAt.lt(before))
        .exec(conn)
        .await?;
    Ok(res.rows_affected)
}

/// Marks a published event for publishing again (an operator's replay); consumers
/// dedupe on the event id, so only those that never applied it act. False when the
/// outbox holds no such event (it may have been trimmed).
pub async fn mark_for_replay<C: ConnectionTrait>(conn: &C, event_id: &str) -> Result<bool, DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter, sea_query::Expr};
    let res = outbox::Entity::update_many()
        .col_expr(
            outbox::Column::PublishedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(outbox::Column::EventId.eq(event_id))
        .exec(conn)
        .await?;
    Ok(res.rows_affected > 0)
}

/// How many events wait for the relay, and when the oldest of them was written.
pub async fn backlog<C: ConnectionTrait>(conn: &C) -> Result<(u64, Option<DateTime<Utc>>), DbErr> {
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter, QueryOrder};
    let waiting = || outbox::Entity::find().filter(outbox::Column::PublishedAt.is_null());
    let count = waiting().count(conn).await?;
    let oldest = waiting()
        .order_by_asc(outbox::Column::Seq)
        .one(conn)
        .await?
        .map(|row| row.created_at);
    Ok((count, oldest))
}

/// `k=v` lines: header names and W3C values never contain `=` in the name or newlines.
pub(crate) fn encode_headers(headers: &HashMap<String, String>) -> String {
    let mut lines: Vec<String> = headers.iter().map(|(k, v)| format!("{k}={v}")).collect();
    lines.sort();
    lines.join("\n")
}

pub(crate) fn decode_headers(encoded: &str) -> HashMap<String, String> {
    encoded
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let headers = HashMap::from([
            (
                "traceparent".to_owned(),
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
            ),
            ("tracestate".to_owned(), "a=b".to_owned()),
        ]);
        assert_eq!(decode_headers(&encode_headers(&headers)), headers);
        assert!(decode_headers("").is_empty());
    }
}
