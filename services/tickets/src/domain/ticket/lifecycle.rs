//! The rules of a ticket's lifecycle: status changes (with the pause rule of the policy),
//! reopening, and replies, which answer the customer or bring the ticket back from
//! waiting on them.

use chrono::{DateTime, Utc};

use super::{Schedules, TicketAggregate, TicketEvent, can_move, new_id};
use crate::domain::{Author, ClockKind, DomainError, Status, clock::SlaClock, policy::SlaPolicy};

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
                for clock in &mut self.clocks {
                    match clock.kind {
                        ClockKind::FirstResponse | ClockKind::Resolution => {
                            clock.resume(&schedules.of(clock), now);
                            clock.meet(now);
                        }
                        ClockKind::PeriodicUpdate => {
                            clock.cancel();
                        }
                    }
                }
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
        let target = policy.resolution.clone();
        let schedule = schedules.of_target(&target);
        let held = !self.ticket.holds.is_empty();
        match self.clock_mut(ClockKind::Resolution) {
            Some(clock) => clock.rearm(&target, policy.warning_percent, &schedule, now),
            None => {
                let clock = SlaClock::start(
                    new_id(),
                    self.ticket.id.clone(),
                    ClockKind::Resolution,
                    &target,
                    policy.warning_percent,
                    &schedule,
                    now,
                );
                self.clocks.push(clock);
            }
        }
        if held {
            // A new cycle under a regional emergency waits for it like the others.
            if let Some(clock) = self.clock_mut(ClockKind::Resolution) {
                clock.pause(now);
            }
        }
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
                if let Some(clock) = self.clock_mut(ClockKind::FirstResponse) {
                    clock.meet(now);
                }
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
                    &policy.periodic_update,
                    self.ticket.status == Status::Resolved,
                ) {
                    let schedule = schedules.of_target(target);
                    match self.clock_mut(ClockKind::PeriodicUpdate) {
                        Some(clock) => clock.rearm(target, policy.warning_percent, &schedule, now),
                        None => {
                            let clock = SlaClock::start(
                                new_id(),
                                self.ticket.id.clone(),
                                ClockKind::PeriodicUpdate,
                                target,
                                policy.warning_percent,
                                &schedule,
                                now,
                            );
                            self.clocks.push(clock);
                        }
                    }
                    if self.pauses(policy)
                        && let Some(clock) = self.clock_mut(ClockKind::PeriodicUpdate)
                    {
                        clock.pause(now);
                    }
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
            }
        }
        Ok(events)
    }
}
