//! Reading and writing the dispatch database. Functions take any connection, so the
//! service composes them inside one transaction; rows become domain types here only.

pub mod entity;
pub mod migration;

use aftersales_platform::db::{from_json, parse_code, to_json};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, sea_query::OnConflict,
};

use crate::domain::{
    JobStatus, OfferStatus, QuoteStatus,
    job::{Job, JobAggregate, Offer},
    keys::PartnerKey,
    partner::Partner,
    quote::Quote,
    scorecard::{JobFact, OfferFact},
    settlement::Settlement,
};
use entity::{contact_read, job, offer, partner, partner_key, partner_region, quote, settlement};

/// Queue members: what a scheduled id stands for.
pub const OFFER_MEMBER: &str = "offer:";
pub const VISIT_MEMBER: &str = "visit:";

fn lock_if_postgres<C: ConnectionTrait, Q: QuerySelect>(conn: &C, query: Q, lock: bool) -> Q {
    if lock && conn.get_database_backend() == DbBackend::Postgres {
        query.lock_exclusive()
    } else {
        query
    }
}

// ---- partners -------------------------------------------------------------------------

fn partner_row(p: &Partner) -> Result<partner::ActiveModel, DbErr> {
    Ok(partner::ActiveModel {
        id: Set(p.id.clone()),
        name: Set(p.spec.name.clone()),
        active: Set(p.spec.active),
        insured: Set(p.spec.insured),
        version: Set(p.version as i64),
        body: Set(to_json(p)?),
        created_at: Set(p.created_at),
        updated_at: Set(p.updated_at),
    })
}

