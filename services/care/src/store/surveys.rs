//! CSAT surveys, and clearing a customer's free-text comments (surveys, follow-ups and
//! spot-check notes) when the customer is anonymised.

use aftersales_platform::db::parse_code;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};

use crate::domain::records::Survey;

use super::{
    entity::survey,
    follow_ups::{follow_ups_of, save_follow_up},
};

fn survey(row: survey::Model) -> Result<Survey, DbErr> {
    Ok(Survey {
        subject: parse_code("survey subject", &row.subject)?,
        csat: u8::try_from(row.csat).unwrap_or(0),
        id: row.id,
        customer_id: row.customer_id,
        subject_id: row.subject_id,
        comment: row.comment,
        recorded_at: row.recorded_at,
    })
}

fn surveys(rows: Vec<survey::Model>) -> Result<Vec<Survey>, DbErr> {
    rows.into_iter().map(survey).collect()
}

pub async fn insert_survey<C: ConnectionTrait>(conn: &C, s: &Survey) -> Result<(), DbErr> {
    survey::Entity::insert(survey::ActiveModel {
        id: Set(s.id.clone()),
        customer_id: Set(s.customer_id.clone()),
        subject: Set(s.subject.as_str().to_owned()),
        subject_id: Set(s.subject_id.clone()),
        csat: Set(i32::from(s.csat)),
        comment: Set(s.comment.clone()),
        recorded_at: Set(s.recorded_at),
    })
    .exec(conn)
    .await?;
    Ok(())
}

pub async fn get_survey<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<Survey>, DbErr> {
    survey::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .map(survey)
        .transpose()
}

/// Surveys recorded in `[from, to)`.
pub async fn surveys_recorded<C: ConnectionTrait>(
    conn: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Survey>, DbErr> {
    surveys(
        survey::Entity::find()
            .filter(survey::Column::RecordedAt.gte(from))
            .filter(survey::Column::RecordedAt.lt(to))
            .all(conn)
            .await?,
    )
}

pub async fn surveys_of<C: ConnectionTrait>(
    conn: &C,
    customer_id: &str,
) -> Result<Vec<Survey>, DbErr> {
    surveys(
        survey::Entity::find()
            .filter(survey::Column::CustomerId.eq(customer_id))
            .order_by_asc(survey::Column::Id)
            .all(conn)
            .await?,
    )
}

/// Blanks the free-text comments of a customer's surveys and follow-ups, and the
/// spot-check notes of their tickets.
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
    super::spot_checks::clear_spot_check_notes(conn, customer_id).await
}
