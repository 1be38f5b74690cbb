//! Prometheus metrics of a process: one registry for every service it runs, the
//! recording calls the server kit, workers and relays make, and the `/metrics` endpoint
//! (`METRICS_ADDR`) a scraper reads. Names and labels are the ones the alerts and the
//! dashboard under `k8s/components/monitoring` query.

use std::{
    net::SocketAddr,
    sync::{LazyLock, atomic::AtomicU64},
    time::Duration,
};

use axum::{Router, http::header, response::IntoResponse, routing::get};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, Env};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    service: String,
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    service: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    service: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    service: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// RPC latency buckets: 0.5 ms to ~16 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_5, 2.0, 16))
}

/// Firing lateness buckets: 1 ms to ~65 s, doubling (the alert looks at 1 s).
fn lateness_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

struct Metrics {
    registry: Registry,
    rpc_requests: Family<RpcLabels, Counter>,
    rpc_duration: Histograms<MethodLabels>,
    clocks_pending: Family<QueueLabels, Gauge>,
    clocks_fired: Family<QueueLabels, Counter>,
    firing_lateness: Histograms<QueueLabels>,
    breaches: Family<ServiceLabels, Counter>,
    outbox_backlog: Family<ServiceLabels, Gauge>,
    outbox_oldest_age: Family<ServiceLabels, FloatGauge>,
    consumer_lag: Family<GroupLabels, Gauge>,
    consumer_pending: Family<GroupLabels, Gauge>,
    pool_connections: Family<PoolLabels, Gauge>,
    pool_max: Family<ServiceLabels, Gauge>,
    redis_commands: Family<OutcomeLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Histograms<RouteLabels>,
    rate_limited: Counter,
    webhook_attempts: Family<WebhookLabels, Counter>,
    webhook_duration: Histograms<WebhookLabels>,
    webhook_disabled: Counter,
    parts_low_stock: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    /// `2xx`, `4xx`, `5xx`, `other` (any other status) or `error` (no answer).
    outcome: String,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::default();
    let m = Metrics {
        rpc_requests: Family::default(),
        rpc_duration: Family::new_with_constructor(latency_histogram),
        clocks_pending: Family::default(),
        clocks_fired: Family::default(),
        firing_lateness: Family::new_with_constructor(lateness_histogram),
        breaches: Family::default(),
        outbox_backlog: Family::default(),
        outbox_oldest_age: Family::default(),
        consumer_lag: Family::default(),
        consumer_pending: Family::default(),
        pool_connections: Family::default(),
        pool_max: Family::default(),
        redis_commands: Family::default(),
        http_requests: Family::default(),
        http_duration: Family::new_with_constructor(latency_histogram),
        rate_limited: Counter::default(),
        webhook_attempts: Family::default(),
        webhook_duration: Family::new_with_constructor(latency_histogram),
        webhook_disabled: Counter::default(),
        parts_low_stock: Counter::default(),
        registry: Registry::default(),
    };
    // Counters get their `_total` suffix from the encoder.
    registry.register(
        "grpc_server_requests",
        "gRPC calls answered, by final status code",
        m.rpc_requests.clone(),
    );
    registry.register(
        "grpc_server_request_duration_seconds",
        "gRPC call latency",
        m.rpc_duration.clone(),
    );
    registry.register(
        "sla_clocks_pending",
        "Deadlines scheduled and not yet fired",
        m.clocks_pending.clone(),
    );
    registry.register(
        "sla_clocks_fired",
        "Deadlines handed to their handler",
        m.clocks_fired.clone(),
    );
    registry.register(
        "sla_firing_lateness_seconds",
        "Handler start minus due instant",
        m.firing_lateness.clone(),
    );
    registry.register(
        "sla_breaches",
        "Deadlines missed (SLA breaches, late visits, overdue steps)",
        m.breaches.clone(),
    );
    registry.register(
        "outbox_backlog",
        "Outbox events not yet published",
        m.outbox_backlog.clone(),
    );
    registry.register(
        "outbox_oldest_age_seconds",
        "Age of the oldest unpublished outbox event",
        m.outbox_oldest_age.clone(),
    );
    registry.register(
        "event_consumer_lag",
        "Stream entries not yet delivered to the group",
        m.consumer_lag.clone(),
    );
    registry.register(
        "event_consumer_pending",
        "Entries delivered to the group and not acknowledged",
        m.consumer_pending.clone(),
    );
    registry.register(
        "db_pool_connections",
        "Database pool connections by state",
        m.pool_connections.clone(),
    );
    registry.register(
        "db_pool_max_connections",
        "Database pool size limit",
        m.pool_max.clone(),
    );
    registry.register(
        "redis_commands",
        "Redis round trips by outcome",
        m.redis_commands.clone(),
    );
    registry.register(
        "http_server_requests",
        "HTTP requests answered, by route and status",
        m.http_requests.clone(),
    );
    registry.register(
        "http_server_request_duration_seconds",
        "HTTP request latency",
        m.http_duration.clone(),
    );
    registry.register(
        "gateway_rate_limited",
        "Partner calls refused by the rate limit",
        m.rate_limited.clone(),
    );
    registry.register(
        "webhook_delivery_attempts",
        "Webhook delivery attempts, by the receiver's answer",
        m.webhook_attempts.clone(),
    );
    registry.register(
        "webhook_delivery_attempt_duration_seconds",
        "Webhook delivery attempt latency, connection included",
        m.webhook_duration.clone(),
    );
    registry.register(
        "webhook_endpoints_disabled",
        "Webhook endpoints disabled for failing too long",
        m.webhook_disabled.clone(),
    );
    registry.register(
        "parts_low_stock",
        "Part stock at a site falling below its low-stock threshold (once per crossing)",
        m.parts_low_stock.clone(),
    );
    Metrics { registry, ..m }
});

