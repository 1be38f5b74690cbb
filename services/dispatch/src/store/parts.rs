//! Reading and writing spare parts: parts and sites, stock rows (locked in the service's
//! order and written by guarded updates that refuse a negative figure), jobs'
//! reservations, transfers, receipts, stocktakes and the movement ledger turnover is
//! computed from.

use aftersales_platform::db::{from_json, parse_code, to_json};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use super::{
    lock_if_postgres,
    parts_entity::{movement, part, receipt, reservation, site, stock, stocktake, transfer},
};
use crate::domain::{
    new_id,
    parts::{
        Movement, MovementKind, OnHandChange, Part, Receipt, Reservation, ReservationStatus, Site,
        Stock, Stocktake, Transfer,
    },
};

pub async fn insert_part<C: ConnectionTrait>(conn: &C, p: &Part) -> Result<(), DbErr> {
    part::Entity::insert(part::ActiveModel {
        id: Set(p.id.clone()),
        name: Set(p.name.clone()),
        fee_code: Set(p.fee_code.clone()),
        created_at: Set(p.created_at),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub async fn get_part<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<Part>, DbErr> {
    Ok(part::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .map(|row| Part {
            id: row.id,
            name: row.name,
            fee_code: row.fee_code,
            created_at: row.created_at,
        }))
}

/// Those of `ids` that name no part.
pub async fn unknown_parts<C: ConnectionTrait>(
    conn: &C,
    ids: &[String],
) -> Result<Vec<String>, DbErr> {
    let known: Vec<String> = part::Entity::find()
        .filter(part::Column::Id.is_in(ids.iter().map(String::as_str)))
        .all(conn)
        .await?
        .into_iter()
        .map(|row| row.id)
        .collect();
    Ok(ids
        .iter()
        .filter(|id| !known.contains(id))
        .cloned()
        .collect())
}

pub async fn insert_site<C: ConnectionTrait>(conn: &C, s: &Site) -> Result<(), DbErr> {
    site::Entity::insert(site::ActiveModel {
        id: Set(s.id.clone()),
        name: Set(s.name.clone()),
        kind: Set(s.kind.as_str().into()),
        region_code: Set(s.region_code.clone()),
        partner_id: Set(s.partner_id.clone()),
        created_at: Set(s.created_at),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub async fn get_site<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<Site>, DbErr> {
    site::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .map(|row| {
            Ok(Site {
                id: row.id,
                name: row.name,
                kind: parse_code("site", &row.kind)?,
                region_code: row.region_code,
                partner_id: row.partner_id,
                created_at: row.created_at,
            })
        })
        .transpose()
}

fn stock_of(row: stock::Model) -> Stock {
    Stock {
        part_id: row.part_id,
        site_id: row.site_id,
        on_hand: row.on_hand,
        reserved: row.reserved,
        in_transit: row.in_transit,
        threshold: row.threshold,
        low: row.low,
    }
}

fn keys_condition(keys: &[(String, String)]) -> Condition {
    keys.iter()
        .fold(Condition::any(), |any, (part_id, site_id)| {
            any.add(
                Condition::all()
                    .add(stock::Column::PartId.eq(part_id.as_str()))
                    .add(stock::Column::SiteId.eq(site_id.as_str())),
            )
        })
}

/// Locks the stock rows of `(part_id, site_id)` pairs until the transaction ends, creating
/// empty ones first, and reads them, in (part, site) order: the service's lock order for
/// stock, always after any job row the transaction locks.
pub async fn lock_stock<C: ConnectionTrait>(
    conn: &C,
    keys: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<Vec<Stock>, DbErr> {
    let mut keys = keys.to_vec();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let empty = keys.iter().map(|(part_id, site_id)| stock::ActiveModel {
        part_id: Set(part_id.clone()),
        site_id: Set(site_id.clone()),
        on_hand: Set(0),
        reserved: Set(0),
        in_transit: Set(0),
        threshold: Set(0),
        low: Set(false),
        updated_at: Set(now),
    });
    stock::Entity::insert_many(empty)
        .on_conflict(
            OnConflict::columns([stock::Column::PartId, stock::Column::SiteId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    let query = stock::Entity::find()
        .filter(keys_condition(&keys))
        .order_by_asc(stock::Column::PartId)
        .order_by_asc(stock::Column::SiteId);
    Ok(lock_if_postgres(conn, query, true)
        .all(conn)
        .await?
        .into_iter()
        .map(stock_of)
        .collect())
}

/// Writes a changed stock row as the difference from `before`, guarded by the database:
/// false (and nothing written) if the row would hold a negative figure or more reserved
/// than on hand, whatever the caller computed.
pub async fn save_stock<C: ConnectionTrait>(
    conn: &C,
    before: &Stock,
    after: &Stock,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let on_hand = after.on_hand - before.on_hand;
    let reserved = after.reserved - before.reserved;
    let in_transit = after.in_transit - before.in_transit;
    let new = |column: stock::Column, delta: i64| Expr::col(column).add(delta);
    let result = stock::Entity::update_many()
        .col_expr(stock::Column::OnHand, new(stock::Column::OnHand, on_hand))
        .col_expr(
            stock::Column::Reserved,
            new(stock::Column::Reserved, reserved),
        )
        .col_expr(
            stock::Column::InTransit,
            new(stock::Column::InTransit, in_transit),
        )
        .col_expr(stock::Column::Threshold, Expr::value(after.threshold))
        .col_expr(stock::Column::Low, Expr::value(after.low))
        .col_expr(stock::Column::UpdatedAt, Expr::value(now))
        .filter(stock::Column::PartId.eq(after.part_id.as_str()))
        .filter(stock::Column::SiteId.eq(after.site_id.as_str()))
        .filter(new(stock::Column::OnHand, on_hand).gte(0))
        .filter(new(stock::Column::Reserved, reserved).gte(0))
        .filter(new(stock::Column::InTransit, in_transit).gte(0))
        .filter(new(stock::Column::OnHand, on_hand).gte(new(stock::Column::Reserved, reserved)))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Stock rows, filtered by site and part, in (part, site) order.
pub async fn list_stock<C: ConnectionTrait>(
    conn: &C,
    site_id: Option<&str>,
    part_id: Option<&str>,
) -> Result<Vec<Stock>, DbErr> {
    let mut query = stock::Entity::find();
    if let Some(site_id) = site_id {
        query = query.filter(stock::Column::SiteId.eq(site_id));
    }
    if let Some(part_id) = part_id {
        query = query.filter(stock::Column::PartId.eq(part_id));
    }
    Ok(query
        .order_by_asc(stock::Column::PartId)
        .order_by_asc(stock::Column::SiteId)
        .all(conn)
        .await?
        .into_iter()
        .map(stock_of)
        .collect())
}

/// Records ledger lines of one stock row.
pub async fn record_movements<C: ConnectionTrait>(
    conn: &C,
    stock: &Stock,
    movements: &[Movement],
    reference: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    if movements.is_empty() {
        return Ok(());
    }
    let rows = movements.iter().map(|m| movement::ActiveModel {
        id: Set(new_id()),
        part_id: Set(stock.part_id.clone()),
        site_id: Set(stock.site_id.clone()),
        kind: Set(m.kind.as_str().into()),
        on_hand_delta: Set(m.on_hand),
        reserved_delta: Set(m.reserved),
        in_transit_delta: Set(m.in_transit),
        reference: Set(reference.to_owned()),
        at: Set(at),
    });
    movement::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The quantity of a part on hand just before `from` (at one site, or all together), and
/// the on-hand changes in `[from, to)` in the order they happened.
pub async fn on_hand_history<C: ConnectionTrait>(
    conn: &C,
    part_id: &str,
    site_id: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(i64, Vec<OnHandChange>), DbErr> {
    let mut query = movement::Entity::find()
        .filter(movement::Column::PartId.eq(part_id))
        .filter(movement::Column::At.lt(to));
    if let Some(site_id) = site_id {
        query = query.filter(movement::Column::SiteId.eq(site_id));
    }
    let rows = query
        .order_by_asc(movement::Column::At)
        .order_by_asc(movement::Column::Id)
        .all(conn)
        .await?;
    let mut opening = 0;
    let mut changes = Vec::new();
    for row in rows {
        if row.at < from {
            opening += row.on_hand_delta;
            continue;
        }
        let consumed = if row.kind == MovementKind::Consume.as_str() {
            -row.on_hand_delta
        } else {
            0
        };
        changes.push(OnHandChange {
            at: row.at,
            delta: row.on_hand_delta,
            consumed,
        });
    }
    Ok((opening, changes))
}

fn reservation_of(row: reservation::Model) -> Result<Reservation, DbErr> {
    Ok(Reservation {
        id: row.id,
        job_id: row.job_id,
        site_id: row.site_id,
        part_id: row.part_id,
        quantity: row.quantity,
        reserved: row.reserved,
        status: parse_code("reservation", &row.status)?,
        created_at: row.created_at,
    })
}

/// The reservations of jobs, oldest first.
pub async fn reservations_of<C: ConnectionTrait>(
    conn: &C,
    job_ids: &[String],
) -> Result<Vec<Reservation>, DbErr> {
    if job_ids.is_empty() {
        return Ok(Vec::new());
    }
    reservation::Entity::find()
        .filter(reservation::Column::JobId.is_in(job_ids.iter().map(String::as_str)))
        .order_by_asc(reservation::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(reservation_of)
        .collect()
}

/// The jobs with an open reservation at `site_id` of one of `part_ids` still missing
/// units, in id order.
pub async fn jobs_waiting_at<C: ConnectionTrait>(
    conn: &C,
    site_id: &str,
    part_ids: &[String],
) -> Result<Vec<String>, DbErr> {
    let mut jobs: Vec<String> = reservation::Entity::find()
        .filter(reservation::Column::SiteId.eq(site_id))
        .filter(reservation::Column::PartId.is_in(part_ids.iter().map(String::as_str)))
        .filter(reservation::Column::Status.eq(ReservationStatus::Open.as_str()))
        .filter(
            Expr::col(reservation::Column::Reserved).lt(Expr::col(reservation::Column::Quantity)),
        )
        .all(conn)
        .await?
        .into_iter()
        .map(|row| row.job_id)
        .collect();
    jobs.sort();
    jobs.dedup();
    Ok(jobs)
}

pub async fn save_reservations<C: ConnectionTrait>(
    conn: &C,
    lines: &[Reservation],
) -> Result<(), DbErr> {
    if lines.is_empty() {
        return Ok(());
    }
    let rows = lines.iter().map(|l| reservation::ActiveModel {
        id: Set(l.id.clone()),
        job_id: Set(l.job_id.clone()),
        site_id: Set(l.site_id.clone()),
        part_id: Set(l.part_id.clone()),
        quantity: Set(l.quantity),
        reserved: Set(l.reserved),
        status: Set(l.status.as_str().into()),
        created_at: Set(l.created_at),
    });
    reservation::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::column(reservation::Column::Id)
                .update_columns([reservation::Column::Reserved, reservation::Column::Status])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn save_transfer<C: ConnectionTrait>(
    conn: &C,
    t: &Transfer,
    resumed: &[String],
) -> Result<(), DbErr> {
    let row = transfer::ActiveModel {
        id: Set(t.id.clone()),
        part_id: Set(t.part_id.clone()),
        from_site_id: Set(t.from_site_id.clone()),
        to_site_id: Set(t.to_site_id.clone()),
        quantity: Set(t.quantity),
        status: Set(t.status.as_str().into()),
        shipped_at: Set(t.shipped_at),
        received_at: Set(t.received_at),
        resumed: Set(to_json(&resumed)?),
    };
    transfer::Entity::insert(row)
        .on_conflict(
            OnConflict::column(transfer::Column::Id)
                .update_columns([
                    transfer::Column::Status,
                    transfer::Column::ReceivedAt,
                    transfer::Column::Resumed,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// A transfer and the jobs its arrival resumed; with `lock`, locked until the transaction
/// ends (before any job or stock row, so two receipts of one transfer queue here).
pub async fn get_transfer<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    lock: bool,
) -> Result<Option<(Transfer, Vec<String>)>, DbErr> {
    let query = lock_if_postgres(conn, transfer::Entity::find_by_id(id.to_owned()), lock);
    query
        .one(conn)
        .await?
        .map(|row| {
            Ok((
                Transfer {
                    id: row.id,
                    part_id: row.part_id,
                    from_site_id: row.from_site_id,
                    to_site_id: row.to_site_id,
                    quantity: row.quantity,
                    status: parse_code("transfer", &row.status)?,
                    shipped_at: row.shipped_at,
                    received_at: row.received_at,
                },
                from_json("transfer", &row.resumed)?,
            ))
        })
        .transpose()
}

pub async fn insert_receipt<C: ConnectionTrait>(conn: &C, r: &Receipt) -> Result<(), DbErr> {
    receipt::Entity::insert(receipt::ActiveModel {
        id: Set(r.id.clone()),
        site_id: Set(r.site_id.clone()),
        reference: Set(r.reference.clone()),
        body: Set(to_json(r)?),
        received_at: Set(r.received_at),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub async fn get_receipt<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<Receipt>, DbErr> {
    receipt::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .map(|row| from_json("receipt", &row.body))
        .transpose()
}

pub async fn insert_stocktake<C: ConnectionTrait>(conn: &C, s: &Stocktake) -> Result<(), DbErr> {
    stocktake::Entity::insert(stocktake::ActiveModel {
        id: Set(s.id.clone()),
        site_id: Set(s.site_id.clone()),
        body: Set(to_json(s)?),
        counted_by: Set(s.counted_by.clone()),
        counted_at: Set(s.counted_at),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub async fn get_stocktake<C: ConnectionTrait>(
    conn: &C,
    id: &str,
) -> Result<Option<Stocktake>, DbErr> {
    stocktake::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .map(|row| from_json("stocktake", &row.body))
        .transpose()
}
