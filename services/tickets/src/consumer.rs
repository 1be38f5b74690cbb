//! Events of other services that change tickets: a repair job that dispatch could not
//! place with any partner escalates its ticket to a supervisor (escalating to a fixed
//! level is idempotent: a ticket already there stays); care's tier changes are kept,
//! latest first, for tickets created without a tier (SLA policies match on it); and a
//! customer care anonymised has the free text of their tickets erased (once: the event
//! is recorded processed with the erasure, and erasing again would change nothing); and
//! a regional emergency care declares holds the clocks of the region's open tickets
//! until care closes it (see `usecases::emergencies`); the tickets care links to a major
//! incident are recorded, and updated together when care asks (`usecases::incidents`).
//!
//! Each event is applied inside the consumer's transaction, the one that records it
//! processed; the shared consumer decodes it and dead-letters what it cannot decode. An
//! escalation runs as a command nested in that transaction ([`Pipeline::within`]); what
//! it leaves for after the commit (its clocks, waking the relay) is kept by event id and
//! run in the consumer's `committed` hook ([`PendingEffects`]).
//!
//! [`Pipeline::within`]: aftersales_runtime::command::Pipeline::within

use std::sync::Arc;

use aftersales_eventbus::{
    EventBus,
    consumer::{Consumer, EventEnvelopeHandler},
};
use aftersales_platform::codes::{ProtoEnum, instant};
use aftersales_protos::events::v1::{self as ev, EventEnvelope, event_envelope::Payload};
use aftersales_runtime::command::{Effects, PendingEffects};
use sea_orm::DatabaseTransaction;

use crate::{
    domain::{Actor, DomainError, Level, Severity, Tier},
    error::TicketsError,
    usecases::{IncidentUpdate, TicketsCore, TicketsDeadline},
};

/// The streams tickets reads, and its group on each.
pub const STREAMS: [&str; 2] = ["dispatch", "care"];
pub const GROUP: &str = "tickets";

/// The kind care gives a regional emergency in its incident events.
const REGIONAL_EMERGENCY: &str = "regional_emergency";

/// An incident id tickets can keep and look for: letters, digits and `-` only.
fn plain_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

pub struct OtherServices {
    core: Arc<TicketsCore>,
    /// What applied events left for after their commit, by event id.
    pending: PendingEffects<TicketsDeadline>,
}

impl OtherServices {
    /// One consumer per stream, sharing the handler.
    pub fn consumers(core: Arc<TicketsCore>, bus: EventBus) -> Vec<Consumer<Self>> {
        let db = core.db().clone();
        let handler = Arc::new(Self {
            core,
            pending: PendingEffects::default(),
        });
        Consumer::per_stream(&db, &bus, &STREAMS, GROUP, handler)
    }

    /// Escalates the job's ticket; returns what the escalation leaves for after the
    /// commit, `None` when the ticket needs nothing.
    async fn job_unassigned(
        &self,
        txn: &DatabaseTransaction,
        unassigned: &ev::JobUnassigned,
    ) -> Result<Option<Effects<TicketsDeadline>>, String> {
        let reason = format!(
            "repair job {} could not be placed: {}",
            unassigned.job_id, unassigned.reason
        );
        let actor = Actor::system("tickets");
        let mut cmd = self.core.pipeline().within(txn);
        match self
            .core
            .escalate_in(
                &mut cmd,
                &unassigned.ticket_id,
                Some(Level::Supervisor),
                &reason,
                &actor,
            )
            .await
        {
            Ok(_) => {
                tracing::info!(ticket_id = %unassigned.ticket_id, job_id = %unassigned.job_id, "ticket escalated: repair job unassigned");
                Ok(Some(cmd.into_effects()))
            }
            // Tickets of other systems, and tickets already escalated, need nothing (both
            // are found out before anything is written).
            Err(TicketsError::NotFound { .. })
            | Err(TicketsError::Domain(DomainError::CannotEscalate { .. })) => Ok(None),
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
            Some(Payload::JobUnassigned(unassigned)) => {
                if let Some(effects) = self.job_unassigned(txn, unassigned).await? {
                    self.pending.keep(&envelope.id, effects);
                }
                Ok(())
            }
            Some(Payload::CustomerTierChanged(changed)) => {
                let Some(tier) = Tier::from_proto(changed.to) else {
                    return Ok(());
                };
                let at = changed
                    .changed_at
                    .as_ref()
                    .and_then(instant)
                    .unwrap_or_else(|| self.core.now());
                self.core
                    .record_tier(txn, &changed.customer_id, tier, at)
                    .await
                    .map_err(|e| e.to_string())
            }
            Some(Payload::IncidentDeclared(declared))
                if declared.kind == REGIONAL_EMERGENCY && !declared.region_code.is_empty() =>
            {
                if !plain_id(&declared.incident_id) {
                    tracing::warn!("regional emergency with an unusable incident id ignored");
                    return Ok(());
                }
                let at = declared
                    .declared_at
                    .as_ref()
                    .and_then(instant)
                    .unwrap_or_else(|| self.core.now());
                let mut cmd = self.core.pipeline().within(txn);
                let held = self
                    .core
                    .emergency_declared(&mut cmd, &declared.incident_id, &declared.region_code, at)
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!(incident_id = %declared.incident_id, region = %declared.region_code, held, "regional emergency: tickets' clocks held");
                self.pending.keep(&envelope.id, cmd.into_effects());
                Ok(())
            }
            Some(Payload::IncidentClosed(closed)) => {
                if !plain_id(&closed.incident_id) {
                    return Ok(());
                }
                let mut cmd = self.core.pipeline().within(txn);
                let released = self
                    .core
                    .emergency_ended(&mut cmd, &closed.incident_id)
                    .await
                    .map_err(|e| e.to_string())?;
                if released > 0 {
                    tracing::info!(incident_id = %closed.incident_id, released, "regional emergency over: tickets' clocks released");
                }
                self.pending.keep(&envelope.id, cmd.into_effects());
                Ok(())
            }
            Some(Payload::IncidentTicketLinked(linked)) => {
                let mut cmd = self.core.pipeline().within(txn);
                self.core
                    .incident_ticket_linked(&mut cmd, &linked.incident_id, &linked.ticket_id)
                    .await
                    .map_err(|e| e.to_string())
            }
            Some(Payload::IncidentTicketsUpdated(asked)) => {
                let update = IncidentUpdate {
                    escalate_to: Level::from_proto(asked.escalate_to),
                    severity: Severity::from_proto(asked.severity),
                };
                let mut cmd = self.core.pipeline().within(txn);
                let changed = self
                    .core
                    .update_incident_tickets(&mut cmd, &asked.incident_id, update)
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!(incident_id = %asked.incident_id, changed, "incident: linked tickets updated together");
                self.pending.keep(&envelope.id, cmd.into_effects());
                Ok(())
            }
            Some(Payload::CustomerAnonymised(anonymised)) => {
                let tickets = self
                    .core
                    .anonymise_customer(txn, &anonymised.customer_id)
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!(customer_id = %anonymised.customer_id, tickets, "customer anonymised: ticket text erased");
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The escalation's events are in the outbox and its clocks in the database: wake the
    /// relay and schedule them now rather than at the relay's next poll and the worker's
    /// next rebuild.
    fn committed(&self, envelope: &EventEnvelope) {
        if let Some(effects) = self.pending.take(&envelope.id) {
            self.core.pipeline().spawn_after_commit(effects);
        }
    }
}
