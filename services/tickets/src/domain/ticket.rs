//! A ticket with its SLA clocks, and every rule that changes them: opening, assignment,
//! escalation, severity changes and firing clocks here; the status machine and replies in
//! `lifecycle`. Each operation returns the events it caused; the caller stores the result
//! and publishes the events together.

mod flow;
mod holds;
mod lifecycle;

pub use flow::{ComplaintFlow, QualityJudgement, Remedy, Solution, SolutionKind, SolutionState};

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};

use super::{
    Category, Channel, ClockKind, Complexity, DomainError, Level, Severity, Status, Tier,
    calendar::{BusinessCalendar, Schedule},
    clock::{Fired, SlaClock},
    policy::{SlaPolicy, SlaTarget, TicketFacts, WarningAction},
    product::ProductFacts,
    team::Agent,
    watchers::Watcher,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: String,
    pub customer_id: String,
    pub order_id: String,
    pub channel: Channel,
    pub category: Category,
    pub severity: Severity,
    pub complexity: Complexity,
    pub subject: String,
    pub description: String,
    pub evidence: Vec<String>,
    pub tier: Tier,
    pub product: ProductFacts,
    /// Sorted, without duplicates.
    pub watchers: Vec<Watcher>,
    /// The regional emergencies (care's incident ids, sorted) holding the ticket's SLA
    /// clocks paused: they run only when none holds them and the status does not pause
    /// them either.
    pub holds: Vec<String>,
    pub assignee: Option<String>,
    /// The support group the ticket was routed or assigned to.
    pub group_id: Option<String>,
    pub level: Level,
    pub status: Status,
    pub policy_id: String,
    pub policy_version: u32,
    pub breached: bool,
    pub reopen_count: u32,
    pub first_response_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// When the customer reported the problem (at or before `created_at`).
    pub reported_at: DateTime<Utc>,
    pub flow: ComplaintFlow,
    /// Set when a warning threshold asked for the ticket to go to another agent and
    /// routing has not done it yet (it runs as a deadline of its own, in routing's lock
    /// order).
    pub reassign_at: Option<DateTime<Utc>>,
}

/// What intake knows about a new ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    pub customer_id: String,
    pub order_id: String,
    pub channel: Channel,
    pub category: Category,
    pub severity: Severity,
    pub complexity: Complexity,
    pub subject: String,
    pub description: String,
    pub evidence: Vec<String>,
    pub tier: Tier,
    pub product: ProductFacts,
    /// When the customer reported the problem; `None`: as the ticket opens.
    pub reported_at: Option<DateTime<Utc>>,
}

/// How long before its ticket a report may have been made.
pub const MAX_REPORT_AGE: chrono::Duration = chrono::Duration::days(30);

impl NewTicket {
    /// A report is not in the future and at most [`MAX_REPORT_AGE`] old at `now`.
    pub fn check_reported_at(&self, now: DateTime<Utc>) -> Result<(), DomainError> {
        match self.reported_at {
            Some(at) if at > now => Err(DomainError::invalid(
                "reported_at",
                "must not be in the future",
            )),
            Some(at) if now - at > MAX_REPORT_AGE => Err(DomainError::invalid(
                "reported_at",
                "must be at most 30 days ago",
            )),
            _ => Ok(()),
        }
    }

    pub fn facts(&self) -> TicketFacts {
        TicketFacts {
            severity: self.severity,
            complexity: self.complexity,
            category: self.category,
            tier: self.tier,
            channel: self.channel,
        }
    }
}

impl Ticket {
    /// What a policy is matched against, as the ticket is now.
    pub fn facts(&self) -> TicketFacts {
        TicketFacts {
            severity: self.severity,
            complexity: self.complexity,
            category: self.category,
            tier: self.tier,
            channel: self.channel,
        }
    }
}

