//! The one error type of the returns service; `api::status` maps it to gRPC statuses.

use aftersales_platform::idempotency::{CarriesDbErr, IdempotencyError};
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
