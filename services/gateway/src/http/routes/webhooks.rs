//! The routes of a partner's webhook endpoints: glue from JSON to the core's webhook
//! operations and back, each annotated with its OpenAPI operation. The events the
//! endpoints receive are described in the document's `webhooks` section
//! (`openapi::events`).

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    routing::{get, post},
};
use http::HeaderMap;

use aftersales_platform::{codes::ProtoEnum, status::Violations};
use aftersales_protos::partner::v1 as partner;

use super::{Answer, finish, idempotency_key, page_size};
use crate::http::{
    Admitted, DeliveryPath, EndpointId, HttpState, JsonBody,
    error::ApiError,
    model::{
        CreateEndpointBody, Delivery, DeliveryListParams, DeliveryPage, DeliveryState, Endpoint,
        EndpointPage, EndpointWithSecret, EventTypeList, PageParams, RotateSecretBody,
        UpdateEndpointBody,
    },
    openapi::Failures,
};

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route(
            "/v1/webhook-endpoints",
            post(create_endpoint).get(list_endpoints),
        )
        .route(
            "/v1/webhook-endpoints/{endpoint_id}",
            get(get_endpoint)
                .patch(update_endpoint)
                .delete(delete_endpoint),
        )
        .route(
            "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
            post(rotate_secret),
        )
        .route(
            "/v1/webhook-endpoints/{endpoint_id}/deliveries",
            get(list_deliveries),
        )
        .route(
            "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/replay",
            post(replay_delivery),
        )
        .route("/v1/webhook-event-types", get(list_event_types))
}

/// Registers an endpoint for the event types it lists. The answer carries its signing
/// secret, the only time it is shown.
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks",
    params(("Idempotency-Key" = Option<String>, Header, max_length = 64, description = "A retry with the same key returns the first answer")),
    request_body = CreateEndpointBody,
    responses((status = 200, body = EndpointWithSecret), Failures))]
pub(super) async fn create_endpoint(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateEndpointBody>,
) -> Answer<EndpointWithSecret> {
    let key = idempotency_key(&headers)?;
    let created = state
        .gateway
        .create_webhook_endpoint(&partner, body.into_request(key))
        .await?;
    Ok(Json(created.into()))
}

/// Your webhook endpoints.
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks",
    params(PageParams),
    responses((status = 200, body = EndpointPage), Failures))]
pub(super) async fn list_endpoints(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    query: Result<Query<PageParams>, QueryRejection>,
) -> Answer<EndpointPage> {
    let Query(params) = query.map_err(|r| ApiError::invalid("query", r.body_text()))?;
    let mut v = Violations::new();
    let page_size = page_size(&mut v, params.page_size.as_deref());
    finish(v)?;
    let page = state
        .gateway
        .list_webhook_endpoints(
            &partner,
            partner::ListWebhookEndpointsRequest {
                page_size,
                page_token: params.page_token.unwrap_or_default(),
            },
        )
        .await?;
    Ok(Json(page.into()))
}

/// One of your endpoints. Another partner's endpoint answers 404.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = String, Path, min_length = 1, max_length = 128)),
    responses((status = 200, body = Endpoint), Failures))]
pub(super) async fn get_endpoint(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    EndpointId(endpoint_id): EndpointId,
) -> Answer<Endpoint> {
    let endpoint = state
        .gateway
        .get_webhook_endpoint(&partner, partner::GetWebhookEndpointRequest { endpoint_id })
        .await?;
    Ok(Json(endpoint.into()))
}

/// Changes the URL, event types, description or state (pause, enable) of an endpoint.
#[utoipa::path(patch, path = "/v1/webhook-endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = String, Path, min_length = 1, max_length = 128),
        ("Idempotency-Key" = Option<String>, Header, max_length = 64, description = "A retry with the same key returns the first answer")),
    request_body = UpdateEndpointBody,
    responses((status = 200, body = Endpoint), Failures))]
pub(super) async fn update_endpoint(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    EndpointId(endpoint_id): EndpointId,
    headers: HeaderMap,
    JsonBody(body): JsonBody<UpdateEndpointBody>,
) -> Answer<Endpoint> {
    let key = idempotency_key(&headers)?;
    let endpoint = state
        .gateway
        .update_webhook_endpoint(&partner, body.into_request(endpoint_id, key))
        .await?;
    Ok(Json(endpoint.into()))
}

/// Deletes an endpoint: nothing more is delivered to it.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = String, Path, min_length = 1, max_length = 128),
        ("Idempotency-Key" = Option<String>, Header, max_length = 64, description = "A retry with the same key returns the first answer")),
    responses((status = 200, body = Endpoint), Failures))]
