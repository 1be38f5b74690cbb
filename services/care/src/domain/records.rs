//! What care records about a customer beside the profile: the timeline of what happened
//! to them across the suite, their CSAT surveys, and the log of every clear-text read of
//! their contact fields. Plain records, written once (a timeline entry and a survey keep
//! their id across replays) and read back as they are.

use chrono::{DateTime, Utc};

use super::{Channel, SurveySubject, TimelineKind, new_id};

/// One line of a customer's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// The id of the event it came from, so a replayed event adds nothing; a fresh id for
    /// what care records itself.
    pub id: String,
    pub customer_id: String,
    pub kind: TimelineKind,
    pub subject_id: String,
    /// The event type (`tickets.TicketResolved`, `care.SurveyRecorded`, …).
    pub event: String,
    pub summary: String,
    pub channel: Option<Channel>,
    pub occurred_at: DateTime<Utc>,
}

impl TimelineEntry {
    /// An entry for a record care keeps itself (a follow-up, a survey, a task).
    pub fn own(
        customer_id: &str,
        kind: TimelineKind,
        subject_id: &str,
        event: &str,
        summary: String,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: new_id(),
            customer_id: customer_id.to_owned(),
            kind,
            subject_id: subject_id.to_owned(),
            event: event.to_owned(),
            summary,
            channel: None,
            occurred_at: at,
        }
    }
}

/// A customer's satisfaction score about a ticket, a repair job or a return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survey {
    pub id: String,
    pub customer_id: String,
    pub subject: SurveySubject,
    pub subject_id: String,
    /// 1–5.
    pub csat: u8,
    pub comment: String,
    pub recorded_at: DateTime<Utc>,
}

/// One read of a customer's contact fields in clear text: who, why, what and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiiRead {
    pub id: String,
    pub customer_id: String,
    pub actor_id: String,
    pub actor_role: String,
    pub purpose: String,
    /// The RPC that read them (`GetCustomer`, `ExportCustomerData`).
    pub operation: String,
    /// The fields shown in clear text.
    pub fields: Vec<String>,
    pub read_at: DateTime<Utc>,
}
