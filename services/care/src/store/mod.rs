//! Reading and writing the care database. Functions take any connection, so the service
//! composes them inside one transaction. Customer rows leave here sealed: only the
//! service, holding the vault, opens them.

pub mod entity;
pub mod migration;

use aftersales_platform::db::{from_json, to_json};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, sea_query::OnConflict,
};

use crate::domain::{
    FollowUpStatus, TaskKind,
    facts::{JobRecord, TicketFact},
    followup::FollowUp,
    proactive::{CareTask, Warranty},
};
use entity::{
    care_task, customer, follow_up, job_fact, pii_read, setting, survey, ticket_fact, timeline,
    warranty,
};

/// Queue members: what a scheduled id stands for.
pub const FOLLOW_UP_MEMBER: &str = "followup:";
pub const REOPEN_MEMBER: &str = "reopen:";

fn lock_if_postgres<C: ConnectionTrait, Q: QuerySelect>(conn: &C, query: Q, lock: bool) -> Q {
    if lock && conn.get_database_backend() == DbBackend::Postgres {
        query.lock_exclusive()
    } else {
        query
    }
}

// ---- customers ------------------------------------------------------------------------

pub async fn save_customer<C: ConnectionTrait>(
    conn: &C,
    row: customer::Model,
) -> Result<(), DbErr> {
    let active: customer::ActiveModel = row.into();
    customer::Entity::insert(active)
        .on_conflict(
            OnConflict::column(customer::Column::Id)
                .update_columns([
                    customer::Column::Name,
                    customer::Column::RegionCode,
                    customer::Column::KeyId,
                    customer::Column::PhoneSealed,
                    customer::Column::EmailSealed,
                    customer::Column::AddressSealed,
                    customer::Column::PhoneHash,
                    customer::Column::Tier,
                    customer::Column::Purchases,
                    customer::Column::Anonymised,
                    customer::Column::UpdatedAt,
                    customer::Column::LastActivityAt,
                ])
                .to_owned(),
        )
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn get_customer<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    lock: bool,
) -> Result<Option<customer::Model>, DbErr> {
    lock_if_postgres(conn, customer::Entity::find_by_id(id.to_owned()), lock)
        .one(conn)
        .await
}

pub async fn customer_by_phone_hash<C: ConnectionTrait>(
    conn: &C,
    hash: &str,
) -> Result<Option<customer::Model>, DbErr> {
    customer::Entity::find()
        .filter(customer::Column::PhoneHash.eq(hash))
        .filter(customer::Column::Anonymised.eq(false))
        .order_by_desc(customer::Column::UpdatedAt)
        .one(conn)
        .await
}

