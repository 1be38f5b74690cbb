//! Start-up of the gateway: settings from `GATEWAY_*` variables, lazy channels to dispatch
//! and returns (with the gateway's service token when it has client credentials), the
//! rate limiter and failed-attempt budget (Redis when `REDIS_URL` is set), then the gRPC
//! face (with health and reflection) and the bounded HTTP face served side by side until
//! shutdown.

use std::{net::SocketAddr, num::NonZeroU32, sync::Arc, time::Duration};

use aftersales_platform::{
    CancellationToken,
    auth::{SetupError, TokenSource},
    client, clock,
    config::{ConfigError, Env},
    redis_conn::{self, COMMAND_TIMEOUT},
    server::{self, GrpcServices, ServeError, ServerSettings},
    telemetry,
};
use aftersales_protos::{
    dispatch::v1::{
        dispatch_service_client::DispatchServiceClient,
        partner_key_service_client::PartnerKeyServiceClient,
    },
    returns::v1::return_service_client::ReturnServiceClient,
};
use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint};
use tower::{Layer, ServiceExt, util::BoxCloneSyncService};

use crate::{
    auth::{KeyLookups, KeyResolver},
    carrier::CarrierSecrets,
    core::{ChannelError, Door, Gateway, TraceInterceptor, UpstreamChannel},
    grpc::PartnerApi,
    http::{self, serve::ConnectionLimits},
    limiter::{AttemptQuota, FailedAttempts, Quota, RateLimiter},
    peer::TrustedProxies,
};

/// The gRPC port `aftersales dev` and the manifests use for the gateway.
pub const DEFAULT_GRPC_PORT: u16 = 50055;
/// The HTTP port of the partner API.
pub const DEFAULT_HTTP_PORT: u16 = 8080;

/// The largest header (and trailer) block accepted from dispatch and returns.
const UPSTREAM_MAX_HEADER_LIST_BYTES: u32 = 1 << 20;

/// Where the shared rate limit lives.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    pub key_prefix: String,
}

#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub dispatch_url: String,
    pub returns_url: String,
    /// `None`: each replica limits on its own (only for a single process, `aftersales dev`).
    pub redis: Option<RedisSettings>,
    pub quota: Quota,
    /// How long a resolved key is trusted: a revoked key works at most this much longer.
    pub key_cache_ttl: Duration,
    /// How long a refused key is remembered: a repeat costs no lookup, and a key that
    /// becomes good again (its partner reactivated) works after at most this long.
    pub negative_key_cache_ttl: Duration,
    /// Failed key attempts per client address before 429 / RESOURCE_EXHAUSTED.
    pub failed_attempts: AttemptQuota,
    /// Proxies whose `X-Forwarded-For` names the client address; none by default.
    pub trusted_proxies: TrustedProxies,
    /// Timeouts and bounds of every HTTP connection.
    pub http: ConnectionLimits,
    /// The gateway's own tokens for dispatch and returns (OAuth 2.0 client credentials);
    /// `None` calls them without a token.
    pub service_tokens: Option<TokenSource>,
    pub carriers: CarrierSecrets,
    /// Largest HTTP body and gRPC message accepted.
    pub max_body_bytes: usize,
    /// Longest wait for dispatch or returns before answering DEADLINE_EXCEEDED / 504.
    pub upstream_timeout: Duration,
    pub server: ServerSettings,
}

const TEST_RATE: NonZeroU32 = match NonZeroU32::new(1_000) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

impl GatewaySettings {
    /// Loopback on port 0 for both faces, no key caches, in-process limiters.
    pub fn for_tests(dispatch_url: String, returns_url: String) -> Self {
        Self {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dispatch_url,
            returns_url,
            redis: None,
            // High enough that only the tests of rate limiting meet it.
            quota: Quota {
                per_second: TEST_RATE,
                burst: TEST_RATE,
            },
            key_cache_ttl: Duration::ZERO,
            negative_key_cache_ttl: Duration::ZERO,
            failed_attempts: AttemptQuota {
                per_minute: TEST_RATE,
                burst: TEST_RATE,
            },
            trusted_proxies: TrustedProxies::default(),
            http: ConnectionLimits::DEFAULT,
            service_tokens: None,
            carriers: CarrierSecrets::default(),
            max_body_bytes: 65_536,
            upstream_timeout: Duration::from_secs(5),
            server: ServerSettings::for_tests(),
        }
    }
}

