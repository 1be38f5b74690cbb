//! A partner's webhook endpoints through the core: create, list, read, change, rotate the
//! secret of and delete its endpoints, read and replay their deliveries, and list the event
//! types it may subscribe to. Each call is checked here and forwarded to the webhooks
//! service with `partner_id` set to the partner of the key, never of the request; answers
//! about another partner's endpoint are refused on the way back too.

use aftersales_platform::status::Violations;
use aftersales_protos::{partner::v1 as partner, webhooks::v1 as webhooks};

use super::{Gateway, finish, page, scoped_idempotency_key};
use crate::{
    auth::Partner,
    error::{GatewayError, Upstream},
};

/// The webhooks service's own bounds, checked here too so that a refusal costs no
/// upstream call (the HTTP schemas state the same numbers); it judges the rest (scheme,
/// address, which event types a partner may take).
const MAX_URL_LEN: usize = 2_048;
const MAX_DESCRIPTION_LEN: usize = 500;
/// Most event types one endpoint may list, and the longest name of one.
const MAX_EVENT_TYPES: usize = 64;
const MAX_EVENT_TYPE_LEN: usize = 100;

impl Gateway {
    pub async fn create_webhook_endpoint(
        &self,
        partner: &Partner,
        request: partner::CreateWebhookEndpointRequest,
    ) -> Result<webhooks::EndpointWithSecret, GatewayError> {
        let mut v = Violations::new();
        v.max_len("url", &request.url, MAX_URL_LEN);
        check_event_types(&mut v, &request.event_types);
        v.max_len("description", &request.description, MAX_DESCRIPTION_LEN);
        let idempotency_key = scoped_idempotency_key(&mut v, partner, &request.idempotency_key);
        finish(v)?;
        let mut client = self.webhooks.clone();
        let created = self
            .forward(
                Upstream::Webhooks,
                client.create_endpoint(webhooks::CreateEndpointRequest {
                    partner_id: partner.id.clone(),
                    url: request.url,
                    event_types: request.event_types,
                    description: request.description,
                    idempotency_key,
                }),
            )
            .await?;
        own_with_secret(partner, created)
    }

    pub async fn list_webhook_endpoints(
        &self,
        partner: &Partner,
        request: partner::ListWebhookEndpointsRequest,
    ) -> Result<webhooks::ListEndpointsResponse, GatewayError> {
        let page = page(request.page_size, request.page_token)?;
        let mut client = self.webhooks.clone();
        let answer = self
            .forward(
                Upstream::Webhooks,
                client.list_endpoints(webhooks::ListEndpointsRequest {
                    partner_id: partner.id.clone(),
                    page_size: page.page_size,
                    page_token: page.page_token,
                }),
            )
            .await?;
        Ok(webhooks::ListEndpointsResponse {
            endpoints: answer
                .endpoints
                .into_iter()
                .filter(|e| e.partner_id == partner.id)
                .collect(),
            next_page_token: answer.next_page_token,
        })
    }

    pub async fn get_webhook_endpoint(
        &self,
        partner: &Partner,
        request: partner::GetWebhookEndpointRequest,
    ) -> Result<webhooks::Endpoint, GatewayError> {
        let mut v = Violations::new();
        v.id("endpoint_id", &request.endpoint_id);
        finish(v)?;
        let mut client = self.webhooks.clone();
        let endpoint = self
            .forward(
                Upstream::Webhooks,
                client.get_endpoint(webhooks::GetEndpointRequest {
                    partner_id: partner.id.clone(),
                    endpoint_id: request.endpoint_id,
                }),
            )
            .await?;
        own(partner, endpoint)
    }

