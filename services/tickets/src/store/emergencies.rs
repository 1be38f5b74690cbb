//! Major incidents as tickets keeps them: regional emergencies (which are active in a
//! region, and the tickets each holds, found by the region and the incident id in their
//! `holds`), and the tickets care linked to each incident.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::OnConflict,
};

use crate::domain::Status;

use super::entity::{emergency, incident_link, ticket};

/// Records the emergency; false when it already was (a redelivered declaration).
pub async fn start_emergency<C: ConnectionTrait>(
    conn: &C,
    incident_id: &str,
    region_code: &str,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let inserted = emergency::Entity::insert(emergency::ActiveModel {
        incident_id: Set(incident_id.to_owned()),
        region_code: Set(region_code.to_owned()),
        started_at: Set(at),
        ended_at: Set(None),
    })
    .on_conflict(
        OnConflict::column(emergency::Column::IncidentId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(inserted > 0)
}

/// Ends the emergency; its region when it was active (once), `None` otherwise.
pub async fn end_emergency<C: ConnectionTrait>(
    conn: &C,
    incident_id: &str,
    at: DateTime<Utc>,
) -> Result<Option<String>, DbErr> {
    let Some(row) = emergency::Entity::find_by_id(incident_id.to_owned())
        .filter(emergency::Column::EndedAt.is_null())
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let ended = emergency::Entity::update_many()
        .col_expr(emergency::Column::EndedAt, Some(at).into())
        .filter(emergency::Column::IncidentId.eq(incident_id))
        .filter(emergency::Column::EndedAt.is_null())
        .exec(conn)
        .await?;
    Ok((ended.rows_affected > 0).then_some(row.region_code))
}

/// The active emergencies of a region, by incident id.
pub async fn active_emergencies_in<C: ConnectionTrait>(
    conn: &C,
    region_code: &str,
) -> Result<Vec<String>, DbErr> {
    emergency::Entity::find()
        .select_only()
        .column(emergency::Column::IncidentId)
        .filter(emergency::Column::RegionCode.eq(region_code))
        .filter(emergency::Column::EndedAt.is_null())
        .order_by_asc(emergency::Column::IncidentId)
        .into_tuple::<String>()
        .all(conn)
        .await
}

/// The region's tickets with live clocks, in id order (the order they are locked in).
pub async fn tickets_to_hold<C: ConnectionTrait>(
    conn: &C,
    region_code: &str,
) -> Result<Vec<String>, DbErr> {
    ticket::Entity::find()
        .select_only()
        .column(ticket::Column::Id)
        .filter(ticket::Column::RegionCode.eq(region_code))
        .filter(
            ticket::Column::Status.is_not_in([Status::Resolved.as_str(), Status::Closed.as_str()]),
        )
        .order_by_asc(ticket::Column::Id)
        .into_tuple::<String>()
        .all(conn)
        .await
}

/// The region's tickets the emergency holds, in id order.
pub async fn tickets_held_by<C: ConnectionTrait>(
    conn: &C,
    incident_id: &str,
    region_code: &str,
) -> Result<Vec<String>, DbErr> {
    // Incident ids are checked to be plain ids before they get here, so the pattern
    // holds no wildcard of their own.
    let pattern = format!("%\"{incident_id}\"%");
    ticket::Entity::find()
        .select_only()
        .column(ticket::Column::Id)
        .filter(ticket::Column::RegionCode.eq(region_code))
        .filter(ticket::Column::Holds.like(pattern))
        .order_by_asc(ticket::Column::Id)
        .into_tuple::<String>()
        .all(conn)
        .await
}

/// Records that care linked the ticket to the incident (once).
pub async fn link_incident<C: ConnectionTrait>(
    conn: &C,
    incident_id: &str,
    ticket_id: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    incident_link::Entity::insert(incident_link::ActiveModel {
        incident_id: Set(incident_id.to_owned()),
        ticket_id: Set(ticket_id.to_owned()),
        linked_at: Set(at),
    })
    .on_conflict(
        OnConflict::columns([
            incident_link::Column::IncidentId,
            incident_link::Column::TicketId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// The tickets linked to the incident, in id order (the order they are locked in).
pub async fn incident_tickets<C: ConnectionTrait>(
    conn: &C,
    incident_id: &str,
) -> Result<Vec<String>, DbErr> {
    incident_link::Entity::find()
        .select_only()
        .column(incident_link::Column::TicketId)
        .filter(incident_link::Column::IncidentId.eq(incident_id))
        .order_by_asc(incident_link::Column::TicketId)
        .into_tuple::<String>()
        .all(conn)
        .await
}
