//! What the domain rules refuse.

use super::{Level, Status};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("a ticket in status {from} cannot move to {to}")]
    IllegalTransition { from: Status, to: Status },
    #[error("the ticket is already at escalation level {current}; cannot escalate to {requested}")]
    CannotEscalate { current: Level, requested: Level },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0}")]
    Precondition(String),
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