    pub async fn update_webhook_endpoint(
        &self,
        partner: &Partner,
        request: partner::UpdateWebhookEndpointRequest,
    ) -> Result<webhooks::Endpoint, GatewayError> {
        let mut v = Violations::new();
        v.id("endpoint_id", &request.endpoint_id);
        if let Some(url) = &request.url {
            v.max_len("url", url, MAX_URL_LEN);
        }
        if let Some(types) = &request.event_types {
            check_event_types(&mut v, &types.event_types);
        }
        if let Some(description) = &request.description {
            v.max_len("description", description, MAX_DESCRIPTION_LEN);
        }
        let idempotency_key = scoped_idempotency_key(&mut v, partner, &request.idempotency_key);
        finish(v)?;
        let mut client = self.webhooks.clone();
        let endpoint = self
            .forward(
                Upstream::Webhooks,
                client.update_endpoint(webhooks::UpdateEndpointRequest {
                    partner_id: partner.id.clone(),
                    endpoint_id: request.endpoint_id,
                    url: request.url,
                    event_types: request.event_types,
                    state: request.state,
                    description: request.description,
                    idempotency_key,
                }),
            )
            .await?;
        own(partner, endpoint)
    }

    pub async fn rotate_webhook_secret(
        &self,
        partner: &Partner,
        request: partner::RotateWebhookSecretRequest,
    ) -> Result<webhooks::EndpointWithSecret, GatewayError> {
        let mut v = Violations::new();
        v.id("endpoint_id", &request.endpoint_id);
        let idempotency_key = scoped_idempotency_key(&mut v, partner, &request.idempotency_key);
        finish(v)?;
        let mut client = self.webhooks.clone();
        let rotated = self
            .forward(
                Upstream::Webhooks,
                client.rotate_endpoint_secret(webhooks::RotateEndpointSecretRequest {
                    partner_id: partner.id.clone(),
                    endpoint_id: request.endpoint_id,
                    overlap_seconds: request.overlap_seconds,
                    idempotency_key,
                }),
            )
            .await?;
        own_with_secret(partner, rotated)
    }

    pub async fn delete_webhook_endpoint(
        &self,
        partner: &Partner,
        request: partner::DeleteWebhookEndpointRequest,
    ) -> Result<webhooks::Endpoint, GatewayError> {
        let mut v = Violations::new();
        v.id("endpoint_id", &request.endpoint_id);
        let idempotency_key = scoped_idempotency_key(&mut v, partner, &request.idempotency_key);
        finish(v)?;
        let mut client = self.webhooks.clone();
        let deleted = self
            .forward(
                Upstream::Webhooks,
                client.delete_endpoint(webhooks::DeleteEndpointRequest {
                    partner_id: partner.id.clone(),
                    endpoint_id: request.endpoint_id,
                    idempotency_key,
                }),
            )
            .await?;
        own(partner, deleted)
    }

    pub async fn list_webhook_deliveries(
        &self,
        partner: &Partner,
        request: partner::ListWebhookDeliveriesRequest,
    ) -> Result<webhooks::ListDeliveriesResponse, GatewayError> {
        let mut v = Violations::new();
        v.id("endpoint_id", &request.endpoint_id);
        finish(v)?;
        let page = page(request.page_size, request.page_token)?;
        let mut client = self.webhooks.clone();
        let endpoint_id = request.endpoint_id;
        let answer = self
            .forward(
                Upstream::Webhooks,
                client.list_deliveries(webhooks::ListDeliveriesRequest {
                    partner_id: partner.id.clone(),
                    endpoint_id: endpoint_id.clone(),
                    state: request.state,
                    page_size: page.page_size,
                    page_token: page.page_token,
                }),
            )
            .await?;
        Ok(webhooks::ListDeliveriesResponse {
            deliveries: answer
                .deliveries
                .into_iter()
                .filter(|d| d.endpoint_id == endpoint_id)
                .collect(),
            next_page_token: answer.next_page_token,
        })
    }

    pub async fn replay_webhook_delivery(
        &self,
        partner: &Partner,
        request: partner::ReplayWebhookDeliveryRequest,
    ) -> Result<webhooks::Delivery, GatewayError> {
        let mut v = Violations::new();
        v.id("endpoint_id", &request.endpoint_id);
        v.id("delivery_id", &request.delivery_id);
        let idempotency_key = scoped_idempotency_key(&mut v, partner, &request.idempotency_key);
        finish(v)?;
        let mut client = self.webhooks.clone();
        let endpoint_id = request.endpoint_id;
        let delivery = self
            .forward(
                Upstream::Webhooks,
                client.replay_delivery(webhooks::ReplayDeliveryRequest {
                    partner_id: partner.id.clone(),
                    endpoint_id: endpoint_id.clone(),
                    delivery_id: request.delivery_id,
                    idempotency_key,
                }),
            )
            .await?;
        if delivery.endpoint_id != endpoint_id {
            return Err(leak("delivery of another endpoint returned"));
        }
        Ok(delivery)
    }

