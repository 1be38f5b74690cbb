//! The suite's events as webhooks carry them: the body sent is the envelope
//! `{"type", "timestamp", "data"}` with `data` in the proto3 JSON mapping (lowerCamelCase
//! names, enums by name, 64-bit integers as strings, every field present), made from the
//! contract's own descriptors so every event type of the catalogue has its form without
//! code per type. Also the one event this service publishes, `EndpointDisabled`.

use std::sync::OnceLock;

use aftersales_eventbus::{envelope::new_event, outbox::NewEvent};
use aftersales_platform::codes::timestamp;
use aftersales_protos::events::v1::{self as ev, EventEnvelope, event_envelope::Payload};
use chrono::{DateTime, SecondsFormat, Utc};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions, Value};

use crate::domain::Endpoint;

/// The stream this service publishes on.
pub const STREAM: &str = "webhooks";
/// The streams whose events are delivered (this service's own included).
pub const STREAMS: &[&str] = &["tickets", "returns", "dispatch", "care", STREAM];

const ENVELOPE: &str = "aftersales.events.v1.EventEnvelope";

/// An event ready to be delivered: its type, the partner it concerns (if it names one)
/// and the body every endpoint is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: String,
    pub event_type: String,
    pub partner_id: Option<String>,
    pub body: String,
}

fn envelope_descriptor() -> Result<&'static MessageDescriptor, String> {
    static DESCRIPTOR: OnceLock<Result<MessageDescriptor, String>> = OnceLock::new();
    DESCRIPTOR
        .get_or_init(|| {
            let pool = DescriptorPool::decode(aftersales_protos::FILE_DESCRIPTOR_SET)
                .map_err(|e| format!("the contract's descriptors: {e}"))?;
            pool.get_message_by_name(ENVELOPE)
                .ok_or_else(|| format!("{ENVELOPE} is not in the contract"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The outgoing form of `envelope`; an error for an envelope without payload or one this
/// build's contract cannot read (a newer producer's event type), which is then not sent.
pub fn outgoing(envelope: &EventEnvelope) -> Result<Outgoing, String> {
    let descriptor = envelope_descriptor()?;
    let dynamic = DynamicMessage::decode(descriptor.clone(), envelope.encode_to_vec().as_slice())
        .map_err(|e| format!("decoding the envelope: {e}"))?;
    let payload = descriptor
        .oneofs()
        .find(|o| o.name() == "payload")
        .and_then(|oneof| oneof.fields().find(|f| dynamic.has_field(f)))
        .ok_or("the envelope has no payload")?;
    let Value::Message(data) = dynamic.get_field(&payload).into_owned() else {
        return Err("the payload is no message".into());
    };
    let partner_id = match data.get_field_by_name("partner_id").as_deref() {
        Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
        _ => None,
    };
    let options = SerializeOptions::new().skip_default_fields(false);
    let data = data
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| format!("encoding the payload: {e}"))?;
    let at = envelope
        .occurred_at
        .as_ref()
        .and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .unwrap_or_default();
    let body = serde_json::json!({
        "type": envelope.r#type,
        "timestamp": at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": data,
    });
    Ok(Outgoing {
        id: envelope.id.clone(),
        event_type: envelope.r#type.clone(),
        partner_id,
        body: body.to_string(),
    })
}

/// `webhooks.EndpointDisabled` for an endpoint the suite just disabled.
pub fn endpoint_disabled(endpoint: &Endpoint, reason: &str, now: DateTime<Utc>) -> NewEvent {
    new_event(
        STREAM,
        "webhooks",
        &endpoint.id,
        Payload::EndpointDisabled(ev::EndpointDisabled {
            endpoint_id: endpoint.id.clone(),
            partner_id: endpoint.owner.partner_id().to_owned(),
            reason: reason.to_owned(),
            failing_since: endpoint.failing_since.map(timestamp),
        }),
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_becomes_the_documented_envelope_with_its_partner() {
        let envelope = EventEnvelope {
            id: "0193a3c0-0000-7000-8000-000000000001".into(),
            r#type: "dispatch.JobOffered".into(),
            subject_id: "job-1".into(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: 1_764_669_600,
                nanos: 123_000_000,
            }),
            source: "dispatch".into(),
            payload: Some(Payload::JobOffered(ev::JobOffered {
                job_id: "job-1".into(),
                offer_id: "offer-1".into(),
                partner_id: "partner-1".into(),
                expires_at: None,
                attempt: 0,
            })),
        };
        let out = outgoing(&envelope).unwrap();
        assert_eq!(out.partner_id.as_deref(), Some("partner-1"));
        let body: serde_json::Value = serde_json::from_str(&out.body).unwrap();
        assert_eq!(body["type"], "dispatch.JobOffered");
        assert_eq!(body["timestamp"], "2025-12-02T10:00:00.123Z");
        assert_eq!(body["data"]["jobId"], "job-1");
        assert_eq!(body["data"]["partnerId"], "partner-1");
        // Defaults are sent too, so a receiver never has to guess.
        assert_eq!(body["data"]["attempt"], 0);
    }

    #[test]
    fn an_envelope_without_payload_is_not_sent() {
        assert!(outgoing(&EventEnvelope::default()).is_err());
    }
}
