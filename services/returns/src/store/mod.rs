//! Reading and writing the returns database. Functions take any connection, so a use
//! case composes them inside its command's transaction; rows become domain types here
//! and entities never leave this module.

mod batch;
mod compensations;
mod entity;
pub mod migration;
mod reads;
mod variants;

use aftersales_platform::db::{from_json, parse_code, to_json};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::OnConflict,
};

use crate::domain::{
    Money, Status, TrackingKind,
    eligibility::ReturnPolicy,
    listing::{CarrierLine, ReturnFilter},
    refund::Refund,
    rma::{Deadline, ReturnAggregate, Rma, StockMovement},
};
pub use batch::{load_aggregates, save_aggregates};
pub use compensations::{
    compensation_ids_of_customer, get_compensation, list_compensations, pending_compensations,
    save_compensation,
};
use entity::{deadline, policy, refund, rma, shipment, stock, tracking_event};
pub use reads::get_returns;
pub use variants::{claim_price_protection, get_refund_locked};

fn rma_row(agg: &ReturnAggregate) -> Result<rma::ActiveModel, DbErr> {
    let r = &agg.rma;
    Ok(rma::ActiveModel {
        id: Set(r.id.clone()),
        order_id: Set(r.order_id.clone()),
        customer_id: Set(r.customer_id.clone()),
        status: Set(r.status.as_str().into()),
        reason: Set(r.reason.as_str().into()),
        carrier: Set(r.shipment.as_ref().map(|s| s.carrier.clone())),
        tracking_number: Set(r.shipment.as_ref().map(|s| s.tracking_number.clone())),
        overdue: Set(agg.overdue()),
        body: Set(to_json(r)?),
        created_at: Set(r.created_at),
        updated_at: Set(r.updated_at),
        repair_job_id: Set(r.repair.job_id.clone()),
    })
}

fn deadline_row(d: &Deadline) -> deadline::ActiveModel {
    deadline::ActiveModel {
        id: Set(d.id.clone()),
        return_id: Set(d.return_id.clone()),
        step: Set(d.step.as_str().into()),
        due_at: Set(d.due_at),
        state: Set(d.state.as_str().into()),
        next_fire_at: Set(d.next_fire_at()),
    }
}

fn deadline_from_row(row: deadline::Model) -> Result<Deadline, DbErr> {
    Ok(Deadline {
        step: parse_code("return_deadline", &row.step)?,
        state: parse_code("return_deadline", &row.state)?,
        id: row.id,
        return_id: row.return_id,
        due_at: row.due_at,
    })
}

