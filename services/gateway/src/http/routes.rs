//! The HTTP routes: glue from JSON to the core and back. Each handler is annotated with
//! its OpenAPI operation, so the document cannot drift from the routes. The routes of a
//! partner's webhook endpoints sit in `webhooks`.

mod webhooks;

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    response::IntoResponse,
    routing::{get, post},
};
use http::{HeaderMap, header};

use aftersales_platform::{codes::ProtoEnum, status::Violations};
use aftersales_protos::partner::v1 as partner;

use crate::{
    carrier,
    error::GatewayError,
    http::{
        Admitted, Carrier, HttpState, JobId, JsonBody, RawBody,
        error::ApiError,
        model::{
            CompleteBody, DeclineBody, Health, Job, JobListParams, JobPage, JobParts, JobStatus,
            OfferList, PageParams, PartsRequestBody, Quote, QuoteBody, ResolveRemotelyBody,
            ScheduleBody, SettlementPage, TrackingAck, TrackingBody, VisitBody,
        },
        openapi::{self, CarrierFailures, Failures, SecuritySchemes},
        parse_json,
    },
};

pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi_json))
        .route("/v1/offers", get(list_offers))
        .route("/v1/jobs", get(list_jobs))
        .route("/v1/jobs/{job_id}", get(get_job))
        .route("/v1/jobs/{job_id}/accept", post(accept_offer))
        .route("/v1/jobs/{job_id}/decline", post(decline_offer))
        .route("/v1/jobs/{job_id}/schedule", post(schedule_visit))
        .route("/v1/jobs/{job_id}/visit", post(record_visit))
        .route("/v1/jobs/{job_id}/quotes", post(submit_quote))
        .route("/v1/jobs/{job_id}/complete", post(complete_job))
        .route("/v1/jobs/{job_id}/resolve-remotely", post(resolve_remotely))
        .route("/v1/jobs/{job_id}/parts-requests", post(request_parts))
        .route("/v1/settlements", get(list_settlements))
        .route("/v1/carriers/{carrier}/tracking", post(carrier_tracking))
        .merge(webhooks::routes())
}

type Answer<T> = Result<Json<T>, ApiError>;

/// Liveness of the HTTP face.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document(),
    )
}

/// Jobs offered to you and waiting for your answer.
#[utoipa::path(get, path = "/v1/offers", tag = "offers",
    responses((status = 200, body = OfferList), Failures))]
async fn list_offers(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
) -> Answer<OfferList> {
    Ok(Json(state.gateway.list_offers(&partner).await?.into()))
}

/// Accepts your open offer on the job; the customer's contact is then shown to you.
#[utoipa::path(post, path = "/v1/jobs/{job_id}/accept", tag = "offers",
    params(("job_id" = String, Path, min_length = 1, max_length = 128)),
    responses((status = 200, body = Job), Failures))]
async fn accept_offer(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    JobId(job_id): JobId,
) -> Answer<Job> {
    let job = state
        .gateway
        .accept_offer(&partner, partner::AcceptOfferRequest { job_id })
        .await?;
    Ok(Json(job.into()))
}

/// Declines your open offer on the job; it goes to the next partner.
#[utoipa::path(post, path = "/v1/jobs/{job_id}/decline", tag = "offers",
    params(("job_id" = String, Path, min_length = 1, max_length = 128)),
    request_body(content = Option<DeclineBody>),
    responses((status = 200, body = Job), Failures))]
async fn decline_offer(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    JobId(job_id): JobId,
    JsonBody(body): JsonBody<DeclineBody>,
) -> Answer<Job> {
    let job = state
        .gateway
        .decline_offer(
            &partner,
            partner::DeclineOfferRequest {
                job_id,
                reason: body.reason,
            },
        )
        .await?;
    Ok(Json(job.into()))
}

/// Your jobs, newest first.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs",
    params(JobListParams),
    responses((status = 200, body = JobPage), Failures))]
async fn list_jobs(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    query: Result<Query<JobListParams>, QueryRejection>,
) -> Answer<JobPage> {
    let Query(params) = query.map_err(|r| ApiError::invalid("query", r.body_text()))?;
    let mut v = Violations::new();
    let page_size = page_size(&mut v, params.page_size.as_deref());
    let statuses = statuses(&mut v, params.status.as_deref());
    finish(v)?;
    let page = state
        .gateway
        .list_jobs(
            &partner,
            partner::ListJobsRequest {
                page_size,
                page_token: params.page_token.unwrap_or_default(),
                statuses,
            },
        )
        .await?;
    Ok(Json(page.into()))
}

/// One of your jobs. Another partner's job answers 404.
#[utoipa::path(get, path = "/v1/jobs/{job_id}", tag = "jobs",
    params(("job_id" = String, Path, min_length = 1, max_length = 128)),
    responses((status = 200, body = Job), Failures))]