    pub async fn list_webhook_event_types(
        &self,
        partner: &Partner,
    ) -> Result<webhooks::ListEventTypesResponse, GatewayError> {
        let mut client = self.webhooks.clone();
        self.forward(
            Upstream::Webhooks,
            client.list_event_types(webhooks::ListEventTypesRequest {
                partner_id: partner.id.clone(),
            }),
        )
        .await
    }
}

fn check_event_types(v: &mut Violations, event_types: &[String]) {
    if event_types.len() > MAX_EVENT_TYPES {
        v.add(
            "event_types",
            format!("at most {MAX_EVENT_TYPES} event types"),
        );
    }
    for (i, event_type) in event_types.iter().enumerate() {
        v.max_len(&format!("event_types[{i}]"), event_type, MAX_EVENT_TYPE_LEN);
    }
}

/// The webhooks service scopes endpoints to the partner it is given; anything else must
/// not reach the caller.
fn own(
    partner: &Partner,
    endpoint: webhooks::Endpoint,
) -> Result<webhooks::Endpoint, GatewayError> {
    if endpoint.partner_id == partner.id {
        Ok(endpoint)
    } else {
        Err(leak("endpoint of another partner returned"))
    }
}

fn own_with_secret(
    partner: &Partner,
    answer: webhooks::EndpointWithSecret,
) -> Result<webhooks::EndpointWithSecret, GatewayError> {
    match answer.endpoint {
        Some(endpoint) => Ok(webhooks::EndpointWithSecret {
            endpoint: Some(own(partner, endpoint)?),
            secret: answer.secret,
        }),
        None => Err(leak("endpoint missing from the answer")),
    }
}

/// An answer the gateway refuses to pass on: a fault of the suite, logged, never shown.
fn leak(what: &'static str) -> GatewayError {
    GatewayError::Upstream {
        upstream: Upstream::Webhooks,
        status: tonic::Status::internal(what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partner(id: &str) -> Partner {
        Partner {
            id: id.into(),
            key_id: format!("key-{id}"),
        }
    }

    fn endpoint(owner: &str) -> webhooks::Endpoint {
        webhooks::Endpoint {
            id: "ep-1".into(),
            partner_id: owner.into(),
            url: "https://hooks.example.com/in".into(),
            ..Default::default()
        }
    }

    #[test]
    fn only_the_partners_own_endpoint_passes() {
        assert_eq!(own(&partner("p-a"), endpoint("p-a")).unwrap().id, "ep-1");
        let err = own(&partner("p-b"), endpoint("p-a")).unwrap_err();
        let status = tonic::Status::from(err);
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("ep-1"));
        // An internal subscriber's endpoint (no partner) is not a partner's either.
        assert!(own(&partner("p-a"), endpoint("")).is_err());
    }

    #[test]
    fn the_secret_passes_only_with_the_partners_own_endpoint() {
        let answer = |owner: Option<&str>| webhooks::EndpointWithSecret {
            endpoint: owner.map(endpoint),
            secret: "whsec_abc".into(),
        };
        let mine = own_with_secret(&partner("p-a"), answer(Some("p-a"))).unwrap();
        assert_eq!(mine.secret, "whsec_abc");
        assert!(own_with_secret(&partner("p-b"), answer(Some("p-a"))).is_err());
        assert!(own_with_secret(&partner("p-a"), answer(None)).is_err());
    }

    #[test]
    fn event_types_are_bounded_in_count_and_length() {
        let mut v = Violations::new();
        check_event_types(&mut v, &["dispatch.JobOffered".into()]);
        assert!(v.is_empty());
        check_event_types(&mut v, &["ok".into(), "x".repeat(MAX_EVENT_TYPE_LEN + 1)]);
        check_event_types(&mut v, &vec![String::from("t"); MAX_EVENT_TYPES + 1]);
        let fields: Vec<_> = v.into_vec().into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["event_types[1]", "event_types"]);
    }
}
