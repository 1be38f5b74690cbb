//! The handbook's complaint flow on a ticket and the milestone clocks that time it:
//! recorded (with the desk's quality judgement), handed off to the right level, a solution
//! proposed and decided by the customer (a rejection goes to a manager), the remedy
//! scheduled, feedback after completion, and the next reply to each customer message.
//! Also the clock helpers every rule uses: start or re-arm a clock, meet one (with its
//! "actual − standard"), cancel one.

use aftersales_platform::text_enum;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Schedules, TicketAggregate, TicketEvent, new_id};
use crate::domain::{
    ClockKind, DomainError, Level, Status,
    clock::SlaClock,
    policy::{SlaPolicy, SlaTarget},
    team::AgentRole,
};

text_enum!(
    /// The desk's judgement when recording a complaint; a third-party test when the desk
    /// cannot decide.
    QualityJudgement {
        QualityProblem = "quality_problem",
        NotQualityProblem = "not_quality_problem",
        ThirdPartyTest = "third_party_test",
    }
);

text_enum!(
    SolutionKind {
        Return = "return",
        Exchange = "exchange",
        Compensation = "compensation",
        Repair = "repair",
    }
);

text_enum!(
    SolutionState {
        Proposed = "proposed",
        Accepted = "accepted",
        Rejected = "rejected",
    }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Solution {
    pub kind: SolutionKind,
    pub state: SolutionState,
    pub proposed_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub proposals: u32,
    pub rejections: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remedy {
    /// When it was first scheduled (what the milestone counts).
    pub scheduled_at: DateTime<Utc>,
    pub reference: Option<String>,
    pub planned_for: Option<DateTime<Utc>>,
}

/// How far the ticket is through the complaint flow. Tickets stored before the flow
/// existed have nothing of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintFlow {
    #[serde(default)]
    pub recorded_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub quality: Option<QualityJudgement>,
    #[serde(default)]
    pub solution: Option<Solution>,
    #[serde(default)]
    pub remedy: Option<Remedy>,
    /// The least role the policy's hand-off asks for, until it is done.
    #[serde(default)]
    pub hand_off_role: Option<AgentRole>,
    #[serde(default)]
    pub handed_off_at: Option<DateTime<Utc>>,
    /// The role of the agent the ticket was last routed to (none in the queue), so a
    /// hand-off a new policy asks for knows whether it is done already.
    #[serde(default)]
    pub assignee_role: Option<AgentRole>,
}

impl ComplaintFlow {
    fn agreed(&self) -> bool {
        self.solution
            .as_ref()
            .is_some_and(|s| s.state == SolutionState::Accepted)
    }
}

impl TicketAggregate {
    /// The clock of `kind`, if the ticket has one.
    pub fn clock_of(&self, kind: ClockKind) -> Option<&SlaClock> {
        self.clocks.iter().find(|c| c.kind == kind)
    }

    /// Starts the clock of `kind` from `from` (a new cycle when it ran before), paused at
    /// `now` when the ticket's clocks are held.
    pub(super) fn start_clock(
        &mut self,
        kind: ClockKind,
        target: &SlaTarget,
        policy: &SlaPolicy,
        schedules: &Schedules,
        from: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        let schedule = schedules.of_target(target);
        let percents = policy.warning_percents();
        match self.clock_mut(kind) {
            Some(clock) => clock.rearm(target, &percents, &schedule, from),
            None => {
                let clock = SlaClock::start(
                    new_id(),
                    self.ticket.id.clone(),
                    kind,
                    target,
                    &percents,
                    &schedule,
                    from,
                );
                self.clocks.push(clock);
            }
        }
        if self.pauses(policy)
            && let Some(clock) = self.clock_mut(kind)
        {
            clock.pause(now);
        }
    }

    /// Starts the milestone `kind` from `from` when the policy has it.
    fn start_milestone(
        &mut self,
        kind: ClockKind,
        policy: &SlaPolicy,
        schedules: &Schedules,
        from: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        if let Some(target) = policy.milestones.target(kind).cloned() {
            self.start_clock(kind, &target, policy, schedules, from, now);
        }
    }

    /// Starts the milestones that run from the report, as a new ticket has them.
    pub(super) fn start_report_milestones(
        &mut self,
        policy: &SlaPolicy,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) {
        let reported_at = self.ticket.reported_at;
        for kind in [ClockKind::Record, ClockKind::HandOff, ClockKind::Agreement] {
            self.start_milestone(kind, policy, schedules, reported_at, now);
        }
        self.ticket.flow.hand_off_role = policy.milestones.hand_off.as_ref().map(|h| h.role);
    }

    /// Meets the clock of `kind` at `now` (resumed first, so a pause counts up to now);
    /// the event when its met instant was set now.
    pub(super) fn meet_clock(
        &mut self,
        kind: ClockKind,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Option<TicketEvent> {
        let clock = self.clocks.iter_mut().find(|c| c.kind == kind)?;
        let schedule = schedules.of(clock);
        clock.resume(&schedule, now);
        if !clock.meet(now) {
            return None;
        }
        let actual_minus_standard = clock.actual_minus_standard(&schedule)?;
        Some(TicketEvent::ClockMet {
            clock: clock.clone(),
            actual_minus_standard_ms: actual_minus_standard.num_milliseconds(),
        })
    }

    pub(super) fn cancel_clock(&mut self, kind: ClockKind) {
        if let Some(clock) = self.clock_mut(kind) {
            clock.cancel();
        }
    }

    fn check_open(&self) -> Result<(), DomainError> {
        match self.ticket.status {
            Status::Closed => Err(DomainError::Precondition("the ticket is closed".into())),
            _ => Ok(()),
        }
    }

    /// Step 1: the complaint is recorded with the desk's judgement; the first time meets
    /// the record milestone, later times change the judgement only.
    pub fn record_complaint(
        &mut self,
        quality: QualityJudgement,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        self.check_open()?;
        if self.ticket.flow.quality == Some(quality) {
            return Ok(Vec::new());
        }
        self.ticket.flow.quality = Some(quality);
        self.ticket.flow.recorded_at.get_or_insert(now);
        self.touch(now);
        Ok(self
            .meet_clock(ClockKind::Record, schedules, now)
            .into_iter()
            .collect())
    }

    /// Step 2: the ticket went to an agent of `role`; meets the hand-off when the role is
    /// the one the policy asks for or above.
    pub fn handed_to(
        &mut self,
        role: Option<AgentRole>,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Vec<TicketEvent> {
        self.ticket.flow.assignee_role = role;
        let (Some(required), Some(role)) = (self.ticket.flow.hand_off_role, role) else {
            return Vec::new();
        };
        if role < required || self.ticket.flow.handed_off_at.is_some() {
            return Vec::new();
        }
        self.ticket.flow.handed_off_at = Some(now);
        self.meet_clock(ClockKind::HandOff, schedules, now)
            .into_iter()
            .collect()
    }

    /// Whether the hand-off still waits for an agent of a role (and which).
    pub fn awaits_hand_off(&self) -> Option<AgentRole> {
        let flow = &self.ticket.flow;
        flow.hand_off_role.filter(|_| flow.handed_off_at.is_none())
    }

    /// Step 3: a solution is proposed; it replaces one not yet accepted.
    pub fn propose_solution(
        &mut self,
        kind: SolutionKind,
        now: DateTime<Utc>,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        self.check_open()?;
        if self.ticket.status == Status::Resolved {
            return Err(DomainError::Precondition("the ticket is resolved".into()));
        }
        if self.ticket.flow.agreed() {
            return Err(DomainError::Precondition(
                "the customer has accepted a solution already".into(),
            ));
        }
        let previous = self.ticket.flow.solution.take();
        self.ticket.flow.solution = Some(Solution {
            kind,
            state: SolutionState::Proposed,
            proposed_at: now,
            decided_at: None,
            proposals: previous.as_ref().map_or(0, |s| s.proposals) + 1,
            rejections: previous.as_ref().map_or(0, |s| s.rejections),
        });
        self.touch(now);
        Ok(Vec::new())
    }

    /// The customer's decision: accepted meets the agreement and starts the remedy;
    /// rejected sends the ticket to a manager, who negotiates.
    pub fn decide_solution(
        &mut self,
        accepted: bool,
        policy: &SlaPolicy,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        self.check_open()?;
        let Some(solution) = self
            .ticket
            .flow
            .solution
            .as_mut()
            .filter(|s| s.state == SolutionState::Proposed)
        else {
            return Err(DomainError::Precondition(
                "no proposed solution waits for the customer's decision".into(),
            ));
        };
        solution.decided_at = Some(now);
        if !accepted {
            solution.state = SolutionState::Rejected;
            solution.rejections += 1;
            self.touch(now);
            return Ok(self
                .raise_to(
                    Level::Manager,
                    "the customer rejected the proposed solution".into(),
                    None,
                )
                .into_iter()
                .collect());
        }
        solution.state = SolutionState::Accepted;
        self.touch(now);
        let events = self
            .meet_clock(ClockKind::Agreement, schedules, now)
            .into_iter()
            .collect();
        self.start_milestone(ClockKind::Remedy, policy, schedules, now, now);
        Ok(events)
    }

    /// The agreed remedy is scheduled; the first time meets the remedy milestone, later
    /// times change the plan only.
    pub fn schedule_remedy(
        &mut self,
        reference: Option<String>,
        planned_for: Option<DateTime<Utc>>,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        self.check_open()?;
        if !self.ticket.flow.agreed() {
            return Err(DomainError::Precondition(
                "no solution has been accepted yet".into(),
            ));
        }
        let scheduled_at = self
            .ticket
            .flow
            .remedy
            .as_ref()
            .map_or(now, |r| r.scheduled_at);
        let remedy = Remedy {
            scheduled_at,
            reference,
            planned_for,
        };
        if self.ticket.flow.remedy.as_ref() == Some(&remedy) {
            return Ok(Vec::new());
        }
        self.ticket.flow.remedy = Some(remedy);
        self.touch(now);
        Ok(self
            .meet_clock(ClockKind::Remedy, schedules, now)
            .into_iter()
            .collect())
    }

    /// The milestones a resolution settles: the next reply is answered, feedback is due
    /// within its target, and steps not taken before the resolution no longer apply.
    pub(super) fn resolve_milestones(
        &mut self,
        policy: &SlaPolicy,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Vec<TicketEvent> {
        let events = self
            .meet_clock(ClockKind::NextReply, schedules, now)
            .into_iter()
            .collect();
        for kind in [
            ClockKind::Record,
            ClockKind::HandOff,
            ClockKind::Agreement,
            ClockKind::Remedy,
        ] {
            self.cancel_clock(kind);
        }
        self.start_milestone(ClockKind::Feedback, policy, schedules, now, now);
        events
    }

    /// A public agent reply: answers the customer's open message and, after the
    /// resolution, is the feedback.
    pub(super) fn agent_replied(
        &mut self,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Vec<TicketEvent> {
        let mut events: Vec<TicketEvent> = self
            .meet_clock(ClockKind::NextReply, schedules, now)
            .into_iter()
            .collect();
        if self.ticket.status == Status::Resolved {
            events.extend(self.meet_clock(ClockKind::Feedback, schedules, now));
        }
        events
    }

    /// A customer message: the next reply runs from the oldest one not answered (so a
    /// second message while it runs changes nothing), once the first response is given.
    pub(super) fn customer_wrote(
        &mut self,
        policy: &SlaPolicy,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) {
        let answered_once = self
            .clock_of(ClockKind::FirstResponse)
            .is_none_or(|c| !c.is_live());
        let waiting = self
            .clock_of(ClockKind::NextReply)
            .is_some_and(SlaClock::is_live);
        if answered_once && !waiting {
            self.start_milestone(ClockKind::NextReply, policy, schedules, now, now);
        }
    }

    /// The ticket's facts matched another policy (whose targets the live clocks already
    /// took): the hand-off it asks for is done when the ticket's agent has the role (met
    /// now if it was running) and owed from now otherwise; record and agreement it has and
    /// the ticket has not reached yet start now.
    pub(super) fn rematch_milestones(
        &mut self,
        policy: &SlaPolicy,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Vec<TicketEvent> {
        let mut events = Vec::new();
        let resolved = self.ticket.status == Status::Resolved;
        let required = policy.milestones.hand_off.as_ref().map(|h| h.role);
        let assignee_role = self.ticket.flow.assignee_role;
        match required {
            Some(role) if assignee_role.is_some_and(|r| r >= role) => {
                self.ticket.flow.handed_off_at.get_or_insert(now);
                events.extend(self.meet_clock(ClockKind::HandOff, schedules, now));
            }
            Some(_) => {
                self.ticket.flow.handed_off_at = None;
                let live = self
                    .clock_of(ClockKind::HandOff)
                    .is_some_and(SlaClock::is_live);
                if !live && !resolved {
                    self.start_milestone(ClockKind::HandOff, policy, schedules, now, now);
                }
            }
            // The policy has none: the clock, if any, was cancelled with the others.
            None => {}
        }
        self.ticket.flow.hand_off_role = required;
        let flow = &self.ticket.flow;
        let open_steps = [
            (ClockKind::Record, flow.recorded_at.is_none()),
            (ClockKind::Agreement, !flow.agreed()),
        ];
        for (kind, open) in open_steps {
            if open && self.clock_of(kind).is_none() && !resolved {
                self.start_milestone(kind, policy, schedules, now, now);
            }
        }
        events
    }
}