/// `GATEWAY_*` variables, `REDIS_URL`, `REDIS_KEY_PREFIX` and the server kit's variables.
pub fn settings_from_env(env: &Env) -> Result<GatewaySettings, ConfigError> {
    let upstream = |name: &str, default: &str| -> Result<String, ConfigError> {
        let url = env.raw(name).unwrap_or_else(|| default.to_owned());
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::new(
                name,
                &url,
                "must start with http:// or https://",
            ));
        }
        Endpoint::from_shared(url.clone()).map_err(|e| ConfigError::new(name, &url, e))?;
        Ok(url)
    };
    let nonzero = |name: &str, default: u32| -> Result<NonZeroU32, ConfigError> {
        let n: u32 = env.or(name, default)?;
        NonZeroU32::new(n).ok_or_else(|| ConfigError::new(name, "0", "must be at least 1"))
    };
    let carriers = match env.raw("GATEWAY_CARRIER_SECRETS") {
        None => CarrierSecrets::default(),
        // The value holds secrets: the error names the variable, never the value.
        Some(spec) => CarrierSecrets::parse(&spec)
            .map_err(|reason| ConfigError::new("GATEWAY_CARRIER_SECRETS", "<redacted>", reason))?,
    };
    let trusted_proxies = match env.raw("GATEWAY_TRUSTED_PROXIES") {
        None => TrustedProxies::default(),
        Some(spec) => TrustedProxies::parse(&spec)
            .map_err(|reason| ConfigError::new("GATEWAY_TRUSTED_PROXIES", &spec, reason))?,
    };
    let redis = env.raw("REDIS_URL").map(|url| RedisSettings {
        url,
        key_prefix: env
            .raw("REDIS_KEY_PREFIX")
            .unwrap_or_else(|| "aftersales:".into()),
    });
    Ok(GatewaySettings {
        grpc_addr: env.or(
            "GATEWAY_GRPC_ADDR",
            SocketAddr::from(([0, 0, 0, 0], DEFAULT_GRPC_PORT)),
        )?,
        http_addr: env.or(
            "GATEWAY_HTTP_ADDR",
            SocketAddr::from(([0, 0, 0, 0], DEFAULT_HTTP_PORT)),
        )?,
        dispatch_url: upstream("GATEWAY_DISPATCH_URL", "http://127.0.0.1:50053")?,
        returns_url: upstream("GATEWAY_RETURNS_URL", "http://127.0.0.1:50052")?,
        redis,
        quota: Quota {
            per_second: nonzero("GATEWAY_RATE_LIMIT_PER_SEC", 20)?,
            burst: nonzero("GATEWAY_RATE_LIMIT_BURST", 40)?,
        },
        key_cache_ttl: env.millis("GATEWAY_KEY_CACHE_MS", 5_000, true)?,
        negative_key_cache_ttl: env.millis("GATEWAY_NEGATIVE_KEY_CACHE_MS", 30_000, true)?,
        failed_attempts: AttemptQuota {
            per_minute: nonzero("GATEWAY_FAILED_AUTH_PER_MINUTE", 10)?,
            burst: nonzero("GATEWAY_FAILED_AUTH_BURST", 20)?,
        },
        trusted_proxies,
        http: connection_limits(env)?,
        service_tokens: service_tokens(env)?,
        carriers,
        max_body_bytes: env.positive("GATEWAY_MAX_BODY_BYTES", 65_536)?,
        upstream_timeout: env.millis("GATEWAY_UPSTREAM_TIMEOUT_MS", 5_000, false)?,
        server: ServerSettings::from_env(env)?,
    })
}

