//! The one mapping from the service's errors to gRPC statuses.

use aftersales_platform::{
    idempotency::IdempotencyError,
    status::{db_status, internal, invalid_field},
};
use tonic::Status;

use crate::{domain::DomainError, error::CareError};

impl From<CareError> for Status {
    fn from(err: CareError) -> Self {
        match err {
            CareError::NotFound { .. } => Status::not_found(err.to_string()),
            CareError::PiiForbidden(_) => Status::permission_denied(err.to_string()),
            CareError::Domain(domain) => match domain {
                DomainError::Precondition(_) => Status::failed_precondition(domain.to_string()),
                DomainError::Invalid { field, reason } => invalid_field(&field, reason),
            },
            // A row sealed with a key no longer configured, or altered: an operator's
            // problem, never the caller's.
            CareError::Vault(vault) => internal("personal data", &vault),
            CareError::Idempotency(IdempotencyError::Reused { .. }) => {
                invalid_field("idempotency_key", err.to_string())
            }
            CareError::Idempotency(IdempotencyError::Db(db)) | CareError::Db(db) => db_status(db),
        }
    }
}
