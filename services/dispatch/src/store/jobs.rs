//! Jobs with their offers and quotes, read and written as one aggregate, and what the
//! deadline queue must hold for them.

use aftersales_platform::db::{from_json, to_json};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{
    entity::{job, offer, quote},
    lock_if_postgres,
};
use crate::domain::{
    JobStatus, OfferStatus,
    job::{Job, JobAggregate, Offer},
    listing::JobFilter,
    quote::Quote,
};

pub(super) fn job_row(agg: &JobAggregate) -> Result<job::ActiveModel, DbErr> {
    let j = &agg.job;
    Ok(job::ActiveModel {
        id: Set(j.id.clone()),
        ticket_id: Set(j.ticket_id.clone()),
        customer_id: Set(j.customer_id.clone()),
        product_line: Set(j.product_line.clone()),
        region_code: Set(j.region_code.clone()),
        status: Set(j.status.as_str().into()),
        partner_id: Set(j.partner_id.clone()),
        accepted_at: Set(j.accepted_at),
        completed_at: Set(j.completion.as_ref().map(|c| c.completed_at)),
        visit_watch_at: Set(agg.visit_watch()),
        contact_key_id: Set(contact_key_id(j)),
        body: Set(to_json(j)?),
        created_at: Set(j.created_at),
        updated_at: Set(j.updated_at),
    })
}

/// The `contact_key_id` column of a job: its contact's key, empty without a contact, and
/// NULL while the contact is still in clear text (so start-up finds the row).
fn contact_key_id(j: &Job) -> Option<String> {
    match &j.contact {
        None => Some(String::new()),
        Some(c) if c.key_id.is_empty() => None,
        Some(c) => Some(c.key_id.clone()),
    }
}

pub(super) fn offer_row(o: &Offer) -> Result<offer::ActiveModel, DbErr> {
    Ok(offer::ActiveModel {
        id: Set(o.id.clone()),
        job_id: Set(o.job_id.clone()),
        partner_id: Set(o.partner_id.clone()),
        status: Set(o.status.as_str().into()),
        offered_at: Set(o.offered_at),
        expires_at: Set(o.expires_at),
        body: Set(to_json(o)?),
    })
}

pub(super) fn quote_row(q: &Quote) -> Result<quote::ActiveModel, DbErr> {
    Ok(quote::ActiveModel {
        id: Set(q.id.clone()),
        job_id: Set(q.job_id.clone()),
        partner_id: Set(q.partner_id.clone()),
        status: Set(q.status.as_str().into()),
        body: Set(to_json(q)?),
        submitted_at: Set(q.submitted_at),
    })
}

/// Inserts or updates a job with its offers and quotes.
pub async fn save_job<C: ConnectionTrait>(conn: &C, agg: &JobAggregate) -> Result<(), DbErr> {
    super::batch::save_jobs(conn, &[agg]).await
}

/// Offers and quotes of several jobs, each list oldest first.
pub(super) async fn parts_of<C: ConnectionTrait>(
    conn: &C,
    job_ids: &[String],
) -> Result<(Vec<Offer>, Vec<Quote>), DbErr> {
    let ids = || job_ids.iter().map(String::as_str);
    let offers = offer::Entity::find()
        .filter(offer::Column::JobId.is_in(ids()))
        .order_by_asc(offer::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| from_json("offer", &row.body))
        .collect::<Result<_, _>>()?;
    let quotes = quote::Entity::find()
        .filter(quote::Column::JobId.is_in(ids()))
        .order_by_asc(quote::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| from_json("quote", &row.body))
        .collect::<Result<_, _>>()?;
    Ok((offers, quotes))
}

/// Jobs as stored, with their offers and quotes: the one way every loader makes
/// aggregates of job rows.
pub(super) async fn assemble<C: ConnectionTrait>(
    conn: &C,
    rows: Vec<job::Model>,
) -> Result<Vec<JobAggregate>, DbErr> {
    let jobs = rows
        .into_iter()
        .map(|row| from_json("job", &row.body))
        .collect::<Result<Vec<Job>, _>>()?;
    let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    let (offers, quotes) = parts_of(conn, &ids).await?;
    Ok(jobs
        .into_iter()
        .map(|job| JobAggregate {
            offers: offers
                .iter()
                .filter(|o| o.job_id == job.id)
                .cloned()
                .collect(),
            quotes: quotes
                .iter()
                .filter(|q| q.job_id == job.id)
                .cloned()
                .collect(),
            job,
        })
        .collect())
}

/// Loads a job with its offers and quotes; with `lock`, the job row stays locked until
/// the transaction ends (PostgreSQL; SQLite's single writer serialises anyway).
pub async fn load_job<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    lock: bool,
) -> Result<Option<JobAggregate>, DbErr> {
    let query = lock_if_postgres(conn, job::Entity::find_by_id(id.to_owned()), lock);
    let Some(row) = query.one(conn).await? else {
        return Ok(None);
    };
    Ok(assemble(conn, vec![row]).await?.pop())
}

