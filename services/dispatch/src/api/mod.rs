//! The gRPC face of the dispatch service: decode and validate (`request`), call the use
//! case, encode (`crate::proto`); errors become statuses in `status`. Spare parts' RPCs
//! are handled in `parts`.

mod parts;
pub mod permissions;
mod request;
mod status;

use std::sync::Arc;

use aftersales_platform::{
    audit,
    auth::{Caller, roles::PII_READ},
    caller::actor_of,
};
use aftersales_platform::{paging::encode_cursor, status::Violations};
use aftersales_protos::{
    common::v1 as common,
    dispatch::v1::{
        self as pb, dispatch_service_server::DispatchService,
        partner_key_service_server::PartnerKeyService,
    },
};
use chrono::Duration;
use tonic::{Request, Response, Status};

pub use pb::{
    dispatch_service_server::DispatchServiceServer,
    partner_key_service_server::PartnerKeyServiceServer,
};

use crate::{
    domain::job::JobView,
    proto,
    usecases::{ContactRight, DispatchCore},
};

pub struct DispatchApi {
    core: Arc<DispatchCore>,
}

impl DispatchApi {
    pub fn new(core: Arc<DispatchCore>) -> Self {
        Self { core }
    }

    pub fn into_server(self) -> DispatchServiceServer<Self> {
        DispatchServiceServer::new(self)
    }
}

fn reply(view: &JobView) -> Result<Response<pb::Job>, Status> {
    Ok(Response::new(proto::job(view)))
}

fn next_token(next: Option<String>) -> Option<common::PageResponse> {
    Some(common::PageResponse {
        next_page_token: next.as_deref().map(encode_cursor).unwrap_or_default(),
    })
}

#[tonic::async_trait]
impl DispatchService for DispatchApi {
    async fn register_partner(
        &self,
        request: Request<pb::RegisterPartnerRequest>,
    ) -> Result<Response<pb::Partner>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (spec, idem) = request::register_partner(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let partner = self
            .core
            .register_partner(spec, idem.as_ref(), &actor)
            .await?;
        audit::target(format!("partner:{}", partner.id));
        Ok(Response::new(proto::partner(&partner)))
    }

