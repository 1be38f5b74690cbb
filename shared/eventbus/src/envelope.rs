//! Wrapping a payload of the suite's event contract (`aftersales.events.v1`) into an
//! outbox row: one envelope format for every service.

use aftersales_protos::events::v1::{EventEnvelope, event_envelope::Payload, type_name};
use chrono::{DateTime, Utc};
use prost::Message;

use crate::outbox::NewEvent;

/// An outbox row for `payload` about `subject_id`, published on `stream` by `source`.
pub fn new_event(
    stream: &str,
    source: &str,
    subject_id: &str,
    payload: Payload,
    now: DateTime<Utc>,
) -> NewEvent {
    let event_type = type_name(&payload).to_owned();
    let envelope = EventEnvelope {
        id: uuid::Uuid::now_v7().to_string(),
        r#type: event_type.clone(),
        subject_id: subject_id.to_owned(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: now.timestamp(),
            nanos: now.timestamp_subsec_nanos() as i32,
        }),
        source: source.to_owned(),
        payload: Some(payload),
    };
    NewEvent {
        event_id: envelope.id.clone(),
        stream: stream.to_owned(),
        event_type,
        subject_id: subject_id.to_owned(),
        payload: envelope.encode_to_vec(),
    }
}

/// Decodes an envelope read from the bus.
pub fn decode(payload: &[u8]) -> Result<EventEnvelope, prost::DecodeError> {
    EventEnvelope::decode(payload)
}
