//! The dispatch rules, free of I/O: partners and their fee schedules, candidate matching
//! and scoring, the job lifecycle with its offers, quote price checks, scorecards,
//! settlements, and spare parts with their stock. Everything here is a pure function of its inputs and the instant `now`.

pub mod job;
pub mod keys;
pub mod listing;
pub mod matching;
pub mod partner;
pub mod parts;
pub mod quote;
pub mod scorecard;
pub mod settlement;

use aftersales_platform::text_enum;

pub use aftersales_platform::money::Money;

/// Who issued a command. A partner actor is confined to its own work.
pub use aftersales_platform::caller::Actor;

text_enum!(AreaKind { Urban = "urban", County = "county" });

text_enum!(Urgency { Normal = "normal", Urgent = "urgent" });

text_enum!(
    JobStatus {
        PendingDispatch = "pending_dispatch",
        Offered = "offered",
        Accepted = "accepted",
        Scheduled = "scheduled",
        OnSite = "on_site",
        Completed = "completed",
        CannotComplete = "cannot_complete",
        Cancelled = "cancelled",
        Unassigned = "unassigned",
        WaitingForParts = "waiting_for_parts",
    }
);

impl JobStatus {
    /// Accepted by a partner and not finished (waiting for parts included): the partner
    /// may see the customer's contact.
    pub fn is_open_work(self) -> bool {
        matches!(
            self,
            JobStatus::Accepted
                | JobStatus::Scheduled
                | JobStatus::OnSite
                | JobStatus::WaitingForParts
        )
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::CannotComplete | JobStatus::Cancelled
        )
    }
}

text_enum!(
    OfferStatus {
        Open = "open",
        Accepted = "accepted",
        Declined = "declined",
        Expired = "expired",
        Withdrawn = "withdrawn",
    }
);

text_enum!(
    QuoteLineKind {
        Labour = "labour",
        Part = "part",
        CallOut = "call_out",
    }
);

text_enum!(
    QuoteStatus {
        PendingReview = "pending_review",
        Approved = "approved",
        Rejected = "rejected",
    }
);

text_enum!(Payer { Customer = "customer", Company = "company" });

text_enum!(
    CompletionOutcome {
        Fixed = "fixed",
        NotFixed = "not_fixed",
        NeedsParts = "needs_parts",
        Replaced = "replaced",
    }
);

impl CompletionOutcome {
    /// The repair held on the first visit (unless a repeat job later says otherwise).
    pub fn is_fix(self) -> bool {
        matches!(self, CompletionOutcome::Fixed | CompletionOutcome::Replaced)
    }
}

text_enum!(
    CompletionMode {
        OnSite = "on_site",
        Remote = "remote",
    }
);

/// Completions stored before the mode was recorded were all on site.
impl Default for CompletionMode {
    fn default() -> Self {
        Self::OnSite
    }
}

text_enum!(
    SettlementStatus {
        Draft = "draft",
        Issued = "issued",
        Disputed = "disputed",
        Paid = "paid",
    }
);

text_enum!(
    SettlementAction {
        Issue = "issue",
        Dispute = "dispute",
        Pay = "pay",
    }
);

/// What the dispatch rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("a job in status {from} cannot {action}")]
    IllegalTransition {
        from: JobStatus,
        action: &'static str,
    },
    #[error("{0}")]
    Precondition(String),
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A new time-ordered id (UUIDv7): id order is creation order, which paging relies on.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
