//! What the store counts and gathers for matching, scorecards and settlement: offers
//! taken today, open work, and the history of a period.

use aftersales_platform::db::{from_json, parse_code};
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
};

use super::{
    entity::{job, offer},
    jobs::{assemble, parts_of},
};
use crate::domain::{
    CompletionMode, JobStatus, OfferStatus, QuoteStatus,
    job::{Job, JobAggregate},
    scorecard::{JobFact, OfferFact},
};

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

/// Jobs each partner has accepted and not finished (waiting for parts included: still
/// the partner's work).
pub async fn active_jobs<C: ConnectionTrait>(
    conn: &C,
    partner_ids: &[String],
) -> Result<Vec<(Option<String>, i64)>, DbErr> {
    let open = [
        JobStatus::Accepted,
        JobStatus::Scheduled,
        JobStatus::OnSite,
        JobStatus::WaitingForParts,
    ];
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
                    remote: job
                        .completion
                        .as_ref()
                        .is_some_and(|c| c.mode == CompletionMode::Remote),
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
        .await?;
    assemble(conn, jobs).await
}
