//! What the read side asks for: the filters of the follow-up and care-task listings.
//! Plain data: the api decodes them, the store applies them, so neither needs the
//! other's types.

use chrono::{DateTime, Utc};

use super::{FollowUpStatus, TaskKind};

/// Which follow-ups a listing shows; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FollowUpFilter {
    pub customer_id: Option<String>,
    pub ticket_id: Option<String>,
    pub status: Option<FollowUpStatus>,
}

/// Which care tasks a listing shows; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub customer_id: Option<String>,
    pub kind: Option<TaskKind>,
    pub due_before: Option<DateTime<Utc>>,
}