    async fn update_partner(
        &self,
        request: Request<pb::UpdatePartnerRequest>,
    ) -> Result<Response<pb::Partner>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let spec = request::update_partner(&r)?;
        audit::target(format!("partner:{}", r.partner_id));
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let expected = (r.expected_version != 0).then_some(r.expected_version);
        let partner = self
            .core
            .update_partner(&r.partner_id, spec, expected, &actor)
            .await?;
        Ok(Response::new(proto::partner(&partner)))
    }

    async fn get_partner(
        &self,
        request: Request<pb::GetPartnerRequest>,
    ) -> Result<Response<pb::Partner>, Status> {
        let r = request.into_inner();
        request::id("partner_id", &r.partner_id)?;
        let partner = self.core.get_partner(&r.partner_id).await?;
        Ok(Response::new(proto::partner(&partner)))
    }

    async fn list_partners(
        &self,
        request: Request<pb::ListPartnersRequest>,
    ) -> Result<Response<pb::ListPartnersResponse>, Status> {
        let (filter, cursor, size) = request::list_partners(request.get_ref())?;
        let (page, next) = self
            .core
            .list_partners(&filter, cursor.as_deref(), size)
            .await?;
        Ok(Response::new(pb::ListPartnersResponse {
            partners: page.iter().map(proto::partner).collect(),
            page: next_token(next),
        }))
    }

    async fn create_job(
        &self,
        request: Request<pb::CreateJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (new, contact, idem) = request::create_job(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(
            &self
                .core
                .create_job(new, contact, idem.as_ref(), &actor)
                .await?,
        )
    }

    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        request::id("job_id", &r.job_id)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        // The contact in clear text for a reader whose token holds pii:read (a partner's
        // view follows the partner rule whatever the token holds).
        let right = if caller.has_role(PII_READ) {
            ContactRight::Clear
        } else {
            ContactRight::Masked
        };
        reply(&self.core.get_job(&r.job_id, &actor, right).await?)
    }

    async fn list_jobs(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (filter, cursor, size) = request::list_jobs(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let (page, next) = self
            .core
            .list_jobs(filter, cursor.as_deref(), size, &actor)
            .await?;
        Ok(Response::new(pb::ListJobsResponse {
            jobs: page.iter().map(proto::job).collect(),
            page: next_token(next),
        }))
    }

    async fn list_offers(
        &self,
        request: Request<pb::ListOffersRequest>,
    ) -> Result<Response<pb::ListOffersResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let jobs = self.core.list_offers(&r.partner_id, &actor).await?;
        Ok(Response::new(pb::ListOffersResponse {
            offers: jobs
                .iter()
                .filter_map(|view| {
                    let offer = view.job.open_offer()?;
                    Some(pb::OpenOffer {
                        offer: Some(proto::offer(offer)),
                        job: Some(proto::job(view)),
                    })
                })
                .collect(),
        }))
    }

    async fn cancel_job(
        &self,
        request: Request<pb::CancelJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        request::id("job_id", &r.job_id)?;
        request::text("reason", &r.reason)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(&self.core.cancel_job(&r.job_id, &r.reason, &actor).await?)
    }

    async fn respond_to_offer(
        &self,
        request: Request<pb::RespondToOfferRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        request::id("job_id", &r.job_id)?;
        request::id("offer_id", &r.offer_id)?;
        request::text("decline_reason", &r.decline_reason)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(
            &self
                .core
                .respond(&r.job_id, &r.offer_id, r.accept, &r.decline_reason, &actor)
                .await?,
        )
    }

    async fn schedule_visit(
        &self,
        request: Request<pb::ScheduleVisitRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let at = request::schedule_visit(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(&self.core.schedule_visit(&r.job_id, at, &actor).await?)
    }

    async fn record_visit(
        &self,
        request: Request<pb::RecordVisitRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let at = request::record_visit(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(
            &self
                .core
                .record_visit(&r.job_id, at, &r.notes, &actor)
                .await?,
        )
    }

    async fn submit_quote(
        &self,
        request: Request<pb::SubmitQuoteRequest>,
    ) -> Result<Response<pb::Quote>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (lines, idem) = request::submit_quote(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let quote = self
            .core
            .submit_quote(&r.job_id, lines, idem.as_ref(), &actor)
            .await?;
        Ok(Response::new(proto::quote(&quote)))
    }

    async fn review_quote(
        &self,
        request: Request<pb::ReviewQuoteRequest>,
    ) -> Result<Response<pb::Quote>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        request::id("quote_id", &r.quote_id)?;
        request::text("note", &r.note)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let quote = self
            .core
            .review_quote(&r.quote_id, r.approve, &r.note, &actor)
            .await?;
        Ok(Response::new(proto::quote(&quote)))
    }

    async fn complete_job(
        &self,
        request: Request<pb::CompleteJobRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (outcome, photos, idem) = request::complete_job(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(
            &self
                .core
                .complete_job(&r.job_id, outcome, photos, &r.notes, idem.as_ref(), &actor)
                .await?,
        )
    }

    async fn resolve_remotely(
        &self,
        request: Request<pb::ResolveRemotelyRequest>,
    ) -> Result<Response<pb::Job>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (outcome, idem) = request::resolve_remotely(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        reply(
            &self
                .core
                .resolve_remotely(&r.job_id, outcome, &r.notes, idem.as_ref(), &actor)
                .await?,
        )
    }

    async fn get_scorecard(
        &self,
        request: Request<pb::GetScorecardRequest>,
    ) -> Result<Response<pb::Scorecard>, Status> {
        let r = request.into_inner();
        let (from, to) = request::scorecard(&r)?;
        let card = self.core.scorecard(&r.partner_id, from, to).await?;
        Ok(Response::new(proto::scorecard(&card)))
    }

    async fn generate_settlement(
        &self,
        request: Request<pb::GenerateSettlementRequest>,
    ) -> Result<Response<pb::Settlement>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let mut v = Violations::new();
        v.require("partner_id", &r.partner_id);
        v.require("month", &r.month);
        v.max_len("month", &r.month, 7);
        v.finish()?;
        audit::target(format!("partner:{}", r.partner_id));
        audit::note("month", r.month.as_str());
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let s = self
            .core
            .generate_settlement(&r.partner_id, &r.month, &actor)
            .await?;
        Ok(Response::new(proto::settlement(&s)))
    }

    async fn get_settlement(
        &self,
        request: Request<pb::GetSettlementRequest>,
    ) -> Result<Response<pb::Settlement>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        request::id("settlement_id", &r.settlement_id)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let s = self.core.get_settlement(&r.settlement_id, &actor).await?;
        Ok(Response::new(proto::settlement(&s)))
    }

    async fn list_settlements(
        &self,
        request: Request<pb::ListSettlementsRequest>,
    ) -> Result<Response<pb::ListSettlementsResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (cursor, size) = request::list_settlements(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let partner = (!r.partner_id.is_empty()).then_some(r.partner_id.as_str());
        let (page, next) = self
            .core
            .list_settlements(partner, cursor.as_deref(), size, &actor)
            .await?;
        Ok(Response::new(pb::ListSettlementsResponse {
            settlements: page.iter().map(proto::settlement).collect(),
            page: next_token(next),
        }))
    }

    async fn update_settlement_status(
        &self,
        request: Request<pb::UpdateSettlementStatusRequest>,
    ) -> Result<Response<pb::Settlement>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let action = request::settlement_action(&r)?;
        audit::target(format!("settlement:{}", r.settlement_id));
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let s = self
            .core
            .update_settlement(&r.settlement_id, action, &r.reason, &actor)
            .await?;
        Ok(Response::new(proto::settlement(&s)))
    }

    async fn register_part(
        &self,
        request: Request<pb::RegisterPartRequest>,
    ) -> Result<Response<pb::Part>, Status> {
        parts::register_part(&self.core, request).await
    }

    async fn register_part_site(
        &self,
        request: Request<pb::RegisterPartSiteRequest>,
    ) -> Result<Response<pb::PartSite>, Status> {
        parts::register_site(&self.core, request).await
    }

    async fn receive_parts(
        &self,
        request: Request<pb::ReceivePartsRequest>,
    ) -> Result<Response<pb::PartsReceipt>, Status> {
        parts::receive_parts(&self.core, request).await
    }

    async fn request_parts(
        &self,
        request: Request<pb::RequestPartsRequest>,
    ) -> Result<Response<pb::JobParts>, Status> {
        parts::request_parts(&self.core, request).await
    }

    async fn ship_transfer(
        &self,
        request: Request<pb::ShipTransferRequest>,
    ) -> Result<Response<pb::Transfer>, Status> {
        parts::ship_transfer(&self.core, request).await
    }

    async fn receive_transfer(
        &self,
        request: Request<pb::ReceiveTransferRequest>,
    ) -> Result<Response<pb::Transfer>, Status> {
        parts::receive_transfer(&self.core, request).await
    }

    async fn set_stock_threshold(
        &self,
        request: Request<pb::SetStockThresholdRequest>,
    ) -> Result<Response<pb::StockLevel>, Status> {
        parts::set_threshold(&self.core, request).await
    }

    async fn record_stocktake(
        &self,
        request: Request<pb::RecordStocktakeRequest>,
    ) -> Result<Response<pb::Stocktake>, Status> {
        parts::record_stocktake(&self.core, request).await
    }

    async fn list_stock(
        &self,
        request: Request<pb::ListStockRequest>,
    ) -> Result<Response<pb::ListStockResponse>, Status> {
        parts::list_stock(&self.core, request).await
    }

    async fn get_parts_turnover(
        &self,
        request: Request<pb::GetPartsTurnoverRequest>,
    ) -> Result<Response<pb::PartsTurnover>, Status> {
        parts::turnover(&self.core, request).await
    }
}

