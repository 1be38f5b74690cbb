//! The gateway's settings: addresses, upstreams, limits, key caches, carrier secrets and
//! service credentials, read from `GATEWAY_*` variables, `REDIS_URL` or
//! `REDIS_CLUSTER_NODES`, `REDIS_KEY_PREFIX` and the server kit's variables.

use std::{net::SocketAddr, num::NonZeroU32, time::Duration};

use aftersales_platform::{
    auth::{SetupError, TokenSource},
    config::{ConfigError, Env},
    redis_conn::{self, RedisTarget, RedisTls},
    server::ServerSettings,
    tls::{ServerTlsSettings, UpstreamTls},
};
use tonic::transport::Endpoint;

use crate::{
    carrier::CarrierSecrets,
    http::serve::ConnectionLimits,
    limiter::{AttemptQuota, Quota},
    peer::TrustedProxies,
};

/// The gRPC port `aftersales dev` and the manifests use for the gateway.
pub const DEFAULT_GRPC_PORT: u16 = 50055;
/// The HTTP port of the partner API.
pub const DEFAULT_HTTP_PORT: u16 = 8080;

/// Where the shared rate limit lives.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// One Redis (`REDIS_URL`) or a Redis Cluster (`REDIS_CLUSTER_NODES`).
    pub target: RedisTarget,
    pub key_prefix: String,
}

#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub dispatch_url: String,
    pub returns_url: String,
    /// The webhooks service, which keeps partners' webhook endpoints (`GATEWAY_WEBHOOKS_URL`).
    pub webhooks_url: String,
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
    /// TLS on the HTTP face (`GATEWAY_HTTP_TLS_*`): its own certificate, since partners
    /// reach it under a public name; `None` serves plaintext (TLS ended in front of it).
    pub http_tls: Option<ServerTlsSettings>,
    /// How `https://` upstreams are checked (`UPSTREAM_*`).
    pub upstream_tls: UpstreamTls,
    /// How a `rediss://` Redis is checked (`REDIS_CA_FILE`, …).
    pub redis_tls: RedisTls,
    /// The gateway's own tokens for dispatch, returns and webhooks (OAuth 2.0 client credentials);
    /// `None` calls them without a token.
    pub service_tokens: Option<TokenSource>,
    pub carriers: CarrierSecrets,
    /// Largest HTTP body and gRPC message accepted.
    pub max_body_bytes: usize,
    /// Longest wait for dispatch, returns or webhooks before answering DEADLINE_EXCEEDED / 504.
    pub upstream_timeout: Duration,
    pub server: ServerSettings,
}

const TEST_RATE: NonZeroU32 = match NonZeroU32::new(1_000) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

impl GatewaySettings {
    /// Loopback on port 0 for both faces, no key caches, in-process limiters. The webhooks
    /// upstream is a closed port until a test sets `webhooks_url` (channels connect on
    /// first use, so it is never dialled otherwise).
    pub fn for_tests(dispatch_url: String, returns_url: String) -> Self {
        Self {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dispatch_url,
            returns_url,
            webhooks_url: "http://127.0.0.1:9".to_owned(),
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
            http_tls: None,
            upstream_tls: UpstreamTls::default(),
            redis_tls: RedisTls::default(),
            service_tokens: None,
            carriers: CarrierSecrets::default(),
            max_body_bytes: 65_536,
            upstream_timeout: Duration::from_secs(5),
            server: ServerSettings::for_tests(),
        }
    }
}

/// `GATEWAY_*` variables, `REDIS_URL` or `REDIS_CLUSTER_NODES`, `REDIS_KEY_PREFIX` and the
/// server kit's variables.
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
    let redis = match RedisTarget::from_env(env)? {
        Some(target) => Some(RedisSettings {
            target,
            key_prefix: redis_conn::key_prefix(env)?,
        }),
        None => None,
    };
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
        webhooks_url: upstream("GATEWAY_WEBHOOKS_URL", "http://127.0.0.1:50056")?,
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
        http_tls: ServerTlsSettings::from_env(env, "GATEWAY_HTTP_")?,
        upstream_tls: UpstreamTls::from_env(env)?,
        redis_tls: RedisTls::from_env(env)?,
        service_tokens: service_tokens(env)?,
        carriers,
        max_body_bytes: env.positive("GATEWAY_MAX_BODY_BYTES", 65_536)?,
        upstream_timeout: env.millis("GATEWAY_UPSTREAM_TIMEOUT_MS", 5_000, false)?,
        server: ServerSettings {
            health_addr: env.optional("GATEWAY_GRPC_HEALTH_ADDR")?,
            ..ServerSettings::from_env(env)?
        },
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
        assert_eq!(s.webhooks_url, "http://127.0.0.1:50056");
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
            ("GATEWAY_WEBHOOKS_URL", "http://webhooks:50056"),
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
        assert_eq!(s.returns_url, "https://returns:50052");
        assert_eq!(s.webhooks_url, "http://webhooks:50056");
        let redis = s.redis.unwrap();
        assert_eq!(
            (redis.target, redis.key_prefix.as_str()),
            (RedisTarget::Single("redis://redis:6379".into()), "prod:")
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
            ("GATEWAY_WEBHOOKS_URL", "webhooks:50056"),
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

        // Braces in the prefix would move keys out of their hash-tagged slots.
        let err = settings_from_env(&Env::from_pairs([
            ("REDIS_CLUSTER_NODES", "redis://a:7001"),
            ("REDIS_KEY_PREFIX", "{prod}:"),
        ]))
        .unwrap_err();
        assert_eq!(err.name, "REDIS_KEY_PREFIX", "{err}");
    }
}
