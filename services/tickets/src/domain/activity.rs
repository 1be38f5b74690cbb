//! The activity log of a ticket, as read back: who did what, when, and which fields of
//! the ticket it changed from what to what. Changes are worked out here by comparing the
//! ticket before and after a command, so no command can forget to report one.

use chrono::{DateTime, Utc};

use super::ticket::Ticket;

/// One field a command changed; values are codes or ids, empty for none.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: String,
    pub after: String,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityEntry {
    pub seq: u64,
    pub ticket_id: String,
    pub actor_id: String,
    pub actor_role: String,
    pub action: String,
    pub detail: String,
    pub changes: Vec<FieldChange>,
    pub at: DateTime<Utc>,
}

/// The fields of the ticket the log follows, each as the text it is shown as.
fn followed(t: &Ticket) -> [(&'static str, String); 10] {
    [
        ("status", t.status.to_string()),
        ("severity", t.severity.to_string()),
        ("complexity", t.complexity.to_string()),
        ("group", t.group_id.clone().unwrap_or_default()),
        ("assignee", t.assignee.clone().unwrap_or_default()),
        ("escalation_level", t.level.to_string()),
        (
            "sla_policy",
            format!("{}@{}", t.policy_id, t.policy_version),
        ),
        ("breached", t.breached.to_string()),
        ("reopen_count", t.reopen_count.to_string()),
        (
            "watchers",
            t.watchers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
    ]
}

/// What changed from `before` to `after`, in the order of [`followed`].
pub fn changes(before: &Ticket, after: &Ticket) -> Vec<FieldChange> {
    followed(before)
        .into_iter()
        .zip(followed(after))
        .filter(|((_, b), (_, a))| b != a)
        .map(|((field, before), (_, after))| FieldChange {
            field: field.to_owned(),
            before,
            after,
        })
        .collect()
}