/// Inserts or replaces a partner and the regions it covers.
pub async fn save_partner<C: ConnectionTrait>(conn: &C, p: &Partner) -> Result<(), DbErr> {
    partner::Entity::insert(partner_row(p)?)
        .on_conflict(
            OnConflict::column(partner::Column::Id)
                .update_columns([
                    partner::Column::Name,
                    partner::Column::Active,
                    partner::Column::Insured,
                    partner::Column::Version,
                    partner::Column::Body,
                    partner::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec(conn)
        .await?;
    partner_region::Entity::delete_many()
        .filter(partner_region::Column::PartnerId.eq(p.id.as_str()))
        .exec(conn)
        .await?;
    let regions: Vec<_> = p
        .spec
        .coverage
        .iter()
        .map(|c| partner_region::ActiveModel {
            partner_id: Set(p.id.clone()),
            region_code: Set(c.region_code.clone()),
        })
        .collect();
    if !regions.is_empty() {
        partner_region::Entity::insert_many(regions)
            .exec(conn)
            .await?;
    }
    Ok(())
}

pub async fn get_partner<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    lock: bool,
) -> Result<Option<Partner>, DbErr> {
    let query = lock_if_postgres(conn, partner::Entity::find_by_id(id.to_owned()), lock);
    query
        .one(conn)
        .await?
        .map(|row| from_json("partner", &row.body))
        .transpose()
}

#[derive(Debug, Clone, Default)]
pub struct PartnerFilter {
    pub region_code: Option<String>,
    pub skill: Option<String>,
    pub active_only: bool,
}

/// A page of partners, newest first, before the cursor id. The skill filter is applied
/// to the page read (skills live in the JSON body), so a page may come back short.
pub async fn list_partners<C: ConnectionTrait>(
    conn: &C,
    f: &PartnerFilter,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<Partner>, DbErr> {
    let mut q = partner::Entity::find();
    if let Some(region) = &f.region_code {
        let ids: Vec<String> = partner_region::Entity::find()
            .filter(partner_region::Column::RegionCode.eq(region.as_str()))
            .all(conn)
            .await?
            .into_iter()
            .map(|r| r.partner_id)
            .collect();
        q = q.filter(partner::Column::Id.is_in(ids));
    }
    if f.active_only {
        q = q.filter(partner::Column::Active.eq(true));
    }
    if let Some(before) = before {
        q = q.filter(partner::Column::Id.lt(before));
    }
    let partners = q
        .order_by_desc(partner::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| from_json::<Partner>("partner", &row.body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(match &f.skill {
        Some(skill) => partners
            .into_iter()
            .filter(|p| p.spec.skills.iter().any(|s| s == skill))
            .collect(),
        None => partners,
    })
}

/// Every partner covering a region (active or not: the ranking says why it is left out).
pub async fn partners_covering<C: ConnectionTrait>(
    conn: &C,
    region_code: &str,
) -> Result<Vec<Partner>, DbErr> {
    let ids: Vec<String> = partner_region::Entity::find()
        .filter(partner_region::Column::RegionCode.eq(region_code))
        .all(conn)
        .await?
        .into_iter()
        .map(|r| r.partner_id)
        .collect();
    partner::Entity::find()
        .filter(partner::Column::Id.is_in(ids))
        .order_by_asc(partner::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| from_json("partner", &row.body))
        .collect()
}

// ---- jobs, offers, quotes --------------------------------------------------------------

fn job_row(agg: &JobAggregate) -> Result<job::ActiveModel, DbErr> {
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
        body: Set(to_json(j)?),
        created_at: Set(j.created_at),
        updated_at: Set(j.updated_at),
    })
}

fn offer_row(o: &Offer) -> Result<offer::ActiveModel, DbErr> {
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

fn quote_row(q: &Quote) -> Result<quote::ActiveModel, DbErr> {
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
    job::Entity::insert(job_row(agg)?)
        .on_conflict(
            OnConflict::column(job::Column::Id)
                .update_columns([
                    job::Column::Status,
                    job::Column::PartnerId,
                    job::Column::AcceptedAt,
                    job::Column::CompletedAt,
                    job::Column::VisitWatchAt,
                    job::Column::Body,
                    job::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec(conn)
        .await?;
    let offers = agg
        .offers
        .iter()
        .map(offer_row)
        .collect::<Result<Vec<_>, _>>()?;
    if !offers.is_empty() {
        offer::Entity::insert_many(offers)
            .on_conflict(
                OnConflict::column(offer::Column::Id)
                    .update_columns([offer::Column::Status, offer::Column::Body])
                    .to_owned(),
            )
            .exec(conn)
            .await?;
    }
    let quotes = agg
        .quotes
        .iter()
        .map(quote_row)
        .collect::<Result<Vec<_>, _>>()?;
    if !quotes.is_empty() {
        quote::Entity::insert_many(quotes)
            .on_conflict(
                OnConflict::column(quote::Column::Id)
                    .update_columns([quote::Column::Status, quote::Column::Body])
                    .to_owned(),
            )
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// Offers and quotes of several jobs, each list oldest first.
async fn parts_of<C: ConnectionTrait>(
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

async fn assemble<C: ConnectionTrait>(
    conn: &C,
    jobs: Vec<Job>,
) -> Result<Vec<JobAggregate>, DbErr> {
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
    let job: Job = from_json("job", &row.body)?;
    Ok(assemble(conn, vec![job]).await?.pop())
}

#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub partner_id: Option<String>,
    pub ticket_id: Option<String>,
    pub statuses: Vec<JobStatus>,
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
        .await?
        .into_iter()
        .map(|row| from_json("job", &row.body))
        .collect::<Result<Vec<Job>, _>>()?;
    assemble(conn, jobs).await
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

pub async fn offer_job_id<C: ConnectionTrait>(
    conn: &C,
    offer_id: &str,
) -> Result<Option<String>, DbErr> {
    Ok(offer::Entity::find_by_id(offer_id.to_owned())
        .one(conn)
        .await?
        .map(|row| row.job_id))
}

/// Offers made to each partner since `since` that are open or accepted (counted by the
/// database: a busy partner has thousands).
pub async fn offers_taken_since<C: ConnectionTrait>(
    conn: &C,
    partner_ids: &[String],
    since: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, DbErr> {
    offer::Entity::find()
        .select_only()
        .column(offer::Column::PartnerId)
        .column_as(offer::Column::Id.count(), "n")
        .filter(offer::Column::PartnerId.is_in(partner_ids.iter().map(String::as_str)))
        .filter(offer::Column::OfferedAt.gte(since))
        .filter(
            offer::Column::Status
                .is_in([OfferStatus::Open.as_str(), OfferStatus::Accepted.as_str()]),
        )
        .group_by(offer::Column::PartnerId)
        .into_tuple()
        .all(conn)
        .await
}

/// Jobs each partner has accepted and not finished.
pub async fn active_jobs<C: ConnectionTrait>(
    conn: &C,
    partner_ids: &[String],
) -> Result<Vec<(Option<String>, i64)>, DbErr> {
    let open = [JobStatus::Accepted, JobStatus::Scheduled, JobStatus::OnSite];
    job::Entity::find()
        .select_only()
        .column(job::Column::PartnerId)
        .column_as(job::Column::Id.count(), "n")
        .filter(job::Column::PartnerId.is_in(partner_ids.iter().map(String::as_str)))
        .filter(job::Column::Status.is_in(open.iter().map(|s| s.as_str())))
        .group_by(job::Column::PartnerId)
        .into_tuple()
        .all(conn)
        .await
}

/// Offers made to the partners in `[from, to)`.
pub async fn offer_facts<C: ConnectionTrait>(
    conn: &C,
    partner_ids: &[String],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, OfferFact)>, DbErr> {
    offer::Entity::find()
        .filter(offer::Column::PartnerId.is_in(partner_ids.iter().map(String::as_str)))
        .filter(offer::Column::OfferedAt.gte(from))
        .filter(offer::Column::OfferedAt.lt(to))
        .all(conn)
        .await?
        .into_iter()
        .map(|row| {
            Ok((
                row.partner_id,
                OfferFact {
                    offered_at: row.offered_at,
                    status: parse_code("offer", &row.status)?,
                },
            ))
        })
        .collect()
}

/// Jobs of the partners accepted or completed in `[from, to)`, with their approved quote
/// totals.
pub async fn job_facts<C: ConnectionTrait>(
    conn: &C,
    partner_ids: &[String],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, JobFact)>, DbErr> {
    let in_period = |column: job::Column| Condition::all().add(column.gte(from)).add(column.lt(to));
    let rows = job::Entity::find()
        .filter(job::Column::PartnerId.is_in(partner_ids.iter().map(String::as_str)))
        .filter(
            Condition::any()
                .add(in_period(job::Column::AcceptedAt))
                .add(in_period(job::Column::CompletedAt)),
        )
        .all(conn)
        .await?;
    let jobs = rows
        .into_iter()
        .map(|row| from_json::<Job>("job", &row.body))
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    let (_, quotes) = parts_of(conn, &ids).await?;
    Ok(jobs
        .into_iter()
        .filter_map(|job| {
            let partner = job.partner_id.clone()?;
            let approved_minor = quotes
                .iter()
                .filter(|q| q.job_id == job.id && q.status == QuoteStatus::Approved)
                .map(|q| q.total.minor)
                .sum();
            Some((
                partner,
                JobFact {
                    accepted_at: job.accepted_at,
                    visit_on_time: job.visit_on_time(),
                    completed_at: job.completion.as_ref().map(|c| c.completed_at),
                    first_time_fix: job.completion.as_ref().is_some_and(|c| c.first_time_fix()),
                    approved_minor,
                },
            ))
        })
        .collect())
}

/// Jobs of a partner finished in `[from, to)` with their approved quotes: what a
/// settlement is built from.
pub async fn settled_work<C: ConnectionTrait>(
    conn: &C,
    partner_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<JobAggregate>, DbErr> {
    let finished = [JobStatus::Completed, JobStatus::CannotComplete];
    let jobs = job::Entity::find()
        .filter(job::Column::PartnerId.eq(partner_id))
        .filter(job::Column::Status.is_in(finished.iter().map(|s| s.as_str())))
        .filter(job::Column::CompletedAt.gte(from))
        .filter(job::Column::CompletedAt.lt(to))
        .all(conn)
        .await?
        .into_iter()
        .map(|row| from_json("job", &row.body))
        .collect::<Result<Vec<Job>, _>>()?;
    assemble(conn, jobs).await
}

/// What the deadline queue must hold, after `after` in member order: open offers by their
/// acceptance deadline and unvisited jobs by their on-site deadline.
pub async fn pending_fire_times<C: ConnectionTrait>(
    conn: &C,
    offers: bool,
    after: &str,
    limit: u64,
) -> Result<Vec<(String, DateTime<Utc>)>, DbErr> {
    if offers {
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
    } else {
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
}

// ---- settlements -----------------------------------------------------------------------

fn settlement_row(s: &Settlement) -> Result<settlement::ActiveModel, DbErr> {
    Ok(settlement::ActiveModel {
        id: Set(s.id.clone()),
        partner_id: Set(s.partner_id.clone()),
        month: Set(s.month.clone()),
        status: Set(s.status.as_str().into()),
        body: Set(to_json(s)?),
        updated_at: Set(s.updated_at),
    })
}

pub async fn save_settlement<C: ConnectionTrait>(conn: &C, s: &Settlement) -> Result<(), DbErr> {
    settlement::Entity::insert(settlement_row(s)?)
        .on_conflict(
            OnConflict::column(settlement::Column::Id)
                .update_columns([
                    settlement::Column::Status,
                    settlement::Column::Body,
                    settlement::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn settlement_of<C: ConnectionTrait>(
    conn: &C,
    partner_id: &str,
    month: &str,
) -> Result<Option<Settlement>, DbErr> {
    settlement::Entity::find()
        .filter(settlement::Column::PartnerId.eq(partner_id))
        .filter(settlement::Column::Month.eq(month))
        .one(conn)
        .await?
        .map(|row| from_json("settlement", &row.body))
        .transpose()
}

pub async fn get_settlement<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    lock: bool,
) -> Result<Option<Settlement>, DbErr> {
    let query = lock_if_postgres(conn, settlement::Entity::find_by_id(id.to_owned()), lock);
    query
        .one(conn)
        .await?
        .map(|row| from_json("settlement", &row.body))
        .transpose()
}

pub async fn list_settlements<C: ConnectionTrait>(
    conn: &C,
    partner_id: Option<&str>,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<Settlement>, DbErr> {
    let mut q = settlement::Entity::find();
    if let Some(p) = partner_id {
        q = q.filter(settlement::Column::PartnerId.eq(p));
    }
    if let Some(before) = before {
        q = q.filter(settlement::Column::Id.lt(before));
    }
    q.order_by_desc(settlement::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| from_json("settlement", &row.body))
        .collect()
}

// ---- partner keys and the contact audit -----------------------------------------------

fn key_from_row(row: partner_key::Model) -> (PartnerKey, String) {
    (
        PartnerKey {
            id: row.id,
            partner_id: row.partner_id,
            prefix: row.prefix,
            label: row.label,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        },
        row.secret_hash,
    )
}

pub async fn insert_key<C: ConnectionTrait>(
    conn: &C,
    key: &PartnerKey,
    secret_hash: &str,
) -> Result<(), DbErr> {
    partner_key::Entity::insert(partner_key::ActiveModel {
        id: Set(key.id.clone()),
        partner_id: Set(key.partner_id.clone()),
        prefix: Set(key.prefix.clone()),
        secret_hash: Set(secret_hash.to_owned()),
        label: Set(key.label.clone()),
        created_at: Set(key.created_at),
        expires_at: Set(key.expires_at),
        revoked_at: Set(key.revoked_at),
    })
    .exec(conn)
    .await?;
    Ok(())
}

/// Records a key's end: an expiry (rotation) or a revocation.
pub async fn end_key<C: ConnectionTrait>(conn: &C, key: &PartnerKey) -> Result<(), DbErr> {
    partner_key::Entity::update_many()
        .col_expr(partner_key::Column::ExpiresAt, key.expires_at.into())
        .col_expr(partner_key::Column::RevokedAt, key.revoked_at.into())
        .filter(partner_key::Column::Id.eq(key.id.as_str()))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn get_key<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<PartnerKey>, DbErr> {
    Ok(partner_key::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .map(|row| key_from_row(row).0))
}

pub async fn key_by_hash<C: ConnectionTrait>(
    conn: &C,
    secret_hash: &str,
) -> Result<Option<PartnerKey>, DbErr> {
    Ok(partner_key::Entity::find()
        .filter(partner_key::Column::SecretHash.eq(secret_hash))
        .one(conn)
        .await?
        .map(|row| key_from_row(row).0))
}

/// The keys of one partner, or of every partner.
pub async fn keys_of<C: ConnectionTrait>(
    conn: &C,
    partner_id: Option<&str>,
) -> Result<Vec<PartnerKey>, DbErr> {
    let mut query = partner_key::Entity::find();
    if let Some(partner_id) = partner_id {
        query = query.filter(partner_key::Column::PartnerId.eq(partner_id));
    }
    Ok(query
        .order_by_asc(partner_key::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| key_from_row(row).0)
        .collect())
}

/// Audited reads of customers' contacts by a partner, one row per job shown.
pub async fn record_contact_reads<C: ConnectionTrait>(
    conn: &C,
    job_ids: &[&str],
    partner_id: &str,
    operation: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    if job_ids.is_empty() {
        return Ok(());
    }
    let rows = job_ids.iter().map(|job_id| contact_read::ActiveModel {
        id: Set(crate::domain::new_id()),
        job_id: Set((*job_id).to_owned()),
        partner_id: Set(partner_id.to_owned()),
        operation: Set(operation.to_owned()),
        read_at: Set(at),
    });
    contact_read::Entity::insert_many(rows).exec(conn).await?;
    Ok(())
}
