//! The one error type of the webhooks service; `api::status` maps it to gRPC statuses.

use aftersales_platform::{
    idempotency::{CarriesDbErr, IdempotencyError},
    seal::VaultError,
};
use aftersales_runtime::command::PipelineError;
use sea_orm::DbErr;

use crate::domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum WebhooksError {
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Precondition(String),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("endpoint secret: {0}")]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

impl From<PipelineError> for WebhooksError {
    fn from(err: PipelineError) -> Self {
        match err {
            PipelineError::Idempotency(err) => Self::Idempotency(err),
            PipelineError::Db(err) => Self::Db(err),
        }
    }
}

impl CarriesDbErr for WebhooksError {
    fn db_err(&self) -> Option<&DbErr> {
        match self {
            WebhooksError::Db(err) | WebhooksError::Idempotency(IdempotencyError::Db(err)) => {
                Some(err)
            }
            _ => None,
        }
    }
}

pub fn not_found(what: &'static str, id: &str) -> WebhooksError {
    WebhooksError::NotFound {
        what,
        id: id.to_owned(),
    }
}
