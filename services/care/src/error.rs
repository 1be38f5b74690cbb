//! The one error type of the care service; `api::status` maps it to gRPC statuses.

use aftersales_platform::idempotency::{CarriesDbErr, IdempotencyError};
use aftersales_runtime::command::PipelineError;
use sea_orm::DbErr;

use aftersales_platform::seal::VaultError;

use crate::domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum CareError {
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("reading {0} in clear text needs the pii:read role")]
    PiiForbidden(&'static str),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("personal data: {0}")]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

impl From<PipelineError> for CareError {
    fn from(err: PipelineError) -> Self {
        match err {
            PipelineError::Idempotency(err) => Self::Idempotency(err),
            PipelineError::Db(err) => Self::Db(err),
        }
    }
}

impl CarriesDbErr for CareError {
    fn db_err(&self) -> Option<&DbErr> {
        match self {
            CareError::Db(err) | CareError::Idempotency(IdempotencyError::Db(err)) => Some(err),
            _ => None,
        }
    }
}

pub fn not_found(what: &'static str, id: &str) -> CareError {
    CareError::NotFound {
        what,
        id: id.to_owned(),
    }
}
