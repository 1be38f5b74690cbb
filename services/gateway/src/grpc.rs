//! The gRPC face: `aftersales.partner.v1.PartnerService`. Each method admits the caller
//! from its metadata and hands the message to the core; nothing else happens here. The
//! webhook methods answer with the webhooks service's own messages.

use std::sync::Arc;

use aftersales_protos::{
    dispatch::v1::Quote,
    partner::v1::{
        self as pb,
        partner_service_server::{PartnerService, PartnerServiceServer},
    },
    webhooks::v1 as wh,
};
use tonic::{Request, Response, Status};

use crate::{auth::Partner, core::Gateway};

pub struct PartnerApi {
    gateway: Arc<Gateway>,
}

impl PartnerApi {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self { gateway }
    }

    /// The tonic service; messages above `max_message_bytes` are refused undecoded.
    pub fn into_server(self, max_message_bytes: usize) -> PartnerServiceServer<Self> {
        PartnerServiceServer::new(self).max_decoding_message_size(max_message_bytes)
    }

    async fn admit<T>(&self, request: Request<T>) -> Result<(Partner, T), Status> {
        let peer = request.remote_addr();
        let (metadata, _, message) = request.into_parts();
        let partner = self.gateway.admit(&metadata.into_headers(), peer).await?;
        Ok((partner, message))
    }
}

#[tonic::async_trait]
impl PartnerService for PartnerApi {
    async fn list_offers(
        &self,
        request: Request<pb::ListOffersRequest>,
    ) -> Result<Response<pb::ListOffersResponse>, Status> {
        let (partner, _) = self.admit(request).await?;
        Ok(Response::new(self.gateway.list_offers(&partner).await?))
    }

    async fn accept_offer(
        &self,
        request: Request<pb::AcceptOfferRequest>,
    ) -> Result<Response<pb::PartnerJob>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway.accept_offer(&partner, message).await?,
        ))
    }

    async fn decline_offer(
        &self,
        request: Request<pb::DeclineOfferRequest>,
    ) -> Result<Response<pb::PartnerJob>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway.decline_offer(&partner, message).await?,
        ))
    }

    async fn list_jobs(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway.list_jobs(&partner, message).await?,
        ))
    }

    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::PartnerJob>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway.get_job(&partner, message).await?,
        ))
    }

    async fn schedule_visit(
        &self,
        request: Request<pb::ScheduleVisitRequest>,
    ) -> Result<Response<pb::PartnerJob>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway.schedule_visit(&partner, message).await?,
        ))
    }

    async fn record_visit(
        &self,
        request: Request<pb::RecordVisitRequest>,
    ) -> Result<Response<pb::PartnerJob>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway.record_visit(&partner, message).await?,
        ))
    }

    async fn submit_quote(
        &self,
        request: Request<pb::SubmitQuoteRequest>,
    ) -> Result<Response<Quote>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway.submit_quote(&partner, message).await?,
        ))
    }

    async fn complete_job(
        &self,
        request: Request<pb::CompleteJobRequest>,
    ) -> Result<Response<pb::PartnerJob>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway.complete_job(&partner, message).await?,
        ))
    }

    async fn resolve_job_remotely(
        &self,
        request: Request<pb::ResolveJobRemotelyRequest>,
    ) -> Result<Response<pb::PartnerJob>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway.resolve_remotely(&partner, message).await?,
        ))
    }

    async fn request_job_parts(
        &self,
        request: Request<pb::RequestJobPartsRequest>,
    ) -> Result<Response<pb::PartnerJobParts>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway.request_parts(&partner, message).await?,
        ))
    }

    async fn list_settlements(
        &self,
        request: Request<pb::ListSettlementsRequest>,
    ) -> Result<Response<pb::ListSettlementsResponse>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway.list_settlements(&partner, message).await?,
        ))
    }

    async fn create_webhook_endpoint(
        &self,
        request: Request<pb::CreateWebhookEndpointRequest>,
    ) -> Result<Response<wh::EndpointWithSecret>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway
                .create_webhook_endpoint(&partner, message)
                .await?,
        ))
    }

    async fn list_webhook_endpoints(
        &self,
        request: Request<pb::ListWebhookEndpointsRequest>,
    ) -> Result<Response<wh::ListEndpointsResponse>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway
                .list_webhook_endpoints(&partner, message)
                .await?,
        ))
    }

    async fn get_webhook_endpoint(
        &self,
        request: Request<pb::GetWebhookEndpointRequest>,
    ) -> Result<Response<wh::Endpoint>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway.get_webhook_endpoint(&partner, message).await?,
        ))
    }

    async fn update_webhook_endpoint(
        &self,
        request: Request<pb::UpdateWebhookEndpointRequest>,
    ) -> Result<Response<wh::Endpoint>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway
                .update_webhook_endpoint(&partner, message)
                .await?,
        ))
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<wh::EndpointWithSecret>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway
                .rotate_webhook_secret(&partner, message)
                .await?,
        ))
    }

    async fn delete_webhook_endpoint(
        &self,
        request: Request<pb::DeleteWebhookEndpointRequest>,
    ) -> Result<Response<wh::Endpoint>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway
                .delete_webhook_endpoint(&partner, message)
                .await?,
        ))
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<pb::ListWebhookDeliveriesRequest>,
    ) -> Result<Response<wh::ListDeliveriesResponse>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway
                .list_webhook_deliveries(&partner, message)
                .await?,
        ))
    }

    async fn replay_webhook_delivery(
        &self,
        request: Request<pb::ReplayWebhookDeliveryRequest>,
    ) -> Result<Response<wh::Delivery>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway
                .replay_webhook_delivery(&partner, message)
                .await?,
        ))
    }

    async fn list_webhook_event_types(
        &self,
        request: Request<pb::ListWebhookEventTypesRequest>,
    ) -> Result<Response<wh::ListEventTypesResponse>, Status> {
        let (partner, _) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway.list_webhook_event_types(&partner).await?,
        ))
    }
}
