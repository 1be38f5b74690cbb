//! The one error type of the returns service; `api::status` maps it to gRPC statuses.

use aftersales_platform::idempotency::{CarriesDbErr, IdempotencyError};
use aftersales_runtime::command::PipelineError;
use sea_orm::DbErr;

use crate::{domain::DomainError, ports::CarrierError};

#[derive(Debug, thiserror::Error)]
pub enum ReturnsError {
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Carrier(#[from] CarrierError),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

impl From<PipelineError> for ReturnsError {
    fn from(err: PipelineError) -> Self {
        match err {
            PipelineError::Idempotency(err) => Self::Idempotency(err),
            PipelineError::Db(err) => Self::Db(err),
        }
    }
}

impl CarriesDbErr for ReturnsError {
    fn db_err(&self) -> Option<&DbErr> {
        match self {
            ReturnsError::Db(err) | ReturnsError::Idempotency(IdempotencyError::Db(err)) => {
                Some(err)
            }
            _ => None,
        }
    }
}
