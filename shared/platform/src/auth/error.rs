//! Why a token was refused (what the caller is told: short, and naming nothing it could
//! use), and why the identity layer could not be set up (what the operator is told).

use tonic::Status;

/// Why a bearer token was not accepted. The `Display` text is the whole message the
/// caller gets; details go to the server's log only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token issuer not accepted")]
    WrongIssuer,
    #[error("token audience not accepted")]
    WrongAudience,
    #[error("token algorithm not accepted")]
    DisallowedAlgorithm,
    #[error("token signing key unknown")]
    UnknownKey,
    #[error("token signature invalid")]
    BadSignature,
    /// The provider's keys could not be fetched, so nothing can be verified: retryable.
    #[error("identity provider unavailable")]
    KeysUnavailable,
}

impl From<AuthError> for Status {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::KeysUnavailable => Status::unavailable(err.to_string()),
            _ => Status::unauthenticated(err.to_string()),
        }
    }
}

/// The identity layer cannot be built as configured.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("HTTP client for the identity provider: {0}")]
    Http(#[from] reqwest::Error),
    #[error("identity provider: {0}")]
    Provider(String),
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn every_refusal_is_unauthenticated_except_an_unreachable_provider() {
        for err in [
            AuthError::Missing,
            AuthError::Malformed,
            AuthError::Expired,
            AuthError::NotYetValid,
            AuthError::WrongIssuer,
            AuthError::WrongAudience,
            AuthError::DisallowedAlgorithm,
            AuthError::UnknownKey,
            AuthError::BadSignature,
        ] {
            let status = Status::from(err);
            assert_eq!(status.code(), Code::Unauthenticated, "{err:?}");
            assert_eq!(status.message(), err.to_string());
        }
        assert_eq!(
            Status::from(AuthError::KeysUnavailable).code(),
            Code::Unavailable
        );
    }
}
