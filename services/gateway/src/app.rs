//! Start-up of the gateway: settings from `GATEWAY_*` variables, lazy channels to dispatch,
//! returns and webhooks (with the gateway's service token when it has client credentials), the
//! rate limiter and failed-attempt budget (Redis when `REDIS_URL` or `REDIS_CLUSTER_NODES`
//! is set), then the gRPC face (with health and reflection) and the bounded HTTP face
//! served side by side until shutdown.

mod settings;

pub use settings::{
    DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, GatewaySettings, RedisSettings, settings_from_env,
};

use std::{net::SocketAddr, sync::Arc, time::Duration};

use aftersales_platform::{
    CancellationToken,
    auth::TokenSource,
    client, clock,
    config::{ConfigError, Env},
    redis_conn::{self, COMMAND_TIMEOUT},
    server::{self, GrpcServices, ServeError},
    telemetry,
    tls::{ALPN_HTTP, ReloadingConfig, TlsFileError, UpstreamTls},
};
use aftersales_protos::{
    dispatch::v1::{
        dispatch_service_client::DispatchServiceClient,
        partner_key_service_client::PartnerKeyServiceClient,
    },
    returns::v1::return_service_client::ReturnServiceClient,
    webhooks::v1::webhook_service_client::WebhookServiceClient,
};
use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint};
use tower::{Layer, ServiceExt, util::BoxCloneSyncService};

use crate::{
    auth::{KeyLookups, KeyResolver},
    core::{ChannelError, Door, Gateway, TraceInterceptor, UpstreamChannel, Upstreams},
    grpc::PartnerApi,
    http,
    limiter::{FailedAttempts, RateLimiter},
};

