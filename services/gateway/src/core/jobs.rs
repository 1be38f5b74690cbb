//! The partner's offers and jobs through the core: list and answer offers, list and read
//! jobs, and the commands on one job (schedule, visit, quote, complete), each checked here
//! and forwarded to dispatch as the partner of the key.

use std::future::Future;

use aftersales_platform::status::Violations;
use aftersales_protos::{
    dispatch::v1::{self as dispatch, OfferStatus},
    partner::v1 as partner,
};

use super::{Gateway, MAX_TEXT_LEN, actor, check_job_id, finish, page, scoped_idempotency_key};
use crate::{
    auth::Partner,
    error::{GatewayError, Upstream},
    mapping,
};

impl Gateway {
    pub async fn list_offers(
        &self,
        partner: &Partner,
    ) -> Result<partner::ListOffersResponse, GatewayError> {
        let mut client = self.dispatch.clone();
        let answer = self
            .forward(
                Upstream::Dispatch,
                client.list_offers(dispatch::ListOffersRequest {
                    partner_id: partner.id.clone(),
                    actor: Some(actor(partner)),
                }),
            )
            .await?;
        let offers = answer
            .offers
            .into_iter()
            .filter_map(|open| {
                let job = open.job?;
                Some(mapping::partner_job_with_offer(
                    job,
                    &partner.id,
                    open.offer,
                ))
            })
            .collect();
        Ok(partner::ListOffersResponse { offers })
    }

    pub async fn accept_offer(
        &self,
        partner: &Partner,
        request: partner::AcceptOfferRequest,
    ) -> Result<partner::PartnerJob, GatewayError> {
        self.respond(partner, request.job_id, true, String::new())
            .await
    }

    pub async fn decline_offer(
        &self,
        partner: &Partner,
        request: partner::DeclineOfferRequest,
    ) -> Result<partner::PartnerJob, GatewayError> {
        let mut v = Violations::new();
        v.max_len("reason", &request.reason, MAX_TEXT_LEN);
        check_job_id(&mut v, &request.job_id);
        finish(v)?;
        self.respond(partner, request.job_id, false, request.reason)
            .await
    }

    /// Accepts or declines the partner's open offer on the job. A job the partner cannot
    /// see answers NOT_FOUND (from dispatch); a visible job without an open offer for the
    /// partner answers FAILED_PRECONDITION.
    async fn respond(
        &self,
        partner: &Partner,
        job_id: String,
        accept: bool,
        decline_reason: String,
    ) -> Result<partner::PartnerJob, GatewayError> {
        let mut v = Violations::new();
        check_job_id(&mut v, &job_id);
        finish(v)?;
        let job = self.job(partner, &job_id).await?;
        let offer = job
            .offers
            .iter()
            .find(|o| o.partner_id == partner.id && o.status == OfferStatus::Open as i32)
            .ok_or_else(|| GatewayError::NoOpenOffer {
                job_id: job_id.clone(),
            })?;
        let mut client = self.dispatch.clone();
        self.dispatch_job(
            partner,
            client.respond_to_offer(dispatch::RespondToOfferRequest {
                job_id,
                offer_id: offer.id.clone(),
                accept,
                decline_reason,
                actor: Some(actor(partner)),
            }),
        )
        .await
    }

    pub async fn list_jobs(
        &self,
        partner: &Partner,
        request: partner::ListJobsRequest,
    ) -> Result<partner::ListJobsResponse, GatewayError> {
        let page = page(request.page_size, request.page_token)?;
        let mut client = self.dispatch.clone();
        let answer = self
            .forward(
                Upstream::Dispatch,
                client.list_jobs(dispatch::ListJobsRequest {
                    page: Some(page),
                    partner_id: partner.id.clone(),
                    ticket_id: String::new(),
                    statuses: request.statuses,
                    actor: Some(actor(partner)),
                }),
            )
            .await?;
        Ok(partner::ListJobsResponse {
            jobs: answer
                .jobs
                .into_iter()
                .map(|job| mapping::partner_job(job, &partner.id))
                .collect(),
            next_page_token: answer.page.map(|p| p.next_page_token).unwrap_or_default(),
        })
    }

    pub async fn get_job(
        &self,
        partner: &Partner,
        request: partner::GetJobRequest,
    ) -> Result<partner::PartnerJob, GatewayError> {
        let mut v = Violations::new();
        check_job_id(&mut v, &request.job_id);
        finish(v)?;
        let job = self.job(partner, &request.job_id).await?;
        Ok(mapping::partner_job(job, &partner.id))
    }

    pub async fn schedule_visit(
        &self,
        partner: &Partner,
        request: partner::ScheduleVisitRequest,
    ) -> Result<partner::PartnerJob, GatewayError> {
        let mut v = Violations::new();
        check_job_id(&mut v, &request.job_id);
        if request.scheduled_for.is_none() {
            v.add("scheduled_for", "is required");
        }
        finish(v)?;
        let mut client = self.dispatch.clone();
        self.dispatch_job(
            partner,
            client.schedule_visit(dispatch::ScheduleVisitRequest {
                job_id: request.job_id,
                scheduled_for: request.scheduled_for,
                actor: Some(actor(partner)),
            }),
        )
        .await
    }

