//! HTTP error answers: every core failure arrives as the `tonic::Status` the gRPC face
//! would send, and one table turns it into an HTTP status with a JSON body
//! `{code, message, field_violations}`, `Retry-After` on 429 and `WWW-Authenticate` on 401.

use aftersales_platform::status;
use axum::{
    Json,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, StatusCode, header};
use tonic::{Code, Status};

use crate::{
    error::GatewayError,
    http::model::{ErrorBody, FieldViolation},
};

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after: Option<HeaderValue>,
}

/// The HTTP status and the body's `code` for each gRPC code.
fn http_status(code: Code) -> (StatusCode, &'static str) {
    match code {
        Code::Ok => (StatusCode::OK, "ok"),
        // What nginx and Google APIs use for a call the client gave up on.
        Code::Cancelled => (
            StatusCode::from_u16(499).unwrap_or(StatusCode::REQUEST_TIMEOUT),
            "cancelled",
        ),
        Code::Unknown => (StatusCode::INTERNAL_SERVER_ERROR, "unknown"),
        Code::InvalidArgument => (StatusCode::BAD_REQUEST, "invalid_argument"),
        Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded"),
        Code::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        Code::AlreadyExists => (StatusCode::CONFLICT, "already_exists"),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "permission_denied"),
        Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "resource_exhausted"),
        Code::FailedPrecondition => (StatusCode::CONFLICT, "failed_precondition"),
        Code::Aborted => (StatusCode::CONFLICT, "aborted"),
        Code::OutOfRange => (StatusCode::BAD_REQUEST, "out_of_range"),
        Code::Unimplemented => (StatusCode::NOT_IMPLEMENTED, "unimplemented"),
        Code::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        Code::DataLoss => (StatusCode::INTERNAL_SERVER_ERROR, "data_loss"),
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
    }
}

impl From<Status> for ApiError {
    fn from(s: Status) -> Self {
        let (status, code) = http_status(s.code());
        let field_violations = status::field_violations(&s)
            .into_iter()
            .map(|v| FieldViolation {
                field: v.field,
                description: v.description,
            })
            .collect();
        Self {
            status,
            body: ErrorBody {
                code: code.to_owned(),
                message: s.message().to_owned(),
                field_violations,
            },
            retry_after: s
                .metadata()
                .get("retry-after")
                .and_then(|v| HeaderValue::from_bytes(v.as_encoded_bytes()).ok()),
        }
    }
}

impl From<GatewayError> for ApiError {
    fn from(err: GatewayError) -> Self {
        Status::from(err).into()
    }
}

impl ApiError {
    /// A request field the HTTP face itself could not read (JSON, query, path).
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        GatewayError::invalid(field, description).into()
    }

    /// A body over the configured limit.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::http_only(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {limit} bytes"),
        )
    }

    /// The request (its body included) took longer than the limit.
    pub fn request_timeout(limit: std::time::Duration) -> Self {
        Self::http_only(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request was not received within {} ms",
                limit.as_millis()
            ),
        )
    }

    pub fn route_not_found() -> Self {
        Self::http_only(StatusCode::NOT_FOUND, "not_found", "no such route".into())
    }

    pub fn method_not_allowed() -> Self {
        Self::http_only(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take that method".into(),
        )
    }

    fn http_only(status: StatusCode, code: &str, message: String) -> Self {
        Self {
            status,
            body: ErrorBody {
                code: code.to_owned(),
                message,
                field_violations: Vec::new(),
            },
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        let headers = response.headers_mut();
        if let Some(value) = self.retry_after {
            headers.insert(header::RETRY_AFTER, value);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn statuses_map_to_the_agreed_http_codes() {
        let cases = [
            (Code::InvalidArgument, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::FailedPrecondition, 409),
            (Code::Aborted, 409),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
        ];
        for (code, http) in cases {
            assert_eq!(http_status(code).0.as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn limits_carry_retry_after_and_violations_carry_fields() {
        let response = ApiError::from(GatewayError::RateLimited {
            retry_after: Duration::from_millis(2_500),
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");

        let err = ApiError::invalid("scheduled_for", "is required");
        assert_eq!(err.body.field_violations[0].field, "scheduled_for");
        assert_eq!(err.body.code, "invalid_argument");

        let response = ApiError::from(GatewayError::MissingKey).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
