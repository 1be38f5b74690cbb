//! The gRPC server kit every service runs on: health and reflection, tower layers for
//! request timeouts, per-connection concurrency limits with load shedding and a span per
//! RPC (continuing the caller's W3C trace), TLS (optionally mutual) from certificate files
//! that are reloaded when they change, bounds on connections that never finish their
//! handshake, and a graceful shutdown that first reports NOT_SERVING, then drains
//! in-flight RPCs within a bound.

mod accept;

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{body::Body, server::NamedService, service::RoutesBuilder, transport::Server};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::Service;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    auth::AuthLayer,
    config::{ConfigError, Env},
    tls::{self, ReloadingConfig, ServerTlsSettings},
};

/// Limits and timings of one server, from the environment.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Longest an RPC may run before it answers `Cancelled` (GRPC_REQUEST_TIMEOUT_MS).
    pub request_timeout: Duration,
    /// RPCs in flight per connection before new ones are shed (GRPC_CONCURRENCY_LIMIT).
    pub concurrency_per_connection: usize,
    /// After NOT_SERVING, how long load balancers get to notice (SHUTDOWN_HEALTH_GRACE_MS).
    pub health_grace: Duration,
    /// The bound on draining in-flight RPCs (SHUTDOWN_DRAIN_TIMEOUT_MS).
    pub drain_timeout: Duration,
    /// Connections are closed (gracefully) after this long, so clients reconnect and
    /// spread over new pods (GRPC_MAX_CONNECTION_AGE_MS; 0 keeps them open).
    pub max_connection_age: Option<Duration>,
    /// HTTP/2 PING this often on a quiet connection; a peer that does not answer within
    /// `keepalive_timeout` is disconnected, so dead and stalled peers do not hold
    /// connections (GRPC_KEEPALIVE_INTERVAL_MS, GRPC_KEEPALIVE_TIMEOUT_MS).
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    /// Streams one connection may have open at once (GRPC_MAX_CONCURRENT_STREAMS).
    pub max_concurrent_streams: u32,
    /// From accept, how long a connection has to finish its TLS handshake and send the
    /// HTTP/2 preface before it is closed (GRPC_HANDSHAKE_TIMEOUT_MS).
    pub handshake_timeout: Duration,
    /// TLS on the listener (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CLIENT_CA_FILE); `None`
    /// serves plaintext.
    pub tls: Option<ServerTlsSettings>,
    /// A second, plaintext listener that serves only the health service, for probes
    /// that cannot speak TLS (the kubelet's `grpc:` probe); `None` serves none. Set per
    /// service (`<PREFIX>_GRPC_HEALTH_ADDR`), since one process may serve several.
    pub health_addr: Option<SocketAddr>,
}

impl ServerSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            request_timeout: env.millis("GRPC_REQUEST_TIMEOUT_MS", 10_000, false)?,
            concurrency_per_connection: env.positive("GRPC_CONCURRENCY_LIMIT", 256)?,
            health_grace: env.millis("SHUTDOWN_HEALTH_GRACE_MS", 2_000, true)?,
            drain_timeout: env.millis("SHUTDOWN_DRAIN_TIMEOUT_MS", 20_000, false)?,
            max_connection_age: Some(env.millis("GRPC_MAX_CONNECTION_AGE_MS", 0, true)?)
                .filter(|age| !age.is_zero()),
            keepalive_interval: env.millis("GRPC_KEEPALIVE_INTERVAL_MS", 30_000, false)?,
            keepalive_timeout: env.millis("GRPC_KEEPALIVE_TIMEOUT_MS", 10_000, false)?,
            max_concurrent_streams: u32::try_from(
                env.positive("GRPC_MAX_CONCURRENT_STREAMS", 256)?,
            )
            .unwrap_or(u32::MAX),
            handshake_timeout: env.millis("GRPC_HANDSHAKE_TIMEOUT_MS", 10_000, false)?,
            tls: ServerTlsSettings::from_env(env, "")?,
            health_addr: None,
        })
    }

    /// Settings for tests: no grace period, short drain.
    pub fn for_tests() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            concurrency_per_connection: 256,
            health_grace: Duration::ZERO,
            drain_timeout: Duration::from_secs(5),
            max_connection_age: None,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            max_concurrent_streams: 256,
            handshake_timeout: Duration::from_secs(10),
            tls: None,
            health_addr: None,
        }
    }
}

/// The application services one server exposes, with the names health and reflection
/// report: a port lists exactly what it serves.
pub struct GrpcServices {
    routes: RoutesBuilder,
    names: Vec<&'static str>,
    descriptor_sets: Vec<&'static [u8]>,
    auth: Option<AuthLayer>,
}

impl Default for GrpcServices {
    fn default() -> Self {
        Self {
            routes: RoutesBuilder::default(),
            names: Vec::new(),
            descriptor_sets: vec![
                aftersales_protos::FILE_DESCRIPTOR_SET,
                tonic_health::pb::FILE_DESCRIPTOR_SET,
            ],
            auth: None,
        }
    }
}

impl GrpcServices {
    pub fn new() -> Self {
        Self::default()
    }

    /// Another encoded descriptor set for reflection (a contract outside the production
    /// set, such as the bench's).
    pub fn with_descriptors(mut self, set: &'static [u8]) -> Self {
        self.descriptor_sets.push(set);
        self
    }

