//! The HTTP/JSON face: the same partner operations as the gRPC face over axum, plus carrier
//! webhooks, `/healthz` and the OpenAPI document, served with bounded connections
//! (`serve`). Extractors here admit the caller before anything of the request is read, and
//! turn every unreadable part into a 400 naming it.

pub mod error;
pub mod model;
pub mod openapi;
mod routes;
pub mod serve;

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use aftersales_platform::metrics;
use axum::{
    Router,
    body::Bytes,
    extract::{
        ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Path, Request,
    },
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use http::{StatusCode, request::Parts};
use serde::de::DeserializeOwned;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{auth::Partner, core::Gateway, http::error::ApiError};

/// What every handler is given.
#[derive(Clone)]
pub struct HttpState {
    pub gateway: Arc<Gateway>,
    pub max_body_bytes: usize,
}

/// The router of the HTTP face; every request, its body included, is answered within
/// `request_timeout`.
pub fn router(gateway: Arc<Gateway>, max_body_bytes: usize, request_timeout: Duration) -> Router {
    let state = HttpState {
        gateway,
        max_body_bytes,
    };
    routes::routes()
        .fallback(|| async { ApiError::route_not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            within(request_timeout, request, next)
        }))
        .layer(middleware::from_fn(trace))
        .with_state(state)
}

/// 408 for a request not done within `limit`, so a sender trickling its body cannot hold
/// a connection longer (handlers finish sooner: their upstream calls have their own
/// bound).
async fn within(limit: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::request_timeout(limit).into_response(),
    }
}

/// A span per request named after its route, continuing the caller's W3C trace, and the
/// request counted in the HTTP metrics by route template.
async fn trace(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let span = tracing::info_span!(
        "http",
        otel.name = %format!("{} {}", request.method(), route),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    let _ = span.set_parent(aftersales_platform::telemetry::context_from_headers(
        request.headers(),
    ));
    let started = Instant::now();
    async move {
        let response = next.run(request).await;
        let status = response.status().as_u16();
        tracing::Span::current().record("http.response.status_code", status);
        metrics::http(&route, status, started.elapsed());
        response
    }
    .instrument(span)
    .await
}

/// The partner of the request's API key, admitted by its rate limit. Runs before any
/// other extractor, so an unauthenticated caller learns nothing about its request.
pub struct Admitted(pub Partner);

impl FromRequestParts<HttpState> for Admitted {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| *addr);
        Ok(Admitted(state.gateway.admit(&parts.headers, peer).await?))
    }
}

/// The `{job_id}` path segment.
pub struct JobId(pub String);

impl FromRequestParts<HttpState> for JobId {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        path_segment(parts, state, "job_id").await.map(JobId)
    }
}

/// The `{endpoint_id}` path segment of a webhook endpoint's routes.
pub struct EndpointId(pub String);

impl FromRequestParts<HttpState> for EndpointId {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        path_segment(parts, state, "endpoint_id")
            .await
            .map(EndpointId)
    }
}

/// The `{endpoint_id}` and `{delivery_id}` path segments of one delivery.
pub struct DeliveryPath {
    pub endpoint_id: String,
    pub delivery_id: String,
}

impl FromRequestParts<HttpState> for DeliveryPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map(|Path((endpoint_id, delivery_id))| DeliveryPath {
                endpoint_id,
                delivery_id,
            })
            .map_err(|rejection| ApiError::invalid("path", rejection.body_text()))
    }
}

/// The `{carrier}` path segment.
pub struct Carrier(pub String);

impl FromRequestParts<HttpState> for Carrier {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        path_segment(parts, state, "carrier").await.map(Carrier)
    }
}

async fn path_segment(
    parts: &mut Parts,
    state: &HttpState,
    field: &str,
) -> Result<String, ApiError> {
    Path::<String>::from_request_parts(parts, state)
        .await
        .map(|Path(value)| value)
        .map_err(|rejection| ApiError::invalid(field, rejection.body_text()))
}

/// The raw body, within the size limit (413 beyond it).
pub struct RawBody(pub Bytes);

impl FromRequest<HttpState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &HttpState) -> Result<Self, Self::Rejection> {
        Bytes::from_request(request, state)
            .await
            .map(RawBody)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::payload_too_large(state.max_body_bytes)
                } else {
                    ApiError::invalid("body", rejection.body_text())
                }
            })
    }
}

/// A JSON body; an empty body reads as `{}`, so bodies whose fields are all optional may
/// be left out. A field that cannot be read is named in the 400.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<HttpState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &HttpState) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(request, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Reads `bytes` as `T`, naming the field at fault.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let message = err.inner().to_string();
        let field = if path == "." {
            missing_field(&message).unwrap_or("body").to_owned()
        } else {
            path
        };
        ApiError::invalid(&field, message)
    })?;
    deserializer
        .end()
        .map_err(|err| ApiError::invalid("body", err.to_string()))?;
    Ok(value)
}

/// serde reports a missing field at the parent's path; the field's own name is better.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .split('`')
        .next()
        .filter(|f| !f.is_empty())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[allow(dead_code)]
        scheduled_for: chrono::DateTime<chrono::Utc>,
        #[serde(default)]
        #[allow(dead_code)]
        lines: Vec<Line>,
    }

    #[derive(Debug, Deserialize)]
    struct Line {
        #[allow(dead_code)]
        quantity: u32,
    }

    async fn field_of(err: ApiError) -> String {
        let response = err.into_response();
        let bytes = axum::body::to_bytes(response.into_body(), 10_000)
            .await
            .unwrap();
        let body: model::ErrorBody = serde_json::from_slice(&bytes).unwrap();
        body.field_violations[0].field.clone()
    }

    #[tokio::test]
    async fn json_errors_name_the_field() {
        let err = parse_json::<Body>(b"{}").unwrap_err();
        assert_eq!(field_of(err).await, "scheduled_for");
        let err = parse_json::<Body>(br#"{"scheduled_for":"yesterday"}"#).unwrap_err();
        assert_eq!(field_of(err).await, "scheduled_for");
        let err = parse_json::<Body>(
            br#"{"scheduled_for":"2026-11-23T10:00:00Z","lines":[{"quantity":-1}]}"#,
        )
        .unwrap_err();
        assert_eq!(field_of(err).await, "lines[0].quantity");
        let err = parse_json::<Body>(br#"{"scheduled_for":"2026-11-23T10:00:00Z"} x"#).unwrap_err();
        assert_eq!(field_of(err).await, "body");
        assert!(parse_json::<Body>(br#"{"scheduled_for":"2026-11-23T10:00:00Z"}"#).is_ok());
    }
}
