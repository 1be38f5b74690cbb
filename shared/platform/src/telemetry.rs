//! Logs and traces: JSON (or human-readable) logs through `tracing`, OpenTelemetry OTLP
//! export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and W3C trace-context propagation
//! through gRPC metadata and event headers.

use std::collections::HashMap;

use opentelemetry::{
    Context, global,
    propagation::{Extractor, Injector},
    trace::TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::{ConfigError, Env};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text),
            other => Err(format!("expected json or text, got {other}")),
        }
    }
}

/// Telemetry settings from `LOG_FORMAT`, `RUST_LOG`, `OTEL_EXPORTER_OTLP_ENDPOINT`
/// and `OTEL_SERVICE_NAME`.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    pub service_name: String,
    pub log_format: LogFormat,
    pub otlp_endpoint: Option<String>,
}

impl TelemetrySettings {
    pub fn from_env(
        env: &Env,
        default_service: &str,
        default_format: LogFormat,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            service_name: env
                .raw("OTEL_SERVICE_NAME")
                .unwrap_or_else(|| default_service.to_owned()),
            log_format: env.or("LOG_FORMAT", default_format)?,
            otlp_endpoint: env.raw("OTEL_EXPORTER_OTLP_ENDPOINT"),
        })
    }
}

/// Flushes exported spans when dropped at the end of `main`.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber and propagator. Call once, first thing in `main`.
pub fn init(
    settings: &TelemetrySettings,
) -> Result<TelemetryGuard, Box<dyn std::error::Error + Send + Sync>> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = match settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer().compact().boxed(),
    };

    let mut guard = TelemetryGuard::default();
    let otel = match &settings.otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name(settings.service_name.clone())
                        .build(),
                )
                .build();
            let tracer = provider.tracer("aftersales");
            global::set_tracer_provider(provider.clone());
            guard.provider = Some(provider);
            Some(tracing_opentelemetry::layer().with_tracer(tracer))
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()?;
    Ok(guard)
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MapCarrier<'a>(&'a mut HashMap<String, String>);

impl Injector for MapCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

impl Extractor for MapCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The remote parent carried by incoming HTTP/2 (gRPC) headers, if any.
pub fn context_from_headers(headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// The current span's context as W3C headers (`traceparent`, `tracestate`), for events and
/// outgoing calls.
pub fn current_trace_headers() -> HashMap<String, String> {
    let mut headers = HashMap::new();
    let context = tracing::Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&context, &mut MapCarrier(&mut headers)));
    headers
}

/// Makes the context carried by `headers` (from an event) the parent of `span`.
pub fn adopt_trace_headers(span: &tracing::Span, headers: &HashMap<String, String>) {
    let mut copy = headers.clone();
    let parent = global::get_text_map_propagator(|p| p.extract(&MapCarrier(&mut copy)));
    let _ = span.set_parent(parent);
}

/// A tonic client interceptor that forwards the current trace context in metadata.
pub fn propagate_trace(
    mut request: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    for (key, value) in current_trace_headers() {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            value.parse(),
        ) {
            request.metadata_mut().insert(key, value);
        }
    }
    Ok(request)
}
