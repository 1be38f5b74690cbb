//! The gRPC face of the returns service: decode and validate (`request`), call the use
//! case, encode (`crate::proto`); errors become statuses in `status`.

mod compensation;
pub mod permissions;
mod request;
mod status;

use std::sync::Arc;

use aftersales_platform::paging::encode_cursor;
use aftersales_platform::{audit, auth::Caller, caller::actor_of};
use aftersales_protos::returns::v1::{self as pb, return_service_server::ReturnService};
use tonic::{Request, Response, Status};

pub use pb::return_service_server::ReturnServiceServer;

use crate::{domain::rma::ReturnAggregate, proto, usecases::ReturnsCore};

pub struct ReturnsApi {
    core: Arc<ReturnsCore>,
}

impl ReturnsApi {
    pub fn new(core: Arc<ReturnsCore>) -> Self {
        Self { core }
    }

    pub fn into_server(self) -> ReturnServiceServer<Self> {
        ReturnServiceServer::new(self)
    }
}

fn reply(agg: &ReturnAggregate) -> Result<Response<pb::Return>, Status> {
    Ok(Response::new(proto::rma(agg)))
}

#[tonic::async_trait]
impl ReturnService for ReturnsApi {
    async fn request_return(
        &self,
        request: Request<pb::RequestReturnRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (new, idem) = request::request_return(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(&self.core.request_return(new, idem.as_ref(), &actor).await?)
    }

    async fn get_return(
        &self,
        request: Request<pb::GetReturnRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        let r = request.into_inner();
        request::return_id("id", &r.id)?;
        reply(&self.core.get_return(&r.id).await?)
    }

    async fn list_returns(
        &self,
        request: Request<pb::ListReturnsRequest>,
    ) -> Result<Response<pb::ListReturnsResponse>, Status> {
        let (filter, cursor, size) = request::list(request.get_ref())?;
        let (page, next) = self
            .core
            .list_returns(&filter, cursor.as_deref(), size)
            .await?;
        Ok(Response::new(pb::ListReturnsResponse {
            returns: page.iter().map(proto::rma).collect(),
            next_page_token: next.as_deref().map(encode_cursor).unwrap_or_default(),
        }))
    }

    async fn review_return(
        &self,
        request: Request<pb::ReviewReturnRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        request::review(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(
            &self
                .core
                .review(&r.return_id, r.approve, &r.reason, &actor)
                .await?,
        )
    }

    async fn cancel_return(
        &self,
        request: Request<pb::CancelReturnRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        request::return_id("return_id", &r.return_id)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(&self.core.cancel(&r.return_id, &r.reason, &actor).await?)
    }

    async fn book_pickup(
        &self,
        request: Request<pb::BookPickupRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let order = request::book_pickup(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(&self.core.book_pickup(&r.return_id, order, &actor).await?)
    }

    async fn record_tracking_event(
        &self,
        request: Request<pb::RecordTrackingEventRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        let update = request::tracking(request.get_ref())?;
        reply(&self.core.record_tracking(update).await?)
    }

    async fn receive_return(
        &self,
        request: Request<pb::ReceiveReturnRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        request::return_id("return_id", &r.return_id)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(
            &self
                .core
                .receive(&r.return_id, &r.warehouse, &actor)
                .await?,
        )
    }

    async fn record_inspection(
        &self,
        request: Request<pb::RecordInspectionRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let lines = request::inspection(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(&self.core.inspect(&r.return_id, lines, &actor).await?)
    }

    async fn resolve_return(
        &self,
        request: Request<pb::ResolveReturnRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let resolution = request::resolve(&r)?;
        audit::target(format!("return:{}", r.return_id));
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(
            &self
                .core
                .resolve(&r.return_id, resolution, &r.reason, &actor)
                .await?,
        )
    }

    async fn close_return(
        &self,
        request: Request<pb::CloseReturnRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        request::return_id("return_id", &r.return_id)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(&self.core.close(&r.return_id, &actor).await?)
    }

    async fn get_refund(
        &self,
        request: Request<pb::GetRefundRequest>,
    ) -> Result<Response<pb::Refund>, Status> {
        let r = request.into_inner();
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let refund = self
            .core
            .refund(
                non_empty(&r.refund_id).as_deref(),
                non_empty(&r.return_id).as_deref(),
            )
            .await?;
        Ok(Response::new(proto::refund(&refund)))
    }

    async fn upsert_return_policy(
        &self,
        request: Request<pb::UpsertReturnPolicyRequest>,
    ) -> Result<Response<pb::ReturnPolicy>, Status> {
        let policy = request::policy(request.get_ref())?;
        audit::target(format!("return_policy:{}", policy.product_line));
        Ok(Response::new(proto::policy(
            &self.core.upsert_policy(policy).await?,
        )))
    }

    async fn request_third_party_inspection(
        &self,
        request: Request<pb::RequestThirdPartyInspectionRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        request::third_party(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(
            &self
                .core
                .request_third_party(&r.return_id, &r.lab, &r.reason, &actor)
                .await?,
        )
    }

    async fn record_third_party_result(
        &self,
        request: Request<pb::RecordThirdPartyResultRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let result = request::third_party_result(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(
            &self
                .core
                .record_third_party(&r.return_id, result, &actor)
                .await?,
        )
    }

    async fn agree_partial_refund(
        &self,
        request: Request<pb::AgreePartialRefundRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let offer = request::partial(&r)?;
        audit::target(format!("return:{}", r.return_id));
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(&self.core.agree_partial(&r.return_id, offer, &actor).await?)
    }

    async fn request_price_difference_refund(
        &self,
        request: Request<pb::RequestPriceDifferenceRefundRequest>,
    ) -> Result<Response<pb::Refund>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (claim, idem) = request::price_difference(&r)?;
        audit::target(format!("order_line:{}/{}", r.order_id, r.sku));
        let actor = actor_of(&caller, r.actor.as_ref())?;
        tracing::info!(actor = %actor.id, order_id = %claim.order_id, "price difference claimed");
        let refund = self.core.price_difference(claim, idem.as_ref()).await?;
        Ok(Response::new(proto::refund(&refund)))
    }

    async fn request_compensation(
        &self,
        request: Request<pb::RequestCompensationRequest>,
    ) -> Result<Response<pb::Compensation>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (new, idem) = compensation::request(&r)?;
        audit::target(format!("ticket:{}", r.ticket_id));
        let desk = compensation::desk_caller(&caller, r.actor.as_ref())?;
        let made = self
            .core
            .request_compensation(new, &desk, idem.as_ref())
            .await?;
        Ok(Response::new(proto::compensation(&made)))
    }

    async fn approve_compensation(
        &self,
        request: Request<pb::ApproveCompensationRequest>,
    ) -> Result<Response<pb::Compensation>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let idem = compensation::approve(&r)?;
        audit::target(format!("compensation:{}", r.compensation_id));
        let desk = compensation::desk_caller(&caller, r.actor.as_ref())?;
        let approved = self
            .core
            .approve_compensation(&r.compensation_id, &desk, idem.as_ref())
            .await?;
        Ok(Response::new(proto::compensation(&approved)))
    }

    async fn reject_compensation(
        &self,
        request: Request<pb::RejectCompensationRequest>,
    ) -> Result<Response<pb::Compensation>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let idem = compensation::reject(&r)?;
        audit::target(format!("compensation:{}", r.compensation_id));
        let desk = compensation::desk_caller(&caller, r.actor.as_ref())?;
        let rejected = self
            .core
            .reject_compensation(&r.compensation_id, &desk, &r.reason, idem.as_ref())
            .await?;
        Ok(Response::new(proto::compensation(&rejected)))
    }

    async fn get_compensation(
        &self,
        request: Request<pb::GetCompensationRequest>,
    ) -> Result<Response<pb::Compensation>, Status> {
        let r = request.into_inner();
        request::return_id("id", &r.id)?;
        let found = self.core.get_compensation(&r.id).await?;
        Ok(Response::new(proto::compensation(&found)))
    }

    async fn list_compensations(
        &self,
        request: Request<pb::ListCompensationsRequest>,
    ) -> Result<Response<pb::ListCompensationsResponse>, Status> {
        let (filter, cursor, size) = compensation::list(request.get_ref())?;
        let (page, next) = self
            .core
            .list_compensations(&filter, cursor.as_deref(), size)
            .await?;
        Ok(Response::new(pb::ListCompensationsResponse {
            compensations: page.iter().map(proto::compensation).collect(),
            next_page_token: next.as_deref().map(encode_cursor).unwrap_or_default(),
        }))
    }

    async fn carrier_reconciliation(
        &self,
        request: Request<pb::CarrierReconciliationRequest>,
    ) -> Result<Response<pb::CarrierReconciliationResponse>, Status> {
        let r = request.into_inner();
        request::reconciliation(&r)?;
        let lines = self.core.carrier_month(&r.carrier, &r.month).await?;
        Ok(Response::new(proto::carrier_statement(
            r.carrier, r.month, &lines,
        )))
    }
}