/// What happened to a ticket, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketEvent {
    Created,
    StatusChanged {
        from: Status,
        to: Status,
        reason: String,
    },
    Escalated {
        from: Level,
        to: Level,
        reason: String,
        clock_id: Option<String>,
    },
    SlaWarning {
        clock: SlaClock,
        percent: u8,
        action: WarningAction,
    },
    /// A clock reached its target (in time or late), with the handbook's "actual −
    /// standard" in business milliseconds.
    ClockMet {
        clock: SlaClock,
        actual_minus_standard_ms: i64,
    },
    SlaBreached {
        clock: SlaClock,
    },
    Resolved,
    Reopened {
        reason: String,
    },
    /// The ticket's group or agent changed; `agent_id` is `None` when it went back to the
    /// group's queue. `reason` is a code: route, claim, manual, handover.
    Assigned {
        group_id: Option<String>,
        agent_id: Option<String>,
        previous_agent_id: Option<String>,
        reason: &'static str,
    },
}

/// Calendars by id, resolved into the schedule a clock measures on.
#[derive(Debug, Clone, Default)]
pub struct Schedules(HashMap<String, Arc<BusinessCalendar>>);

impl Schedules {
    pub fn new(calendars: impl IntoIterator<Item = BusinessCalendar>) -> Self {
        Self(
            calendars
                .into_iter()
                .map(|c| (c.id.clone(), Arc::new(c)))
                .collect(),
        )
    }

    /// A missing calendar falls back to 24x7: a deadline that fires is better than none.
    pub fn get(&self, calendar_id: Option<&str>) -> Schedule {
        calendar_id
            .and_then(|id| self.0.get(id))
            .map_or(Schedule::AlwaysOn, |c| Schedule::Calendar(c.clone()))
    }

    fn of(&self, clock: &SlaClock) -> Schedule {
        self.get(clock.calendar_id.as_deref())
    }

    fn of_target(&self, target: &SlaTarget) -> Schedule {
        self.get(target.calendar_id.as_deref())
    }
}

/// Is `from → to` a step of the lifecycle? Reopening has its own operation.
pub fn can_move(from: Status, to: Status) -> bool {
    use Status::*;
    matches!(
        (from, to),
        (New | Reopened, Open | PendingCustomer | Resolved)
            | (Open, PendingCustomer | Resolved)
            | (PendingCustomer, Open | Resolved)
            | (Resolved, Closed)
            | (Resolved | Closed, Reopened)
    )
}