/// One answered gRPC call; `path` is `/package.Service/Method`, `code` the grpc-status
/// number.
pub fn rpc(path: &str, code: &str, elapsed: Duration) {
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("unknown", path));
    let labels = MethodLabels {
        service: service.to_owned(),
        method: method.to_owned(),
    };
    METRICS
        .rpc_duration
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
    METRICS
        .rpc_requests
        .get_or_create(&RpcLabels {
            service: labels.service,
            method: labels.method,
            code: code_name(code).to_owned(),
        })
        .inc();
}

/// The canonical name of a grpc-status number (`0` → `OK`).
fn code_name(code: &str) -> &'static str {
    match code.parse::<i32>().map(tonic::Code::from) {
        Ok(tonic::Code::Ok) => "OK",
        Ok(tonic::Code::Cancelled) => "Cancelled",
        Ok(tonic::Code::InvalidArgument) => "InvalidArgument",
        Ok(tonic::Code::DeadlineExceeded) => "DeadlineExceeded",
        Ok(tonic::Code::NotFound) => "NotFound",
        Ok(tonic::Code::AlreadyExists) => "AlreadyExists",
        Ok(tonic::Code::PermissionDenied) => "PermissionDenied",
        Ok(tonic::Code::ResourceExhausted) => "ResourceExhausted",
        Ok(tonic::Code::FailedPrecondition) => "FailedPrecondition",
        Ok(tonic::Code::Aborted) => "Aborted",
        Ok(tonic::Code::OutOfRange) => "OutOfRange",
        Ok(tonic::Code::Unimplemented) => "Unimplemented",
        Ok(tonic::Code::Internal) => "Internal",
        Ok(tonic::Code::Unavailable) => "Unavailable",
        Ok(tonic::Code::DataLoss) => "DataLoss",
        Ok(tonic::Code::Unauthenticated) => "Unauthenticated",
        _ => "Unknown",
    }
}

fn queue(name: &str) -> QueueLabels {
    QueueLabels {
        queue: name.to_owned(),
    }
}

fn service(name: &str) -> ServiceLabels {
    ServiceLabels {
        service: name.to_owned(),
    }
}

/// One deadline handed to its handler, `lateness` after it came due.
pub fn clock_fired(queue_name: &str, lateness: Duration) {
    METRICS.clocks_fired.get_or_create(&queue(queue_name)).inc();
    METRICS
        .firing_lateness
        .get_or_create(&queue(queue_name))
        .observe(lateness.as_secs_f64());
}

pub fn clocks_pending(queue_name: &str, pending: u64) {
    METRICS
        .clocks_pending
        .get_or_create(&queue(queue_name))
        .set(i64::try_from(pending).unwrap_or(i64::MAX));
}

/// A deadline missed: an SLA breach, a late visit, an overdue return step.
pub fn breach(service_name: &str) {
    METRICS.breaches.get_or_create(&service(service_name)).inc();
}

pub fn outbox(service_name: &str, backlog: u64, oldest_age: Duration) {
    METRICS
        .outbox_backlog
        .get_or_create(&service(service_name))
        .set(i64::try_from(backlog).unwrap_or(i64::MAX));
    METRICS
        .outbox_oldest_age
        .get_or_create(&service(service_name))
        .set(oldest_age.as_secs_f64());
}

pub fn consumer(group: &str, lag: u64, pending: u64) {
    let labels = GroupLabels {
        group: group.to_owned(),
    };
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    METRICS.consumer_lag.get_or_create(&labels).set(clamp(lag));
    METRICS
        .consumer_pending
        .get_or_create(&labels)
        .set(clamp(pending));
}

