//! Teams and routing as the database keeps them: groups (with the agent given the last
//! ticket, for round-robin), agents, shifts and rules; and the reads routing needs — the
//! agents' open work, a group's queue, the open work of agents leaving a shift. Locks are
//! taken group first, then agents in id order, then tickets in id order, by every command
//! that routes, so two of them never wait on each other in a cycle.

use std::collections::HashMap;

use aftersales_platform::db::{from_json, to_json};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::OnConflict,
};

use crate::domain::{
    Status,
    routing::{RoutingRule, sort_rules},
    team::{Agent, Shift, SupportGroup, is_open},
};

use super::entity::{routing_rule, shift, support_agent, support_group, ticket};

/// The statuses that count against capacity (every one but resolved and closed).
fn open_statuses() -> impl Iterator<Item = &'static str> {
    Status::ALL
        .iter()
        .filter(|s| is_open(**s))
        .map(|s| s.as_str())
}

fn locking<C: ConnectionTrait>(conn: &C) -> bool {
    conn.get_database_backend() == DbBackend::Postgres
}

pub async fn upsert_group<C: ConnectionTrait>(
    conn: &C,
    g: &SupportGroup,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    support_group::Entity::insert(support_group::ActiveModel {
        id: Set(g.id.clone()),
        body: Set(to_json(g)?),
        last_assigned: Set(None),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(support_group::Column::Id)
            .update_columns([
                support_group::Column::Body,
                support_group::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// A group and the agent given its last ticket; with `lock`, the group row stays locked
/// until the transaction ends (the first lock of every routing command).
pub async fn group<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    lock: bool,
) -> Result<Option<(SupportGroup, Option<String>)>, DbErr> {
    let mut query = support_group::Entity::find_by_id(id.to_owned());
    if lock && locking(conn) {
        query = query.lock_exclusive();
    }
    query
        .one(conn)
        .await?
        .map(|row| Ok((from_json("support_group", &row.body)?, row.last_assigned)))
        .transpose()
}

pub async fn groups<C: ConnectionTrait>(conn: &C) -> Result<Vec<SupportGroup>, DbErr> {
    support_group::Entity::find()
        .order_by_asc(support_group::Column::Id)
        .all(conn)
        .await?
        .iter()
        .map(|row| from_json("support_group", &row.body))
        .collect()
}

pub async fn set_last_assigned<C: ConnectionTrait>(
    conn: &C,
    group_id: &str,
    agent_id: &str,
) -> Result<(), DbErr> {
    support_group::Entity::update_many()
        .col_expr(
            support_group::Column::LastAssigned,
            Some(agent_id.to_owned()).into(),
        )
        .filter(support_group::Column::Id.eq(group_id))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn upsert_agent<C: ConnectionTrait>(
    conn: &C,
    a: &Agent,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    support_agent::Entity::insert(support_agent::ActiveModel {
        id: Set(a.id.clone()),
        body: Set(to_json(a)?),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(support_agent::Column::Id)
            .update_columns([
                support_agent::Column::Body,
                support_agent::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// The agents among `ids` (all when `None`), by id; with `lock`, their rows stay locked,
/// taken in id order.
pub async fn agents<C: ConnectionTrait>(
    conn: &C,
    ids: Option<&[String]>,
    lock: bool,
) -> Result<Vec<Agent>, DbErr> {
    let mut query = support_agent::Entity::find().order_by_asc(support_agent::Column::Id);
    if let Some(ids) = ids {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        query = query.filter(support_agent::Column::Id.is_in(ids.iter().map(String::as_str)));
    }
    if lock && locking(conn) {
        query = query.lock_exclusive();
    }
    query
        .all(conn)
        .await?
        .iter()
        .map(|row| from_json("support_agent", &row.body))
        .collect()
}

/// Open tickets per agent among `ids` (an agent with none is absent).
pub async fn loads<C: ConnectionTrait>(
    conn: &C,
    ids: &[String],
) -> Result<HashMap<String, u32>, DbErr> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Option<String>, i64)> = ticket::Entity::find()
        .select_only()
        .column(ticket::Column::Assignee)
        .column_as(ticket::Column::Id.count(), "n")
        .filter(ticket::Column::Assignee.is_in(ids.iter().map(String::as_str)))
        .filter(ticket::Column::Status.is_in(open_statuses()))
        .group_by(ticket::Column::Assignee)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(agent, n)| Some((agent?, u32::try_from(n).unwrap_or(u32::MAX))))
        .collect())
}

fn shift_from_row(row: shift::Model) -> Result<Shift, DbErr> {
    Ok(Shift {
        agent_ids: from_json("shift", &row.agent_ids)?,
        id: row.id,
        group_id: row.group_id,
        start: row.starts_at,
        end: row.ends_at,
        ended: row.ended,
    })
}

pub async fn upsert_shift<C: ConnectionTrait>(
    conn: &C,
    s: &Shift,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    shift::Entity::insert(shift::ActiveModel {
        id: Set(s.id.clone()),
        group_id: Set(s.group_id.clone()),
        starts_at: Set(s.start),
        ends_at: Set(s.end),
        agent_ids: Set(to_json(&s.agent_ids)?),
        ended: Set(s.ended),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(shift::Column::Id)
            .update_columns([
                shift::Column::GroupId,
                shift::Column::StartsAt,
                shift::Column::EndsAt,
                shift::Column::AgentIds,
                shift::Column::Ended,
                shift::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// A shift; with `lock`, locked until the transaction ends.
pub async fn shift<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    lock: bool,
) -> Result<Option<Shift>, DbErr> {
    let mut query = shift::Entity::find_by_id(id.to_owned());
    if lock && locking(conn) {
        query = query.lock_exclusive();
    }
    query.one(conn).await?.map(shift_from_row).transpose()
}

/// The group's shifts overlapping `[from, to)` (unbounded where `None`), by start, then id.
pub async fn shifts_of<C: ConnectionTrait>(
    conn: &C,
    group_id: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Vec<Shift>, DbErr> {
    let mut query = shift::Entity::find().filter(shift::Column::GroupId.eq(group_id));
    if let Some(from) = from {
        query = query.filter(shift::Column::EndsAt.gt(from));
    }
    if let Some(to) = to {
        query = query.filter(shift::Column::StartsAt.lt(to));
    }
    query
        .order_by_asc(shift::Column::StartsAt)
        .order_by_asc(shift::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(shift_from_row)
        .collect()
}

/// Shift ends not handled yet, by id after `after_id`, for rebuilding the schedule.
pub async fn pending_shift_ends<C: ConnectionTrait>(
    conn: &C,
    after_id: &str,
    limit: u64,
) -> Result<Vec<(String, DateTime<Utc>)>, DbErr> {
    shift::Entity::find()
        .select_only()
        .column(shift::Column::Id)
        .column(shift::Column::EndsAt)
        .filter(shift::Column::Ended.eq(false))
        .filter(shift::Column::Id.gt(after_id))
        .order_by_asc(shift::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}

pub async fn upsert_rule<C: ConnectionTrait>(
    conn: &C,
    r: &RoutingRule,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    routing_rule::Entity::insert(routing_rule::ActiveModel {
        id: Set(r.id.clone()),
        priority: Set(r.priority),
        body: Set(to_json(r)?),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(routing_rule::Column::Id)
            .update_columns([
                routing_rule::Column::Priority,
                routing_rule::Column::Body,
                routing_rule::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Every rule, in matching order.
pub async fn rules<C: ConnectionTrait>(conn: &C) -> Result<Vec<RoutingRule>, DbErr> {
    let mut rules = routing_rule::Entity::find()
        .all(conn)
        .await?
        .iter()
        .map(|row| from_json("routing_rule", &row.body))
        .collect::<Result<Vec<RoutingRule>, DbErr>>()?;
    sort_rules(&mut rules);
    Ok(rules)
}

/// A page of the group's queue — its open tickets nobody is assigned — in queue order
/// (`domain::routing::queue_key`: risk instant, none last, then id), after `offset`.
pub async fn queue_page<C: ConnectionTrait>(
    conn: &C,
    group_id: &str,
    offset: u64,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    ticket::Entity::find()
        .select_only()
        .column(ticket::Column::Id)
        .filter(ticket::Column::GroupId.eq(group_id))
        .filter(ticket::Column::Assignee.is_null())
        .filter(ticket::Column::Status.is_in(open_statuses()))
        // Nulls last on both backends (PostgreSQL and SQLite disagree by default).
        .order_by_asc(Expr::col(ticket::Column::RiskAt).is_null())
        .order_by_asc(ticket::Column::RiskAt)
        .order_by_asc(ticket::Column::Id)
        .offset(offset)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}

/// How many tickets the group's queue holds.
pub async fn queue_len<C: ConnectionTrait>(conn: &C, group_id: &str) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    ticket::Entity::find()
        .filter(ticket::Column::GroupId.eq(group_id))
        .filter(ticket::Column::Assignee.is_null())
        .filter(ticket::Column::Status.is_in(open_statuses()))
        .count(conn)
        .await
}

/// The group's open tickets assigned to one of `agents`, by id.
pub async fn open_work_of<C: ConnectionTrait>(
    conn: &C,
    group_id: &str,
    agents: &[String],
) -> Result<Vec<String>, DbErr> {
    if agents.is_empty() {
        return Ok(Vec::new());
    }
    ticket::Entity::find()
        .select_only()
        .column(ticket::Column::Id)
        .filter(ticket::Column::GroupId.eq(group_id))
        .filter(ticket::Column::Assignee.is_in(agents.iter().map(String::as_str)))
        .filter(ticket::Column::Status.is_in(open_statuses()))
        .order_by_asc(ticket::Column::Id)
        .into_tuple()
        .all(conn)
        .await
}
