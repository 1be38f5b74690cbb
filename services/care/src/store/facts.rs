//! Care's read model of other services' work: one fact per ticket and per repair job,
//! stored whole as JSON with the columns queries filter on beside it.

use aftersales_platform::db::{from_json, to_json};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::OnConflict,
};

use crate::domain::{
    facts::{JobRecord, TicketFact},
    incident::Scope,
    spot_check::Candidate,
};

use super::{
    entity::{job_fact, ticket_fact},
    lock_if_postgres,
};

/// The ticket's fact, locked for the rest of the transaction; a blank one when none
/// exists yet. The blank row is inserted first so that two consumers (tickets and
/// dispatch events about the same ticket) serialise on the row instead of both
/// inserting and the later one overwriting the other's fold.
pub async fn lock_ticket_fact<C: ConnectionTrait>(
    conn: &C,
    ticket_id: &str,
) -> Result<TicketFact, DbErr> {
    let blank = TicketFact::new(ticket_id);
    ticket_fact::Entity::insert(ticket_fact::ActiveModel {
        ticket_id: Set(ticket_id.to_owned()),
        customer_id: Set(String::new()),
        category: Set(None),
        region: Set(None),
        batch: Set(None),
        open: Set(false),
        created_at: Set(None),
        body: Set(to_json(&blank)?),
        resolved_at: Set(None),
        agent_id: Set(None),
        group_id: Set(None),
    })
    .on_conflict(
        OnConflict::column(ticket_fact::Column::TicketId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    lock_if_postgres(
        conn,
        ticket_fact::Entity::find_by_id(ticket_id.to_owned()),
        true,
    )
    .one(conn)
    .await?
    .map_or(Ok(blank), |row| from_json("ticket_fact", &row.body))
}

pub async fn save_ticket_fact<C: ConnectionTrait>(conn: &C, f: &TicketFact) -> Result<(), DbErr> {
    let open = f.created_at.is_some() && !f.state.is_some_and(|s| s.is_done());
    ticket_fact::Entity::insert(ticket_fact::ActiveModel {
        ticket_id: Set(f.ticket_id.clone()),
        customer_id: Set(f.customer_id.clone()),
        category: Set(f.dims.category.map(|c| c.as_str().to_owned())),
        region: Set(f.dims.region.clone()),
        batch: Set(f.dims.batch.clone()),
        open: Set(open),
        created_at: Set(f.created_at),
        body: Set(to_json(f)?),
        resolved_at: Set(f.first_resolved_at),
        agent_id: Set(f.dims.agent.clone()),
        group_id: Set(f.dims.group.clone()),
    })
    .on_conflict(
        OnConflict::column(ticket_fact::Column::TicketId)
            .update_columns([
                ticket_fact::Column::CustomerId,
                ticket_fact::Column::Category,
                ticket_fact::Column::Region,
                ticket_fact::Column::Batch,
                ticket_fact::Column::Open,
                ticket_fact::Column::CreatedAt,
                ticket_fact::Column::Body,
                ticket_fact::Column::ResolvedAt,
                ticket_fact::Column::AgentId,
                ticket_fact::Column::GroupId,
            ])
            .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(())
}

fn ticket_facts(rows: Vec<ticket_fact::Model>) -> Result<Vec<TicketFact>, DbErr> {
    rows.iter()
        .map(|row| from_json("ticket_fact", &row.body))
        .collect()
}

/// Tickets created in `[from, to)`.
pub async fn tickets_created<C: ConnectionTrait>(
    conn: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<TicketFact>, DbErr> {
    ticket_facts(
        ticket_fact::Entity::find()
            .filter(ticket_fact::Column::CreatedAt.gte(from))
            .filter(ticket_fact::Column::CreatedAt.lt(to))
            .order_by_asc(ticket_fact::Column::TicketId)
            .all(conn)
            .await?,
    )
}

/// Ticket id, agent, group and first resolution, as read for the sample.
type ResolvedRow = (
    String,
    Option<String>,
    Option<String>,
    Option<DateTime<Utc>>,
);

/// Tickets first resolved in `[from, to)` (of one agent, `""` for nobody's, when given),
/// read from the columns alone: a busy week holds many tickets and their bodies are not
/// needed.
pub async fn tickets_resolved<C: ConnectionTrait>(
    conn: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    agent: Option<&str>,
) -> Result<Vec<Candidate>, DbErr> {
    let mut q = ticket_fact::Entity::find()
        .select_only()
        .columns([
            ticket_fact::Column::TicketId,
            ticket_fact::Column::AgentId,
            ticket_fact::Column::GroupId,
            ticket_fact::Column::ResolvedAt,
        ])
        .filter(ticket_fact::Column::ResolvedAt.gte(from))
        .filter(ticket_fact::Column::ResolvedAt.lt(to));
    q = match agent {
        Some("") => q.filter(ticket_fact::Column::AgentId.is_null()),
        Some(agent) => q.filter(ticket_fact::Column::AgentId.eq(agent)),
        None => q,
    };
    let rows: Vec<ResolvedRow> = q
        .order_by_asc(ticket_fact::Column::TicketId)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(ticket_id, agent, group, resolved_at)| {
            Some(Candidate {
                ticket_id,
                agent_id: agent.unwrap_or_default(),
                group_id: group.unwrap_or_default(),
                resolved_at: resolved_at?,
            })
        })
        .collect())
}

/// Who a resolved ticket is charged to (`""` for nobody), if it was resolved.
pub async fn resolved_agent<C: ConnectionTrait>(
    conn: &C,
    ticket_id: &str,
) -> Result<Option<String>, DbErr> {
    Ok(ticket_fact::Entity::find_by_id(ticket_id.to_owned())
        .one(conn)
        .await?
        .filter(|row| row.resolved_at.is_some())
        .map(|row| row.agent_id.unwrap_or_default()))
}

/// Tickets naming `batch` created in `[from, to)`.
pub async fn tickets_of_batch<C: ConnectionTrait>(
    conn: &C,
    batch: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<TicketFact>, DbErr> {
    ticket_facts(
        ticket_fact::Entity::find()
            .filter(ticket_fact::Column::Batch.eq(batch))
            .filter(ticket_fact::Column::CreatedAt.gte(from))
            .filter(ticket_fact::Column::CreatedAt.lt(to))
            .order_by_asc(ticket_fact::Column::TicketId)
            .all(conn)
            .await?,
    )
}

/// Open tickets that may match `scope` (narrowed by its batch or region in the query;
/// the caller checks the whole scope).
pub async fn open_tickets_within<C: ConnectionTrait>(
    conn: &C,
    scope: &Scope,
) -> Result<Vec<TicketFact>, DbErr> {
    let mut q = ticket_fact::Entity::find().filter(ticket_fact::Column::Open.eq(true));
    if let Some(batch) = &scope.batch {
        q = q.filter(ticket_fact::Column::Batch.eq(batch.as_str()));
    }
    if let Some(region) = &scope.region {
        q = q.filter(ticket_fact::Column::Region.eq(region.as_str()));
    }
    ticket_facts(
        q.order_by_asc(ticket_fact::Column::TicketId)
            .all(conn)
            .await?,
    )
}

/// Tickets of these customers created in `[from, to)`.
pub async fn tickets_of_customers<C: ConnectionTrait>(
    conn: &C,
    customers: &[String],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<TicketFact>, DbErr> {
    let mut all = Vec::new();
    for chunk in customers.chunks(500) {
        all.extend(ticket_facts(
            ticket_fact::Entity::find()
                .filter(ticket_fact::Column::CustomerId.is_in(chunk.iter().cloned()))
                .filter(ticket_fact::Column::CreatedAt.gte(from))
                .filter(ticket_fact::Column::CreatedAt.lt(to))
                .all(conn)
                .await?,
        )?);
    }
    Ok(all)
}

pub async fn tickets_by_id<C: ConnectionTrait>(
    conn: &C,
    ids: &[String],
) -> Result<Vec<TicketFact>, DbErr> {
    let mut all = Vec::new();
    for chunk in ids.chunks(500) {
        all.extend(ticket_facts(
            ticket_fact::Entity::find()
                .filter(ticket_fact::Column::TicketId.is_in(chunk.iter().cloned()))
                .all(conn)
                .await?,
        )?);
    }
    Ok(all)
}

/// Customers with an open ticket or an open repair job, in id order.
pub async fn customers_with_open_work<C: ConnectionTrait>(
    conn: &C,
    customers: &[String],
) -> Result<Vec<String>, DbErr> {
    let mut open = Vec::new();
    for chunk in customers.chunks(500) {
        let tickets = ticket_fact::Entity::find()
            .filter(ticket_fact::Column::CustomerId.is_in(chunk.iter().cloned()))
            .filter(ticket_fact::Column::Open.eq(true))
            .all(conn)
            .await?;
        open.extend(tickets.into_iter().map(|t| t.customer_id));
        let jobs = job_fact::Entity::find()
            .filter(job_fact::Column::CustomerId.is_in(chunk.iter().cloned()))
            .filter(job_fact::Column::Open.eq(true))
            .all(conn)
            .await?;
        open.extend(jobs.into_iter().map(|j| j.customer_id));
    }
    open.sort();
    open.dedup();
    Ok(open)
}

/// The job's fact, locked like [`lock_ticket_fact`]; a blank one when none exists yet.
pub async fn lock_job_fact<C: ConnectionTrait>(conn: &C, job_id: &str) -> Result<JobRecord, DbErr> {
    let blank = JobRecord {
        job_id: job_id.to_owned(),
        ..Default::default()
    };
    job_fact::Entity::insert(job_fact::ActiveModel {
        job_id: Set(job_id.to_owned()),
        ticket_id: Set(String::new()),
        customer_id: Set(String::new()),
        open: Set(false),
        created_at: Set(None),
        body: Set(to_json(&blank)?),
    })
    .on_conflict(
        OnConflict::column(job_fact::Column::JobId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    lock_if_postgres(conn, job_fact::Entity::find_by_id(job_id.to_owned()), true)
        .one(conn)
        .await?
        .map_or(Ok(blank), |row| from_json("job_fact", &row.body))
}

pub async fn save_job_fact<C: ConnectionTrait>(conn: &C, j: &JobRecord) -> Result<(), DbErr> {
    job_fact::Entity::insert(job_fact::ActiveModel {
        job_id: Set(j.job_id.clone()),
        ticket_id: Set(j.ticket_id.clone()),
        customer_id: Set(j.customer_id.clone()),
        open: Set(j.is_open()),
        created_at: Set(j.created_at),
        body: Set(to_json(j)?),
    })
    .on_conflict(
        OnConflict::column(job_fact::Column::JobId)
            .update_columns([
                job_fact::Column::TicketId,
                job_fact::Column::CustomerId,
                job_fact::Column::Open,
                job_fact::Column::CreatedAt,
                job_fact::Column::Body,
            ])
            .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(())
}

/// Repair jobs created in `[from, to)`.
pub async fn jobs_created<C: ConnectionTrait>(
    conn: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<JobRecord>, DbErr> {
    job_fact::Entity::find()
        .filter(job_fact::Column::CreatedAt.gte(from))
        .filter(job_fact::Column::CreatedAt.lt(to))
        .all(conn)
        .await?
        .iter()
        .map(|row| from_json("job_fact", &row.body))
        .collect()
}
