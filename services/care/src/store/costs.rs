//! Cost entries and stock changes folded from events: inserted once by their ids (a
//! repeat changes nothing), read by instant for the cost report.

use aftersales_platform::{db::parse_code, money::Money};
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Alias, Expr, Func, OnConflict},
};

use crate::domain::cost::{CostEntry, StockChange};

use super::entity::{cost_entry, stock_change};

/// Records each entry unless one with its id exists: the first delivery counts.
pub async fn add_cost_entries<C: ConnectionTrait>(
    conn: &C,
    entries: &[CostEntry],
) -> Result<(), DbErr> {
    for e in entries {
        cost_entry::Entity::insert(cost_entry::ActiveModel {
            id: Set(e.id.clone()),
            kind: Set(e.kind.as_str().to_owned()),
            ticket_id: Set(e.ticket_id.clone()),
            product_line: Set(e.product_line.clone()),
            region: Set(e.region.clone()),
            amount_minor: Set(e.amount.minor),
            currency: Set(e.amount.currency.clone()),
            at: Set(e.at),
        })
        .on_conflict(
            OnConflict::column(cost_entry::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    }
    Ok(())
}

/// Records a stock change under the id of the event that reported it.
pub async fn add_stock_change<C: ConnectionTrait>(
    conn: &C,
    event_id: &str,
    c: &StockChange,
) -> Result<(), DbErr> {
    stock_change::Entity::insert(stock_change::ActiveModel {
        id: Set(event_id.to_owned()),
        part_id: Set(c.part_id.clone()),
        site_id: Set(c.site_id.clone()),
        region: Set(c.region.clone()),
        delta: Set(c.delta),
        consumed: Set(c.consumed),
        at: Set(c.at),
    })
    .on_conflict(
        OnConflict::column(stock_change::Column::Id)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Cost entries at instants in `[from, to)`.
pub async fn cost_entries<C: ConnectionTrait>(
    conn: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<CostEntry>, DbErr> {
    cost_entry::Entity::find()
        .filter(cost_entry::Column::At.gte(from))
        .filter(cost_entry::Column::At.lt(to))
        .order_by_asc(cost_entry::Column::At)
        .order_by_asc(cost_entry::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| {
            Ok(CostEntry {
                kind: parse_code("cost kind", &row.kind)?,
                amount: Money::new(row.amount_minor, &row.currency),
                id: row.id,
                ticket_id: row.ticket_id,
                product_line: row.product_line,
                region: row.region,
                at: row.at,
            })
        })
        .collect()
}

/// The stock changes of `[from, to)`, of one region or all, preceded by each part's
/// level at each site at `from` as one change just before it (summed by the database, so
/// a report reads the span's changes, not the whole history).
pub async fn stock_changes<C: ConnectionTrait>(
    conn: &C,
    region: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<StockChange>, DbErr> {
    let mut opening = stock_change::Entity::find()
        .select_only()
        .column(stock_change::Column::PartId)
        .column(stock_change::Column::SiteId)
        .column(stock_change::Column::Region)
        // PostgreSQL sums BIGINT as NUMERIC.
        .column_as(
            Expr::from(Func::cast_as(
                stock_change::Column::Delta.sum(),
                Alias::new("BIGINT"),
            )),
            "delta",
        )
        .filter(stock_change::Column::At.lt(from));
    let mut within = stock_change::Entity::find()
        .filter(stock_change::Column::At.gte(from))
        .filter(stock_change::Column::At.lt(to));
    if let Some(region) = region {
        opening = opening.filter(stock_change::Column::Region.eq(region));
        within = within.filter(stock_change::Column::Region.eq(region));
    }
    let levels: Vec<(String, String, String, i64)> = opening
        .group_by(stock_change::Column::PartId)
        .group_by(stock_change::Column::SiteId)
        .group_by(stock_change::Column::Region)
        .into_tuple()
        .all(conn)
        .await?;
    let before = from - Duration::milliseconds(1);
    let mut changes: Vec<StockChange> = levels
        .into_iter()
        .map(|(part_id, site_id, region, delta)| StockChange {
            part_id,
            site_id,
            region,
            delta,
            consumed: 0,
            at: before,
        })
        .collect();
    changes.extend(
        within
            .order_by_asc(stock_change::Column::At)
            .order_by_asc(stock_change::Column::Id)
            .all(conn)
            .await?
            .into_iter()
            .map(|row| StockChange {
                part_id: row.part_id,
                site_id: row.site_id,
                region: row.region,
                delta: row.delta,
                consumed: row.consumed,
                at: row.at,
            }),
    );
    Ok(changes)
}
