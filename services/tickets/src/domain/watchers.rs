//! Watchers: users and teams (product, legal) copied on a ticket. They are ids, never
//! contacts, because every event of the ticket names them.

use super::{DomainError, WatcherKind, ticket::TicketAggregate};

/// Someone copied on a ticket; watchers sort by kind, then id.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Watcher {
    pub kind: WatcherKind,
    pub id: String,
}

impl std::fmt::Display for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.id)
    }
}

/// The most watchers a ticket has.
pub const MAX_WATCHERS: usize = 50;
/// The longest watcher id.
pub const MAX_WATCHER_ID: usize = 128;

/// A watcher's id as given (trimmed): a user id or team name of letters, digits and
/// `-_.:`, so an e-mail address or a phone number written with spaces is no id.
pub fn watcher_id(id: &str) -> Result<String, String> {
    let id = id.trim();
    if id.is_empty() {
        return Err("is required".into());
    }
    if id.chars().count() > MAX_WATCHER_ID {
        return Err(format!("must be at most {MAX_WATCHER_ID} characters"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err("may hold only letters, digits and `-` `_` `.` `:`".into());
    }
    if aftersales_platform::pii::contains_personal_data(id) {
        return Err("looks like a phone or ID number, which is personal data".into());
    }
    Ok(id.to_owned())
}

impl TicketAggregate {
    /// Copies `watcher` on the ticket; true when it was not there yet. Closed tickets
    /// take watchers too: a review after closing is when legal may want to follow.
    pub fn add_watcher(&mut self, watcher: Watcher) -> Result<bool, DomainError> {
        let watchers = &mut self.ticket.watchers;
        let Err(at) = watchers.binary_search(&watcher) else {
            return Ok(false);
        };
        if watchers.len() >= MAX_WATCHERS {
            return Err(DomainError::Precondition(format!(
                "the ticket already has {MAX_WATCHERS} watchers"
            )));
        }
        watchers.insert(at, watcher);
        Ok(true)
    }

    /// Takes `watcher` off the ticket; true when it was there.
    pub fn remove_watcher(&mut self, watcher: &Watcher) -> bool {
        let watchers = &mut self.ticket.watchers;
        match watchers.binary_search(watcher) {
            Ok(at) => {
                watchers.remove(at);
                true
            }
            Err(_) => false,
        }
    }
}