/// `GATEWAY_HEADER_READ_TIMEOUT_MS`, `GATEWAY_IDLE_TIMEOUT_MS` and the HTTP/2 bounds.
fn connection_limits(env: &Env) -> Result<ConnectionLimits, ConfigError> {
    let defaults = ConnectionLimits::DEFAULT;
    let ms = |name: &str, default: Duration| {
        env.millis(
            name,
            u64::try_from(default.as_millis()).unwrap_or(u64::MAX),
            false,
        )
    };
    let streams = env.positive(
        "GATEWAY_HTTP2_MAX_CONCURRENT_STREAMS",
        defaults.max_concurrent_streams as usize,
    )?;
    Ok(ConnectionLimits {
        header_read_timeout: ms(
            "GATEWAY_HEADER_READ_TIMEOUT_MS",
            defaults.header_read_timeout,
        )?,
        idle_timeout: ms("GATEWAY_IDLE_TIMEOUT_MS", defaults.idle_timeout)?,
        keepalive_interval: ms(
            "GATEWAY_HTTP2_KEEPALIVE_INTERVAL_MS",
            defaults.keepalive_interval,
        )?,
        keepalive_timeout: ms(
            "GATEWAY_HTTP2_KEEPALIVE_TIMEOUT_MS",
            defaults.keepalive_timeout,
        )?,
        max_concurrent_streams: u32::try_from(streams).map_err(|_| {
            ConfigError::new(
                "GATEWAY_HTTP2_MAX_CONCURRENT_STREAMS",
                &streams.to_string(),
                "too large",
            )
        })?,
    })
}

/// Client credentials when any of `GATEWAY_CLIENT_ID`, `GATEWAY_CLIENT_SECRET` (or their
/// `_FILE` forms) is set, with the token endpoint from `AUTH_TOKEN_URL` or `AUTH_ISSUER`.
fn service_tokens(env: &Env) -> Result<Option<TokenSource>, ConfigError> {
    let configured = [
        "GATEWAY_CLIENT_ID",
        "GATEWAY_CLIENT_ID_FILE",
        "GATEWAY_CLIENT_SECRET",
        "GATEWAY_CLIENT_SECRET_FILE",
    ]
    .iter()
    .any(|name| env.raw(name).is_some());
    if !configured {
        return Ok(None);
    }
    TokenSource::from_env(env, "GATEWAY")
        .map(Some)
        .map_err(|err| match err {
            SetupError::Config(err) => err,
            other => ConfigError::new("GATEWAY_CLIENT_ID", "<redacted>", other),
        })
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("REDIS_URL={url}: cannot connect: {source}")]
    Redis {
        url: String,
        source: redis::RedisError,
    },
    #[error("upstream {url}: {source}")]
    Upstream {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("gateway gRPC server: {0}")]
    Grpc(#[from] ServeError),
}

pub struct GatewayApp {
    gateway: Arc<Gateway>,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    settings: GatewaySettings,
}