/// Every customer, a page at a time by id.
pub async fn customers_after<C: ConnectionTrait>(
    conn: &C,
    after: &str,
    limit: u64,
) -> Result<Vec<customer::Model>, DbErr> {
    customer::Entity::find()
        .filter(customer::Column::Id.gt(after))
        .order_by_asc(customer::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

pub async fn customers_in_region<C: ConnectionTrait>(
    conn: &C,
    region_code: &str,
) -> Result<Vec<customer::Model>, DbErr> {
    customer::Entity::find()
        .filter(customer::Column::RegionCode.eq(region_code))
        .filter(customer::Column::Anonymised.eq(false))
        .order_by_asc(customer::Column::Id)
        .all(conn)
        .await
}

/// Ids after `after` of customers not yet anonymised whose last activity is before
/// `before`, in id order (the cursor lets a run go past rows it had to leave as they were).
pub async fn inactive_customers<C: ConnectionTrait>(
    conn: &C,
    before: DateTime<Utc>,
    after: &str,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    Ok(customer::Entity::find()
        .filter(customer::Column::Id.gt(after))
        .filter(customer::Column::Anonymised.eq(false))
        .filter(customer::Column::LastActivityAt.lt(before))
        .order_by_asc(customer::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect())
}

/// Moves a customer's last activity forward (never back); unknown customers are skipped.
pub async fn touch_customer<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    customer::Entity::update_many()
        .col_expr(
            customer::Column::LastActivityAt,
            sea_orm::sea_query::Expr::value(at),
        )
        .filter(customer::Column::Id.eq(id))
        .filter(customer::Column::LastActivityAt.lt(at))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn record_pii_read<C: ConnectionTrait>(
    conn: &C,
    row: pii_read::Model,
) -> Result<(), DbErr> {
    let active: pii_read::ActiveModel = row.into();
    pii_read::Entity::insert(active).exec(conn).await?;
    Ok(())
}

pub async fn pii_reads_of<C: ConnectionTrait>(
    conn: &C,
    customer_id: &str,
) -> Result<Vec<pii_read::Model>, DbErr> {
    pii_read::Entity::find()
        .filter(pii_read::Column::CustomerId.eq(customer_id))
        .order_by_asc(pii_read::Column::ReadAt)
        .all(conn)
        .await
}

// ---- settings -------------------------------------------------------------------------

pub async fn get_setting<C: ConnectionTrait, T: serde::de::DeserializeOwned>(
    conn: &C,
    name: &str,
) -> Result<Option<T>, DbErr> {
    setting::Entity::find_by_id(name.to_owned())
        .one(conn)
        .await?
        .map(|row| from_json(name, &row.body))
        .transpose()
}

pub async fn put_setting<C: ConnectionTrait, T: serde::Serialize>(
    conn: &C,
    name: &str,
    value: &T,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    setting::Entity::insert(setting::ActiveModel {
        name: Set(name.to_owned()),
        body: Set(to_json(value)?),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(setting::Column::Name)
            .update_columns([setting::Column::Body, setting::Column::UpdatedAt])
            .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(())
}

// ---- facts ----------------------------------------------------------------------------

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
        open: Set(false),
        created_at: Set(None),
        body: Set(to_json(&blank)?),
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
        open: Set(open),
        created_at: Set(f.created_at),
        body: Set(to_json(f)?),
    })
    .on_conflict(
        OnConflict::column(ticket_fact::Column::TicketId)
            .update_columns([
                ticket_fact::Column::CustomerId,
                ticket_fact::Column::Category,
                ticket_fact::Column::Region,
                ticket_fact::Column::Open,
                ticket_fact::Column::CreatedAt,
                ticket_fact::Column::Body,
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

/// Customers with an open ticket or an open repair job.
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

// ---- timeline -------------------------------------------------------------------------

/// Adds an entry once (a replayed event finds its entry and adds nothing).
pub async fn add_timeline<C: ConnectionTrait>(conn: &C, row: timeline::Model) -> Result<(), DbErr> {
    let active: timeline::ActiveModel = row.into();
    timeline::Entity::insert(active)
        .on_conflict(
            OnConflict::column(timeline::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// A page of a customer's timeline, newest first, after the entry `before` (exclusive).
pub async fn timeline_page<C: ConnectionTrait>(
    conn: &C,
    customer_id: &str,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<timeline::Model>, DbErr> {
    let mut q = timeline::Entity::find().filter(timeline::Column::CustomerId.eq(customer_id));
    if let Some(before) = before
        && let Some(cursor) = timeline::Entity::find_by_id(before.to_owned())
            .one(conn)
            .await?
    {
        q = q.filter(
            Condition::any()
                .add(timeline::Column::OccurredAt.lt(cursor.occurred_at))
                .add(
                    Condition::all()
                        .add(timeline::Column::OccurredAt.eq(cursor.occurred_at))
                        .add(timeline::Column::Id.lt(cursor.id)),
                ),
        );
    }
    q.order_by_desc(timeline::Column::OccurredAt)
        .order_by_desc(timeline::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

// ---- follow-ups -----------------------------------------------------------------------

pub async fn save_follow_up<C: ConnectionTrait>(conn: &C, f: &FollowUp) -> Result<(), DbErr> {
    follow_up::Entity::insert(follow_up::ActiveModel {
        id: Set(f.id.clone()),
        ticket_id: Set(f.ticket_id.clone()),
        customer_id: Set(f.customer_id.clone()),
        status: Set(f.status.as_str().to_owned()),
        resolved_at: Set(f.resolved_at),
        due_at: Set(f.due_at),
        reopen_pending: Set(f.reopen_pending()),
        body: Set(to_json(f)?),
    })
    .on_conflict(
        OnConflict::column(follow_up::Column::Id)
            .update_columns([
                follow_up::Column::Status,
                follow_up::Column::ReopenPending,
                follow_up::Column::Body,
            ])
            .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(())
}

fn follow_ups(rows: Vec<follow_up::Model>) -> Result<Vec<FollowUp>, DbErr> {
    rows.iter()
        .map(|row| from_json("follow_up", &row.body))
        .collect()
}

pub async fn load_follow_up<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    lock: bool,
) -> Result<Option<FollowUp>, DbErr> {
    lock_if_postgres(conn, follow_up::Entity::find_by_id(id.to_owned()), lock)
        .one(conn)
        .await?
        .map(|row| from_json("follow_up", &row.body))
        .transpose()
}

/// The follow-ups of a ticket, oldest first.
pub async fn follow_ups_of_ticket<C: ConnectionTrait>(
    conn: &C,
    ticket_id: &str,
) -> Result<Vec<FollowUp>, DbErr> {
    follow_ups(
        follow_up::Entity::find()
            .filter(follow_up::Column::TicketId.eq(ticket_id))
            .order_by_asc(follow_up::Column::Id)
            .all(conn)
            .await?,
    )
}

#[derive(Debug, Clone, Default)]
pub struct FollowUpFilter {
    pub customer_id: Option<String>,
    pub ticket_id: Option<String>,
    pub status: Option<FollowUpStatus>,
}

/// A page of follow-ups, newest first, before the cursor id.
pub async fn list_follow_ups<C: ConnectionTrait>(
    conn: &C,
    f: &FollowUpFilter,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<FollowUp>, DbErr> {
    let mut q = follow_up::Entity::find();
    if let Some(customer) = &f.customer_id {
        q = q.filter(follow_up::Column::CustomerId.eq(customer.as_str()));
    }
    if let Some(ticket) = &f.ticket_id {
        q = q.filter(follow_up::Column::TicketId.eq(ticket.as_str()));
    }
    if let Some(status) = f.status {
        q = q.filter(follow_up::Column::Status.eq(status.as_str()));
    }
    if let Some(before) = before {
        q = q.filter(follow_up::Column::Id.lt(before));
    }
    follow_ups(
        q.order_by_desc(follow_up::Column::Id)
            .limit(limit)
            .all(conn)
            .await?,
    )
}

/// Follow-ups of resolutions in `[from, to)`.
pub async fn follow_ups_resolved<C: ConnectionTrait>(
    conn: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<FollowUp>, DbErr> {
    follow_ups(
        follow_up::Entity::find()
            .filter(follow_up::Column::ResolvedAt.gte(from))
            .filter(follow_up::Column::ResolvedAt.lt(to))
            .all(conn)
            .await?,
    )
}

/// Follow-ups the worker still has to act on: pending ones (their due time) and those
/// whose reopen is not yet confirmed.
pub async fn follow_ups_to_watch<C: ConnectionTrait>(
    conn: &C,
    after: &str,
    limit: u64,
) -> Result<Vec<FollowUp>, DbErr> {
    follow_ups(
        follow_up::Entity::find()
            .filter(follow_up::Column::Id.gt(after))
            .filter(
                Condition::any()
                    .add(follow_up::Column::Status.eq(FollowUpStatus::Pending.as_str()))
                    .add(follow_up::Column::ReopenPending.eq(true)),
            )
            .order_by_asc(follow_up::Column::Id)
            .limit(limit)
            .all(conn)
            .await?,
    )
}

pub async fn follow_ups_of<C: ConnectionTrait>(
    conn: &C,
    customer_id: &str,
) -> Result<Vec<FollowUp>, DbErr> {
    follow_ups(
        follow_up::Entity::find()
            .filter(follow_up::Column::CustomerId.eq(customer_id))
            .order_by_asc(follow_up::Column::Id)
            .all(conn)
            .await?,
    )
}

// ---- surveys --------------------------------------------------------------------------

pub async fn insert_survey<C: ConnectionTrait>(conn: &C, row: survey::Model) -> Result<(), DbErr> {
    let active: survey::ActiveModel = row.into();
    survey::Entity::insert(active).exec(conn).await?;
    Ok(())
}

pub async fn get_survey<C: ConnectionTrait>(
    conn: &C,
    id: &str,
) -> Result<Option<survey::Model>, DbErr> {
    survey::Entity::find_by_id(id.to_owned()).one(conn).await
}

pub async fn surveys_recorded<C: ConnectionTrait>(
    conn: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<survey::Model>, DbErr> {
    survey::Entity::find()
        .filter(survey::Column::RecordedAt.gte(from))
        .filter(survey::Column::RecordedAt.lt(to))
        .all(conn)
        .await
}

pub async fn surveys_of<C: ConnectionTrait>(
    conn: &C,
    customer_id: &str,
) -> Result<Vec<survey::Model>, DbErr> {
    survey::Entity::find()
        .filter(survey::Column::CustomerId.eq(customer_id))
        .order_by_asc(survey::Column::Id)
        .all(conn)
        .await
}

/// Blanks the free-text comments of a customer's surveys and follow-ups.
pub async fn clear_comments<C: ConnectionTrait>(conn: &C, customer_id: &str) -> Result<(), DbErr> {
    survey::Entity::update_many()
        .col_expr(survey::Column::Comment, sea_orm::sea_query::Expr::value(""))
        .filter(survey::Column::CustomerId.eq(customer_id))
        .exec(conn)
        .await?;
    for mut f in follow_ups_of(conn, customer_id).await? {
        if let Some(outcome) = f.outcome.as_mut() {
            outcome.comment.clear();
        }
        save_follow_up(conn, &f).await?;
    }
    Ok(())
}

// ---- warranties and tasks -------------------------------------------------------------

pub async fn save_warranty<C: ConnectionTrait>(
    conn: &C,
    w: &Warranty,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    warranty::Entity::insert(warranty::ActiveModel {
        id: Set(w.id.clone()),
        customer_id: Set(w.customer_id.clone()),
        body: Set(to_json(w)?),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(warranty::Column::Id)
            .update_columns([
                warranty::Column::CustomerId,
                warranty::Column::Body,
                warranty::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(())
}

pub async fn get_warranty<C: ConnectionTrait>(
    conn: &C,
    id: &str,
) -> Result<Option<Warranty>, DbErr> {
    warranty::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .map(|row| from_json("warranty", &row.body))
        .transpose()
}

pub async fn warranties_of<C: ConnectionTrait>(
    conn: &C,
    customer_id: &str,
) -> Result<Vec<Warranty>, DbErr> {
    warranty::Entity::find()
        .filter(warranty::Column::CustomerId.eq(customer_id))
        .order_by_asc(warranty::Column::Id)
        .all(conn)
        .await?
        .iter()
        .map(|row| from_json("warranty", &row.body))
        .collect()
}

/// Adds tasks, skipping any whose dedupe key exists; returns those added.
pub async fn add_tasks<C: ConnectionTrait>(
    conn: &C,
    tasks: Vec<CareTask>,
) -> Result<Vec<CareTask>, DbErr> {
    let mut added = Vec::new();
    for task in tasks {
        let inserted = care_task::Entity::insert(care_task::ActiveModel {
            id: Set(task.id.clone()),
            customer_id: Set(task.customer_id.clone()),
            kind: Set(task.kind.as_str().to_owned()),
            subject_id: Set(task.subject_id.clone()),
            due_at: Set(task.due_at),
            dedupe_key: Set(task.dedupe_key()),
            body: Set(to_json(&task)?),
        })
        .on_conflict(
            OnConflict::column(care_task::Column::DedupeKey)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
        if inserted > 0 {
            added.push(task);
        }
    }
    Ok(added)
}

/// Drops the reminder tasks of a subject that are still ahead (a changed warranty gets
/// new ones).
pub async fn drop_future_tasks<C: ConnectionTrait>(
    conn: &C,
    subject_id: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    care_task::Entity::delete_many()
        .filter(care_task::Column::SubjectId.eq(subject_id))
        .filter(care_task::Column::DueAt.gt(now))
        .exec(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub customer_id: Option<String>,
    pub kind: Option<TaskKind>,
    pub due_before: Option<DateTime<Utc>>,
}

/// A page of tasks, newest first, before the cursor id.
pub async fn list_tasks<C: ConnectionTrait>(
    conn: &C,
    f: &TaskFilter,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<CareTask>, DbErr> {
    let mut q = care_task::Entity::find();
    if let Some(customer) = &f.customer_id {
        q = q.filter(care_task::Column::CustomerId.eq(customer.as_str()));
    }
    if let Some(kind) = f.kind {
        q = q.filter(care_task::Column::Kind.eq(kind.as_str()));
    }
    if let Some(due) = f.due_before {
        q = q.filter(care_task::Column::DueAt.lte(due));
    }
    if let Some(before) = before {
        q = q.filter(care_task::Column::Id.lt(before));
    }
    q.order_by_desc(care_task::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .iter()
        .map(|row| from_json("care_task", &row.body))
        .collect()
}
