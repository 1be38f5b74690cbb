//! Reading the outbox as the live desk's feed: the events that are final (on PostgreSQL,
//! inserted by a transaction older than every transaction still running, so nothing
//! before them can still commit), in the order they became final, after a cursor.
//!
//! PostgreSQL numbers `seq` when a row is inserted, not when it commits, so reading by
//! `seq` alone could pass over a row whose transaction commits late. Each row therefore
//! records the id of the transaction that inserted it (`txid`, see the migration
//! `AddOutboxTxid`), and the feed reads only rows whose transaction is older than the
//! oldest one still running (`pg_snapshot_xmin`): that set only ever grows at its end.
//! SQLite has one writer, which commits in `seq` order.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

use crate::domain::live::{Cursor, Watched};

/// One event of the feed.
#[derive(Debug, Clone)]
pub struct FeedRow {
    pub cursor: Cursor,
    /// The encoded `EventEnvelope`.
    pub payload: Vec<u8>,
}

/// Where the feed can grow from: the newest row and, on PostgreSQL, the oldest running
/// transaction. A stream reads again only when this moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head {
    pub seq: i64,
    pub horizon: u64,
}

pub async fn head<C: ConnectionTrait>(conn: &C) -> Result<Head, DbErr> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT COALESCE(MAX(seq), 0) AS seq, \
             CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) AS BIGINT) AS horizon \
             FROM outbox"
        }
        _ => "SELECT COALESCE(MAX(seq), 0) AS seq, 0 AS horizon FROM outbox",
    };
    let row = conn
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("outbox head".into()))?;
    Ok(Head {
        seq: row.try_get("", "seq")?,
        horizon: u64::try_from(row.try_get::<i64>("", "horizon")?).unwrap_or(0),
    })
}

/// The position "now": everything final so far lies before it.
pub async fn now<C: ConnectionTrait>(conn: &C) -> Result<Cursor, DbErr> {
    let head = head(conn).await?;
    Ok(match conn.get_database_backend() {
        // Rows of transactions from the horizon on may still commit: start just before
        // the first of them.
        DbBackend::Postgres => Cursor {
            txid: head.horizon,
            seq: 0,
        },
        _ => Cursor {
            txid: 0,
            seq: head.seq,
        },
    })
}

/// Up to `limit` final events after `after` that concern `watched`, in order.
pub async fn after<C: ConnectionTrait>(
    conn: &C,
    watched: &Watched,
    after: Cursor,
    limit: u64,
) -> Result<Vec<FeedRow>, DbErr> {
    read(conn, watched, after, limit, true).await
}

/// Up to `limit` events after `after` that concern `watched` and have committed, final or
/// not: on PostgreSQL, what a stream opened "from now" at `after` (the oldest running
/// transaction) would otherwise show although it committed before the stream opened.
pub async fn committed_after<C: ConnectionTrait>(
    conn: &C,
    watched: &Watched,
    after: Cursor,
    limit: u64,
) -> Result<Vec<FeedRow>, DbErr> {
    read(conn, watched, after, limit, false).await
}

async fn read<C: ConnectionTrait>(
    conn: &C,
    watched: &Watched,
    after: Cursor,
    limit: u64,
    only_final: bool,
) -> Result<Vec<FeedRow>, DbErr> {
    let backend = conn.get_database_backend();
    let postgres = backend == DbBackend::Postgres;
    let (join, filter, key) = match watched {
        Watched::Ticket(id) => ("", "o.subject_id = $3", id),
        Watched::Group(id) => (
            "JOIN tickets t ON t.id = o.subject_id",
            "t.group_id = $3",
            id,
        ),
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let finality = if only_final {
        "o.txid < pg_snapshot_xmin(pg_current_snapshot())"
    } else {
        "TRUE"
    };
    let (sql, values): (String, Vec<Value>) = if postgres {
        (
            format!(
                "SELECT CAST(CAST(o.txid AS TEXT) AS BIGINT) AS txid, o.seq, o.payload \
                 FROM outbox o {join} \
                 WHERE (o.txid, o.seq) > (CAST(CAST($1 AS TEXT) AS xid8), $2) \
                 AND {finality} AND {filter} \
                 ORDER BY o.txid, o.seq LIMIT $4"
            ),
            vec![
                i64::try_from(after.txid).unwrap_or(i64::MAX).into(),
                after.seq.into(),
                key.clone().into(),
                limit.into(),
            ],
        )
    } else {
        (
            format!(
                "SELECT 0 AS txid, o.seq, o.payload FROM outbox o {join} \
                 WHERE o.seq > $2 AND {filter} ORDER BY o.seq LIMIT $4"
            )
            .replace("$2", "?")
            .replace("$3", "?")
            .replace("$4", "?"),
            vec![after.seq.into(), key.clone().into(), limit.into()],
        )
    };
    conn.query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
        .into_iter()
        .map(|row| {
            Ok(FeedRow {
                cursor: cursor_of(&row)?,
                payload: row.try_get("", "payload")?,
            })
        })
        .collect()
}

fn cursor_of(row: &sea_orm::QueryResult) -> Result<Cursor, DbErr> {
    Ok(Cursor {
        txid: u64::try_from(row.try_get::<i64>("", "txid")?).unwrap_or(0),
        seq: row.try_get("", "seq")?,
    })
}