/// Loads a return with its deadlines; with `lock`, the return row stays locked until the
/// transaction ends (PostgreSQL; SQLite's single writer serialises anyway).
pub async fn load_aggregate<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    lock: bool,
) -> Result<Option<ReturnAggregate>, DbErr> {
    let mut query = rma::Entity::find_by_id(id.to_owned());
    if lock && conn.get_database_backend() == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    let Some(row) = query.one(conn).await? else {
        return Ok(None);
    };
    let deadlines = deadline::Entity::find()
        .filter(deadline::Column::ReturnId.eq(id))
        .order_by_asc(deadline::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(deadline_from_row)
        .collect::<Result<_, _>>()?;
    Ok(Some(ReturnAggregate {
        rma: from_json("return", &row.body)?,
        deadlines,
    }))
}

/// The deadlines of several returns at once (for a listed page).
pub async fn deadlines_of<C: ConnectionTrait>(
    conn: &C,
    return_ids: &[String],
) -> Result<Vec<Deadline>, DbErr> {
    deadline::Entity::find()
        .filter(deadline::Column::ReturnId.is_in(return_ids.iter().map(String::as_str)))
        .order_by_asc(deadline::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(deadline_from_row)
        .collect()
}

/// Inserts or updates a return and its deadlines.
pub async fn save_aggregate<C: ConnectionTrait>(
    conn: &C,
    agg: &ReturnAggregate,
) -> Result<(), DbErr> {
    save_aggregates(conn, &[agg]).await
}

/// The return a carrier's tracking number belongs to.
pub async fn return_by_tracking<C: ConnectionTrait>(
    conn: &C,
    carrier: &str,
    tracking: &str,
) -> Result<Option<String>, DbErr> {
    rma::Entity::find()
        .select_only()
        .column(rma::Column::Id)
        .filter(rma::Column::Carrier.eq(carrier))
        .filter(rma::Column::TrackingNumber.eq(tracking))
        .into_tuple::<String>()
        .one(conn)
        .await
}

/// The return whose goods the dispatch job `job_id` repairs.
pub async fn return_of_repair_job<C: ConnectionTrait>(
    conn: &C,
    job_id: &str,
) -> Result<Option<String>, DbErr> {
    rma::Entity::find()
        .select_only()
        .column(rma::Column::Id)
        .filter(rma::Column::RepairJobId.eq(job_id))
        .into_tuple::<String>()
        .one(conn)
        .await
}

/// Newest first, by UUIDv7 id; the last id of a page is the next page's cursor.
/// The ids of a customer's returns.
pub async fn return_ids_of_customer<C: ConnectionTrait>(
    conn: &C,
    customer_id: &str,
) -> Result<Vec<String>, DbErr> {
    rma::Entity::find()
        .select_only()
        .column(rma::Column::Id)
        .filter(rma::Column::CustomerId.eq(customer_id))
        .order_by_asc(rma::Column::Id)
        .into_tuple()
        .all(conn)
        .await
}

/// Replaces the details carriers sent about these returns with `marker`.
pub async fn erase_tracking_details<C: ConnectionTrait>(
    conn: &C,
    return_ids: &[String],
    marker: &str,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::Expr;
    tracking_event::Entity::update_many()
        .col_expr(tracking_event::Column::Detail, Expr::value(marker))
        .filter(tracking_event::Column::ReturnId.is_in(return_ids.iter().map(String::as_str)))
        .filter(tracking_event::Column::Detail.ne(""))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn list_returns<C: ConnectionTrait>(
    conn: &C,
    f: &ReturnFilter,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<Rma>, DbErr> {
    let mut q = rma::Entity::find();
    if let Some(s) = f.status {
        q = q.filter(rma::Column::Status.eq(s.as_str()));
    }
    if let Some(r) = f.reason {
        q = q.filter(rma::Column::Reason.eq(r.as_str()));
    }
    if let Some(o) = &f.order_id {
        q = q.filter(rma::Column::OrderId.eq(o.as_str()));
    }
    if let Some(c) = &f.customer_id {
        q = q.filter(rma::Column::CustomerId.eq(c.as_str()));
    }
    if let Some(c) = &f.carrier {
        q = q.filter(rma::Column::Carrier.eq(c.as_str()));
    }
    if let Some(o) = f.overdue {
        q = q.filter(rma::Column::Overdue.eq(o));
    }
    if let Some(before) = before {
        q = q.filter(rma::Column::Id.lt(before));
    }
    q.order_by_desc(rma::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| from_json("return", &row.body))
        .collect()
}

/// A carrier event as stored.
pub struct TrackingRow<'a> {
    pub carrier: &'a str,
    pub event_id: &'a str,
    pub return_id: &'a str,
    pub kind: TrackingKind,
    pub detail: &'a str,
    pub occurred_at: DateTime<Utc>,
}

/// Records a carrier event; false when that carrier already sent this event id.
pub async fn insert_tracking_event<C: ConnectionTrait>(
    conn: &C,
    e: &TrackingRow<'_>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let inserted = tracking_event::Entity::insert(tracking_event::ActiveModel {
        carrier: Set(e.carrier.to_owned()),
        carrier_event_id: Set(e.event_id.to_owned()),
        return_id: Set(e.return_id.to_owned()),
        kind: Set(e.kind.as_str().into()),
        detail: Set(e.detail.to_owned()),
        occurred_at: Set(e.occurred_at),
        recorded_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            tracking_event::Column::Carrier,
            tracking_event::Column::CarrierEventId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(inserted == 1)
}

pub async fn insert_shipment<C: ConnectionTrait>(
    conn: &C,
    return_id: &str,
    s: &crate::domain::rma::Shipment,
) -> Result<(), DbErr> {
    shipment::Entity::insert(shipment::ActiveModel {
        return_id: Set(return_id.to_owned()),
        carrier: Set(s.carrier.clone()),
        tracking_number: Set(s.tracking_number.clone()),
        fee_minor: Set(s.fee.minor),
        fee_currency: Set(s.fee.currency.clone()),
        booked_at: Set(s.booked_at),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// A carrier's shipments booked in `[from, to)`, with their returns' current status.
pub async fn carrier_shipments<C: ConnectionTrait>(
    conn: &C,
    carrier: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<CarrierLine>, DbErr> {
    let rows = shipment::Entity::find()
        .filter(shipment::Column::Carrier.eq(carrier))
        .filter(shipment::Column::BookedAt.gte(from))
        .filter(shipment::Column::BookedAt.lt(to))
        .order_by_asc(shipment::Column::BookedAt)
        .all(conn)
        .await?;
    let ids: Vec<String> = rows.iter().map(|r| r.return_id.clone()).collect();
    let statuses: Vec<(String, String)> = rma::Entity::find()
        .select_only()
        .column(rma::Column::Id)
        .column(rma::Column::Status)
        .filter(rma::Column::Id.is_in(ids))
        .into_tuple()
        .all(conn)
        .await?;
    rows.into_iter()
        .map(|row| {
            let status = statuses
                .iter()
                .find(|(id, _)| *id == row.return_id)
                .map(|(_, s)| parse_code("return", s))
                .transpose()?
                .unwrap_or(Status::Closed);
            Ok(CarrierLine {
                fee: Money::new(row.fee_minor, &row.fee_currency),
                return_id: row.return_id,
                tracking_number: row.tracking_number,
                booked_at: row.booked_at,
                status,
            })
        })
        .collect()
}

pub async fn record_stock<C: ConnectionTrait>(
    conn: &C,
    return_id: &str,
    moves: &[StockMovement],
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    if moves.is_empty() {
        return Ok(());
    }
    stock::Entity::insert_many(moves.iter().map(|m| stock::ActiveModel {
        return_id: Set(return_id.to_owned()),
        sku: Set(m.sku.clone()),
        quantity: Set(m.quantity as i32),
        movement: Set(m.movement.clone()),
        at: Set(at),
        ..Default::default()
    }))
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// The ledger lines of one return, oldest first: (sku, quantity, movement).
pub async fn stock_of<C: ConnectionTrait>(
    conn: &C,
    return_id: &str,
) -> Result<Vec<(String, i32, String)>, DbErr> {
    stock::Entity::find()
        .select_only()
        .column(stock::Column::Sku)
        .column(stock::Column::Quantity)
        .column(stock::Column::Movement)
        .filter(stock::Column::ReturnId.eq(return_id))
        .order_by_asc(stock::Column::Seq)
        .into_tuple()
        .all(conn)
        .await
}

pub async fn save_refund<C: ConnectionTrait>(conn: &C, r: &Refund) -> Result<(), DbErr> {
    refund::Entity::insert(refund::ActiveModel {
        id: Set(r.id.clone()),
        return_id: Set(r.return_id.clone()),
        state: Set(r.state.as_str().into()),
        next_attempt_at: Set(r.next_attempt_at),
        body: Set(to_json(r)?),
        updated_at: Set(r.updated_at),
    })
    .on_conflict(
        OnConflict::column(refund::Column::Id)
            .update_columns([
                refund::Column::State,
                refund::Column::NextAttemptAt,
                refund::Column::Body,
                refund::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub async fn get_refund<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<Refund>, DbErr> {
    refund::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .map(|row| from_json("refund", &row.body))
        .transpose()
}

/// The returns the given deadlines belong to, as `(return_id, deadline_id)`; ids of
/// deadlines that do not exist are left out.
pub async fn deadline_owners<C: ConnectionTrait>(
    conn: &C,
    deadline_ids: &[String],
) -> Result<Vec<(String, String)>, DbErr> {
    if deadline_ids.is_empty() {
        return Ok(Vec::new());
    }
    deadline::Entity::find()
        .select_only()
        .column(deadline::Column::ReturnId)
        .column(deadline::Column::Id)
        .filter(deadline::Column::Id.is_in(deadline_ids.iter().map(String::as_str)))
        .into_tuple()
        .all(conn)
        .await
}

/// Running step deadlines with when they fire, a page at a time by id after `after_id`.
pub async fn pending_steps<C: ConnectionTrait>(
    conn: &C,
    after_id: &str,
    limit: u64,
) -> Result<Vec<(String, DateTime<Utc>)>, DbErr> {
    deadline::Entity::find()
        .select_only()
        .column(deadline::Column::Id)
        .column(deadline::Column::NextFireAt)
        .filter(deadline::Column::NextFireAt.is_not_null())
        .filter(deadline::Column::Id.gt(after_id))
        .order_by_asc(deadline::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}

/// Pending refunds with when they are tried next, a page at a time by id after `after_id`.
pub async fn pending_refunds<C: ConnectionTrait>(
    conn: &C,
    after_id: &str,
    limit: u64,
) -> Result<Vec<(String, DateTime<Utc>)>, DbErr> {
    refund::Entity::find()
        .select_only()
        .column(refund::Column::Id)
        .column(refund::Column::NextAttemptAt)
        .filter(refund::Column::NextAttemptAt.is_not_null())
        .filter(refund::Column::Id.gt(after_id))
        .order_by_asc(refund::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}

pub async fn policies<C: ConnectionTrait>(conn: &C) -> Result<Vec<ReturnPolicy>, DbErr> {
    policy::Entity::find()
        .all(conn)
        .await?
        .into_iter()
        .map(|row| from_json("return_policy", &row.body))
        .collect()
}

/// Stores a policy; with `replace` false an existing one is kept (seeding).
pub async fn put_policy<C: ConnectionTrait>(
    conn: &C,
    p: &ReturnPolicy,
    replace: bool,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut on_conflict = OnConflict::column(policy::Column::ProductLine);
    if replace {
        on_conflict.update_columns([policy::Column::Body, policy::Column::UpdatedAt]);
    } else {
        on_conflict.do_nothing();
    }
    policy::Entity::insert(policy::ActiveModel {
        product_line: Set(p.product_line.clone()),
        body: Set(to_json(p)?),
        updated_at: Set(now),
    })
    .on_conflict(on_conflict.to_owned())
    .exec_without_returning(conn)
    .await?;
    Ok(())
}
