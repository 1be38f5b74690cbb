//! The one core both faces call: admit a caller (key → partner, then its rate limit;
//! unknown keys first against the failed-attempt budget of the caller's address), check
//! what the gateway itself must check, forward to dispatch, returns or webhooks as that
//! partner with a bounded wait, and map the answer to what a partner may see. The
//! operations sit by capability in `jobs` (offers and jobs), `settlements`, `webhooks`
//! (the partner's webhook endpoints) and `carriers`; admission and the bounded forward are
//! here.

mod carriers;
mod jobs;
mod settlements;
mod webhooks;

use std::{future::Future, net::SocketAddr, time::Duration};

use aftersales_platform::{clock::SharedClock, metrics, status::Violations};
use aftersales_protos::{
    common::v1::PageRequest,
    common::v1::{Actor, ActorRole},
    dispatch::v1::dispatch_service_client::DispatchServiceClient,
    returns::v1::return_service_client::ReturnServiceClient,
    webhooks::v1::webhook_service_client::WebhookServiceClient,
};
use http::HeaderMap;
use tonic::{body::Body, service::interceptor::InterceptedService};
use tower::util::BoxCloneSyncService;

use crate::{
    auth::{self, KeyResolver, Partner},
    carrier::CarrierSecrets,
    error::{GatewayError, Upstream},
    limiter::{Decision, FailedAttempts, RateLimiter},
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

/// The services the gateway forwards to, each with trace propagation and (when the
/// gateway has client credentials) its service token.
#[derive(Clone)]
pub struct Upstreams {
    pub dispatch: DispatchServiceClient<Intercepted>,
    pub returns: ReturnServiceClient<Intercepted>,
    pub webhooks: WebhookServiceClient<Intercepted>,
}

/// The clients and policies every call goes through.
#[derive(Clone)]
pub struct Gateway {
    dispatch: DispatchServiceClient<Intercepted>,
    returns: ReturnServiceClient<Intercepted>,
    webhooks: WebhookServiceClient<Intercepted>,
    door: Door,
    carriers: CarrierSecrets,
    timeout: Duration,
    clock: SharedClock,
}

impl Gateway {
    pub fn new(
        upstreams: Upstreams,
        door: Door,
        carriers: CarrierSecrets,
        timeout: Duration,
        clock: SharedClock,
    ) -> Self {
        let Upstreams {
            dispatch,
            returns,
            webhooks,
        } = upstreams;
        Self {
            dispatch,
            returns,
            webhooks,
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

    /// Awaits an upstream call for at most the configured time.
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

/// A partner's page request, forwarded as it is once its token is within bounds.
fn page(page_size: u32, page_token: String) -> Result<PageRequest, GatewayError> {
    let mut v = Violations::new();
    v.max_len("page_token", &page_token, 1_024);
    finish(v)?;
    Ok(PageRequest {
        page_size,
        page_token,
    })
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
