//! The tickets domain: ticket lifecycle, escalation, SLA policies, business calendars and
//! SLA clocks. Pure rules over plain data: no I/O, no tonic, no sea-orm, no Redis; every
//! function that needs the time takes it as an argument.

pub mod activity;
pub mod calendar;
pub mod clock;
pub mod commitments;
pub mod error;
pub mod listing;
pub mod live;
pub mod policy;
pub mod product;
pub mod routing;
pub mod team;
pub mod thread;
pub mod ticket;
pub mod watchers;

pub use error::DomainError;

use aftersales_platform::text_enum;

text_enum!(
    /// Where the customer reached us.
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

text_enum!(
    Category {
        Inquiry = "inquiry",
        Complaint = "complaint",
        ReturnExchange = "return_exchange",
        Repair = "repair",
        TechnicalSupport = "technical_support",
    }
);

text_enum!(
    /// The handbook's three grades: urgent (safety, media risk), important (batch
    /// complaints), general.
    Severity {
        Urgent = "urgent",
        Important = "important",
        General = "general",
    }
);

text_enum!(
    /// The platform manual's general ("simple") and complex problems: complexity decides
    /// the resolution target, severity decides hand-off and escalation.
    Complexity {
        Simple = "simple",
        Complex = "complex",
    }
);

text_enum!(
    Tier {
        Vip = "vip",
        Potential = "potential",
        Regular = "regular",
    }
);

text_enum!(
    Status {
        New = "new",
        Open = "open",
        PendingCustomer = "pending_customer",
        Resolved = "resolved",
        Closed = "closed",
        Reopened = "reopened",
    }
);

text_enum!(
    /// Who holds the ticket; ordered, so a breach moves it one step up.
    Level {
        Agent = "agent",
        Supervisor = "supervisor",
        Manager = "manager",
    }
);

text_enum!(
    Author {
        Agent = "agent",
        Customer = "customer",
    }
);

text_enum!(
    /// Who may read a thread entry: everyone on the ticket, or the desk only (a note).
    Visibility {
        Public = "public",
        Internal = "internal",
    }
);

text_enum!(
    WatcherKind {
        User = "user",
        Team = "team",
    }
);

text_enum!(
    ClockKind {
        FirstResponse = "first_response",
        Resolution = "resolution",
        PeriodicUpdate = "periodic_update",
        Record = "record",
        HandOff = "hand_off",
        Agreement = "agreement",
        Remedy = "remedy",
        Feedback = "feedback",
        NextReply = "next_reply",
    }
);

text_enum!(
    ClockState {
        Running = "running",
        Paused = "paused",
        Met = "met",
        Breached = "breached",
        Cancelled = "cancelled",
    }
);

/// Who issues a command, for the audit trail.
pub use aftersales_platform::caller::Actor;

impl Level {
    /// The next level up, if there is one.
    pub fn above(self) -> Option<Level> {
        match self {
            Level::Agent => Some(Level::Supervisor),
            Level::Supervisor => Some(Level::Manager),
            Level::Manager => None,
        }
    }
}
