//! The one mapping from the service's errors to gRPC statuses.

use aftersales_platform::{
    idempotency::IdempotencyError,
    status::{db_status, invalid_field},
};
use tonic::Status;

use crate::{domain::DomainError, error::ReturnsError, ports::CarrierError};

impl From<ReturnsError> for Status {
    fn from(err: ReturnsError) -> Self {
        match err {
            ReturnsError::NotFound { .. } => Status::not_found(err.to_string()),
            ReturnsError::Domain(domain) => match domain {
                DomainError::IllegalTransition { .. }
                | DomainError::Precondition(_)
                | DomainError::Refused { .. } => Status::failed_precondition(domain.to_string()),
                DomainError::Invalid { field, reason } => invalid_field(&field, reason),
            },
            ReturnsError::Carrier(carrier) => match carrier {
                CarrierError::Unknown(_) => invalid_field("carrier", carrier.to_string()),
                CarrierError::Invalid { field, reason } => invalid_field(field, reason),
            },
            ReturnsError::Idempotency(IdempotencyError::Reused { .. }) => {
                invalid_field("idempotency_key", err.to_string())
            }
            ReturnsError::Idempotency(IdempotencyError::Db(db)) | ReturnsError::Db(db) => {
                db_status(db)
            }
        }
    }
}
