//! What the refund variants store besides returns and refunds: the one price-difference
//! refund of each order line, and refunds read under lock (a refund without a return has
//! no return row to lock while its payment is recorded).

use aftersales_platform::db::from_json;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DbBackend, DbErr, EntityTrait, QuerySelect,
    sea_query::OnConflict,
};

use super::entity::{price_protection, refund};
use crate::domain::refund::Refund;

/// A refund, its row locked until the transaction ends (PostgreSQL; SQLite's single
/// writer serialises anyway).
pub async fn get_refund_locked<C: ConnectionTrait>(
    conn: &C,
    id: &str,
) -> Result<Option<Refund>, DbErr> {
    let mut query = refund::Entity::find_by_id(id.to_owned());
    if conn.get_database_backend() == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    query
        .one(conn)
        .await?
        .map(|row| from_json("refund", &row.body))
        .transpose()
}

/// Claims the price difference of an order line for `refund_id`. Answers `None` when
/// claimed, or the refund that claimed it before (locked), which the caller may replace
/// with [`claim_price_protection`]'s `replace` when that refund failed.
pub async fn claim_price_protection<C: ConnectionTrait>(
    conn: &C,
    order_id: &str,
    sku: &str,
    refund_id: &str,
    replace: bool,
    now: DateTime<Utc>,
) -> Result<Option<String>, DbErr> {
    let row = price_protection::ActiveModel {
        order_id: Set(order_id.to_owned()),
        sku: Set(sku.to_owned()),
        refund_id: Set(refund_id.to_owned()),
        claimed_at: Set(now),
    };
    let mut on_conflict = OnConflict::columns([
        price_protection::Column::OrderId,
        price_protection::Column::Sku,
    ]);
    if replace {
        on_conflict.update_columns([
            price_protection::Column::RefundId,
            price_protection::Column::ClaimedAt,
        ]);
    } else {
        on_conflict.do_nothing();
    }
    let inserted = price_protection::Entity::insert(row)
        .on_conflict(on_conflict.to_owned())
        .exec_without_returning(conn)
        .await?;
    if inserted == 1 {
        return Ok(None);
    }
    let mut query = price_protection::Entity::find_by_id((order_id.to_owned(), sku.to_owned()));
    if conn.get_database_backend() == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    Ok(query.one(conn).await?.map(|row| row.refund_id))
}
