//! A partner's webhook endpoints, their deliveries and the event catalogue as JSON: the
//! bodies of the commands (create, change, rotate the secret), each turned into the gRPC
//! request the core takes, and the answers converted from the webhooks service's messages.

use aftersales_platform::codes::ProtoEnum;
use aftersales_protos::{partner::v1 as partner, webhooks::v1 as webhooks};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{DeliveryState, EndpointState, EndpointStateChange, instant};

/// Body of `POST /v1/webhook-endpoints`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreateEndpointBody {
    /// Where events are posted.
    #[schema(example = "https://hooks.example.com/aftersales", max_length = 2048)]
    pub url: String,
    /// Event types it is pushed (`GET /v1/webhook-event-types`).
    #[schema(example = json!(["dispatch.JobOffered"]), max_items = 64)]
    pub event_types: Vec<String>,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
}

impl CreateEndpointBody {
    pub fn into_request(self, idempotency_key: String) -> partner::CreateWebhookEndpointRequest {
        partner::CreateWebhookEndpointRequest {
            url: self.url,
            event_types: self.event_types,
            description: self.description,
            idempotency_key,
        }
    }
}

/// Body of `PATCH /v1/webhook-endpoints/{endpoint_id}`: only the fields sent change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct UpdateEndpointBody {
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    /// Replaces the endpoint's event types.
    #[serde(default)]
    #[schema(max_items = 64)]
    pub event_types: Option<Vec<String>>,
    #[serde(default)]
    pub state: Option<EndpointStateChange>,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

impl UpdateEndpointBody {
    pub fn into_request(
        self,
        endpoint_id: String,
        idempotency_key: String,
    ) -> partner::UpdateWebhookEndpointRequest {
        partner::UpdateWebhookEndpointRequest {
            endpoint_id,
            url: self.url,
            event_types: self
                .event_types
                .map(|event_types| webhooks::EventTypes { event_types }),
            state: self.state.map_or(0, EndpointStateChange::to_proto),
            description: self.description,
            idempotency_key,
        }
    }
}

/// Body of `POST /v1/webhook-endpoints/{endpoint_id}/rotate-secret`; may be omitted.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct RotateSecretBody {
    /// How long the previous secret is still signed with, in seconds: 0 or omitted means
    /// 24 hours; at most 7 days.
    #[serde(default)]
    #[schema(maximum = 604800)]
    pub overlap_seconds: u32,
}

impl RotateSecretBody {
    pub fn into_request(
        self,
        endpoint_id: String,
        idempotency_key: String,
    ) -> partner::RotateWebhookSecretRequest {
        partner::RotateWebhookSecretRequest {
            endpoint_id,
            overlap_seconds: self.overlap_seconds,
            idempotency_key,
        }
    }
}

/// One of your webhook endpoints.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<EndpointState>,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    /// Since when every attempt has failed; absent while deliveries succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// Why the suite disabled it.
    pub disabled_reason: String,
    /// Until when the previous secret is still signed with; absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

impl From<webhooks::Endpoint> for Endpoint {
    fn from(e: webhooks::Endpoint) -> Self {
        Self {
            id: e.id,
            url: e.url,
            event_types: e.event_types,
            state: EndpointState::from_proto(e.state),
            description: e.description,
            created_at: instant(e.created_at),
            updated_at: instant(e.updated_at),
            failing_since: instant(e.failing_since),
            disabled_reason: e.disabled_reason,
            previous_secret_expires_at: instant(e.previous_secret_expires_at),
        }
    }
}

/// An endpoint with its signing secret: shown only when it is created or rotated.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EndpointWithSecret {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
    /// `whsec_` + base64 of 32 random bytes; the HMAC-SHA256 key is the decoded bytes.
    #[schema(pattern = "^whsec_")]
    pub secret: String,
}

