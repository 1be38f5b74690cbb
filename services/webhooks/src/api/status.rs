//! The one mapping from the service's errors to gRPC statuses.

use aftersales_platform::{
    idempotency::IdempotencyError,
    status::{db_status, internal, invalid_field},
};
use tonic::Status;

use crate::{domain::DomainError, error::WebhooksError};

impl From<WebhooksError> for Status {
    fn from(err: WebhooksError) -> Self {
        match err {
            WebhooksError::NotFound { .. } => Status::not_found(err.to_string()),
            WebhooksError::Precondition(_) => Status::failed_precondition(err.to_string()),
            WebhooksError::Domain(DomainError::Invalid { field, reason }) => {
                invalid_field(&field, reason)
            }
            // A secret sealed with a key no longer configured, or altered: an operator's
            // problem, never the caller's.
            WebhooksError::Vault(vault) => internal("endpoint secret", &vault),
            WebhooksError::Idempotency(IdempotencyError::Reused { .. }) => {
                invalid_field("idempotency_key", err.to_string())
            }
            WebhooksError::Idempotency(IdempotencyError::Db(db)) | WebhooksError::Db(db) => {
                db_status(db)
            }
        }
    }
}