impl GatewayApp {
    /// Connects the limiter, prepares the upstream channels (connected on first use, so
    /// the gateway may start before dispatch and returns) and binds both listeners.
    pub async fn build(settings: GatewaySettings) -> Result<Self, StartError> {
        let tokens = settings.service_tokens.as_ref();
        if tokens.is_none() {
            tracing::info!(
                "GATEWAY_CLIENT_ID is not set: dispatch and returns are called without a service token"
            );
        }
        let dispatch = upstream(channel(&settings.dispatch_url)?, tokens);
        let returns = upstream(channel(&settings.returns_url)?, tokens);
        let (limiter, attempts) = match &settings.redis {
            Some(redis) => {
                let conn = redis_conn::connect(&redis.url, COMMAND_TIMEOUT)
                    .await
                    .map_err(|source| StartError::Redis {
                        url: redis.url.clone(),
                        source,
                    })?;
                (
                    RateLimiter::redis(conn.clone(), &redis.key_prefix, settings.quota),
                    FailedAttempts::redis(conn, &redis.key_prefix, settings.failed_attempts),
                )
            }
            None => {
                tracing::warn!(
                    "REDIS_URL is not set: each gateway process keeps its own rate limits"
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
        let gateway = Arc::new(Gateway::new(
            DispatchServiceClient::with_interceptor(dispatch, propagate),
            ReturnServiceClient::with_interceptor(returns, propagate),
            door,
            settings.carriers.clone(),
            settings.upstream_timeout,
            clock::system(),
        ));
        let grpc_listener = server::bind(settings.grpc_addr).await?;
        let http_listener = server::bind(settings.http_addr).await?;
        Ok(Self {
            gateway,
            grpc_listener,
            http_listener,
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
/// on first use.
fn channel(url: &str) -> Result<Channel, StartError> {
    client::balanced(url, client::DEFAULT_REFRESH, |endpoint: Endpoint| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = settings_from_env(&Env::from_pairs(Vec::<(String, String)>::new())).unwrap();
        assert_eq!(s.grpc_addr.port(), 50055);
        assert_eq!(s.http_addr.port(), 8080);
        assert_eq!(s.dispatch_url, "http://127.0.0.1:50053");
        assert_eq!(s.returns_url, "http://127.0.0.1:50052");
        assert!(s.redis.is_none());
        assert_eq!(s.quota.per_second.get(), 20);
        assert_eq!(s.quota.burst.get(), 40);
        assert_eq!(s.key_cache_ttl, Duration::from_millis(5_000));
        assert_eq!(s.negative_key_cache_ttl, Duration::from_secs(30));
        assert_eq!(
            (
                s.failed_attempts.per_minute.get(),
                s.failed_attempts.burst.get()
            ),
            (10, 20)
        );
        assert_eq!(s.trusted_proxies, TrustedProxies::default());
        assert_eq!(s.http, ConnectionLimits::DEFAULT);
        assert_eq!(s.http.header_read_timeout, Duration::from_secs(10));
        assert_eq!(s.http.idle_timeout, Duration::from_secs(60));
        assert!(s.service_tokens.is_none());
        assert_eq!(s.max_body_bytes, 65_536);
        assert_eq!(s.upstream_timeout, Duration::from_millis(5_000));
        assert!(s.carriers.is_empty());
    }

    #[test]
    fn every_variable_is_read() {
        let env = Env::from_pairs([
            ("GATEWAY_GRPC_ADDR", "127.0.0.1:1"),
            ("GATEWAY_HTTP_ADDR", "127.0.0.1:2"),
            ("GATEWAY_DISPATCH_URL", "http://dispatch:50053"),
            ("GATEWAY_RETURNS_URL", "https://returns:50052"),
            ("REDIS_URL", "redis://redis:6379"),
            ("REDIS_KEY_PREFIX", "prod:"),
            ("GATEWAY_RATE_LIMIT_PER_SEC", "5"),
            ("GATEWAY_RATE_LIMIT_BURST", "7"),
            ("GATEWAY_KEY_CACHE_MS", "0"),
            ("GATEWAY_NEGATIVE_KEY_CACHE_MS", "0"),
            ("GATEWAY_FAILED_AUTH_PER_MINUTE", "3"),
            ("GATEWAY_FAILED_AUTH_BURST", "4"),
            ("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8"),
            ("GATEWAY_HEADER_READ_TIMEOUT_MS", "1500"),
            ("GATEWAY_IDLE_TIMEOUT_MS", "2500"),
            ("GATEWAY_HTTP2_KEEPALIVE_INTERVAL_MS", "3500"),
            ("GATEWAY_HTTP2_KEEPALIVE_TIMEOUT_MS", "4500"),
            ("GATEWAY_HTTP2_MAX_CONCURRENT_STREAMS", "16"),
            ("GATEWAY_CLIENT_ID", "gateway"),
            ("GATEWAY_CLIENT_SECRET_FILE", "/run/secrets/gateway"),
            ("AUTH_TOKEN_URL", "https://id.example.com/token"),
            (
                "GATEWAY_CARRIER_SECRETS",
                "sf=0123456789abcdef,jd=fedcba9876543210",
            ),
            ("GATEWAY_MAX_BODY_BYTES", "1024"),
            ("GATEWAY_UPSTREAM_TIMEOUT_MS", "250"),
        ]);
        let s = settings_from_env(&env).unwrap();
        assert_eq!(s.grpc_addr.port(), 1);
        assert_eq!(s.http_addr.port(), 2);
        assert_eq!(s.dispatch_url, "http://dispatch:50053");
        let redis = s.redis.unwrap();
        assert_eq!(
            (redis.url.as_str(), redis.key_prefix.as_str()),
            ("redis://redis:6379", "prod:")
        );
        assert_eq!((s.quota.per_second.get(), s.quota.burst.get()), (5, 7));
        assert_eq!(s.key_cache_ttl, Duration::ZERO);
        assert_eq!(s.negative_key_cache_ttl, Duration::ZERO);
        assert_eq!(
            (
                s.failed_attempts.per_minute.get(),
                s.failed_attempts.burst.get()
            ),
            (3, 4)
        );
        assert_eq!(
            s.trusted_proxies,
            TrustedProxies::parse("10.0.0.0/8").unwrap()
        );
        assert_eq!(
            s.http,
            ConnectionLimits {
                header_read_timeout: Duration::from_millis(1_500),
                idle_timeout: Duration::from_millis(2_500),
                keepalive_interval: Duration::from_millis(3_500),
                keepalive_timeout: Duration::from_millis(4_500),
                max_concurrent_streams: 16,
            }
        );
        assert!(s.service_tokens.is_some());
        assert!(!s.carriers.is_empty());
        assert_eq!(s.max_body_bytes, 1024);
        assert_eq!(s.upstream_timeout, Duration::from_millis(250));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases = [
            ("GATEWAY_GRPC_ADDR", "localhost"),
            ("GATEWAY_DISPATCH_URL", "dispatch:50053"),
            ("GATEWAY_RETURNS_URL", "ftp://returns"),
            ("GATEWAY_RATE_LIMIT_PER_SEC", "0"),
            ("GATEWAY_RATE_LIMIT_BURST", "many"),
            ("GATEWAY_MAX_BODY_BYTES", "0"),
            ("GATEWAY_UPSTREAM_TIMEOUT_MS", "0"),
            ("GATEWAY_CARRIER_SECRETS", "sf=tooshort"),
            ("GATEWAY_FAILED_AUTH_PER_MINUTE", "0"),
            ("GATEWAY_FAILED_AUTH_BURST", "-1"),
            ("GATEWAY_TRUSTED_PROXIES", "proxy.local"),
            ("GATEWAY_HEADER_READ_TIMEOUT_MS", "0"),
            ("GATEWAY_IDLE_TIMEOUT_MS", "soon"),
            ("GATEWAY_HTTP2_MAX_CONCURRENT_STREAMS", "0"),
        ];
        for (name, value) in cases {
            let err = settings_from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(err.name, name, "{err}");
        }
        let err = settings_from_env(&Env::from_pairs([(
            "GATEWAY_CARRIER_SECRETS",
            "sf=tooshort",
        )]))
        .unwrap_err();
        assert!(!err.to_string().contains("tooshort"), "{err}");

        // Client credentials need a token endpoint to exchange them at, and both halves.
        let err =
            settings_from_env(&Env::from_pairs([("GATEWAY_CLIENT_ID", "gateway")])).unwrap_err();
        assert_eq!(err.name, "AUTH_TOKEN_URL", "{err}");
        let err = settings_from_env(&Env::from_pairs([
            ("GATEWAY_CLIENT_ID", "gateway"),
            ("AUTH_TOKEN_URL", "https://id.example.com/token"),
        ]))
        .unwrap_err();
        assert_eq!(err.name, "GATEWAY_CLIENT_SECRET", "{err}");
    }
}
