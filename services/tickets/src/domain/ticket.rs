//! A ticket with its SLA clocks, and every rule that changes them: the status machine,
//! replies, escalation, severity changes and firing clocks. Each operation returns the
//! events it caused; the caller stores the result and publishes the events together.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Author, Category, Channel, ClockKind, DomainError, Level, Severity, Status, Tier,
    calendar::{BusinessCalendar, Schedule},
    clock::{Fired, SlaClock},
    policy::{SlaPolicy, SlaTarget, TicketFacts},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: String,
    pub customer_id: String,
    pub order_id: String,
    pub channel: Channel,
    pub category: Category,
    pub severity: Severity,
    pub subject: String,
    pub description: String,
    pub evidence: Vec<String>,
    pub tier: Tier,
    pub assignee: Option<String>,
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
}

/// What intake knows about a new ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    pub customer_id: String,
    pub order_id: String,
    pub channel: Channel,
    pub category: Category,
    pub severity: Severity,
    pub subject: String,
    pub description: String,
    pub evidence: Vec<String>,
    pub tier: Tier,
}

impl NewTicket {
    pub fn facts(&self) -> TicketFacts {
        TicketFacts {
            severity: self.severity,
            category: self.category,
            tier: self.tier,
            channel: self.channel,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub id: String,
    pub ticket_id: String,
    pub author: Author,
    pub author_id: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
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
    },
    SlaBreached {
        clock: SlaClock,
    },
    Resolved,
    Reopened {
        reason: String,
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
            subject: new.subject,
            description: new.description,
            evidence: new.evidence,
            tier: new.tier,
            assignee: None,
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
        };
        let clock = |kind, target: &SlaTarget| {
            SlaClock::start(
                new_id(),
                id.clone(),
                kind,
                target,
                policy.warning_percent,
                &schedules.of_target(target),
                now,
            )
        };
        let clocks = vec![
            clock(ClockKind::FirstResponse, &policy.first_response),
            clock(ClockKind::Resolution, &policy.resolution),
        ];
        let mut aggregate = Self { ticket, clocks };
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

    /// Pauses or resumes the live clocks as the policy says for the current status.
    fn apply_pause_rule(&mut self, policy: &SlaPolicy, schedules: &Schedules, now: DateTime<Utc>) {
        let pause = policy.pauses_in(self.ticket.status);
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
                    if policy.pauses_in(self.ticket.status)
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

    pub fn assign(&mut self, assignee: String, now: DateTime<Utc>) -> Result<(), DomainError> {
        if self.ticket.status == Status::Closed {
            return Err(DomainError::Precondition("the ticket is closed".into()));
        }
        self.ticket.assignee = Some(assignee);
        self.touch(now);
        Ok(())
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

    /// A new severity matches `policy` (possibly another one): live clocks take its targets,
    /// keeping the time already elapsed, and the level rises to the policy's start level.
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
        self.ticket.policy_id = policy.id.clone();
        self.ticket.policy_version = policy.version;
        self.touch(now);
        for clock in &mut self.clocks {
            let target = match clock.kind {
                ClockKind::FirstResponse => Some(&policy.first_response),
                ClockKind::Resolution => Some(&policy.resolution),
                ClockKind::PeriodicUpdate => policy.periodic_update.as_ref(),
            };
            match target {
                Some(target) => {
                    let current = schedules.of(clock);
                    clock.retarget(
                        target,
                        policy.warning_percent,
                        &current,
                        &schedules.of_target(target),
                    );
                }
                None => {
                    clock.cancel();
                }
            }
        }
        let reason = format!("severity {severity}: {reason}");
        Ok(self
            .raise_to(policy.initial_level, reason, None)
            .into_iter()
            .collect())
    }

    /// Fires one clock at `now`: a warning, or a breach that escalates one level (once:
    /// a breached clock cannot breach again in the same cycle).
    pub fn fire_clock(
        &mut self,
        clock_id: &str,
        policy: &SlaPolicy,
        now: DateTime<Utc>,
    ) -> Vec<TicketEvent> {
        let Some(clock) = self.clocks.iter_mut().find(|c| c.id == clock_id) else {
            return Vec::new();
        };
        match clock.fire(now) {
            Fired::Nothing => Vec::new(),
            Fired::Warning => vec![TicketEvent::SlaWarning {
                clock: clock.clone(),
            }],
            Fired::Breached => {
                let clock = clock.clone();
                self.ticket.breached = true;
                self.touch(now);
                let mut events = vec![TicketEvent::SlaBreached {
                    clock: clock.clone(),
                }];
                if policy.escalate_on_breach
                    && let Some(next) = self.ticket.level.above()
                {
                    let reason = format!("{} SLA breached", clock.kind);
                    events.extend(self.raise_to(next, reason, Some(clock.id.clone())));
                }
                events
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::domain::{ClockState, policy::default_policies};

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(1_800_000_000 + seconds)
    }

    fn new_ticket(severity: Severity) -> NewTicket {
        NewTicket {
            customer_id: "c1".into(),
            order_id: "o1".into(),
            channel: Channel::Hotline,
            category: Category::Complaint,
            severity,
            subject: "Broken".into(),
            description: "It broke".into(),
            evidence: vec![],
            tier: Tier::Regular,
        }
    }

    fn general_policy() -> SlaPolicy {
        default_policies(t(0)).pop().unwrap()
    }

    fn open(severity: Severity, policy: &SlaPolicy) -> (TicketAggregate, Vec<TicketEvent>) {
        TicketAggregate::open(new_ticket(severity), policy, &Schedules::default(), t(0))
    }

    fn clock(a: &TicketAggregate, kind: ClockKind) -> &SlaClock {
        a.clocks.iter().find(|c| c.kind == kind).unwrap()
    }

    #[test]
    fn urgent_tickets_start_with_a_supervisor() {
        let urgent = default_policies(t(0)).remove(0);
        let (a, events) = open(Severity::Urgent, &urgent);
        assert_eq!(a.ticket.level, Level::Supervisor);
        assert!(matches!(
            events[1],
            TicketEvent::Escalated {
                from: Level::Agent,
                to: Level::Supervisor,
                ..
            }
        ));
    }

    #[test]
    fn the_first_agent_reply_meets_first_response_and_opens_the_ticket() {
        let p = general_policy();
        let (mut a, _) = open(Severity::General, &p);
        let s = Schedules::default();
        assert!(
            a.add_reply(Author::Customer, &p, &s, t(10))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            clock(&a, ClockKind::FirstResponse).state,
            ClockState::Running
        );
        let events = a.add_reply(Author::Agent, &p, &s, t(20)).unwrap();
        assert_eq!(a.ticket.status, Status::Open);
        assert!(matches!(
            events[0],
            TicketEvent::StatusChanged {
                from: Status::New,
                to: Status::Open,
                ..
            }
        ));
        assert_eq!(clock(&a, ClockKind::FirstResponse).state, ClockState::Met);
        assert_eq!(a.ticket.first_response_at, Some(t(20)));
    }

    #[test]
    fn illegal_transitions_name_both_states() {
        let p = general_policy();
        let (mut a, _) = open(Severity::General, &p);
        let err = a
            .change_status(Status::Closed, "", &p, &Schedules::default(), t(1))
            .unwrap_err();
        assert_eq!(
            err,
            DomainError::IllegalTransition {
                from: Status::New,
                to: Status::Closed
            }
        );
        let err = a.reopen("", &p, &Schedules::default(), t(1)).unwrap_err();
        assert_eq!(
            err,
            DomainError::IllegalTransition {
                from: Status::New,
                to: Status::Reopened
            }
        );
    }

    #[test]
    fn waiting_on_the_customer_pauses_and_their_reply_resumes() {
        let p = general_policy();
        let s = Schedules::default();
        let (mut a, _) = open(Severity::General, &p);
        let due = clock(&a, ClockKind::Resolution).due_at;
        a.change_status(Status::PendingCustomer, "asked for photos", &p, &s, t(100))
            .unwrap();
        assert_eq!(clock(&a, ClockKind::Resolution).state, ClockState::Paused);
        a.add_reply(Author::Customer, &p, &s, t(400)).unwrap();
        assert_eq!(a.ticket.status, Status::Open);
        assert_eq!(
            clock(&a, ClockKind::Resolution).due_at,
            due + Duration::seconds(300)
        );
    }

    #[test]
    fn a_breach_escalates_one_level_once() {
        let p = general_policy();
        let (mut a, _) = open(Severity::General, &p);
        let id = clock(&a, ClockKind::FirstResponse).id.clone();
        assert!(a.fire_clock(&id, &p, t(3599)).len() == 1, "the warning");
        let events = a.fire_clock(&id, &p, t(3600));
        assert!(matches!(events[0], TicketEvent::SlaBreached { .. }));
        assert!(
            matches!(&events[1], TicketEvent::Escalated { to: Level::Supervisor, clock_id: Some(c), .. } if *c == id)
        );
        assert!(a.fire_clock(&id, &p, t(3700)).is_empty());
        assert_eq!(a.ticket.level, Level::Supervisor);
        assert!(a.ticket.breached);
    }

    #[test]
    fn resolve_then_reopen_restarts_resolution() {
        let p = general_policy();
        let s = Schedules::default();
        let (mut a, _) = open(Severity::General, &p);
        let events = a
            .change_status(Status::Resolved, "fixed", &p, &s, t(50))
            .unwrap();
        assert!(events.contains(&TicketEvent::Resolved));
        assert_eq!(clock(&a, ClockKind::Resolution).state, ClockState::Met);
        a.change_status(Status::Closed, "", &p, &s, t(60)).unwrap();
        a.reopen("not fixed", &p, &s, t(100)).unwrap();
        assert_eq!(a.ticket.reopen_count, 1);
        let r = clock(&a, ClockKind::Resolution);
        assert_eq!(
            (r.state, r.cycle, r.due_at),
            (ClockState::Running, 2, t(100 + 24 * 3600))
        );
    }

    #[test]
    fn escalation_only_goes_up() {
        let p = general_policy();
        let (mut a, _) = open(Severity::General, &p);
        a.escalate(None, "customer disagrees", t(1)).unwrap();
        a.escalate(Some(Level::Manager), "compensation", t(2))
            .unwrap();
        assert_eq!(
            a.escalate(None, "", t(3)).unwrap_err(),
            DomainError::CannotEscalate {
                current: Level::Manager,
                requested: Level::Manager
            }
        );
    }

    #[test]
    fn raising_severity_retargets_live_clocks() {
        let policies = default_policies(t(0));
        let general = policies[2].clone();
        let (mut a, _) = open(Severity::General, &general);
        let tighter = SlaPolicy {
            id: "tight".into(),
            resolution: SlaTarget::always_on(600),
            initial_level: Level::Supervisor,
            ..general.clone()
        };
        let events = a
            .set_severity(
                Severity::Urgent,
                "injury",
                &tighter,
                &Schedules::default(),
                t(100),
            )
            .unwrap();
        assert_eq!(clock(&a, ClockKind::Resolution).due_at, t(600));
        assert_eq!(a.ticket.policy_id, "tight");
        assert_eq!(a.ticket.level, Level::Supervisor);
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn the_lifecycle_table() {
        use Status::*;
        assert!(
            can_move(New, Open)
                && can_move(Open, PendingCustomer)
                && can_move(PendingCustomer, Resolved)
        );
        assert!(
            can_move(Resolved, Closed) && can_move(Closed, Reopened) && can_move(Reopened, Open)
        );
        assert!(!can_move(Closed, Open) && !can_move(Open, New) && !can_move(New, Closed));
    }
}
