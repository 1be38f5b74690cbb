//! The gateway's one error type and its one mapping to `tonic::Status`. The HTTP face turns
//! that `Status` into a response (`http::error`), so both faces answer every failure alike.

use std::time::Duration;

use aftersales_platform::status::{self, FieldViolation};
use tonic::{Code, Status, metadata::MetadataValue};

/// Which upstream a failed call went to, for messages and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    Dispatch,
    Returns,
    Webhooks,
}

impl Upstream {
    pub fn name(self) -> &'static str {
        match self {
            Upstream::Dispatch => "dispatch",
            Upstream::Returns => "returns",
            Upstream::Webhooks => "webhooks",
        }
    }
}

/// Everything that can go wrong between a caller and an upstream answer.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("missing API key: send `authorization: Bearer <key>` or `x-api-key: <key>`")]
    MissingKey,
    #[error("invalid, revoked or expired API key")]
    BadKey,
    #[error("rate limit exceeded; retry after {} s", retry_after_secs(*retry_after))]
    RateLimited { retry_after: Duration },
    #[error(
        "too many failed key attempts from your address; retry after {} s",
        retry_after_secs(*retry_after)
    )]
    TooManyFailedAttempts { retry_after: Duration },
    #[error("invalid request")]
    Invalid(Vec<FieldViolation>),
    #[error("job {job_id} has no open offer for you")]
    NoOpenOffer { job_id: String },
    #[error("unknown carrier or bad signature")]
    BadSignature,
    #[error("missing or malformed X-Carrier-Timestamp: send the signing time in unix seconds")]
    BadTimestamp,
    #[error("X-Carrier-Timestamp is more than {window_secs} s away from now")]
    StaleTimestamp { window_secs: u64 },
    #[error("{} did not answer within {timeout:?}", upstream.name())]
    UpstreamTimeout {
        upstream: Upstream,
        timeout: Duration,
    },
    #[error("{}: {status}", upstream.name())]
    Upstream { upstream: Upstream, status: Status },
}

impl GatewayError {
    /// A single rejected field.
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        GatewayError::Invalid(vec![FieldViolation {
            field: field.to_owned(),
            description: description.into(),
        }])
    }
}

/// Whole seconds a limited caller waits, at least one: `Retry-After` has no fractions.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl From<GatewayError> for Status {
    fn from(err: GatewayError) -> Self {
        match err {
            GatewayError::MissingKey
            | GatewayError::BadKey
            | GatewayError::BadSignature
            | GatewayError::BadTimestamp
            | GatewayError::StaleTimestamp { .. } => {
                let mut status = Status::unauthenticated(err.to_string());
                status
                    .metadata_mut()
                    .insert("www-authenticate", MetadataValue::from_static("Bearer"));
                status
            }
            GatewayError::RateLimited { retry_after }
            | GatewayError::TooManyFailedAttempts { retry_after } => {
                let mut status = Status::resource_exhausted(err.to_string());
                status.metadata_mut().insert(
                    "retry-after",
                    MetadataValue::from(retry_after_secs(retry_after)),
                );
                status
            }
            GatewayError::Invalid(violations) => status::invalid_argument(violations),
            GatewayError::NoOpenOffer { .. } => Status::failed_precondition(err.to_string()),
            GatewayError::UpstreamTimeout { .. } => {
                tracing::warn!(error = %err, "upstream timeout");
                Status::deadline_exceeded(err.to_string())
            }
            GatewayError::Upstream { upstream, status } => from_upstream(upstream, status),
        }
    }
}

/// What a caller may learn from an upstream answer. Answers about the request (bad field,
/// not found, wrong state) pass through with their details, so upstream field violations
/// reach the partner; faults of the suite itself are logged and reach the caller without
/// their text, which could name internal hosts.
fn from_upstream(upstream: Upstream, status: Status) -> Status {
    let name = upstream.name();
    match status.code() {
        Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::Aborted
        | Code::OutOfRange
        | Code::PermissionDenied
        | Code::ResourceExhausted
        | Code::Cancelled => {
            // A fresh status: the upstream's own metadata stays behind.
            Status::with_details(
                status.code(),
                status.message(),
                status.details().to_vec().into(),
            )
        }
        Code::Unavailable => status::unavailable(name, &status),
        Code::DeadlineExceeded => {
            tracing::warn!(upstream = name, error = %status, "upstream deadline exceeded");
            Status::deadline_exceeded(format!("{name} did not answer in time"))
        }
        // On a forwarded call this means the suite refused the gateway itself: not the
        // partner's doing, and nothing the partner can fix.
        Code::Unauthenticated
        | Code::Ok
        | Code::Unknown
        | Code::Internal
        | Code::Unimplemented
        | Code::DataLoss => status::internal(name, &status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_carries_whole_seconds_in_retry_after() {
        let status = Status::from(GatewayError::RateLimited {
            retry_after: Duration::from_millis(1_200),
        });
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.metadata().get("retry-after").unwrap(), "2");
        let status = Status::from(GatewayError::TooManyFailedAttempts {
            retry_after: Duration::from_millis(5_500),
        });
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.metadata().get("retry-after").unwrap(), "6");
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
    }

    #[test]
    fn upstream_violations_pass_through_and_faults_are_hidden() {
        let upstream = status::invalid_field("lines[0].quantity", "must be at least 1");
        let status = Status::from(GatewayError::Upstream {
            upstream: Upstream::Dispatch,
            status: upstream,
        });
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status::field_violations(&status)[0].field,
            "lines[0].quantity"
        );

        let status = Status::from(GatewayError::Upstream {
            upstream: Upstream::Dispatch,
            status: Status::internal("pq: relation jobs at 10.0.0.7"),
        });
        assert_eq!(status.code(), Code::Internal);
        assert!(
            !status.message().contains("10.0.0.7"),
            "{}",
            status.message()
        );

        let status = Status::from(GatewayError::Upstream {
            upstream: Upstream::Returns,
            status: Status::unavailable("tcp connect error 10.0.0.8:50052"),
        });
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("10.0.0.8"));
    }

    #[test]
    fn key_and_signature_failures_are_unauthenticated() {
        for err in [
            GatewayError::MissingKey,
            GatewayError::BadKey,
            GatewayError::BadSignature,
            GatewayError::BadTimestamp,
            GatewayError::StaleTimestamp { window_secs: 300 },
        ] {
            let status = Status::from(err);
            assert_eq!(status.code(), Code::Unauthenticated);
            assert_eq!(status.metadata().get("www-authenticate").unwrap(), "Bearer");
        }
    }
}
