//! The one mapping from the service's errors to gRPC statuses.

use aftersales_platform::{
    idempotency::IdempotencyError,
    status::{db_status, invalid_field},
};
use tonic::Status;

use crate::{domain::DomainError, error::TicketsError};

impl From<TicketsError> for Status {
    fn from(err: TicketsError) -> Self {
        match err {
            TicketsError::NotFound { .. } => Status::not_found(err.to_string()),
            TicketsError::Domain(domain) => match domain {
                DomainError::IllegalTransition { .. }
                | DomainError::CannotEscalate { .. }
                | DomainError::Precondition(_) => Status::failed_precondition(domain.to_string()),
                DomainError::Invalid { field, reason } => invalid_field(&field, reason),
            },
            TicketsError::Idempotency(IdempotencyError::Reused { .. }) => {
                invalid_field("idempotency_key", err.to_string())
            }
            TicketsError::Idempotency(IdempotencyError::Db(db)) => db_status(db),
            TicketsError::NoPolicy => Status::failed_precondition(err.to_string()),
            TicketsError::Db(db) => db_status(db),
        }
    }
}