async fn get_job(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    JobId(job_id): JobId,
) -> Answer<Job> {
    let job = state
        .gateway
        .get_job(&partner, partner::GetJobRequest { job_id })
        .await?;
    Ok(Json(job.into()))
}

/// Records the appointment agreed with the customer (accepted → scheduled).
#[utoipa::path(post, path = "/v1/jobs/{job_id}/schedule", tag = "jobs",
    params(("job_id" = String, Path, min_length = 1, max_length = 128)),
    request_body = ScheduleBody,
    responses((status = 200, body = Job), Failures))]
async fn schedule_visit(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    JobId(job_id): JobId,
    JsonBody(body): JsonBody<ScheduleBody>,
) -> Answer<Job> {
    let job = state
        .gateway
        .schedule_visit(&partner, body.into_request(job_id))
        .await?;
    Ok(Json(job.into()))
}

/// The technician is on site; checked against the on-site deadline.
#[utoipa::path(post, path = "/v1/jobs/{job_id}/visit", tag = "jobs",
    params(("job_id" = String, Path, min_length = 1, max_length = 128)),
    request_body(content = Option<VisitBody>),
    responses((status = 200, body = Job), Failures))]
async fn record_visit(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    JobId(job_id): JobId,
    JsonBody(body): JsonBody<VisitBody>,
) -> Answer<Job> {
    let job = state
        .gateway
        .record_visit(&partner, body.into_request(job_id))
        .await?;
    Ok(Json(job.into()))
}

/// Submits a quote; lines within your fee schedule are approved at once.
#[utoipa::path(post, path = "/v1/jobs/{job_id}/quotes", tag = "jobs",
    params(("job_id" = String, Path, min_length = 1, max_length = 128),
        ("Idempotency-Key" = Option<String>, Header, max_length = 64, description = "A retry with the same key returns the first quote")),
    request_body = QuoteBody,
    responses((status = 200, body = Quote), Failures))]
async fn submit_quote(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    JobId(job_id): JobId,
    headers: HeaderMap,
    JsonBody(body): JsonBody<QuoteBody>,
) -> Answer<Quote> {
    let key = idempotency_key(&headers)?;
    let quote = state
        .gateway
        .submit_quote(&partner, body.into_request(job_id, key))
        .await?;
    Ok(Json(quote.into()))
}

/// Reports the outcome of the repair.
#[utoipa::path(post, path = "/v1/jobs/{job_id}/complete", tag = "jobs",
    params(("job_id" = String, Path, min_length = 1, max_length = 128),
        ("Idempotency-Key" = Option<String>, Header, max_length = 64, description = "A retry with the same key returns the first answer")),
    request_body = CompleteBody,
    responses((status = 200, body = Job), Failures))]
async fn complete_job(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    JobId(job_id): JobId,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CompleteBody>,
) -> Answer<Job> {
    let key = idempotency_key(&headers)?;
    let job = state
        .gateway
        .complete_job(&partner, body.into_request(job_id, key))
        .await?;
    Ok(Json(job.into()))
}

/// Closes an accepted or scheduled job by remote diagnosis, without a visit.
#[utoipa::path(post, path = "/v1/jobs/{job_id}/resolve-remotely", tag = "jobs",
    params(("job_id" = String, Path, min_length = 1, max_length = 128),
        ("Idempotency-Key" = Option<String>, Header, max_length = 64, description = "A retry with the same key returns the first answer")),
    request_body = ResolveRemotelyBody,
    responses((status = 200, body = Job), Failures))]
async fn resolve_remotely(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    JobId(job_id): JobId,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ResolveRemotelyBody>,
) -> Answer<Job> {
    let key = idempotency_key(&headers)?;
    let job = state
        .gateway
        .resolve_remotely(&partner, body.into_request(job_id, key))
        .await?;
    Ok(Json(job.into()))
}

/// Reserves the parts an accepted or scheduled job needs at a site: what is on hand is
/// held at once; if anything is missing the job waits for parts (`waiting_for_parts`)
/// until receipts make the request whole, and the webhook event `dispatch.JobPartsReady`
/// tells you. A fix consumes the reservation; any other end releases it.
#[utoipa::path(post, path = "/v1/jobs/{job_id}/parts-requests", tag = "jobs",
    params(("job_id" = String, Path, min_length = 1, max_length = 128),
        ("Idempotency-Key" = Option<String>, Header, max_length = 64, description = "A retry with the same key returns the first answer")),
    request_body = PartsRequestBody,
    responses((status = 200, body = JobParts), Failures))]
async fn request_parts(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    JobId(job_id): JobId,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PartsRequestBody>,
) -> Answer<JobParts> {
    let key = idempotency_key(&headers)?;
    let parts = state
        .gateway
        .request_parts(&partner, body.into_request(job_id, key))
        .await?;
    Ok(Json(parts.into()))
}

