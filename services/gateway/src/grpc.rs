//! The gRPC face: `aftersales.partner.v1.PartnerService`. Each method admits the caller
//! from its metadata and hands the message to the core; nothing else happens here.

use std::sync::Arc;

use aftersales_protos::{
    dispatch::v1::Quote,
    partner::v1::{
        self as pb,
        partner_service_server::{PartnerService, PartnerServiceServer},
    },
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

    async fn list_settlements(
        &self,
        request: Request<pb::ListSettlementsRequest>,
    ) -> Result<Response<pb::ListSettlementsResponse>, Status> {
        let (partner, message) = self.admit(request).await?;
        Ok(Response::new(
            self.gateway.list_settlements(&partner, message).await?,
        ))
    }
}