pub(super) async fn delete_endpoint(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    EndpointId(endpoint_id): EndpointId,
    headers: HeaderMap,
) -> Answer<Endpoint> {
    let idempotency_key = idempotency_key(&headers)?;
    let endpoint = state
        .gateway
        .delete_webhook_endpoint(
            &partner,
            partner::DeleteWebhookEndpointRequest {
                endpoint_id,
                idempotency_key,
            },
        )
        .await?;
    Ok(Json(endpoint.into()))
}

/// A new signing secret, shown once. The previous one stays valid for the overlap: each
/// event is signed with both until then (`webhook-signature` lists both).
#[utoipa::path(post, path = "/v1/webhook-endpoints/{endpoint_id}/rotate-secret", tag = "webhooks",
    params(("endpoint_id" = String, Path, min_length = 1, max_length = 128),
        ("Idempotency-Key" = Option<String>, Header, max_length = 64, description = "A retry with the same key returns the first answer")),
    request_body(content = Option<RotateSecretBody>),
    responses((status = 200, body = EndpointWithSecret), Failures))]
pub(super) async fn rotate_secret(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    EndpointId(endpoint_id): EndpointId,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RotateSecretBody>,
) -> Answer<EndpointWithSecret> {
    let key = idempotency_key(&headers)?;
    let rotated = state
        .gateway
        .rotate_webhook_secret(&partner, body.into_request(endpoint_id, key))
        .await?;
    Ok(Json(rotated.into()))
}

/// The delivery log of one of your endpoints, newest first, with every attempt.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{endpoint_id}/deliveries", tag = "webhooks",
    params(("endpoint_id" = String, Path, min_length = 1, max_length = 128), DeliveryListParams),
    responses((status = 200, body = DeliveryPage), Failures))]
pub(super) async fn list_deliveries(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    EndpointId(endpoint_id): EndpointId,
    query: Result<Query<DeliveryListParams>, QueryRejection>,
) -> Answer<DeliveryPage> {
    let Query(params) = query.map_err(|r| ApiError::invalid("query", r.body_text()))?;
    let mut v = Violations::new();
    let page_size = page_size(&mut v, params.page_size.as_deref());
    let delivery_state = delivery_state(&mut v, params.state.as_deref());
    finish(v)?;
    let page = state
        .gateway
        .list_webhook_deliveries(
            &partner,
            partner::ListWebhookDeliveriesRequest {
                endpoint_id,
                state: delivery_state,
                page_size,
                page_token: params.page_token.unwrap_or_default(),
            },
        )
        .await?;
    Ok(Json(page.into()))
}

/// Sends a delivery again now, with the same `webhook-id` and body, whatever its state.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/replay",
    tag = "webhooks",
    params(("endpoint_id" = String, Path, min_length = 1, max_length = 128),
        ("delivery_id" = String, Path, min_length = 1, max_length = 128),
        ("Idempotency-Key" = Option<String>, Header, max_length = 64, description = "A retry with the same key returns the first answer")),
    responses((status = 200, body = Delivery), Failures))]
pub(super) async fn replay_delivery(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    path: DeliveryPath,
    headers: HeaderMap,
) -> Answer<Delivery> {
    let idempotency_key = idempotency_key(&headers)?;
    let delivery = state
        .gateway
        .replay_webhook_delivery(
            &partner,
            partner::ReplayWebhookDeliveryRequest {
                endpoint_id: path.endpoint_id,
                delivery_id: path.delivery_id,
                idempotency_key,
            },
        )
        .await?;
    Ok(Json(delivery.into()))
}

/// The event types your endpoints may subscribe to.
#[utoipa::path(get, path = "/v1/webhook-event-types", tag = "webhooks",
    responses((status = 200, body = EventTypeList), Failures))]
pub(super) async fn list_event_types(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
) -> Answer<EventTypeList> {
    let types = state.gateway.list_webhook_event_types(&partner).await?;
    Ok(Json(types.into()))
}

/// The `state` filter: omitted or empty means every state (UNSPECIFIED).
fn delivery_state(v: &mut Violations, raw: Option<&str>) -> i32 {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => 0,
        Some(raw) => v
            .check("state", raw.parse::<DeliveryState>())
            .map_or(0, DeliveryState::to_proto),
    }
}

#[cfg(test)]
mod tests {
    use aftersales_protos::webhooks::v1 as webhooks;

    use super::*;

    #[test]
    fn the_delivery_state_filter_reads_names_and_refuses_others() {
        let mut v = Violations::new();
        assert_eq!(delivery_state(&mut v, None), 0);
        assert_eq!(delivery_state(&mut v, Some(" ")), 0);
        assert_eq!(
            delivery_state(&mut v, Some("failed")),
            webhooks::DeliveryState::Failed as i32
        );
        assert!(v.is_empty());
        assert_eq!(delivery_state(&mut v, Some("lost")), 0);
        assert_eq!(v.into_vec()[0].field, "state");
    }
}