/// The partner-key administration face, served beside `DispatchService`.
pub struct PartnerKeyApi {
    core: Arc<DispatchCore>,
}

impl PartnerKeyApi {
    pub fn new(core: Arc<DispatchCore>) -> Self {
        Self { core }
    }

    pub fn into_server(self) -> PartnerKeyServiceServer<Self> {
        PartnerKeyServiceServer::new(self)
    }
}

fn issued(
    key: &crate::domain::keys::PartnerKey,
    secret: String,
) -> Response<pb::IssuePartnerKeyResponse> {
    Response::new(pb::IssuePartnerKeyResponse {
        key: Some(proto::key(key)),
        secret,
    })
}

#[tonic::async_trait]
impl PartnerKeyService for PartnerKeyApi {
    async fn issue_partner_key(
        &self,
        request: Request<pb::IssuePartnerKeyRequest>,
    ) -> Result<Response<pb::IssuePartnerKeyResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        request::id("partner_id", &r.partner_id)?;
        request::text("label", &r.label)?;
        audit::target(format!("partner:{}", r.partner_id));
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let (key, secret) = self.core.issue_key(&r.partner_id, &r.label, &actor).await?;
        audit::note("key_id", key.id.as_str());
        Ok(issued(&key, secret))
    }

    async fn rotate_partner_key(
        &self,
        request: Request<pb::RotatePartnerKeyRequest>,
    ) -> Result<Response<pb::IssuePartnerKeyResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        request::id("key_id", &r.key_id)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let overlap =
            (r.overlap_seconds != 0).then(|| Duration::seconds(i64::from(r.overlap_seconds)));
        audit::target(format!("partner_key:{}", r.key_id));
        let (key, secret) = self.core.rotate_key(&r.key_id, overlap, &actor).await?;
        audit::note("new_key_id", key.id.as_str());
        Ok(issued(&key, secret))
    }

    async fn revoke_partner_key(
        &self,
        request: Request<pb::RevokePartnerKeyRequest>,
    ) -> Result<Response<pb::PartnerKey>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        request::id("key_id", &r.key_id)?;
        audit::target(format!("partner_key:{}", r.key_id));
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let key = self.core.revoke_key(&r.key_id, &actor).await?;
        Ok(Response::new(proto::key(&key)))
    }

    async fn list_partner_keys(
        &self,
        request: Request<pb::ListPartnerKeysRequest>,
    ) -> Result<Response<pb::ListPartnerKeysResponse>, Status> {
        let r = request.into_inner();
        request::text("partner_id", &r.partner_id)?;
        let partner = (!r.partner_id.is_empty()).then_some(r.partner_id.as_str());
        let keys = self.core.list_keys(partner).await?;
        Ok(Response::new(pb::ListPartnerKeysResponse {
            keys: keys.iter().map(proto::key).collect(),
        }))
    }

    async fn authenticate_partner_key(
        &self,
        request: Request<pb::AuthenticatePartnerKeyRequest>,
    ) -> Result<Response<pb::AuthenticatePartnerKeyResponse>, Status> {
        let r = request.into_inner();
        if r.secret.is_empty() || r.secret.len() > 256 {
            return Err(Status::unauthenticated("an API key is required"));
        }
        let key = self.core.authenticate(&r.secret).await?;
        Ok(Response::new(pb::AuthenticatePartnerKeyResponse {
            partner_id: key.partner_id,
            key_id: key.id,
        }))
    }
}