    /// Every RPC authenticated and checked against the service's permission table by
    /// `auth` (inside the per-RPC span, so refusals are traced and counted).
    pub fn with_auth(mut self, auth: AuthLayer) -> Self {
        self.auth = Some(auth);
        self
    }

    /// The names of the application services, as health and reflection report them.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    pub fn with<S>(mut self, service: S) -> Self
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }
}

/// Errors that stop a server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection descriptors: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsFileError),
    #[error("bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Binds an address (port 0 picks a free one); the listener's `local_addr` tells which.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves `services` plus health and reflection on `listener` until `shutdown` fires,
/// then reports NOT_SERVING, waits the health grace, and drains within the bound.
pub async fn serve(
    listener: TcpListener,
    settings: ServerSettings,
    services: GrpcServices,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let GrpcServices {
        mut routes,
        names,
        descriptor_sets,
        auth,
    } = services;
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in &names {
        health
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    // The probe port lives as long as this function: it reports NOT_SERVING through the
    // grace period and the drain, and closes when the main port is done.
    let health_stop = CancellationToken::new();
    let _health_stop = health_stop.clone().drop_guard();
    if let Some(addr) = settings.health_addr {
        serve_health_only(bind(addr).await?, health_service.clone(), health_stop);
    }
    routes
        .add_service(health_service)
        .add_service(reflection(&descriptor_sets, &names).build_v1()?)
        .add_service(reflection(&descriptor_sets, &names).build_v1alpha()?);

    let tls = match &settings.tls {
        Some(tls) => Some(Arc::new(ReloadingConfig::new(tls.clone(), tls::ALPN_GRPC)?)),
        None => None,
    };
    let drain = CancellationToken::new();
    let mut builder = Server::builder()
        .timeout(settings.request_timeout)
        .concurrency_limit_per_connection(settings.concurrency_per_connection)
        .load_shed(true)
        .http2_keepalive_interval(Some(settings.keepalive_interval))
        .http2_keepalive_timeout(Some(settings.keepalive_timeout))
        .max_concurrent_streams(settings.max_concurrent_streams);
    if let Some(age) = settings.max_connection_age {
        builder = builder.max_connection_age(age);
    }
    let server = builder
        .layer(RpcTraceLayer)
        .layer(tower::util::option_layer(auth))
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(
            accept::incoming(listener, tls, settings.handshake_timeout),
            drain.clone().cancelled_owned(),
        );
    tokio::pin!(server);

    tokio::select! {
        result = &mut server => return Ok(result?),
        () = shutdown.cancelled() => {}
    }
    tracing::info!(services = ?names, "shutting down: reporting NOT_SERVING");
    set_not_serving(&health, &names).await;
    tokio::select! {
        result = &mut server => return Ok(result?),
        () = tokio::time::sleep(settings.health_grace) => {}
    }
    drain.cancel();
    match tokio::time::timeout(settings.drain_timeout, &mut server).await {
        Ok(result) => Ok(result?),
        Err(_) => {
            tracing::warn!(timeout = ?settings.drain_timeout, "drain timed out; dropping remaining RPCs");
            Ok(())
        }
    }
}

/// Serves `health` alone, in plaintext, on `listener` until `stop`: the same reporter as
/// the main port, so it answers what the main port would (NOT_SERVING while draining).
fn serve_health_only<S>(listener: TcpListener, health: S, stop: CancellationToken)
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let result = Server::builder()
            .timeout(Duration::from_secs(5))
            .add_service(health)
            .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
            .await;
        if let Err(error) = result {
            tracing::warn!(%error, "the health-only port stopped");
        }
    });
}

/// Reflection listing the services this port serves (and health); v1alpha too, for
/// older grpcurl.
fn reflection(
    descriptor_sets: &[&'static [u8]],
    names: &[&'static str],
) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure();
    for set in descriptor_sets {
        builder = builder.register_encoded_file_descriptor_set(set);
    }
    builder = builder.with_service_name(HEALTH_SERVICE);
    for name in names {
        builder = builder.with_service_name(*name);
    }
    builder
}

/// The standard health service every port serves.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

async fn set_not_serving(health: &HealthReporter, names: &[&'static str]) {
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    for name in names {
        health
            .set_service_status(*name, ServingStatus::NotServing)
            .await;
    }
}

/// Opens a span per RPC named after its method, continuing the caller's trace context.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcTraceLayer;

impl<S> tower::Layer<S> for RpcTraceLayer {
    type Service = RpcTrace<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcTrace { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RpcTrace<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RpcTrace<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let span = tracing::info_span!(
            "rpc",
            otel.name = %request.uri().path(),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.grpc.status_code = tracing::field::Empty,
        );
        let _ = span.set_parent(crate::telemetry::context_from_headers(request.headers()));
        let path = request.uri().path().to_owned();
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Box::pin(
            async move {
                let started = Instant::now();
                let result = future.await;
                if let Ok(response) = &result {
                    // Trailers-only responses (errors) carry the code in the headers.
                    let code = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("0");
                    tracing::Span::current().record("rpc.grpc.status_code", code);
                    crate::metrics::rpc(&path, code, started.elapsed());
                }
                tracing::debug!(
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "rpc done"
                );
                result
            }
            .instrument(span),
        )
    }
}