    pub async fn record_visit(
        &self,
        partner: &Partner,
        request: partner::RecordVisitRequest,
    ) -> Result<partner::PartnerJob, GatewayError> {
        let mut v = Violations::new();
        check_job_id(&mut v, &request.job_id);
        v.max_len("notes", &request.notes, MAX_TEXT_LEN);
        finish(v)?;
        let mut client = self.dispatch.clone();
        self.dispatch_job(
            partner,
            client.record_visit(dispatch::RecordVisitRequest {
                job_id: request.job_id,
                arrived_at: request.arrived_at,
                notes: request.notes,
                actor: Some(actor(partner)),
            }),
        )
        .await
    }

    pub async fn submit_quote(
        &self,
        partner: &Partner,
        request: partner::SubmitQuoteRequest,
    ) -> Result<dispatch::Quote, GatewayError> {
        let mut v = Violations::new();
        check_job_id(&mut v, &request.job_id);
        let idempotency_key = scoped_idempotency_key(&mut v, partner, &request.idempotency_key);
        finish(v)?;
        let mut client = self.dispatch.clone();
        let quote = self
            .forward(
                Upstream::Dispatch,
                client.submit_quote(dispatch::SubmitQuoteRequest {
                    idempotency_key,
                    job_id: request.job_id,
                    lines: request.lines,
                    actor: Some(actor(partner)),
                }),
            )
            .await?;
        if quote.partner_id != partner.id {
            // Dispatch scopes quotes to the actor; anything else must not leak.
            return Err(GatewayError::Upstream {
                upstream: Upstream::Dispatch,
                status: tonic::Status::internal("quote of another partner returned"),
            });
        }
        Ok(quote)
    }

    pub async fn complete_job(
        &self,
        partner: &Partner,
        request: partner::CompleteJobRequest,
    ) -> Result<partner::PartnerJob, GatewayError> {
        let idempotency_key = closing_checked(
            partner,
            &request.job_id,
            &request.notes,
            &request.idempotency_key,
        )?;
        let mut client = self.dispatch.clone();
        self.dispatch_job(
            partner,
            client.complete_job(dispatch::CompleteJobRequest {
                idempotency_key,
                job_id: request.job_id,
                outcome: request.outcome,
                photos: request.photos,
                notes: request.notes,
                actor: Some(actor(partner)),
            }),
        )
        .await
    }

    pub async fn resolve_remotely(
        &self,
        partner: &Partner,
        request: partner::ResolveJobRemotelyRequest,
    ) -> Result<partner::PartnerJob, GatewayError> {
        let idempotency_key = closing_checked(
            partner,
            &request.job_id,
            &request.notes,
            &request.idempotency_key,
        )?;
        let mut client = self.dispatch.clone();
        self.dispatch_job(
            partner,
            client.resolve_remotely(dispatch::ResolveRemotelyRequest {
                idempotency_key,
                job_id: request.job_id,
                outcome: request.outcome,
                notes: request.notes,
                actor: Some(actor(partner)),
            }),
        )
        .await
    }

    /// Reserves parts for one of the partner's jobs. Dispatch scopes the job and the site
    /// to the partner and checks every line; the answer shows the job as its partner sees
    /// it.
    pub async fn request_parts(
        &self,
        partner: &Partner,
        request: partner::RequestJobPartsRequest,
    ) -> Result<partner::PartnerJobParts, GatewayError> {
        let mut v = Violations::new();
        check_job_id(&mut v, &request.job_id);
        v.id("site_id", &request.site_id);
        if request.lines.is_empty() {
            v.add("lines", "at least one line is required");
        }
        let idempotency_key = scoped_idempotency_key(&mut v, partner, &request.idempotency_key);
        finish(v)?;
        let mut client = self.dispatch.clone();
        let parts = self
            .forward(
                Upstream::Dispatch,
                client.request_parts(dispatch::RequestPartsRequest {
                    idempotency_key,
                    job_id: request.job_id,
                    site_id: request.site_id,
                    lines: request.lines,
                    actor: Some(actor(partner)),
                }),
            )
            .await?;
        Ok(partner::PartnerJobParts {
            job: parts.job.map(|job| mapping::partner_job(job, &partner.id)),
            reservations: parts.reservations,
        })
    }

    async fn job(&self, partner: &Partner, job_id: &str) -> Result<dispatch::Job, GatewayError> {
        let mut client = self.dispatch.clone();
        self.forward(
            Upstream::Dispatch,
            client.get_job(dispatch::GetJobRequest {
                job_id: job_id.to_owned(),
                actor: Some(actor(partner)),
            }),
        )
        .await
    }

    /// Forwards a command on one job to dispatch and answers with the partner's view of it.
    async fn dispatch_job(
        &self,
        partner: &Partner,
        call: impl Future<Output = Result<tonic::Response<dispatch::Job>, tonic::Status>>,
    ) -> Result<partner::PartnerJob, GatewayError> {
        let job = self.forward(Upstream::Dispatch, call).await?;
        Ok(mapping::partner_job(job, &partner.id))
    }
}

/// The checks of a command that closes a job (on site or remotely): its id, its notes and
/// the idempotency key, which comes back scoped to the partner.
fn closing_checked(
    partner: &Partner,
    job_id: &str,
    notes: &str,
    idempotency_key: &str,
) -> Result<String, GatewayError> {
    let mut v = Violations::new();
    check_job_id(&mut v, job_id);
    v.max_len("notes", notes, MAX_TEXT_LEN);
    let scoped = scoped_idempotency_key(&mut v, partner, idempotency_key);
    finish(v)?;
    Ok(scoped)
}