pub fn db_pool(service_name: &str, in_use: u32, idle: u32, max: u32) {
    for (state, n) in [("in_use", in_use), ("idle", idle)] {
        METRICS
            .pool_connections
            .get_or_create(&PoolLabels {
                service: service_name.to_owned(),
                state: state.to_owned(),
            })
            .set(i64::from(n));
    }
    METRICS
        .pool_max
        .get_or_create(&service(service_name))
        .set(i64::from(max));
}

pub fn redis_command(service_name: &str, ok: bool) {
    METRICS
        .redis_commands
        .get_or_create(&OutcomeLabels {
            service: service_name.to_owned(),
            outcome: if ok { "ok" } else { "error" }.to_owned(),
        })
        .inc();
}

/// One answered HTTP request; `route` is the matched route template, not the raw path.
pub fn http(route: &str, status: u16, elapsed: Duration) {
    METRICS
        .http_requests
        .get_or_create(&HttpLabels {
            route: route.to_owned(),
            status: status.to_string(),
        })
        .inc();
    METRICS
        .http_duration
        .get_or_create(&RouteLabels {
            route: route.to_owned(),
        })
        .observe(elapsed.as_secs_f64());
}

pub fn rate_limited() {
    METRICS.rate_limited.inc();
}

/// One webhook delivery attempt: the receiver's status (`None` without an answer) and how
/// long it took. Endpoints are not a label: their number is the customers' to choose.
pub fn webhook_attempt(status: Option<u16>, elapsed: Duration) {
    let outcome = match status {
        None => "error",
        Some(200..=299) => "2xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) => "other",
    };
    let labels = WebhookLabels {
        outcome: outcome.to_owned(),
    };
    METRICS.webhook_attempts.get_or_create(&labels).inc();
    METRICS
        .webhook_duration
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
}

pub fn webhook_endpoint_disabled() {
    METRICS.webhook_disabled.inc();
}

/// A part's available stock at a site fell below its threshold (dispatch's PartLowStock).
pub fn part_low_stock() {
    METRICS.parts_low_stock.inc();
}

/// The text exposition of every metric.
pub fn render() -> String {
    let mut out = String::new();
    if let Err(err) = encode(&mut out, &METRICS.registry) {
        tracing::warn!(error = %err, "encoding metrics failed");
    }
    out
}

/// Where `/metrics` is served (`METRICS_ADDR`; `off` disables it).
pub fn addr_from_env(env: &Env, default: &str) -> Result<Option<SocketAddr>, ConfigError> {
    let raw = env
        .raw("METRICS_ADDR")
        .unwrap_or_else(|| default.to_owned());
    if raw == "off" {
        return Ok(None);
    }
    raw.parse()
        .map(Some)
        .map_err(|_| ConfigError::new("METRICS_ADDR", &raw, "must be host:port or off"))
}

/// Serves `/metrics` until `shutdown`. A port already taken is logged, not fatal: the
/// services matter more than their scrape target.
pub async fn serve(addr: SocketAddr, shutdown: CancellationToken) {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!(%addr, error = %err, "metrics endpoint not served");
            return;
        }
    };
    tracing::info!(addr = ?listener.local_addr().ok(), "metrics on /metrics");
    let app = Router::new().route("/metrics", get(metrics_page));
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    if let Err(err) = served {
        tracing::warn!(error = %err, "metrics endpoint stopped");
    }
}

async fn metrics_page() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_figures_appear_under_the_documented_names() {
        rpc(
            "/aftersales.tickets.v1.TicketService/GetTicket",
            "5",
            Duration::from_millis(3),
        );
        clock_fired("sla", Duration::from_millis(20));
        clocks_pending("sla", 7);
        outbox("tickets", 2, Duration::from_secs(1));
        db_pool("tickets", 1, 3, 16);
        let page = render();
        for expected in [
            r#"grpc_server_requests_total{service="aftersales.tickets.v1.TicketService",method="GetTicket",code="NotFound"} 1"#,
            r#"grpc_server_request_duration_seconds_count{service="aftersales.tickets.v1.TicketService",method="GetTicket"} 1"#,
            r#"sla_clocks_fired_total{queue="sla"} 1"#,
            r#"sla_clocks_pending{queue="sla"} 7"#,
            r#"outbox_backlog{service="tickets"} 2"#,
            r#"db_pool_connections{service="tickets",state="in_use"} 1"#,
        ] {
            assert!(page.contains(expected), "{expected} missing from\n{page}");
        }
    }
}
