//! Regional emergencies holding a ticket's SLA clocks (DOMAIN.md, "Major incidents":
//! emergencies that disrupt service in a region adjust its time limits). While any
//! emergency holds the ticket its live clocks stand paused; when the last one lets go
//! they run again, unless the status pauses them, and their due instants move on by the
//! business time spent held — the same pause arithmetic as a status pause, so a hold is
//! exact to the millisecond.

use chrono::{DateTime, Utc};

use super::{Schedules, TicketAggregate, TicketEvent};
use crate::domain::{DomainError, Status, policy::SlaPolicy};

impl TicketAggregate {
    /// Whether the live clocks stand paused now: by the policy's rule for the status,
    /// or by an emergency.
    pub(super) fn pauses(&self, policy: &SlaPolicy) -> bool {
        policy.pauses_in(self.ticket.status) || !self.ticket.holds.is_empty()
    }

    /// The emergency `incident_id` holds the ticket; holding it again changes nothing.
    /// Resolved and closed tickets have no live clock to hold.
    pub fn hold(
        &mut self,
        incident_id: &str,
        policy: &SlaPolicy,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        if matches!(self.ticket.status, Status::Resolved | Status::Closed)
            || self.ticket.holds.iter().any(|h| h == incident_id)
        {
            return Ok(Vec::new());
        }
        self.ticket.holds.push(incident_id.to_owned());
        self.ticket.holds.sort();
        self.touch(now);
        self.apply_pause_rule(policy, schedules, now);
        Ok(Vec::new())
    }

    /// The emergency `incident_id` ends for the ticket; its clocks run again when nothing
    /// else pauses them.
    pub fn release(
        &mut self,
        incident_id: &str,
        policy: &SlaPolicy,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        let before = self.ticket.holds.len();
        self.ticket.holds.retain(|h| h != incident_id);
        if self.ticket.holds.len() == before {
            return Ok(Vec::new());
        }
        self.touch(now);
        if !matches!(self.ticket.status, Status::Resolved | Status::Closed) {
            self.apply_pause_rule(policy, schedules, now);
        }
        Ok(Vec::new())
    }
}
