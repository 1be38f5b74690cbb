//! Major incidents as tickets sees them: the tickets care linked to an incident
//! (`care.IncidentTicketLinked`, recorded here), and the updates care asks for all of them
//! together (`care.IncidentTicketsUpdated`): escalation to a level and a new severity,
//! applied to each linked ticket inside the consumer's transaction — once, as the event
//! is. A linked ticket of another system, a closed one, or one already at the level
//! changes nothing.

use aftersales_runtime::command::Nested;

use crate::{
    domain::{Actor, DomainError, Level, Severity},
    error::TicketsError,
    store,
};

use super::{Audit, PolicyChoice, TicketsCore, TicketsDeadline, handling::Refact};

/// What care asks of every ticket linked to an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentUpdate {
    pub escalate_to: Option<Level>,
    pub severity: Option<Severity>,
}

impl TicketsCore {
    /// Records the link; linking again changes nothing.
    pub async fn incident_ticket_linked(
        &self,
        cmd: &mut Nested<'_, TicketsDeadline>,
        incident_id: &str,
        ticket_id: &str,
    ) -> Result<(), TicketsError> {
        Ok(store::link_incident(cmd.txn(), incident_id, ticket_id, cmd.now()).await?)
    }

    /// Applies `update` to every ticket linked to the incident; returns how many changed.
    pub async fn update_incident_tickets(
        &self,
        cmd: &mut Nested<'_, TicketsDeadline>,
        incident_id: &str,
        update: IncidentUpdate,
    ) -> Result<usize, TicketsError> {
        let actor = Actor::system("care");
        let reason = format!("major incident {incident_id}");
        let mut changed = 0;
        for ticket_id in store::incident_tickets(cmd.txn(), incident_id).await? {
            if let Some(severity) = update.severity {
                let applied = self
                    .change(
                        cmd,
                        &ticket_id,
                        PolicyChoice::Rematch(Refact::Severity(severity)),
                        Audit::new(&actor, "set_severity", format!("{severity}: {reason}")),
                        |agg, j, now| {
                            agg.set_severity(severity, &reason, &j.policy, &j.schedules, now)
                        },
                    )
                    .await;
                changed += usize::from(settled(applied)?);
            }
            if let Some(level) = update.escalate_to {
                let applied = self
                    .change(
                        cmd,
                        &ticket_id,
                        PolicyChoice::Kept,
                        Audit::new(&actor, "escalate", reason.clone()),
                        |agg, _, now| agg.escalate(Some(level), &reason, now),
                    )
                    .await;
                changed += usize::from(settled(applied)?);
            }
        }
        Ok(changed)
    }
}

/// Whether a change went through; a ticket it cannot apply to (gone, closed, already
/// there) is skipped, any other failure fails the event.
fn settled<T>(applied: Result<T, TicketsError>) -> Result<bool, TicketsError> {
    match applied {
        Ok(_) => Ok(true),
        Err(TicketsError::NotFound { .. })
        | Err(TicketsError::Domain(
            DomainError::CannotEscalate { .. } | DomainError::Precondition(_),
        )) => Ok(false),
        Err(err) => Err(err),
    }
}