/// A page of jobs, newest first, before the cursor id.
pub async fn list_jobs<C: ConnectionTrait>(
    conn: &C,
    f: &JobFilter,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<JobAggregate>, DbErr> {
    let mut q = job::Entity::find();
    if let Some(p) = &f.partner_id {
        q = q.filter(job::Column::PartnerId.eq(p.as_str()));
    }
    if let Some(t) = &f.ticket_id {
        q = q.filter(job::Column::TicketId.eq(t.as_str()));
    }
    if !f.statuses.is_empty() {
        q = q.filter(job::Column::Status.is_in(f.statuses.iter().map(|s| s.as_str())));
    }
    if let Some(before) = before {
        q = q.filter(job::Column::Id.lt(before));
    }
    let jobs = q
        .order_by_desc(job::Column::Id)
        .limit(limit)
        .all(conn)
        .await?;
    assemble(conn, jobs).await
}

/// Up to `limit` ids of jobs no version that seals contacts has written, in id order:
/// their contact may be in clear text.
pub async fn jobs_to_seal<C: ConnectionTrait>(conn: &C, limit: u64) -> Result<Vec<String>, DbErr> {
    job::Entity::find()
        .select_only()
        .column(job::Column::Id)
        .filter(job::Column::ContactKeyId.is_null())
        .order_by_asc(job::Column::Id)
        .limit(limit)
        .into_tuple::<String>()
        .all(conn)
        .await
}

/// The ids of a customer's jobs that still hold a contact (or may, unsealed), in id
/// order.
pub async fn jobs_with_contact_of<C: ConnectionTrait>(
    conn: &C,
    customer_id: &str,
) -> Result<Vec<String>, DbErr> {
    job::Entity::find()
        .select_only()
        .column(job::Column::Id)
        .filter(job::Column::CustomerId.eq(customer_id))
        .filter(
            sea_orm::Condition::any()
                .add(job::Column::ContactKeyId.is_null())
                .add(job::Column::ContactKeyId.ne("")),
        )
        .order_by_asc(job::Column::Id)
        .into_tuple::<String>()
        .all(conn)
        .await
}

/// The latest completed job of the ticket and product line finished since `since`: the
/// one a new job repeats.
pub async fn repeated_job<C: ConnectionTrait>(
    conn: &C,
    ticket_id: &str,
    product_line: &str,
    since: DateTime<Utc>,
) -> Result<Option<String>, DbErr> {
    Ok(job::Entity::find()
        .filter(job::Column::TicketId.eq(ticket_id))
        .filter(job::Column::ProductLine.eq(product_line))
        .filter(job::Column::Status.eq(JobStatus::Completed.as_str()))
        .filter(job::Column::CompletedAt.gte(since))
        .order_by_desc(job::Column::CompletedAt)
        .one(conn)
        .await?
        .map(|row| row.id))
}

pub async fn quote_job_id<C: ConnectionTrait>(
    conn: &C,
    quote_id: &str,
) -> Result<Option<String>, DbErr> {
    Ok(quote::Entity::find_by_id(quote_id.to_owned())
        .one(conn)
        .await?
        .map(|row| row.job_id))
}

/// The jobs of offers, as `(offer_id, job_id)`.
pub async fn offer_jobs<C: ConnectionTrait>(
    conn: &C,
    offer_ids: &[String],
) -> Result<Vec<(String, String)>, DbErr> {
    if offer_ids.is_empty() {
        return Ok(Vec::new());
    }
    offer::Entity::find()
        .select_only()
        .column(offer::Column::Id)
        .column(offer::Column::JobId)
        .filter(offer::Column::Id.is_in(offer_ids.iter().map(String::as_str)))
        .into_tuple()
        .all(conn)
        .await
}

/// Open offers by their acceptance deadline, after `after` in id order: what the deadline
/// queue must hold for offers.
pub async fn open_offer_deadlines<C: ConnectionTrait>(
    conn: &C,
    after: &str,
    limit: u64,
) -> Result<Vec<(String, DateTime<Utc>)>, DbErr> {
    Ok(offer::Entity::find()
        .filter(offer::Column::Status.eq(OfferStatus::Open.as_str()))
        .filter(offer::Column::Id.gt(after))
        .order_by_asc(offer::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| (row.id, row.expires_at))
        .collect())
}

/// Jobs waiting for their visit by the on-site deadline, after `after` in id order: what
/// the deadline queue must hold for visits.
pub async fn visit_deadlines<C: ConnectionTrait>(
    conn: &C,
    after: &str,
    limit: u64,
) -> Result<Vec<(String, DateTime<Utc>)>, DbErr> {
    Ok(job::Entity::find()
        .filter(job::Column::VisitWatchAt.is_not_null())
        .filter(job::Column::Id.gt(after))
        .order_by_asc(job::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .filter_map(|row| Some((row.id, row.visit_watch_at?)))
        .collect())
}