/// A ticket and its clocks, changed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketAggregate {
    pub ticket: Ticket,
    pub clocks: Vec<SlaClock>,
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl TicketAggregate {
    /// Opens a ticket under `policy` with its first-response and resolution clocks.
    pub fn open(
        new: NewTicket,
        policy: &SlaPolicy,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> (Self, Vec<TicketEvent>) {
        let id = new_id();
        let ticket = Ticket {
            id: id.clone(),
            customer_id: new.customer_id,
            order_id: new.order_id,
            channel: new.channel,
            category: new.category,
            severity: new.severity,
            complexity: new.complexity,
            subject: new.subject,
            description: new.description,
            evidence: new.evidence,
            tier: new.tier,
            product: new.product,
            watchers: Vec::new(),
            holds: Vec::new(),
            assignee: None,
            group_id: None,
            level: Level::Agent,
            status: Status::New,
            policy_id: policy.id.clone(),
            policy_version: policy.version,
            breached: false,
            reopen_count: 0,
            first_response_at: None,
            created_at: now,
            updated_at: now,
            resolved_at: None,
            reported_at: new.reported_at.map_or(now, |at| at.min(now)),
            flow: ComplaintFlow::default(),
            reassign_at: None,
        };
        let percents = policy.warning_percents();
        let clock = |kind, target: &SlaTarget| {
            SlaClock::start(
                new_id(),
                id.clone(),
                kind,
                target,
                &percents,
                &schedules.of_target(target),
                now,
            )
        };
        let clocks = vec![
            clock(ClockKind::FirstResponse, &policy.first_response),
            clock(ClockKind::Resolution, &policy.resolution),
        ];
        let mut aggregate = Self { ticket, clocks };
        aggregate.start_report_milestones(policy, schedules, now);
        let mut events = vec![TicketEvent::Created];
        events.extend(aggregate.raise_to(
            policy.initial_level,
            format!("policy {} starts at {}", policy.id, policy.initial_level),
            None,
        ));
        (aggregate, events)
    }

    fn clock_mut(&mut self, kind: ClockKind) -> Option<&mut SlaClock> {
        self.clocks.iter_mut().find(|c| c.kind == kind)
    }

    fn touch(&mut self, now: DateTime<Utc>) {
        self.ticket.updated_at = now;
    }

    /// Moves the escalation level up to `level`, if it is higher.
    fn raise_to(
        &mut self,
        level: Level,
        reason: String,
        clock_id: Option<String>,
    ) -> Option<TicketEvent> {
        let from = self.ticket.level;
        (level > from).then(|| {
            self.ticket.level = level;
            TicketEvent::Escalated {
                from,
                to: level,
                reason,
                clock_id,
            }
        })
    }

    /// Puts the ticket in `group_id` with `agent` (or in the group's queue when `None`)
    /// for `reason`; the events when anything changed (the hand-off met, when the agent's
    /// role is the one the policy asks for or above).
    pub fn route(
        &mut self,
        group_id: Option<String>,
        agent: Option<&Agent>,
        reason: &'static str,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        let agent_id = agent.map(|a| a.id.clone());
        let mut events = self.route_to(group_id, agent_id, reason, now)?;
        events.extend(self.handed_to(agent.map(|a| a.role), schedules, now));
        Ok(events)
    }

    fn route_to(
        &mut self,
        group_id: Option<String>,
        agent_id: Option<String>,
        reason: &'static str,
        now: DateTime<Utc>,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        if self.ticket.status == Status::Closed {
            return Err(DomainError::Precondition("the ticket is closed".into()));
        }
        if self.ticket.group_id == group_id && self.ticket.assignee == agent_id {
            return Ok(Vec::new());
        }
        let previous_agent_id = self.ticket.assignee.take();
        self.ticket.group_id = group_id.clone();
        self.ticket.assignee = agent_id.clone();
        self.touch(now);
        Ok(vec![TicketEvent::Assigned {
            group_id,
            agent_id,
            previous_agent_id,
            reason,
        }])
    }

    /// Escalates to `to`, or one level up when `to` is `None`.
    pub fn escalate(
        &mut self,
        to: Option<Level>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        let current = self.ticket.level;
        let target = to.or(current.above()).ok_or(DomainError::CannotEscalate {
            current,
            requested: Level::Manager,
        })?;
        let event =
            self.raise_to(target, reason.to_owned(), None)
                .ok_or(DomainError::CannotEscalate {
                    current,
                    requested: target,
                })?;
        self.touch(now);
        Ok(vec![event])
    }

    /// A new severity matches `policy` (possibly another one): see [`Self::rematch`].
    pub fn set_severity(
        &mut self,
        severity: Severity,
        reason: &str,
        policy: &SlaPolicy,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        if self.ticket.status == Status::Closed {
            return Err(DomainError::Precondition("the ticket is closed".into()));
        }
        self.ticket.severity = severity;
        let reason = format!("severity {severity}: {reason}");
        Ok(self.rematch(policy, schedules, reason, now))
    }

    /// A new complexity matches `policy` (possibly another one): see [`Self::rematch`].
    /// The same complexity again changes nothing, and keeps the policy version the ticket
    /// has (it is not moved onto newer defaults by a no-op).
    pub fn set_complexity(
        &mut self,
        complexity: Complexity,
        reason: &str,
        policy: &SlaPolicy,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        if self.ticket.status == Status::Closed {
            return Err(DomainError::Precondition("the ticket is closed".into()));
        }
        if self.ticket.complexity == complexity {
            return Ok(Vec::new());
        }
        self.ticket.complexity = complexity;
        let reason = format!("complexity {complexity}: {reason}");
        Ok(self.rematch(policy, schedules, reason, now))
    }

    /// The ticket's facts changed and matched `policy`: live clocks take its targets,
    /// keeping the time already elapsed (measured from their start on the new target's
    /// calendar), and the level rises to the policy's start level.
    fn rematch(
        &mut self,
        policy: &SlaPolicy,
        schedules: &Schedules,
        reason: String,
        now: DateTime<Utc>,
    ) -> Vec<TicketEvent> {
        self.ticket.policy_id = policy.id.clone();
        self.ticket.policy_version = policy.version;
        self.touch(now);
        let percents = policy.warning_percents();
        for clock in &mut self.clocks {
            let target = match clock.kind {
                ClockKind::FirstResponse => Some(&policy.first_response),
                ClockKind::Resolution => Some(&policy.resolution),
                ClockKind::PeriodicUpdate => policy.periodic_update.as_ref(),
                milestone => policy.milestones.target(milestone),
            };
            match target {
                Some(target) => {
                    let current = schedules.of(clock);
                    clock.retarget(target, &percents, &current, &schedules.of_target(target));
                }
                None => {
                    clock.cancel();
                }
            }
        }
        let mut events = self.rematch_milestones(policy, schedules, now);
        events.extend(self.raise_to(policy.initial_level, reason, None));
        events
    }

    /// Fires one clock at `now`: the warning thresholds it passed, in order, each with
    /// the policy's action (an escalation one level up; a reassignment asked for, which
    /// routing carries out), or a breach that escalates one level (once: a breached clock
    /// cannot breach again in the same cycle).
    pub fn fire_clock(
        &mut self,
        clock_id: &str,
        policy: &SlaPolicy,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Vec<TicketEvent> {
        let Some(clock) = self.clocks.iter_mut().find(|c| c.id == clock_id) else {
            return Vec::new();
        };
        let schedule = schedules.of(clock);
        let fired = clock.fire(&schedule, now);
        let clock = clock.clone();
        let mut events = Vec::new();
        for fired in fired {
            match fired {
                Fired::Warning(percent) => {
                    let action = policy.action_at(percent);
                    events.push(TicketEvent::SlaWarning {
                        clock: clock.clone(),
                        percent,
                        action,
                    });
                    if action == WarningAction::Escalate
                        && let Some(next) = self.ticket.level.above()
                    {
                        let reason = format!("{} SLA at {percent} %", clock.kind);
                        events.extend(self.raise_to(next, reason, Some(clock.id.clone())));
                        self.touch(now);
                    }
                    if action == WarningAction::Reassign && self.ticket.group_id.is_some() {
                        self.ticket.reassign_at.get_or_insert(now);
                    }
                }
                Fired::Breached => {
                    self.ticket.breached = true;
                    self.touch(now);
                    events.push(TicketEvent::SlaBreached {
                        clock: clock.clone(),
                    });
                    if policy.escalate_on_breach
                        && let Some(next) = self.ticket.level.above()
                    {
                        let reason = format!("{} SLA breached", clock.kind);
                        events.extend(self.raise_to(next, reason, Some(clock.id.clone())));
                    }
                }
            }
        }
        events
    }

    /// The reassignment a warning asked for: to `agent` (another agent of the group on
    /// duty) or the group's queue. A ticket that changed hands since, or was closed, needs
    /// none any more.
    pub fn reassign(
        &mut self,
        asked_of: Option<&str>,
        agent: Option<&Agent>,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        if self.ticket.reassign_at.take().is_none()
            || self.ticket.assignee.as_deref() != asked_of
            || self.ticket.status == Status::Closed
        {
            return Ok(Vec::new());
        }
        let group_id = self.ticket.group_id.clone();
        self.route(group_id, agent, "sla_reassign", schedules, now)
    }
}

#[cfg(test)]
mod tests;
