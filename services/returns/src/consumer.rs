//! Events of other services that change returns: a customer care anonymised has the free
//! text of their returns erased. Each event is applied inside the consumer's transaction,
//! the one that records it processed, so a redelivery is only acknowledged; erasing again
//! would change nothing anyway. The shared consumer decodes each delivery and
//! dead-letters what it cannot decode.

use std::sync::Arc;

use aftersales_eventbus::{
    EventBus,
    consumer::{Consumer, EventEnvelopeHandler},
};
use aftersales_protos::events::v1::{EventEnvelope, event_envelope::Payload};
use sea_orm::DatabaseTransaction;

use crate::usecases::ReturnsCore;

/// The streams returns reads, and its group on each.
pub const STREAMS: [&str; 1] = ["care"];
pub const GROUP: &str = "returns";

pub struct OtherServices {
    core: Arc<ReturnsCore>,
}

impl OtherServices {
    /// One consumer per stream, sharing the handler.
    pub fn consumers(core: Arc<ReturnsCore>, bus: EventBus) -> Vec<Consumer<Self>> {
        let db = core.db().clone();
        Consumer::per_stream(&db, &bus, &STREAMS, GROUP, Arc::new(Self { core }))
    }
}

impl EventEnvelopeHandler for OtherServices {
    async fn handle_event(
        &self,
        txn: &DatabaseTransaction,
        envelope: &EventEnvelope,
    ) -> Result<(), String> {
        match &envelope.payload {
            Some(Payload::CustomerAnonymised(anonymised)) => {
                let returns = self
                    .core
                    .anonymise_customer(txn, &anonymised.customer_id)
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!(customer_id = %anonymised.customer_id, returns, "customer anonymised: return text erased");
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
