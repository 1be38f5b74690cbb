//! The one error type of the dispatch service; `api::status` maps it to gRPC statuses.

use aftersales_platform::{
    idempotency::{CarriesDbErr, IdempotencyError},
    seal::VaultError,
};
use aftersales_runtime::command::PipelineError;
use sea_orm::DbErr;

use crate::domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("a partner may not {0}")]
    PartnerForbidden(&'static str),
    #[error("the API key is unknown, revoked or expired")]
    BadKey,
    #[error("version {actual} is current, not {expected}")]
    VersionConflict { expected: u64, actual: u64 },
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("customer contact: {0}")]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

impl From<PipelineError> for DispatchError {
    fn from(err: PipelineError) -> Self {
        match err {
            PipelineError::Idempotency(err) => Self::Idempotency(err),
            PipelineError::Db(err) => Self::Db(err),
        }
    }
}

impl CarriesDbErr for DispatchError {
    fn db_err(&self) -> Option<&DbErr> {
        match self {
            DispatchError::Db(err) | DispatchError::Idempotency(IdempotencyError::Db(err)) => {
                Some(err)
            }
            _ => None,
        }
    }
}

pub fn not_found(what: &'static str, id: &str) -> DispatchError {
    DispatchError::NotFound {
        what,
        id: id.to_owned(),
    }
}
