//! Reading and writing the tickets database. Functions take any connection, so the use
//! cases compose them inside one command's transaction; rows are converted to domain
//! types here and nowhere else.

mod batch;
mod emergencies;
pub mod entity;
pub mod live;
pub mod migration;
mod policies;
mod team;
mod thread;

use aftersales_platform::db::{from_json, parse_code, to_json};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::OnConflict,
};

use crate::domain::{
    Tier,
    activity::FieldChange,
    clock::SlaClock,
    listing::TicketFilter,
    product::ProductFacts,
    ticket::{ComplaintFlow, Ticket, TicketAggregate},
};
pub use batch::{load_aggregates, record_activities, save_aggregates};
pub use emergencies::{
    active_emergencies_in, end_emergency, incident_tickets, link_incident, start_emergency,
    tickets_held_by, tickets_to_hold,
};
use entity::{activity, clock, reply, ticket};
pub use policies::*;
pub use team::*;
pub use thread::{insert_reply, list_activity, list_replies, reply, settle_held_reply};

fn ticket_from_row(row: ticket::Model) -> Result<Ticket, DbErr> {
    let flow = match &row.flow {
        Some(text) => from_json("ticket", text)?,
        None => ComplaintFlow::default(),
    };
    Ok(Ticket {
        reported_at: row.reported_at.unwrap_or(row.created_at),
        reassign_at: row.reassign_at,
        flow,
        channel: parse_code("ticket", &row.channel)?,
        category: parse_code("ticket", &row.category)?,
        severity: parse_code("ticket", &row.severity)?,
        complexity: parse_code("ticket", &row.complexity)?,
        evidence: from_json("ticket", &row.evidence)?,
        watchers: from_json("ticket", &row.watchers)?,
        holds: from_json("ticket", &row.holds)?,
        tier: parse_code("ticket", &row.customer_tier)?,
        level: parse_code("ticket", &row.escalation_level)?,
        status: parse_code("ticket", &row.status)?,
        policy_version: row.policy_version as u32,
        reopen_count: row.reopen_count as u32,
        product: ProductFacts {
            sku: row.sku,
            product_line: row.product_line,
            batch: row.batch,
            region_code: row.region_code,
            order_line_id: row.order_line_id,
        },
        id: row.id,
        customer_id: row.customer_id,
        order_id: row.order_id,
        subject: row.subject,
        description: row.description,
        assignee: row.assignee,
        group_id: row.group_id,
        policy_id: row.policy_id,
        breached: row.breached,
        first_response_at: row.first_response_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
        resolved_at: row.resolved_at,
    })
}

/// The ticket's row, with the queue risk its clocks give it.
fn ticket_to_row(agg: &TicketAggregate) -> Result<ticket::ActiveModel, DbErr> {
    let t = &agg.ticket;
    Ok(ticket::ActiveModel {
        id: Set(t.id.clone()),
        customer_id: Set(t.customer_id.clone()),
        order_id: Set(t.order_id.clone()),
        channel: Set(t.channel.as_str().into()),
        category: Set(t.category.as_str().into()),
        severity: Set(t.severity.as_str().into()),
        complexity: Set(t.complexity.as_str().into()),
        subject: Set(t.subject.clone()),
        description: Set(t.description.clone()),
        evidence: Set(to_json(&t.evidence)?),
        customer_tier: Set(t.tier.as_str().into()),
        assignee: Set(t.assignee.clone()),
        escalation_level: Set(t.level.as_str().into()),
        status: Set(t.status.as_str().into()),
        policy_id: Set(t.policy_id.clone()),
        policy_version: Set(t.policy_version as i32),
        breached: Set(t.breached),
        reopen_count: Set(t.reopen_count as i32),
        first_response_at: Set(t.first_response_at),
        created_at: Set(t.created_at),
        updated_at: Set(t.updated_at),
        resolved_at: Set(t.resolved_at),
        sku: Set(t.product.sku.clone()),
        product_line: Set(t.product.product_line.clone()),
        batch: Set(t.product.batch.clone()),
        region_code: Set(t.product.region_code.clone()),
        order_line_id: Set(t.product.order_line_id.clone()),
        watchers: Set(to_json(&t.watchers)?),
        holds: Set(to_json(&t.holds)?),
        group_id: Set(t.group_id.clone()),
        risk_at: Set(crate::domain::routing::risk(&agg.clocks).map(|(at, _)| at)),
        reported_at: Set(Some(t.reported_at)),
        reassign_at: Set(t.reassign_at),
        flow: Set(if t.flow == ComplaintFlow::default() {
            None
        } else {
            Some(to_json(&t.flow)?)
        }),
    })
}

