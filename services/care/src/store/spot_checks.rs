//! Scored spot checks, one row each by spot-check id (the week and the ticket); the
//! sample they belong to is computed from the ticket facts, not stored. A reviewer's note
//! may quote the customer, so anonymising the customer blanks the notes on their tickets.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};

use crate::domain::spot_check::{Candidate, Score, SpotCheck};

use super::entity::{spot_check_score, ticket_fact};

fn spot_check(row: spot_check_score::Model) -> SpotCheck {
    SpotCheck {
        week_start: row.week_start,
        candidate: Candidate {
            ticket_id: row.ticket_id,
            agent_id: row.agent_id,
            group_id: row.group_id,
            resolved_at: row.resolved_at,
        },
        score: Some(Score {
            score: u32::try_from(row.score).unwrap_or(0),
            note: row.note,
            scored_by: row.scored_by,
            scored_at: row.scored_at,
        }),
    }
}

/// Stores a scored spot check; `false` when it was scored already (the first score
/// stands).
pub async fn insert_spot_check_score<C: ConnectionTrait>(
    conn: &C,
    s: &SpotCheck,
) -> Result<bool, DbErr> {
    let Some(score) = &s.score else {
        return Ok(false);
    };
    let inserted = spot_check_score::Entity::insert(spot_check_score::ActiveModel {
        id: Set(s.id()),
        ticket_id: Set(s.candidate.ticket_id.clone()),
        week_start: Set(s.week_start),
        agent_id: Set(s.candidate.agent_id.clone()),
        group_id: Set(s.candidate.group_id.clone()),
        resolved_at: Set(s.candidate.resolved_at),
        score: Set(i32::try_from(score.score).unwrap_or(i32::MAX)),
        note: Set(score.note.clone()),
        scored_by: Set(score.scored_by.clone()),
        scored_at: Set(score.scored_at),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::column(spot_check_score::Column::Id)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(inserted == 1)
}

pub async fn get_spot_check<C: ConnectionTrait>(
    conn: &C,
    id: &str,
) -> Result<Option<SpotCheck>, DbErr> {
    Ok(spot_check_score::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .map(spot_check))
}

/// The scored spot checks of the week starting at `week_start`.
pub async fn scored_in_week<C: ConnectionTrait>(
    conn: &C,
    week_start: DateTime<Utc>,
) -> Result<Vec<SpotCheck>, DbErr> {
    Ok(spot_check_score::Entity::find()
        .filter(spot_check_score::Column::WeekStart.eq(week_start))
        .order_by_asc(spot_check_score::Column::TicketId)
        .all(conn)
        .await?
        .into_iter()
        .map(spot_check)
        .collect())
}

/// Spot checks scored in `[from, to)`.
pub async fn scored_between<C: ConnectionTrait>(
    conn: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<SpotCheck>, DbErr> {
    Ok(spot_check_score::Entity::find()
        .filter(spot_check_score::Column::ScoredAt.gte(from))
        .filter(spot_check_score::Column::ScoredAt.lt(to))
        .all(conn)
        .await?
        .into_iter()
        .map(spot_check)
        .collect())
}

/// The ids of the customer's tickets care knows.
async fn tickets_of<C: ConnectionTrait>(conn: &C, customer_id: &str) -> Result<Vec<String>, DbErr> {
    Ok(ticket_fact::Entity::find()
        .filter(ticket_fact::Column::CustomerId.eq(customer_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|t| t.ticket_id)
        .collect())
}

/// The scored spot checks of the customer's tickets, by ticket then week: what an export
/// of the customer's data holds.
pub async fn spot_checks_of_customer<C: ConnectionTrait>(
    conn: &C,
    customer_id: &str,
) -> Result<Vec<SpotCheck>, DbErr> {
    let mut checks = Vec::new();
    for chunk in tickets_of(conn, customer_id).await?.chunks(500) {
        checks.extend(
            spot_check_score::Entity::find()
                .filter(spot_check_score::Column::TicketId.is_in(chunk.iter().cloned()))
                .all(conn)
                .await?
                .into_iter()
                .map(spot_check),
        );
    }
    checks.sort_by(|a, b| {
        (&a.candidate.ticket_id, a.week_start).cmp(&(&b.candidate.ticket_id, b.week_start))
    });
    Ok(checks)
}

/// Blanks the reviewers' notes of spot checks of the customer's tickets.
pub async fn clear_spot_check_notes<C: ConnectionTrait>(
    conn: &C,
    customer_id: &str,
) -> Result<(), DbErr> {
    let tickets = tickets_of(conn, customer_id).await?;
    for chunk in tickets.chunks(500) {
        spot_check_score::Entity::update_many()
            .col_expr(
                spot_check_score::Column::Note,
                sea_orm::sea_query::Expr::value(""),
            )
            .filter(spot_check_score::Column::TicketId.is_in(chunk.iter().cloned()))
            .exec(conn)
            .await?;
    }
    Ok(())
}
