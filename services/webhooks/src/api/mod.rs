//! The gRPC face of the webhooks service: decode and validate (`request`), call the use
//! case, encode (`crate::proto`); errors become statuses in `status`.

pub mod permissions;
mod request;
mod status;

use std::sync::Arc;

use aftersales_platform::{audit, auth::Caller, paging::encode_cursor};
use aftersales_protos::webhooks::v1::{self as pb, webhook_service_server::WebhookService};
use tonic::{Request, Response, Status};

pub use pb::webhook_service_server::WebhookServiceServer;

use crate::{proto, usecases::WebhooksCore};

pub struct WebhooksApi {
    core: Arc<WebhooksCore>,
}

impl WebhooksApi {
    pub fn new(core: Arc<WebhooksCore>) -> Self {
        Self { core }
    }

    pub fn into_server(self) -> WebhookServiceServer<Self> {
        WebhookServiceServer::new(self)
    }
}

fn token(next: Option<String>) -> String {
    next.as_deref().map(encode_cursor).unwrap_or_default()
}

#[tonic::async_trait]
impl WebhookService for WebhooksApi {
    async fn create_endpoint(
        &self,
        request: Request<pb::CreateEndpointRequest>,
    ) -> Result<Response<pb::EndpointWithSecret>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let owner = request::owner(&caller, &r.partner_id)?;
        let c = request::create(&r)?;
        let endpoint = self
            .core
            .create_endpoint(
                &owner,
                &c.url,
                &c.event_types,
                &c.description,
                c.idem.as_ref(),
            )
            .await?;
        audit::target(format!("webhook-endpoint:{}", endpoint.id));
        Ok(Response::new(proto::endpoint_with_secret(&endpoint)))
    }

    async fn get_endpoint(
        &self,
        request: Request<pb::GetEndpointRequest>,
    ) -> Result<Response<pb::Endpoint>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let owner = request::owner(&caller, &r.partner_id)?;
        request::id("endpoint_id", &r.endpoint_id)?;
        let endpoint = self.core.get_endpoint(&owner, &r.endpoint_id).await?;
        Ok(Response::new(proto::endpoint(&endpoint)))
    }

    async fn list_endpoints(
        &self,
        request: Request<pb::ListEndpointsRequest>,
    ) -> Result<Response<pb::ListEndpointsResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let owner = request::owner(&caller, &r.partner_id)?;
        let (cursor, size) = request::page(&r.page_token, r.page_size)?;
        let (endpoints, next) = self
            .core
            .list_endpoints(&owner, cursor.as_deref(), size)
            .await?;
        Ok(Response::new(pb::ListEndpointsResponse {
            endpoints: endpoints.iter().map(proto::endpoint).collect(),
            next_page_token: token(next),
        }))
    }

    async fn update_endpoint(
        &self,
        request: Request<pb::UpdateEndpointRequest>,
    ) -> Result<Response<pb::Endpoint>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let owner = request::owner(&caller, &r.partner_id)?;
        let (change, idem) = request::update(&r)?;
        audit::target(format!("webhook-endpoint:{}", r.endpoint_id));
        let endpoint = self
            .core
            .update_endpoint(&owner, &r.endpoint_id, change, idem.as_ref())
            .await?;
        Ok(Response::new(proto::endpoint(&endpoint)))
    }

    async fn rotate_endpoint_secret(
        &self,
        request: Request<pb::RotateEndpointSecretRequest>,
    ) -> Result<Response<pb::EndpointWithSecret>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let owner = request::owner(&caller, &r.partner_id)?;
        let (overlap, idem) = request::rotate(&r)?;
        audit::target(format!("webhook-endpoint:{}", r.endpoint_id));
        let endpoint = self
            .core
            .rotate_secret(&owner, &r.endpoint_id, overlap, idem.as_ref())
            .await?;
        Ok(Response::new(proto::endpoint_with_secret(&endpoint)))
    }

    async fn delete_endpoint(
        &self,
        request: Request<pb::DeleteEndpointRequest>,
    ) -> Result<Response<pb::Endpoint>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let owner = request::owner(&caller, &r.partner_id)?;
        let idem = request::delete(&r)?;
        audit::target(format!("webhook-endpoint:{}", r.endpoint_id));
        let endpoint = self
            .core
            .delete_endpoint(&owner, &r.endpoint_id, idem.as_ref())
            .await?;
        Ok(Response::new(proto::endpoint(&endpoint)))
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let owner = request::owner(&caller, &r.partner_id)?;
        let (state, cursor, size) = request::list_deliveries(&r)?;
        let (deliveries, next) = self
            .core
            .list_deliveries(&owner, &r.endpoint_id, state, cursor.as_deref(), size)
            .await?;
        Ok(Response::new(pb::ListDeliveriesResponse {
            deliveries: deliveries.iter().map(proto::delivery).collect(),
            next_page_token: token(next),
        }))
    }

    async fn replay_delivery(
        &self,
        request: Request<pb::ReplayDeliveryRequest>,
    ) -> Result<Response<pb::Delivery>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let owner = request::owner(&caller, &r.partner_id)?;
        let idem = request::replay(&r)?;
        audit::target(format!(
            "webhook-delivery:{}/{}",
            r.endpoint_id, r.delivery_id
        ));
        let delivery = self
            .core
            .replay_delivery(&owner, &r.endpoint_id, &r.delivery_id, idem.as_ref())
            .await?;
        Ok(Response::new(proto::delivery(&delivery)))
    }

    async fn list_event_types(
        &self,
        request: Request<pb::ListEventTypesRequest>,
    ) -> Result<Response<pb::ListEventTypesResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let owner = request::owner(&caller, &r.partner_id)?;
        Ok(Response::new(pb::ListEventTypesResponse {
            event_types: self
                .core
                .event_types_for(&owner)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }))
    }
}
