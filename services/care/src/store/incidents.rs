//! Major incidents, stored whole as JSON with the columns queries filter on beside it,
//! and the tickets linked to them.

use aftersales_platform::db::{from_json, to_json};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::OnConflict,
};

use crate::domain::incident::{Incident, IncidentStatus};

use super::{
    entity::{incident, incident_ticket},
    lock_if_postgres,
};

fn row(i: &Incident) -> Result<incident::ActiveModel, DbErr> {
    Ok(incident::ActiveModel {
        id: Set(i.id.clone()),
        status: Set(i.status.as_str().to_owned()),
        open_scope: Set(i.is_open().then(|| i.scope.key())),
        opened_at: Set(i.opened_at),
        next_due_at: Set(i.next_instant()),
        body: Set(to_json(i)?),
    })
}

/// Inserts a new incident unless an open one already covers its scope; false then.
pub async fn insert_incident<C: ConnectionTrait>(conn: &C, i: &Incident) -> Result<bool, DbErr> {
    let inserted = incident::Entity::insert(row(i)?)
        .on_conflict(
            OnConflict::column(incident::Column::OpenScope)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(inserted > 0)
}

pub async fn save_incident<C: ConnectionTrait>(conn: &C, i: &Incident) -> Result<(), DbErr> {
    incident::Entity::update(row(i)?).exec(conn).await?;
    Ok(())
}

pub async fn load_incident<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    lock: bool,
) -> Result<Option<Incident>, DbErr> {
    lock_if_postgres(conn, incident::Entity::find_by_id(id.to_owned()), lock)
        .one(conn)
        .await?
        .map(|r| from_json("incident", &r.body))
        .transpose()
}

/// The open incident covering exactly `scope_key`, if any.
pub async fn open_incident_of_scope<C: ConnectionTrait>(
    conn: &C,
    scope_key: &str,
) -> Result<Option<Incident>, DbErr> {
    incident::Entity::find()
        .filter(incident::Column::OpenScope.eq(scope_key))
        .one(conn)
        .await?
        .map(|r| from_json("incident", &r.body))
        .transpose()
}

/// Every open (proposed or active) incident, oldest first: few at any time.
pub async fn open_incidents<C: ConnectionTrait>(conn: &C) -> Result<Vec<Incident>, DbErr> {
    incident::Entity::find()
        .filter(incident::Column::OpenScope.is_not_null())
        .order_by_asc(incident::Column::OpenedAt)
        .order_by_asc(incident::Column::Id)
        .all(conn)
        .await?
        .iter()
        .map(|r| from_json("incident", &r.body))
        .collect()
}

/// Newest first (ids are time-ordered), before the cursor `before`.
pub async fn list_incidents<C: ConnectionTrait>(
    conn: &C,
    status: Option<IncidentStatus>,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<Incident>, DbErr> {
    let mut q = incident::Entity::find();
    if let Some(status) = status {
        q = q.filter(incident::Column::Status.eq(status.as_str()));
    }
    if let Some(before) = before {
        q = q.filter(incident::Column::Id.lt(before));
    }
    q.order_by_desc(incident::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .iter()
        .map(|r| from_json("incident", &r.body))
        .collect()
}

/// `(id, next instant)` of incidents whose clocks will act, in id order after `after`.
pub async fn incidents_due<C: ConnectionTrait>(
    conn: &C,
    after: &str,
    limit: u64,
) -> Result<Vec<(String, DateTime<Utc>)>, DbErr> {
    Ok(incident::Entity::find()
        .filter(incident::Column::Id.gt(after))
        .filter(incident::Column::NextDueAt.is_not_null())
        .order_by_asc(incident::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .filter_map(|r| Some((r.id, r.next_due_at?)))
        .collect())
}

/// Links the tickets not linked yet; returns those, in the order given.
pub async fn link_tickets<C: ConnectionTrait>(
    conn: &C,
    incident_id: &str,
    ticket_ids: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<String>, DbErr> {
    let mut fresh = Vec::new();
    for chunk in ticket_ids.chunks(500) {
        let linked: Vec<String> = incident_ticket::Entity::find()
            .select_only()
            .column(incident_ticket::Column::TicketId)
            .filter(incident_ticket::Column::IncidentId.eq(incident_id))
            .filter(incident_ticket::Column::TicketId.is_in(chunk.iter().cloned()))
            .into_tuple::<String>()
            .all(conn)
            .await?;
        for id in chunk {
            if !linked.contains(id) && !fresh.contains(id) {
                fresh.push(id.clone());
            }
        }
    }
    for chunk in fresh.chunks(500) {
        incident_ticket::Entity::insert_many(chunk.iter().map(|t| incident_ticket::ActiveModel {
            incident_id: Set(incident_id.to_owned()),
            ticket_id: Set(t.clone()),
            linked_at: Set(now),
        }))
        .on_conflict(
            OnConflict::columns([
                incident_ticket::Column::IncidentId,
                incident_ticket::Column::TicketId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    }
    Ok(fresh)
}

/// Linked ticket ids in id order after `after`.
pub async fn incident_tickets<C: ConnectionTrait>(
    conn: &C,
    incident_id: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    let mut q =
        incident_ticket::Entity::find().filter(incident_ticket::Column::IncidentId.eq(incident_id));
    if let Some(after) = after {
        q = q.filter(incident_ticket::Column::TicketId.gt(after));
    }
    Ok(q.order_by_asc(incident_ticket::Column::TicketId)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|r| r.ticket_id)
        .collect())
}