impl From<webhooks::EndpointWithSecret> for EndpointWithSecret {
    fn from(e: webhooks::EndpointWithSecret) -> Self {
        Self {
            endpoint: e.endpoint.map(Endpoint::from),
            secret: e.secret,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EndpointPage {
    pub endpoints: Vec<Endpoint>,
    /// Pass as `page_token` for the next page; empty on the last.
    pub next_page_token: String,
}

impl From<webhooks::ListEndpointsResponse> for EndpointPage {
    fn from(r: webhooks::ListEndpointsResponse) -> Self {
        Self {
            endpoints: r.endpoints.into_iter().map(Endpoint::from).collect(),
            next_page_token: r.next_page_token,
        }
    }
}

/// One attempt to deliver an event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attempt {
    pub number: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// Your endpoint's HTTP status; 0 when it did not answer.
    pub status_code: u32,
    pub latency_ms: u32,
    /// Why it failed without an answer (time-out, refused, …); empty otherwise.
    pub error: String,
}

/// One event sent to one endpoint, with every attempt.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    /// The `webhook-id` header: the event's id.
    pub id: String,
    pub endpoint_id: String,
    pub event_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<DeliveryState>,
    pub attempts: Vec<Attempt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Absent unless pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<webhooks::Delivery> for Delivery {
    fn from(d: webhooks::Delivery) -> Self {
        Self {
            id: d.id,
            endpoint_id: d.endpoint_id,
            event_type: d.event_type,
            state: DeliveryState::from_proto(d.state),
            attempts: d
                .attempts
                .into_iter()
                .map(|a| Attempt {
                    number: a.number,
                    at: instant(a.at),
                    status_code: a.status_code,
                    latency_ms: a.latency_ms,
                    error: a.error,
                })
                .collect(),
            created_at: instant(d.created_at),
            next_attempt_at: instant(d.next_attempt_at),
            delivered_at: instant(d.delivered_at),
        }
    }
}

/// The delivery log of one endpoint, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    /// Pass as `page_token` for the next page; empty on the last.
    pub next_page_token: String,
}

impl From<webhooks::ListDeliveriesResponse> for DeliveryPage {
    fn from(r: webhooks::ListDeliveriesResponse) -> Self {
        Self {
            deliveries: r.deliveries.into_iter().map(Delivery::from).collect(),
            next_page_token: r.next_page_token,
        }
    }
}

/// The event types your endpoints may subscribe to; each is described under `webhooks`
/// in this document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventTypeList {
    pub event_types: Vec<String>,
}

impl From<webhooks::ListEventTypesResponse> for EventTypeList {
    fn from(r: webhooks::ListEventTypesResponse) -> Self {
        Self {
            event_types: r.event_types,
        }
    }
}

/// Paging and a state filter of the delivery log.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListParams {
    /// At most this many deliveries; 0 or omitted means the default.
    #[param(value_type = Option<u32>)]
    pub page_size: Option<String>,
    /// From the previous page's `next_page_token`.
    #[param(max_length = 1024)]
    pub page_token: Option<String>,
    /// Only deliveries in this state; omitted means all.
    #[param(value_type = Option<DeliveryState>)]
    pub state: Option<String>,
}

#[cfg(test)]
mod tests {
    use crate::http::parse_json;

    use super::*;

    #[test]
    fn an_update_changes_only_what_is_sent() {
        let body: UpdateEndpointBody = parse_json(br#"{"state":"paused"}"#).unwrap();
        let request = body.into_request("ep-1".into(), "k".into());
        assert_eq!(request.endpoint_id, "ep-1");
        assert_eq!(request.state, webhooks::EndpointState::Paused as i32);
        assert!(request.url.is_none());
        assert!(request.event_types.is_none());
        assert!(request.description.is_none());

        let body: UpdateEndpointBody =
            parse_json(br#"{"event_types":[],"description":""}"#).unwrap();
        let request = body.into_request("ep-1".into(), String::new());
        assert_eq!(request.state, 0);
        // An empty list is a change (to none), unlike an absent one.
        assert_eq!(request.event_types.unwrap().event_types.len(), 0);
        assert_eq!(request.description.as_deref(), Some(""));
    }

    #[test]
    fn a_partner_cannot_set_disabled() {
        assert!(parse_json::<UpdateEndpointBody>(br#"{"state":"disabled"}"#).is_err());
    }

    #[test]
    fn a_create_needs_url_and_event_types() {
        assert!(parse_json::<CreateEndpointBody>(br#"{"event_types":[]}"#).is_err());
        assert!(parse_json::<CreateEndpointBody>(br#"{"url":"https://a.example"}"#).is_err());
        let body: CreateEndpointBody =
            parse_json(br#"{"url":"https://a.example","event_types":["dispatch.JobOffered"]}"#)
                .unwrap();
        let request = body.into_request("k".into());
        assert_eq!(request.event_types, ["dispatch.JobOffered"]);
        assert_eq!(request.idempotency_key, "k");
    }

    #[test]
    fn answers_convert_with_unknown_states_left_out() {
        let endpoint = Endpoint::from(webhooks::Endpoint {
            id: "ep-1".into(),
            partner_id: "p-a".into(),
            state: 99,
            created_at: Some(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 0,
            }),
            ..Default::default()
        });
        assert!(endpoint.state.is_none());
        let json = serde_json::to_value(&endpoint).unwrap();
        assert!(json.get("partner_id").is_none());
        assert_eq!(json["created_at"], "2027-01-15T08:00:00Z");
        let delivery = Delivery::from(webhooks::Delivery {
            id: "evt-1".into(),
            state: webhooks::DeliveryState::Delivered as i32,
            attempts: vec![webhooks::Attempt {
                number: 1,
                status_code: 204,
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(delivery.state, Some(DeliveryState::Delivered));
        assert_eq!(delivery.attempts[0].status_code, 204);
    }
}