/// Your monthly statements.
#[utoipa::path(get, path = "/v1/settlements", tag = "settlements",
    params(PageParams),
    responses((status = 200, body = SettlementPage), Failures))]
async fn list_settlements(
    State(state): State<HttpState>,
    Admitted(partner): Admitted,
    query: Result<Query<PageParams>, QueryRejection>,
) -> Answer<SettlementPage> {
    let Query(params) = query.map_err(|r| ApiError::invalid("query", r.body_text()))?;
    let mut v = Violations::new();
    let page_size = page_size(&mut v, params.page_size.as_deref());
    finish(v)?;
    let page = state
        .gateway
        .list_settlements(
            &partner,
            partner::ListSettlementsRequest {
                page_size,
                page_token: params.page_token.unwrap_or_default(),
            },
        )
        .await?;
    Ok(Json(page.into()))
}

/// A carrier's tracking event for a return shipment. No API key: the carrier signs the
/// time of sending together with the raw body, `X-Carrier-Timestamp: <unix seconds>` and
/// `X-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`. A timestamp
/// more than 300 s away from the gateway's clock (either way) is refused, so a captured
/// request stops working; a redelivery of an event id within the window changes nothing.
#[utoipa::path(post, path = "/v1/carriers/{carrier}/tracking", tag = "carriers",
    security(()),
    params(("carrier" = String, Path, min_length = 1, max_length = 64),
        ("X-Carrier-Timestamp" = String, Header, pattern = "^[0-9]{1,12}$",
            description = "When the request was signed, in unix seconds; refused when more than 300 s away from the gateway's clock"),
        ("X-Signature" = String, Header,
            description = "sha256=<hex HMAC-SHA256(carrier secret, \"<X-Carrier-Timestamp>.<raw body>\")>")),
    request_body = TrackingBody,
    responses((status = 200, body = TrackingAck), CarrierFailures))]
async fn carrier_tracking(
    State(state): State<HttpState>,
    Carrier(carrier): Carrier,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Answer<TrackingAck> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    state.gateway.verify_carrier(
        &carrier,
        header(carrier::SIGNATURE_HEADER),
        header(carrier::TIMESTAMP_HEADER),
        &body,
    )?;
    let event: TrackingBody = parse_json(&body)?;
    let event_id = event.event_id.clone();
    state
        .gateway
        .record_tracking(event.into_request(carrier.clone()))
        .await?;
    Ok(Json(TrackingAck { carrier, event_id }))
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(String::new()),
        Some(value) => value
            .to_str()
            .map(str::to_owned)
            .map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII")),
    }
}

fn page_size(v: &mut Violations, raw: Option<&str>) -> u32 {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => 0,
        Some(raw) => v
            .check(
                "page_size",
                raw.parse::<u32>()
                    .map_err(|_| "must be a whole number from 0"),
            )
            .unwrap_or(0),
    }
}

fn statuses(v: &mut Violations, raw: Option<&str>) -> Vec<i32> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|s| v.check("status", s.parse::<JobStatus>()))
        .map(JobStatus::to_proto)
        .collect()
}

fn finish(v: Violations) -> Result<(), ApiError> {
    if v.is_empty() {
        Ok(())
    } else {
        Err(GatewayError::Invalid(v.into_vec()).into())
    }
}

/// The OpenAPI document of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Aftersales partner API",
        description = "What outside repair partners and carriers reach through the partner gateway. \
            Partner calls carry an API key (`Authorization: Bearer <key>` or `X-API-Key: <key>`); \
            another partner's job answers 404. The same operations are served over gRPC as \
            `aftersales.partner.v1.PartnerService`. Events reach your webhook endpoints as \
            described under `webhooks`: signed per Standard Webhooks 1.0."
    ),
    paths(
        healthz, openapi_json, list_offers, accept_offer, decline_offer, list_jobs, get_job,
        schedule_visit, record_visit, submit_quote, complete_job, resolve_remotely,
        request_parts, list_settlements,
        carrier_tracking, webhooks::create_endpoint, webhooks::list_endpoints,
        webhooks::get_endpoint, webhooks::update_endpoint, webhooks::delete_endpoint,
        webhooks::rotate_secret, webhooks::list_deliveries, webhooks::replay_delivery,
        webhooks::list_event_types
    ),
    components(schemas(crate::http::model::ErrorBody)),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("api_key" = [])),
    tags(
        (name = "offers", description = "Jobs offered to you"),
        (name = "jobs", description = "Your jobs"),
        (name = "settlements", description = "Your monthly statements"),
        (name = "webhooks", description = "Your webhook endpoints and their deliveries"),
        (name = "carriers", description = "Carrier tracking webhooks"),
        (name = "operations", description = "Health and this document")
    )
)]
pub(super) struct ApiDoc;
