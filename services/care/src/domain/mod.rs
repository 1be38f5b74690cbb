//! The care rules, free of I/O: profiles with masking and tiers, follow-up outcomes,
//! warranty reminders, KPI and quality figures computed from facts. Everything here is a
//! pure function of its inputs and the instant `now`.

pub mod clock_lateness;
pub mod cost;
pub mod customer;
pub mod facts;
pub mod followup;
pub mod incident;
pub mod kpi;
pub mod listing;
pub mod proactive;
pub mod quality;
pub mod records;
pub mod spot_check;

use aftersales_platform::text_enum;

/// Who issued a command or a read.
pub use aftersales_platform::caller::Actor;

/// The role that lets a reader see contact fields in clear text.
pub const PII_READ: &str = "pii:read";

/// A reader of customer data: who, with which granted roles, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    pub actor: Actor,
    pub roles: Vec<String>,
    pub purpose: String,
}

impl Reader {
    pub fn may_read_pii(&self) -> bool {
        self.roles.iter().any(|r| r == PII_READ)
    }
}

text_enum!(Tier { Vip = "vip", Potential = "potential", Regular = "regular" });

text_enum!(
    Channel {
        Hotline = "hotline",
        Chat = "chat",
        Email = "email",
        App = "app",
        MarketplaceReview = "marketplace_review",
        Store = "store",
        Social = "social",
    }
);

text_enum!(Severity { Urgent = "urgent", Important = "important", General = "general" });

text_enum!(
    Category {
        Inquiry = "inquiry",
        Complaint = "complaint",
        ReturnExchange = "return_exchange",
        Repair = "repair",
        TechnicalSupport = "technical_support",
    }
);

impl Category {
    /// Categories that count as complaints about a product (repeat complaints, quality).
    pub fn is_complaint(self) -> bool {
        matches!(
            self,
            Category::Complaint | Category::ReturnExchange | Category::Repair
        )
    }
}

text_enum!(
    TicketState {
        New = "new",
        Open = "open",
        PendingCustomer = "pending_customer",
        Resolved = "resolved",
        Closed = "closed",
        Reopened = "reopened",
    }
);

impl TicketState {
    pub fn is_done(self) -> bool {
        matches!(self, TicketState::Resolved | TicketState::Closed)
    }
}

text_enum!(
    TimelineKind {
        Ticket = "ticket",
        Return = "return",
        RepairJob = "repair_job",
        FollowUp = "follow_up",
        Survey = "survey",
        CareTask = "care_task",
    }
);

text_enum!(SurveySubject { Ticket = "ticket", RepairJob = "repair_job", Return = "return" });

text_enum!(FollowUpStatus { Pending = "pending", Done = "done", Overdue = "overdue" });

text_enum!(
    TaskKind {
        WarrantyExpiry = "warranty_expiry",
        PurchaseAnniversary = "purchase_anniversary",
        Notice = "notice",
        ManagerEscalation = "manager_escalation",
    }
);

text_enum!(
    KpiDimension {
        All = "all",
        Channel = "channel",
        Severity = "severity",
        Category = "category",
        Region = "region",
        ProductLine = "product_line",
        Sku = "sku",
        Batch = "batch",
        Agent = "agent",
        Group = "group",
    }
);

/// What the care rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
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
