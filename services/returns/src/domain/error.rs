//! What the returns rules refuse.

use super::Status;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("a return in status {from} cannot move to {to}")]
    IllegalTransition { from: Status, to: Status },
    #[error("{0}")]
    Precondition(String),
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A rule refused: `rule` names it (e.g. `refund_only_over_limit`).
    #[error("refused by rule {rule}: {detail}")]
    Refused { rule: String, detail: String },
}

impl DomainError {
    pub fn refused(rule: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Refused {
            rule: rule.into(),
            detail: detail.into(),
        }
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
