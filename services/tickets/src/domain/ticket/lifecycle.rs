//! The rules of a ticket's lifecycle: status changes (with the pause rule of the policy),
//! reopening, and replies, which answer the customer or bring the ticket back from
//! waiting on them.

use chrono::{DateTime, Utc};

use super::{Schedules, TicketAggregate, TicketEvent, can_move};
use crate::domain::{Author, ClockKind, DomainError, Status, policy::SlaPolicy};

impl TicketAggregate {
    /// A status change requested by an agent or a system.
    pub fn change_status(
        &mut self,
        to: Status,
        reason: &str,
        policy: &SlaPolicy,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        if to == Status::Reopened {
            return self.reopen(reason, policy, schedules, now);
        }
        let from = self.ticket.status;
        if !can_move(from, to) {
            return Err(DomainError::IllegalTransition { from, to });
        }
        self.ticket.status = to;
        self.touch(now);
        let mut events = vec![TicketEvent::StatusChanged {
            from,
            to,
            reason: reason.to_owned(),
        }];
        match to {
            Status::Resolved => {
                // Resolving answers the customer too: both targets are reached.
                for kind in [ClockKind::FirstResponse, ClockKind::Resolution] {
                    events.extend(self.meet_clock(kind, schedules, now));
                }
                self.cancel_clock(ClockKind::PeriodicUpdate);
                events.extend(self.resolve_milestones(policy, schedules, now));
                self.ticket.first_response_at.get_or_insert(now);
                self.ticket.resolved_at = Some(now);
                events.push(TicketEvent::Resolved);
            }
            Status::Closed => {
                for clock in &mut self.clocks {
                    clock.cancel();
                }
            }
            _ => self.apply_pause_rule(policy, schedules, now),
        }
        Ok(events)
    }

    /// Pauses or resumes the live clocks as the policy says for the current status and
    /// as the regional emergencies holding the ticket say.
    pub(super) fn apply_pause_rule(
        &mut self,
        policy: &SlaPolicy,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) {
        let pause = self.pauses(policy);
        for clock in &mut self.clocks {
            if pause {
                clock.pause(now);
            } else {
                let schedule = schedules.of(clock);
                clock.resume(&schedule, now);
            }
        }
    }

    /// Resolved or closed → reopened; the resolution clock starts a new cycle.
    pub fn reopen(
        &mut self,
        reason: &str,
        policy: &SlaPolicy,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        let from = self.ticket.status;
        if !can_move(from, Status::Reopened) {
            return Err(DomainError::IllegalTransition {
                from,
                to: Status::Reopened,
            });
        }
        self.ticket.status = Status::Reopened;
        self.ticket.reopen_count += 1;
        self.ticket.resolved_at = None;
        self.touch(now);
        // A new cycle under a regional emergency waits for it like the others.
        let target = policy.resolution.clone();
        self.start_clock(ClockKind::Resolution, &target, policy, schedules, now, now);
        // Feedback after a resolution the customer turned down is no longer owed.
        self.cancel_clock(ClockKind::Feedback);
        Ok(vec![
            TicketEvent::StatusChanged {
                from,
                to: Status::Reopened,
                reason: reason.to_owned(),
            },
            TicketEvent::Reopened {
                reason: reason.to_owned(),
            },
        ])
    }

    /// A reply. The first agent reply meets the first-response clock and opens a new
    /// ticket; each agent reply restarts the periodic-update clock; a customer reply to a
    /// ticket waiting on them opens it again (and resumes its clocks).
    pub fn add_reply(
        &mut self,
        author: Author,
        policy: &SlaPolicy,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        if self.ticket.status == Status::Closed {
            return Err(DomainError::Precondition(
                "the ticket is closed; reopen it before replying".into(),
            ));
        }
        self.touch(now);
        let mut events = Vec::new();
        match author {
            Author::Agent => {
                events.extend(self.meet_clock(ClockKind::FirstResponse, schedules, now));
                events.extend(self.agent_replied(schedules, now));
                self.ticket.first_response_at.get_or_insert(now);
                if matches!(self.ticket.status, Status::New | Status::Reopened) {
                    events.extend(self.change_status(
                        Status::Open,
                        "agent replied",
                        policy,
                        schedules,
                        now,
                    )?);
                }
                if let (Some(target), false) = (
                    policy.periodic_update.clone(),
                    self.ticket.status == Status::Resolved,
                ) {
                    self.start_clock(
                        ClockKind::PeriodicUpdate,
                        &target,
                        policy,
                        schedules,
                        now,
                        now,
                    );
                }
            }
            Author::Customer => {
                if self.ticket.status == Status::PendingCustomer {
                    events.extend(self.change_status(
                        Status::Open,
                        "customer replied",
                        policy,
                        schedules,
                        now,
                    )?);
                }
                self.customer_wrote(policy, schedules, now);
            }
        }
        Ok(events)
    }
}