/// The thresholds as a row keeps them: "50,75,90".
fn percents_text(percents: &[u8]) -> String {
    let texts: Vec<String> = percents.iter().map(u8::to_string).collect();
    texts.join(",")
}

fn clock_from_row(row: clock::Model) -> Result<SlaClock, DbErr> {
    let warning_percents: Vec<u8> = match &row.warning_percents {
        Some(text) if text.is_empty() => Vec::new(),
        Some(text) => text
            .split(',')
            .map(|p| parse_code("sla_clock", p))
            .collect::<Result<_, _>>()?,
        None => vec![row.warning_percent as u8],
    };
    // Rows written before several thresholds say only whether their one has fired.
    let warnings_fired = if row.warned {
        warning_percents.len()
    } else {
        usize::try_from(row.warnings_fired).unwrap_or(0)
    };
    Ok(SlaClock {
        warnings_fired: u8::try_from(warnings_fired).unwrap_or(u8::MAX),
        warning_percents,
        kind: parse_code("sla_clock", &row.kind)?,
        state: parse_code("sla_clock", &row.state)?,
        target_seconds: row.target_seconds as u64,
        paused_seconds: row.paused_seconds as u64,
        cycle: row.cycle as u32,
        id: row.id,
        ticket_id: row.ticket_id,
        calendar_id: row.calendar_id,
        started_at: row.started_at,
        paused_at: row.paused_at,
        due_at: row.due_at,
        warning_at: row.warning_at,
        met_at: row.met_at,
        breached_at: row.breached_at,
    })
}

fn clock_to_row(c: &SlaClock) -> clock::ActiveModel {
    clock::ActiveModel {
        id: Set(c.id.clone()),
        ticket_id: Set(c.ticket_id.clone()),
        kind: Set(c.kind.as_str().into()),
        state: Set(c.state.as_str().into()),
        target_seconds: Set(c.target_seconds as i64),
        calendar_id: Set(c.calendar_id.clone()),
        warning_percent: Set(c.warning_percents.first().copied().map_or(0, i32::from)),
        started_at: Set(c.started_at),
        paused_seconds: Set(c.paused_seconds as i64),
        paused_at: Set(c.paused_at),
        due_at: Set(c.due_at),
        warning_at: Set(c.warning_at),
        warned: Set(c.warned()),
        met_at: Set(c.met_at),
        breached_at: Set(c.breached_at),
        cycle: Set(c.cycle as i32),
        next_fire_at: Set(c.next_fire_at()),
        warning_percents: Set(Some(percents_text(&c.warning_percents))),
        warnings_fired: Set(i32::from(c.warnings_fired)),
    }
}

