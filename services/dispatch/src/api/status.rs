//! The one mapping from the service's errors to gRPC statuses.

use aftersales_platform::{
    idempotency::IdempotencyError,
    status::{db_status, internal, invalid_field},
};
use tonic::Status;

use crate::{domain::DomainError, error::DispatchError};

impl From<DispatchError> for Status {
    fn from(err: DispatchError) -> Self {
        match err {
            DispatchError::NotFound { .. } => Status::not_found(err.to_string()),
            DispatchError::PartnerForbidden(_) => Status::permission_denied(err.to_string()),
            DispatchError::BadKey => Status::unauthenticated(err.to_string()),
            DispatchError::VersionConflict { .. } => Status::aborted(err.to_string()),
            DispatchError::Domain(domain) => match domain {
                DomainError::IllegalTransition { .. } | DomainError::Precondition(_) => {
                    Status::failed_precondition(domain.to_string())
                }
                DomainError::Invalid { field, reason } => invalid_field(&field, reason),
            },
            // A contact sealed with a key no longer configured, or altered: an operator's
            // problem, never the caller's.
            DispatchError::Vault(vault) => internal("customer contact", &vault),
            DispatchError::Idempotency(IdempotencyError::Reused { .. }) => {
                invalid_field("idempotency_key", err.to_string())
            }
            DispatchError::Idempotency(IdempotencyError::Db(db)) | DispatchError::Db(db) => {
                db_status(db)
            }
        }
    }
}
