//! Events of other services that change tickets: a repair job that dispatch could not
//! place with any partner escalates its ticket to a supervisor. Escalating to a fixed
//! level is idempotent (a ticket already there stays), so a redelivered event changes
//! nothing.

use std::sync::Arc;

use aftersales_eventbus::{
    BusMessage,
    consumer::{Consumer, ConsumerSettings, EventHandler},
    envelope,
};
use aftersales_protos::events::v1::event_envelope::Payload;
use sea_orm::{DatabaseConnection, DatabaseTransaction};

use crate::{
    domain::{DomainError, Level},
    error::TicketsError,
    service::{Actor, TicketsCore},
};

/// The stream dispatch publishes on and this service's group on it.
pub const DISPATCH_STREAM: &str = "dispatch";
pub const GROUP: &str = "tickets";

pub struct DispatchEvents {
    core: Arc<TicketsCore>,
}

impl DispatchEvents {
    pub fn consumer(
        core: Arc<TicketsCore>,
        db: DatabaseConnection,
        bus: aftersales_eventbus::EventBus,
    ) -> Consumer<Self> {
        Consumer::new(
            db,
            bus,
            ConsumerSettings::new(DISPATCH_STREAM, GROUP),
            Arc::new(Self { core }),
        )
    }
}

impl EventHandler for DispatchEvents {
    async fn handle(&self, _txn: &DatabaseTransaction, message: &BusMessage) -> Result<(), String> {
        let envelope = envelope::decode(&message.payload).map_err(|e| e.to_string())?;
        let Some(Payload::JobUnassigned(unassigned)) = envelope.payload else {
            return Ok(());
        };
        let reason = format!(
            "repair job {} could not be placed: {}",
            unassigned.job_id, unassigned.reason
        );
        let actor = Actor::system();
        match self
            .core
            .escalate(
                &unassigned.ticket_id,
                Some(Level::Supervisor),
                &reason,
                &actor,
            )
            .await
        {
            Ok(_) => {
                tracing::info!(ticket_id = %unassigned.ticket_id, job_id = %unassigned.job_id, "ticket escalated: repair job unassigned");
                Ok(())
            }
            // Tickets of other systems, and tickets already escalated, need nothing.
            Err(TicketsError::NotFound { .. })
            | Err(TicketsError::Domain(DomainError::CannotEscalate { .. })) => Ok(()),
            Err(err) => Err(err.to_string()),
        }
    }
}
