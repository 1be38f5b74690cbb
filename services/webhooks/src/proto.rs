//! Domain values as the contract's messages (`aftersales.webhooks.v1`).

use aftersales_platform::codes::timestamp;
use aftersales_protos::webhooks::v1 as pb;

use crate::domain::{Attempt, Delivery, DeliveryState, Endpoint, EndpointState};

pub fn endpoint_state(state: EndpointState) -> pb::EndpointState {
    match state {
        EndpointState::Enabled => pb::EndpointState::Enabled,
        EndpointState::Paused => pb::EndpointState::Paused,
        // A deleted endpoint is never shown; its last answer says it is gone for good.
        EndpointState::Disabled | EndpointState::Deleted => pb::EndpointState::Disabled,
    }
}

/// An endpoint without its secrets.
pub fn endpoint(e: &Endpoint) -> pb::Endpoint {
    pb::Endpoint {
        id: e.id.clone(),
        partner_id: e.owner.partner_id().to_owned(),
        url: e.url.clone(),
        event_types: e.event_types.clone(),
        state: endpoint_state(e.state).into(),
        description: e.description.clone(),
        created_at: Some(timestamp(e.created_at)),
        updated_at: Some(timestamp(e.updated_at)),
        failing_since: e.failing_since.map(timestamp),
        disabled_reason: e.disabled_reason.clone(),
        previous_secret_expires_at: e
            .previous_secret
            .as_ref()
            .map(|(_, until)| timestamp(*until)),
    }
}

/// An endpoint with its current secret: the answer of create and rotate only.
pub fn endpoint_with_secret(e: &Endpoint) -> pb::EndpointWithSecret {
    pb::EndpointWithSecret {
        endpoint: Some(endpoint(e)),
        secret: e.secret.clone(),
    }
}

pub fn delivery_state(state: DeliveryState) -> pb::DeliveryState {
    match state {
        DeliveryState::Pending => pb::DeliveryState::Pending,
        DeliveryState::Delivered => pb::DeliveryState::Delivered,
        DeliveryState::Failed => pb::DeliveryState::Failed,
    }
}

fn attempt(a: &Attempt) -> pb::Attempt {
    pb::Attempt {
        number: a.number,
        at: Some(timestamp(a.at)),
        status_code: u32::from(a.status_code),
        latency_ms: a.latency_ms,
        error: a.error.clone(),
    }
}

pub fn delivery(d: &Delivery) -> pb::Delivery {
    pb::Delivery {
        id: d.id.clone(),
        endpoint_id: d.endpoint_id.clone(),
        event_type: d.event_type.clone(),
        state: delivery_state(d.state).into(),
        attempts: d.attempts.iter().map(attempt).collect(),
        created_at: Some(timestamp(d.created_at)),
        next_attempt_at: d.next_attempt_at.map(timestamp),
        delivered_at: d.delivered_at.map(timestamp),
    }
}
