//! The one core both faces call: admit a caller (key → partner, then its rate limit;
//! unknown keys first against the failed-attempt budget of the caller's address), check
//! what the gateway itself must check, forward to dispatch or returns as that partner with
//! a bounded wait, and map the answer to what a partner may see.

use std::{future::Future, net::SocketAddr, time::Duration};

use aftersales_platform::{clock::SharedClock, metrics, status::Violations};
use aftersales_protos::{
    common::v1::{Actor, ActorRole, PageRequest},
    dispatch::v1::{self as dispatch, OfferStatus, dispatch_service_client::DispatchServiceClient},
    partner::v1 as partner,
    returns::v1::{RecordTrackingEventRequest, Return, return_service_client::ReturnServiceClient},
};
use http::HeaderMap;
use tonic::{body::Body, service::interceptor::InterceptedService};
use tower::util::BoxCloneSyncService;

use crate::{
    auth::{self, KeyResolver, Partner},
    carrier::CarrierSecrets,
    error::{GatewayError, Upstream},
    limiter::{Decision, FailedAttempts, RateLimiter},
    mapping,
    peer::TrustedProxies,
};

/// Forwards the caller's trace context on every upstream call.
pub type TraceInterceptor = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;
/// A channel to an upstream, with the gateway's service token on every call when it has
/// client credentials and without one otherwise: one type either way.
pub type UpstreamChannel =
    BoxCloneSyncService<http::Request<Body>, http::Response<Body>, ChannelError>;

/// Why a call never got an answer: the transport's error, or the token layer's (a
/// `Status`). tonic finds either through `source()`, as it would unwrapped.
#[derive(Debug)]
pub struct ChannelError(Box<dyn std::error::Error + Send + Sync>);

impl ChannelError {
    pub fn new(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(err.into())
    }
}

impl std::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}
/// An upstream channel with trace propagation.
pub type Intercepted = InterceptedService<UpstreamChannel, TraceInterceptor>;

/// Who gets in: keys resolved through dispatch, the rate limit of each key, and the
/// failed-attempt budget of each client address (read through the trusted proxies).
#[derive(Clone)]
pub struct Door {
    pub keys: KeyResolver,
    pub limiter: RateLimiter,
    pub attempts: FailedAttempts,
    pub proxies: TrustedProxies,
}

/// Ids the gateway forwards are at most this long; dispatch judges the rest.
/// A partner's idempotency key, short enough that with the partner scope in front it stays
/// within what dispatch keeps (128).
const MAX_IDEMPOTENCY_KEY_LEN: usize = 64;
const MAX_TEXT_LEN: usize = 2_000;

/// The clients and policies every call goes through.
#[derive(Clone)]
pub struct Gateway {
    dispatch: DispatchServiceClient<Intercepted>,
    returns: ReturnServiceClient<Intercepted>,
    door: Door,
    carriers: CarrierSecrets,
    timeout: Duration,
    clock: SharedClock,
}

impl Gateway {
    pub fn new(
        dispatch: DispatchServiceClient<Intercepted>,
        returns: ReturnServiceClient<Intercepted>,
        door: Door,
        carriers: CarrierSecrets,
        timeout: Duration,
        clock: SharedClock,
    ) -> Self {
        Self {
            dispatch,
            returns,
            door,
            carriers,
            timeout,
            clock,
        }
    }

    pub fn limiter(&self) -> &RateLimiter {
        &self.door.limiter
    }

    pub fn keys(&self) -> &KeyResolver {
        &self.door.keys
    }

