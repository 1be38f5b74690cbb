//! Regional emergencies declared by care (`care.IncidentDeclared` of kind
//! `regional_emergency`): the region's tickets with live clocks are held — their SLA
//! clocks pause — until the emergency closes (`care.IncidentClosed`), when they are
//! released and run again with their due instants moved on by the time held. A ticket
//! opened in the region meanwhile is held from its start. Each runs inside the consumer's
//! transaction (the one that records the event processed), so a redelivered event
//! changes nothing: the emergency is recorded once and ended once.

use aftersales_runtime::command::Nested;
use chrono::{DateTime, Utc};

use crate::{domain::Actor, error::TicketsError, store};

use super::{Audit, PolicyChoice, TicketsCore, TicketsDeadline};

impl TicketsCore {
    /// Holds the clocks of the region's open tickets; returns how many were held.
    pub async fn emergency_declared(
        &self,
        cmd: &mut Nested<'_, TicketsDeadline>,
        incident_id: &str,
        region_code: &str,
        at: DateTime<Utc>,
    ) -> Result<usize, TicketsError> {
        if !store::start_emergency(cmd.txn(), incident_id, region_code, at).await? {
            return Ok(0);
        }
        let actor = Actor::system("care");
        let detail = format!("held by regional emergency {incident_id}");
        let tickets = store::tickets_to_hold(cmd.txn(), region_code).await?;
        for ticket_id in &tickets {
            self.change(
                cmd,
                ticket_id,
                PolicyChoice::Kept,
                Audit::new(&actor, "hold", detail.clone()),
                |agg, j, now| agg.hold(incident_id, &j.policy, &j.schedules, now),
            )
            .await?;
        }
        Ok(tickets.len())
    }

    /// Releases the tickets the emergency held; returns how many.
    pub async fn emergency_ended(
        &self,
        cmd: &mut Nested<'_, TicketsDeadline>,
        incident_id: &str,
    ) -> Result<usize, TicketsError> {
        let Some(region_code) = store::end_emergency(cmd.txn(), incident_id, cmd.now()).await?
        else {
            return Ok(0);
        };
        let actor = Actor::system("care");
        let detail = format!("released by regional emergency {incident_id}");
        let tickets = store::tickets_held_by(cmd.txn(), incident_id, &region_code).await?;
        for ticket_id in &tickets {
            self.change(
                cmd,
                ticket_id,
                PolicyChoice::Kept,
                Audit::new(&actor, "release", detail.clone()),
                |agg, j, now| agg.release(incident_id, &j.policy, &j.schedules, now),
            )
            .await?;
        }
        Ok(tickets.len())
    }
}
