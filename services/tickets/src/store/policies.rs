//! SLA policies (every version kept, one current per id) and business calendars.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::OnConflict,
};

use aftersales_platform::db::{corrupt, from_json, to_json};

use crate::domain::{calendar::BusinessCalendar, policy::SlaPolicy};

use super::entity::{calendar, policy};

fn policy_from_row(row: policy::Model) -> Result<SlaPolicy, DbErr> {
    from_json("sla_policy", &row.body)
}

/// A policy version as the current one.
fn policy_row(p: &SlaPolicy) -> Result<policy::ActiveModel, DbErr> {
    Ok(policy::ActiveModel {
        id: Set(p.id.clone()),
        version: Set(p.version as i32),
        is_current: Set(true),
        priority: Set(p.priority),
        body: Set(to_json(p)?),
        created_at: Set(p.created_at),
    })
}

/// The current version of every policy.
pub async fn current_policies<C: ConnectionTrait>(conn: &C) -> Result<Vec<SlaPolicy>, DbErr> {
    let mut policies: Vec<SlaPolicy> = policy::Entity::find()
        .filter(policy::Column::IsCurrent.eq(true))
        .all(conn)
        .await?
        .into_iter()
        .map(policy_from_row)
        .collect::<Result<_, _>>()?;
    policies.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
    Ok(policies)
}

pub async fn policy_version<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    version: u32,
) -> Result<Option<SlaPolicy>, DbErr> {
    policy::Entity::find_by_id((id.to_owned(), version as i32))
        .one(conn)
        .await?
        .map(policy_from_row)
        .transpose()
}

/// Stores `p` as the current version of its policy; earlier versions stay for the
/// tickets that use them.
pub async fn insert_policy_version<C: ConnectionTrait>(
    conn: &C,
    p: &SlaPolicy,
) -> Result<(), DbErr> {
    policy::Entity::update_many()
        .col_expr(
            policy::Column::IsCurrent,
            sea_orm::sea_query::Expr::value(false),
        )
        .filter(policy::Column::Id.eq(p.id.as_str()))
        .exec(conn)
        .await?;
    policy::Entity::insert(policy_row(p)?)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn calendars<C: ConnectionTrait>(
    conn: &C,
    ids: &[String],
) -> Result<Vec<BusinessCalendar>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    calendar::Entity::find()
        .filter(calendar::Column::Id.is_in(ids.iter().map(String::as_str)))
        .all(conn)
        .await?
        .into_iter()
        .map(|row| {
            from_json::<BusinessCalendar>("business_calendar", &row.body)?
                .revalidated()
                .map_err(|e| corrupt("business_calendar", e))
        })
        .collect()
}

fn calendar_row(c: &BusinessCalendar, now: DateTime<Utc>) -> Result<calendar::ActiveModel, DbErr> {
    Ok(calendar::ActiveModel {
        id: Set(c.id.clone()),
        body: Set(to_json(c)?),
        updated_at: Set(now),
    })
}

pub async fn upsert_calendar<C: ConnectionTrait>(
    conn: &C,
    c: &BusinessCalendar,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    calendar::Entity::insert(calendar_row(c, now)?)
        .on_conflict(
            OnConflict::column(calendar::Column::Id)
                .update_columns([calendar::Column::Body, calendar::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Inserts the calendar only if no calendar has its id (first start, concurrent replicas).
pub async fn insert_calendar_if_missing<C: ConnectionTrait>(
    conn: &C,
    c: &BusinessCalendar,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    calendar::Entity::insert(calendar_row(c, now)?)
        .on_conflict(
            OnConflict::column(calendar::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Stores `p` as the current version of its policy unless that (id, version) exists
/// already (another replica seeding at the same time): earlier versions stay, no longer
/// current, for the tickets that use them.
pub async fn insert_policy_if_missing<C: ConnectionTrait>(
    conn: &C,
    p: &SlaPolicy,
) -> Result<(), DbErr> {
    let inserted = policy::Entity::insert(policy_row(p)?)
        .on_conflict(
            OnConflict::columns([policy::Column::Id, policy::Column::Version])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    if inserted > 0 {
        policy::Entity::update_many()
            .col_expr(
                policy::Column::IsCurrent,
                sea_orm::sea_query::Expr::value(false),
            )
            .filter(policy::Column::Id.eq(p.id.as_str()))
            .filter(policy::Column::Version.ne(p.version as i32))
            .exec(conn)
            .await?;
    }
    Ok(())
}
