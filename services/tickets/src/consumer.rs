//! Events of other services that change tickets: a repair job that dispatch could not
//! place with any partner escalates its ticket to a supervisor (escalating to a fixed
//! level is idempotent: a ticket already there stays), and care's tier changes are kept,
//! latest first, for tickets created without a tier (SLA policies match on it).
//!
//! Each event is applied inside the consumer's transaction, the one that records it
//! processed; the shared consumer decodes it and dead-letters what it cannot decode.

use std::sync::Arc;

use aftersales_eventbus::{
    EventBus,
    consumer::{Consumer, ConsumerSettings, EventEnvelopeHandler},
};
use aftersales_platform::codes::{ProtoEnum, instant};
use aftersales_protos::events::v1::{self as ev, EventEnvelope, event_envelope::Payload};
use sea_orm::DatabaseTransaction;

use crate::{
    domain::{DomainError, Level, Tier},
    error::TicketsError,
    service::{Actor, TicketsCore},
    store,
};

/// The streams tickets reads, and its group on each.
pub const STREAMS: [&str; 2] = ["dispatch", "care"];
pub const GROUP: &str = "tickets";

pub struct OtherServices {
    core: Arc<TicketsCore>,
}

impl OtherServices {
    /// One consumer per stream, sharing the handler.
    pub fn consumers(core: Arc<TicketsCore>, bus: EventBus) -> Vec<Consumer<Self>> {
        let handler = Arc::new(Self { core });
        STREAMS
            .iter()
            .map(|stream| {
                Consumer::new(
                    handler.core.db().clone(),
                    bus.clone(),
                    ConsumerSettings::new(*stream, GROUP),
                    handler.clone(),
                )
            })
            .collect()
    }

    async fn job_unassigned(
        &self,
        txn: &DatabaseTransaction,
        unassigned: &ev::JobUnassigned,
    ) -> Result<(), String> {
        let reason = format!(
            "repair job {} could not be placed: {}",
            unassigned.job_id, unassigned.reason
        );
        let actor = Actor::system();
        match self
            .core
            .escalate_in(
                txn,
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
            // Tickets of other systems, and tickets already escalated, need nothing (both
            // are found out before anything is written).
            Err(TicketsError::NotFound { .. })
            | Err(TicketsError::Domain(DomainError::CannotEscalate { .. })) => Ok(()),
            Err(err) => Err(err.to_string()),
        }
    }
}

impl EventEnvelopeHandler for OtherServices {
    async fn handle_event(
        &self,
        txn: &DatabaseTransaction,
        envelope: &EventEnvelope,
    ) -> Result<(), String> {
        match &envelope.payload {
            Some(Payload::JobUnassigned(unassigned)) => self.job_unassigned(txn, unassigned).await,
            Some(Payload::CustomerTierChanged(changed)) => {
                let Some(tier) = Tier::from_proto(changed.to) else {
                    return Ok(());
                };
                let at = changed
                    .changed_at
                    .as_ref()
                    .and_then(instant)
                    .unwrap_or_else(chrono::Utc::now);
                store::record_tier(txn, &changed.customer_id, tier, at)
                    .await
                    .map_err(|e| e.to_string())
            }
            _ => Ok(()),
        }
    }

    /// An escalation wrote its events to the outbox in the consumer's transaction.
    fn committed(&self, _envelope: &EventEnvelope) {
        self.core.wake_relay();
    }
}