/// The largest header (and trailer) block accepted from an upstream.
const UPSTREAM_MAX_HEADER_LIST_BYTES: u32 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{target}: cannot connect: {source}")]
    Redis {
        /// The variable and its value, password hidden.
        target: String,
        source: redis::RedisError,
    },
    #[error("upstream {url}: {source}")]
    Upstream {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("gateway gRPC server: {0}")]
    Grpc(#[from] ServeError),
    #[error("gateway HTTP face TLS: {0}")]
    HttpTls(#[from] TlsFileError),
}

pub struct GatewayApp {
    gateway: Arc<Gateway>,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    /// The HTTP face's TLS, when it has a certificate.
    http_tls: Option<Arc<ReloadingConfig>>,
    settings: GatewaySettings,
}

impl GatewayApp {
    /// Connects the limiter, prepares the upstream channels (connected on first use, so
    /// the gateway may start before dispatch, returns and webhooks) and binds both
    /// listeners.
    pub async fn build(settings: GatewaySettings) -> Result<Self, StartError> {
        let tokens = settings.service_tokens.as_ref();
        if tokens.is_none() {
            tracing::info!(
                "GATEWAY_CLIENT_ID is not set: the upstreams are called without a service token"
            );
        }
        let dispatch = upstream(
            channel(&settings.dispatch_url, &settings.upstream_tls)?,
            tokens,
        );
        let returns = upstream(
            channel(&settings.returns_url, &settings.upstream_tls)?,
            tokens,
        );
        let webhooks = upstream(
            channel(&settings.webhooks_url, &settings.upstream_tls)?,
            tokens,
        );
        let (limiter, attempts) = match &settings.redis {
            Some(redis) => {
                let conn = redis_conn::open(&redis.target, &settings.redis_tls, COMMAND_TIMEOUT)
                    .await
                    .map_err(|source| StartError::Redis {
                        target: redis.target.describe(),
                        source,
                    })?;
                (
                    RateLimiter::redis(conn.clone(), &redis.key_prefix, settings.quota),
                    FailedAttempts::redis(conn, &redis.key_prefix, settings.failed_attempts),
                )
            }
            None => {
                tracing::warn!(
                    "neither REDIS_URL nor REDIS_CLUSTER_NODES is set: each gateway process keeps its own rate limits"
                );
                (
                    RateLimiter::local(settings.quota),
                    FailedAttempts::local(settings.failed_attempts),
                )
            }
        };
        let propagate = telemetry::propagate_trace as TraceInterceptor;
        let keys = KeyResolver::new(
            PartnerKeyServiceClient::with_interceptor(dispatch.clone(), propagate),
            settings.key_cache_ttl,
            settings.negative_key_cache_ttl,
            settings.upstream_timeout,
        );
        let door = Door {
            keys,
            limiter,
            attempts,
            proxies: settings.trusted_proxies.clone(),
        };
        let upstreams = Upstreams {
            dispatch: DispatchServiceClient::with_interceptor(dispatch, propagate),
            returns: ReturnServiceClient::with_interceptor(returns, propagate),
            webhooks: WebhookServiceClient::with_interceptor(webhooks, propagate),
        };
        let gateway = Arc::new(Gateway::new(
            upstreams,
            door,
            settings.carriers.clone(),
            settings.upstream_timeout,
            clock::system(),
        ));
        let grpc_listener = server::bind(settings.grpc_addr).await?;
        let http_listener = server::bind(settings.http_addr).await?;
        let http_tls = match &settings.http_tls {
            Some(tls) => Some(Arc::new(ReloadingConfig::new(tls.clone(), ALPN_HTTP)?)),
            None => None,
        };
        Ok(Self {
            gateway,
            grpc_listener,
            http_listener,
            http_tls,
            settings,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener
            .local_addr()
            .unwrap_or(self.settings.grpc_addr)
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_listener
            .local_addr()
            .unwrap_or(self.settings.http_addr)
    }

    /// The count of key lookups sent to dispatch, live while the gateway runs.
    pub fn key_lookups(&self) -> KeyLookups {
        self.gateway.keys().lookups()
    }

    /// Serves both faces until `shutdown`, then drains each within the server kit's bounds.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), StartError> {
        let (grpc_addr, http_addr) = (self.grpc_addr(), self.http_addr());
        let Self {
            gateway,
            grpc_listener,
            http_listener,
            http_tls,
            settings,
        } = self;
        let services = GrpcServices::new()
            .with(PartnerApi::new(gateway.clone()).into_server(settings.max_body_bytes));
        let grpc = server::serve(
            grpc_listener,
            settings.server.clone(),
            services,
            shutdown.clone(),
        );
        let router = http::router(
            gateway.clone(),
            settings.max_body_bytes,
            settings.server.request_timeout,
        );
        // After `shutdown`, in-flight requests get the health grace plus the drain bound.
        let http = http::serve::serve(
            http_listener,
            http_tls,
            router,
            settings.http,
            settings.server.health_grace + settings.server.drain_timeout,
            shutdown.clone(),
        );
        let housekeeping = housekeeping(gateway, shutdown.clone());
        tracing::info!(grpc = %grpc_addr, http = %http_addr, "partner gateway up");
        let (grpc, (), ()) = tokio::join!(grpc, http, housekeeping);
        Ok(grpc?)
    }
}

/// The channel as the clients use it: with the gateway's bearer token on every call when
/// it has client credentials.
fn upstream(channel: Channel, tokens: Option<&TokenSource>) -> UpstreamChannel {
    match tokens {
        Some(tokens) => {
            BoxCloneSyncService::new(tokens.layer().layer(channel).map_err(ChannelError::new))
        }
        None => BoxCloneSyncService::new(channel.map_err(ChannelError::new)),
    }
}

/// A channel balanced over every pod behind `url` (a headless Service name), connected
/// on first use; over TLS checked by `tls` when `url` is `https://`.
fn channel(url: &str, tls: &UpstreamTls) -> Result<Channel, StartError> {
    client::balanced(url, client::DEFAULT_REFRESH, tls, |endpoint: Endpoint| {
        endpoint
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            // An InvalidArgument with many field violations carries them in its trailers
            // (message and google.rpc.BadRequest); past h2's default 16 KiB list the answer
            // would be lost and the partner would see an internal error instead.
            .http2_max_header_list_size(UPSTREAM_MAX_HEADER_LIST_BYTES)
    })
    .map_err(|source| StartError::Upstream {
        url: url.to_owned(),
        source,
    })
}

/// Forgets idle keys of the in-process limiter now and then.
async fn housekeeping(gateway: Arc<Gateway>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => gateway.limiter().housekeeping(),
            () = shutdown.cancelled() => return,
        }
    }
}

impl aftersales_runtime::module::ServiceApp for GatewayApp {
    const NAME: &'static str = "gateway";
    const QUEUE: Option<&'static str> = None;
    type Settings = GatewaySettings;

    fn settings(env: &Env, _dev_database: Option<&str>) -> Result<Self::Settings, ConfigError> {
        settings_from_env(env)
    }

    /// The gateway keeps no database of its own.
    fn database(_settings: &Self::Settings) -> Option<&aftersales_platform::db::DbSettings> {
        None
    }

    async fn migrate(_database: &aftersales_platform::db::DbSettings) -> anyhow::Result<()> {
        Ok(())
    }

    async fn build(
        settings: Self::Settings,
        _bus: aftersales_eventbus::EventBus,
        _queue: Option<aftersales_deadlines::DeadlineQueue>,
    ) -> anyhow::Result<Self> {
        let app = Self::build(settings).await?;
        tracing::info!(http = %app.http_addr(), "partner gateway HTTP/JSON, /openapi.json");
        Ok(app)
    }

    fn addr(&self) -> SocketAddr {
        self.grpc_addr()
    }

    async fn serve(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        Ok(self.run(shutdown).await?)
    }
}
