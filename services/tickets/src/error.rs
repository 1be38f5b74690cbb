//! The one error type of the tickets service. `api::status` maps every variant to a gRPC
//! status in one exhaustive match.

use aftersales_platform::idempotency::{CarriesDbErr, IdempotencyError};
use aftersales_runtime::command::PipelineError;
use sea_orm::DbErr;

use crate::domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum TicketsError {
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error("no SLA policy matches the ticket; a catch-all policy must exist")]
    NoPolicy,
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

impl From<PipelineError> for TicketsError {
    fn from(err: PipelineError) -> Self {
        match err {
            PipelineError::Idempotency(err) => Self::Idempotency(err),
            PipelineError::Db(err) => Self::Db(err),
        }
    }
}

impl CarriesDbErr for TicketsError {
    fn db_err(&self) -> Option<&DbErr> {
        match self {
            TicketsError::Db(err) | TicketsError::Idempotency(IdempotencyError::Db(err)) => {
                Some(err)
            }
            _ => None,
        }
    }
}