/// Loads a ticket with its clocks. With `lock`, the ticket row is locked until the
/// transaction ends (PostgreSQL; SQLite's single writer serialises anyway), so concurrent
/// commands and the SLA worker change a ticket one at a time.
pub async fn load_aggregate<C: ConnectionTrait>(
    conn: &C,
    ticket_id: &str,
    lock: bool,
) -> Result<Option<TicketAggregate>, DbErr> {
    let mut query = ticket::Entity::find_by_id(ticket_id.to_owned());
    if lock && conn.get_database_backend() == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    let Some(row) = query.one(conn).await? else {
        return Ok(None);
    };
    let clocks = clock::Entity::find()
        .filter(clock::Column::TicketId.eq(ticket_id))
        .order_by_asc(clock::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(clock_from_row)
        .collect::<Result<_, _>>()?;
    Ok(Some(TicketAggregate {
        ticket: ticket_from_row(row)?,
        clocks,
    }))
}

pub async fn insert_aggregate<C: ConnectionTrait>(
    conn: &C,
    aggregate: &TicketAggregate,
) -> Result<(), DbErr> {
    ticket::Entity::insert(ticket_to_row(aggregate)?)
        .exec_without_returning(conn)
        .await?;
    clock::Entity::insert_many(aggregate.clocks.iter().map(clock_to_row))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Writes back a changed aggregate: the ticket row and every clock (new or changed).
pub async fn save_aggregate<C: ConnectionTrait>(
    conn: &C,
    aggregate: &TicketAggregate,
) -> Result<(), DbErr> {
    ticket::Entity::update(ticket_to_row(aggregate)?)
        .exec(conn)
        .await?;
    batch::upsert_clocks(conn, aggregate.clocks.iter()).await
}

/// The tickets among `ids` that exist, in no particular order.
pub async fn get_tickets<C: ConnectionTrait>(
    conn: &C,
    ids: Vec<String>,
) -> Result<Vec<Ticket>, DbErr> {
    ticket::Entity::find()
        .filter(ticket::Column::Id.is_in(ids))
        .all(conn)
        .await?
        .into_iter()
        .map(ticket_from_row)
        .collect()
}

/// Newest first. Ids are UUIDv7, so id order is creation order and the last id of a page
/// is the cursor for the next.
pub async fn list_tickets<C: ConnectionTrait>(
    conn: &C,
    filter: &TicketFilter,
    before_id: Option<&str>,
    limit: u64,
) -> Result<Vec<Ticket>, DbErr> {
    let mut query = ticket::Entity::find();
    if let Some(s) = filter.status {
        query = query.filter(ticket::Column::Status.eq(s.as_str()));
    }
    if let Some(s) = filter.severity {
        query = query.filter(ticket::Column::Severity.eq(s.as_str()));
    }
    if let Some(c) = filter.complexity {
        query = query.filter(ticket::Column::Complexity.eq(c.as_str()));
    }
    if let Some(c) = filter.category {
        query = query.filter(ticket::Column::Category.eq(c.as_str()));
    }
    if let Some(a) = &filter.assignee {
        query = query.filter(ticket::Column::Assignee.eq(a.as_str()));
    }
    if let Some(c) = &filter.customer_id {
        query = query.filter(ticket::Column::CustomerId.eq(c.as_str()));
    }
    if let Some(o) = &filter.order_id {
        query = query.filter(ticket::Column::OrderId.eq(o.as_str()));
    }
    if let Some(b) = filter.breached {
        query = query.filter(ticket::Column::Breached.eq(b));
    }
    for (column, value) in [
        (ticket::Column::Sku, &filter.sku),
        (ticket::Column::ProductLine, &filter.product_line),
        (ticket::Column::Batch, &filter.batch),
        (ticket::Column::RegionCode, &filter.region_code),
        (ticket::Column::GroupId, &filter.group_id),
    ] {
        if let Some(value) = value {
            query = query.filter(column.eq(value.as_str()));
        }
    }
    if let Some(before) = before_id {
        query = query.filter(ticket::Column::Id.lt(before));
    }
    query
        .order_by_desc(ticket::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(ticket_from_row)
        .collect()
}

/// One line of a ticket's audit trail.
pub struct Activity<'a> {
    pub ticket_id: &'a str,
    pub actor_id: &'a str,
    pub actor_role: &'a str,
    pub action: &'a str,
    pub detail: String,
    /// The fields of the ticket the action changed.
    pub changes: Vec<FieldChange>,
    pub at: DateTime<Utc>,
}

pub async fn record_activity<C: ConnectionTrait>(conn: &C, a: Activity<'_>) -> Result<(), DbErr> {
    record_activities(conn, vec![a]).await
}

/// `(clock id, ticket id)` of each clock that exists among `clock_ids`.
pub async fn clock_ticket_ids<C: ConnectionTrait>(
    conn: &C,
    clock_ids: &[String],
) -> Result<Vec<(String, String)>, DbErr> {
    clock::Entity::find()
        .select_only()
        .column(clock::Column::Id)
        .column(clock::Column::TicketId)
        .filter(clock::Column::Id.is_in(clock_ids.iter().map(String::as_str)))
        .into_tuple()
        .all(conn)
        .await
}

/// Clocks that can still fire, by id after `after_id`, for rebuilding the schedule.
pub async fn pending_fire_times<C: ConnectionTrait>(
    conn: &C,
    after_id: &str,
    limit: u64,
) -> Result<Vec<(String, DateTime<Utc>)>, DbErr> {
    clock::Entity::find()
        .select_only()
        .column(clock::Column::Id)
        .column(clock::Column::NextFireAt)
        .filter(clock::Column::NextFireAt.is_not_null())
        .filter(clock::Column::Id.gt(after_id))
        .order_by_asc(clock::Column::Id)
        .limit(limit)
        .into_tuple::<(String, DateTime<Utc>)>()
        .all(conn)
        .await
}

/// The tickets whose threshold-asked reassignment waits for routing, by id, from
/// `after_id`: what a rebuild puts back on the schedule.
pub async fn pending_reassignments<C: ConnectionTrait>(
    conn: &C,
    after_id: &str,
    limit: u64,
) -> Result<Vec<(String, DateTime<Utc>)>, DbErr> {
    ticket::Entity::find()
        .select_only()
        .column(ticket::Column::Id)
        .column(ticket::Column::ReassignAt)
        .filter(ticket::Column::ReassignAt.is_not_null())
        .filter(ticket::Column::Id.gt(after_id))
        .order_by_asc(ticket::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}

/// Replaces every piece of free text of the customer's tickets with `marker`: subjects,
/// descriptions and reply bodies; evidence and attachment references are dropped; and
/// the details of the history lines whose action is one of `free_text_actions`. Returns
/// how many tickets the customer has; doing it again changes nothing.
pub async fn erase_customer_text<C: ConnectionTrait>(
    conn: &C,
    customer_id: &str,
    marker: &str,
    free_text_actions: &[&str],
) -> Result<usize, DbErr> {
    use sea_orm::sea_query::Expr;
    let ids: Vec<String> = ticket::Entity::find()
        .select_only()
        .column(ticket::Column::Id)
        .filter(ticket::Column::CustomerId.eq(customer_id))
        .into_tuple()
        .all(conn)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    ticket::Entity::update_many()
        .col_expr(ticket::Column::Subject, Expr::value(marker))
        .col_expr(ticket::Column::Description, Expr::value(marker))
        .col_expr(ticket::Column::Evidence, Expr::value("[]"))
        .filter(ticket::Column::CustomerId.eq(customer_id))
        .exec(conn)
        .await?;
    reply::Entity::update_many()
        .col_expr(reply::Column::Body, Expr::value(marker))
        .col_expr(reply::Column::Attachments, Expr::value("[]"))
        .filter(reply::Column::TicketId.is_in(ids.iter().cloned()))
        .exec(conn)
        .await?;
    activity::Entity::update_many()
        .col_expr(activity::Column::Detail, Expr::value(marker))
        .filter(activity::Column::TicketId.is_in(ids.iter().cloned()))
        .filter(activity::Column::Action.is_in(free_text_actions.iter().copied()))
        .exec(conn)
        .await?;
    Ok(ids.len())
}

/// The tier care last published for a customer, if any.
pub async fn known_tier<C: ConnectionTrait>(
    conn: &C,
    customer_id: &str,
) -> Result<Option<Tier>, DbErr> {
    entity::customer_tier::Entity::find_by_id(customer_id.to_owned())
        .one(conn)
        .await?
        .map(|row| parse_code("customer_tier", &row.tier))
        .transpose()
}

/// Records a customer's tier unless a later change is already recorded: tier changes may
/// arrive out of order, the latest `changed_at` wins. One statement, so two consumers
/// recording changes of one customer at once cannot let the older one win: the guard is
/// checked against the row as it is when the update runs, after any concurrent insert.
pub async fn record_tier<C: ConnectionTrait>(
    conn: &C,
    customer_id: &str,
    tier: Tier,
    changed_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    use entity::customer_tier::{ActiveModel, Column, Entity};
    use sea_orm::sea_query::{Alias, Expr, ExprTrait};
    Entity::insert(ActiveModel {
        customer_id: Set(customer_id.to_owned()),
        tier: Set(tier.as_str().to_owned()),
        changed_at: Set(changed_at),
    })
    .on_conflict(
        OnConflict::column(Column::CustomerId)
            .update_columns([Column::Tier, Column::ChangedAt])
            .action_and_where(
                Expr::col((Entity, Column::ChangedAt))
                    .lte(Expr::col((Alias::new("excluded"), Column::ChangedAt))),
            )
            .to_owned(),
    )
    // An older change updates nothing; that is no error.
    .exec_without_returning(conn)
    .await?;
    Ok(())
}
