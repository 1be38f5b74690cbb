//! Warranties and care tasks (reminders, notices, managers' tasks), stored whole as JSON
//! with the columns queries filter on beside them. A task carries a dedupe key, so a
//! replayed event or a repeated reminder adds nothing.

use aftersales_platform::db::{from_json, to_json};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::OnConflict,
};

use crate::domain::{
    TaskKind,
    listing::TaskFilter,
    proactive::{CareTask, Warranty},
};

use super::entity::{care_task, warranty};

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

/// The customers a notice left a task for, in id order.
pub async fn notice_recipients<C: ConnectionTrait>(
    conn: &C,
    notice_id: &str,
) -> Result<Vec<String>, DbErr> {
    Ok(care_task::Entity::find()
        .filter(care_task::Column::Kind.eq(TaskKind::Notice.as_str()))
        .filter(care_task::Column::SubjectId.eq(notice_id))
        .order_by_asc(care_task::Column::CustomerId)
        .all(conn)
        .await?
        .into_iter()
        .map(|t| t.customer_id)
        .collect())
}
