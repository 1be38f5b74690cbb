//! The one mapping from the service's errors to gRPC statuses.

use aftersales_platform::status::{internal, invalid_field, unavailable};
use sea_orm::DbErr;
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
            TicketsError::IdempotencyKeyReused { .. } => {
                invalid_field("idempotency_key", err.to_string())
            }
            TicketsError::NoPolicy => Status::failed_precondition(err.to_string()),
            TicketsError::Db(db) => match db {
                DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => unavailable("database", &db),
                other => internal("database", &other),
            },
        }
    }
}
