//! The consumer of returns' `RepairJobRequested`: a return resolved as repair gets its
//! repair job, created and dispatched as `CreateJob` would (see `usecases::repairs`). It
//! reads the `returns` stream in the consumer group `dispatch` through the suite's shared
//! consumer, which records the event processed in the transaction the job is created in,
//! so a redelivery is only acknowledged; the job takes the id returns chose and sent, so
//! even a replayed event finds the job there and creates none. What the creation leaves for after
//! the commit (offer deadlines, waking the relay) is kept by event id and run in the
//! `committed` hook. Other events on the stream change nothing.

use std::{sync::Arc, time::Duration};

use aftersales_eventbus::{
    EventBus,
    consumer::{Consumer, ConsumerSettings, EventEnvelopeHandler},
};
use aftersales_platform::{CancellationToken, codes::instant};
use aftersales_protos::{
    events::v1::{self as ev, EventEnvelope, event_envelope::Payload},
    returns::v1::ReturnReason,
};
use aftersales_runtime::command::PendingEffects;
use sea_orm::DatabaseTransaction;
use tokio::task::JoinHandle;

use crate::usecases::{DispatchCore, DispatchDeadline, ReturnRepair};

/// The stream returns publishes on, and dispatch's group on it.
pub const STREAM: &str = "returns";
pub const GROUP: &str = "dispatch";

/// How long a delivery may stay unacknowledged before another read takes it over.
const STALE_AFTER: Duration = Duration::from_secs(5);

pub struct Repairs {
    core: Arc<DispatchCore>,
    /// What applied events left for after their commit, by event id.
    pending: PendingEffects<DispatchDeadline>,
}

impl Repairs {
    pub fn new(core: Arc<DispatchCore>) -> Arc<Self> {
        Arc::new(Self {
            core,
            pending: PendingEffects::default(),
        })
    }
}

/// The job returns asks for, from the event: ids and codes; the fault is said in codes.
fn repair_of(envelope: &EventEnvelope, e: &ev::RepairJobRequested) -> ReturnRepair {
    let product_line = if e.product_line.is_empty() {
        e.lines
            .first()
            .map(|l| l.product_line.clone())
            .unwrap_or_default()
    } else {
        e.product_line.clone()
    };
    let reason = ReturnReason::try_from(e.reason)
        .map(|r| {
            r.as_str_name()
                .trim_start_matches("RETURN_REASON_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| "unspecified".into());
    let mut fault = format!(
        "repair of returned goods (return {}): {reason}",
        e.return_id
    );
    if !e.defective_skus.is_empty() {
        fault.push_str(&format!("; defective: {}", e.defective_skus.join(", ")));
    }
    ReturnRepair {
        return_id: e.return_id.clone(),
        ticket_id: e.ticket_id.clone(),
        customer_id: e.customer_id.clone(),
        region_code: e.region_code.clone(),
        product_line,
        fault_description: fault,
        warranty: e.warranty,
        job_id: (!e.job_id.is_empty()).then(|| e.job_id.clone()),
        requested_at: envelope
            .occurred_at
            .as_ref()
            .and_then(instant)
            .unwrap_or_default(),
    }
}

impl EventEnvelopeHandler for Repairs {
    async fn handle_event(
        &self,
        txn: &DatabaseTransaction,
        envelope: &EventEnvelope,
    ) -> Result<(), String> {
        let Some(Payload::RepairJobRequested(requested)) = &envelope.payload else {
            return Ok(());
        };
        if requested.return_id.is_empty() {
            return Ok(());
        }
        let repair = repair_of(envelope, requested);
        let mut cmd = self.core.pipeline().within(txn);
        let created = self
            .core
            .create_job_for_return(&mut cmd, &repair)
            .await
            .map_err(|e| e.to_string())?;
        match created {
            Some(job_id) => {
                tracing::info!(return_id = %repair.return_id, job_id, "repair job created for a return");
            }
            None => tracing::debug!(return_id = %repair.return_id, "the return has its repair job"),
        }
        self.pending.keep(&envelope.id, cmd.into_effects());
        Ok(())
    }

    /// The consumer's transaction committed: the offer deadlines go on the queue and the
    /// relay wakes.
    fn committed(&self, envelope: &EventEnvelope) {
        if let Some(effects) = self.pending.take(&envelope.id) {
            self.core.pipeline().spawn_after_commit(effects);
        }
    }
}

/// Starts the consumer of returns' stream, until `stop`.
pub fn spawn(
    core: &Arc<DispatchCore>,
    bus: &EventBus,
    block: Duration,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    let mut settings = ConsumerSettings::new(STREAM, GROUP);
    settings.block = block;
    settings.stale_after = STALE_AFTER;
    let consumer = Consumer::new(
        core.db().clone(),
        bus.clone(),
        settings,
        Repairs::new(core.clone()),
    );
    tokio::spawn(consumer.run(stop.clone()))
}