    /// The partner behind the request's API key, if its budget allows another call. A key
    /// not known good is looked up only while the caller's address (`peer`, or what a
    /// trusted proxy says) has failed attempts left, and a refusal spends one of them.
    pub async fn admit(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Result<Partner, GatewayError> {
        let key = auth::api_key(headers)?;
        let partner = match self.door.keys.cached(&key) {
            Some(partner) => partner,
            None => {
                let client = self.door.proxies.client(peer, headers);
                if let Decision::Limited { retry_after } = self.door.attempts.admit(client).await {
                    metrics::rate_limited();
                    tracing::debug!(%client, "failed key attempts spent: refused before lookup");
                    return Err(GatewayError::TooManyFailedAttempts { retry_after });
                }
                match self.door.keys.resolve(&key).await {
                    Err(GatewayError::BadKey) => {
                        self.door.attempts.failed(client).await;
                        return Err(GatewayError::BadKey);
                    }
                    other => other?,
                }
            }
        };
        match self.door.limiter.check(&partner.key_id).await {
            Decision::Allowed => Ok(partner),
            Decision::Limited { retry_after } => {
                metrics::rate_limited();
                Err(GatewayError::RateLimited { retry_after })
            }
        }
    }

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
        let mut v = Violations::new();
        v.max_len("page_token", &request.page_token, 1_024);
        finish(v)?;
        let mut client = self.dispatch.clone();
        let answer = self
            .forward(
                Upstream::Dispatch,
                client.list_jobs(dispatch::ListJobsRequest {
                    page: Some(PageRequest {
                        page_size: request.page_size,
                        page_token: request.page_token,
                    }),
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
        let mut v = Violations::new();
        check_job_id(&mut v, &request.job_id);
        v.max_len("notes", &request.notes, MAX_TEXT_LEN);
        let idempotency_key = scoped_idempotency_key(&mut v, partner, &request.idempotency_key);
        finish(v)?;
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

    pub async fn list_settlements(
        &self,
        partner: &Partner,
        request: partner::ListSettlementsRequest,
    ) -> Result<partner::ListSettlementsResponse, GatewayError> {
        let mut v = Violations::new();
        v.max_len("page_token", &request.page_token, 1_024);
        finish(v)?;
        let mut client = self.dispatch.clone();
        let answer = self
            .forward(
                Upstream::Dispatch,
                client.list_settlements(dispatch::ListSettlementsRequest {
                    partner_id: partner.id.clone(),
                    page: Some(PageRequest {
                        page_size: request.page_size,
                        page_token: request.page_token,
                    }),
                    actor: Some(actor(partner)),
                }),
            )
            .await?;
        Ok(partner::ListSettlementsResponse {
            settlements: answer
                .settlements
                .into_iter()
                .filter(|s| s.partner_id == partner.id)
                .collect(),
            next_page_token: answer.page.map(|p| p.next_page_token).unwrap_or_default(),
        })
    }

    /// Checks a carrier's signature over its timestamp and the raw body, and the timestamp
    /// against the gateway's clock; nothing is read before both pass.
    pub fn verify_carrier(
        &self,
        carrier: &str,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
    ) -> Result<(), GatewayError> {
        self.carriers
            .verify(carrier, signature, timestamp, body, self.clock.now())
    }

    /// Forwards a verified carrier event to returns.
    pub async fn record_tracking(
        &self,
        request: RecordTrackingEventRequest,
    ) -> Result<Return, GatewayError> {
        let mut client = self.returns.clone();
        self.forward(Upstream::Returns, client.record_tracking_event(request))
            .await
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

    /// Awaits an upstream call for at most the configured time.
    /// Forwards a command on one job to dispatch and answers with the partner's view of it.
    async fn dispatch_job(
        &self,
        partner: &Partner,
        call: impl Future<Output = Result<tonic::Response<dispatch::Job>, tonic::Status>>,
    ) -> Result<partner::PartnerJob, GatewayError> {
        let job = self.forward(Upstream::Dispatch, call).await?;
        Ok(mapping::partner_job(job, &partner.id))
    }

    async fn forward<T>(
        &self,
        upstream: Upstream,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, GatewayError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(GatewayError::Upstream { upstream, status }),
            Err(_) => Err(GatewayError::UpstreamTimeout {
                upstream,
                timeout: self.timeout,
            }),
        }
    }
}

/// The actor every forwarded call carries: the partner of the key, never of the request.
fn actor(partner: &Partner) -> Actor {
    Actor {
        id: partner.id.clone(),
        role: ActorRole::Partner as i32,
    }
}

fn check_job_id(v: &mut Violations, job_id: &str) {
    v.id("job_id", job_id);
}

/// Idempotency keys are chosen by partners, so two partners may pick the same one: the
/// key forwarded is scoped to the partner, and neither can replay the other's result.
fn scoped_idempotency_key(v: &mut Violations, partner: &Partner, key: &str) -> String {
    v.max_len("idempotency_key", key, MAX_IDEMPOTENCY_KEY_LEN);
    if key.trim().is_empty() {
        String::new()
    } else {
        format!("partner:{}:{}", partner.id, key.trim())
    }
}

fn finish(v: Violations) -> Result<(), GatewayError> {
    if v.is_empty() {
        Ok(())
    } else {
        Err(GatewayError::Invalid(v.into_vec()))
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

    #[test]
    fn idempotency_keys_are_scoped_to_the_partner() {
        let mut v = Violations::new();
        let a = scoped_idempotency_key(&mut v, &partner("p-a"), "quote-1");
        let b = scoped_idempotency_key(&mut v, &partner("p-b"), "quote-1");
        assert_ne!(a, b);
        assert_eq!(scoped_idempotency_key(&mut v, &partner("p-a"), " "), "");
        assert!(v.is_empty());
        scoped_idempotency_key(
            &mut v,
            &partner("p-a"),
            &"k".repeat(MAX_IDEMPOTENCY_KEY_LEN + 1),
        );
        assert_eq!(v.into_vec()[0].field, "idempotency_key");
    }

    #[test]
    fn job_ids_are_required_and_bounded() {
        let mut v = Violations::new();
        check_job_id(&mut v, "");
        check_job_id(
            &mut v,
            &"j".repeat(aftersales_platform::validate::MAX_ID + 1),
        );
        let fields: Vec<_> = v.into_vec().into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["job_id", "job_id"]);
    }

    #[test]
    fn the_actor_is_the_partner_of_the_key() {
        let a = actor(&partner("p-a"));
        assert_eq!(a.id, "p-a");
        assert_eq!(a.role, ActorRole::Partner as i32);
    }
}
