//! The consumer of care's `CustomerAnonymised`: that customer's jobs lose their contact.
//! It reads the `care` stream in the consumer group `dispatch` through the suite's shared
//! consumer, which writes the processed-event row in the same transaction as the erasure,
//! so a redelivered event is only acknowledged; the erasure itself changes nothing the
//! second time either. Other events on the stream change nothing.

use std::{sync::Arc, time::Duration};

use aftersales_eventbus::{
    EventBus,
    consumer::{Consumer, ConsumerSettings, EventEnvelopeHandler},
};
use aftersales_platform::CancellationToken;
use aftersales_protos::events::v1::{EventEnvelope, event_envelope::Payload};
use sea_orm::DatabaseTransaction;
use tokio::task::JoinHandle;

use crate::usecases::DispatchCore;

/// The stream care publishes on, and dispatch's group on it.
pub const STREAM: &str = "care";
pub const GROUP: &str = "dispatch";

/// How long a delivery may stay unacknowledged before another read takes it over.
const STALE_AFTER: Duration = Duration::from_secs(5);

pub struct Anonymisation {
    core: Arc<DispatchCore>,
}

impl Anonymisation {
    pub fn new(core: Arc<DispatchCore>) -> Arc<Self> {
        Arc::new(Self { core })
    }
}

impl EventEnvelopeHandler for Anonymisation {
    async fn handle_event(
        &self,
        txn: &DatabaseTransaction,
        envelope: &EventEnvelope,
    ) -> Result<(), String> {
        let Some(Payload::CustomerAnonymised(anonymised)) = &envelope.payload else {
            return Ok(());
        };
        if anonymised.customer_id.is_empty() {
            return Ok(());
        }
        let erased = self
            .core
            .erase_contacts_of(txn, &anonymised.customer_id)
            .await
            .map_err(|e| e.to_string())?;
        if erased > 0 {
            // The customer id is care's pseudonym, not personal data.
            tracing::info!(
                customer_id = %anonymised.customer_id,
                jobs = erased,
                "erased the contact of an anonymised customer's jobs"
            );
        }
        Ok(())
    }
}

/// Starts the consumer of care's stream, until `stop`.
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
        Anonymisation::new(core.clone()),
    );
    tokio::spawn(consumer.run(stop.clone()))
}
