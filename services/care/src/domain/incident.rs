//! Major incidents (重大投诉危机): a product batch that hurts or fails many customers, a
//! service outage or a regional emergency, run as one case instead of unrelated tickets.
//! An incident runs the handbook's clocks — a public statement within 2 hours and, for
//! safety and quality incidents, the recall of the affected batch within 48 hours — each
//! warned of at three quarters of its time and escalated one level when missed, and it
//! records the statement, the recall, the compensation and the assistance given.
//!
//! A regional emergency (a storm, an epidemic) runs no statement or recall clock: it
//! holds a region, from its declaration until it is closed or its planned end, while
//! the tickets service pauses the SLA clocks of the region's open tickets, and the
//! region's customers with open work are notified once.
//!
//! The suite proposes an incident by itself (see [`IncidentRules`]); a proposal starts no
//! clock until a supervisor or manager declares it. Tickets whose product facts match the
//! incident's scope are linked to it as they arrive, and by hand.

use aftersales_platform::text_enum;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{DomainError, facts::Dims};

text_enum!(
    IncidentKind {
        Safety = "safety",
        Quality = "quality",
        ServiceOutage = "service_outage",
        RegionalEmergency = "regional_emergency",
    }
);

text_enum!(IncidentStatus { Proposed = "proposed", Active = "active", Closed = "closed" });

text_enum!(MilestoneKind { Statement = "statement", Recall = "recall" });

text_enum!(
    IncidentAction {
        Statement = "statement",
        Recall = "recall",
        Compensation = "compensation",
        Assistance = "assistance",
        TicketsUpdated = "tickets_updated",
    }
);

text_enum!(EscalationLevel { Agent = "agent", Supervisor = "supervisor", Manager = "manager" });

/// The handbook's targets, from the declaration (the defaults of [`IncidentRules`]).
pub const STATEMENT_WITHIN: Duration = Duration::hours(2);
pub const RECALL_WITHIN: Duration = Duration::hours(48);
/// A clock warns when this share of its time has passed (in thousandths).
const WARN_AT_PERMILLE: i64 = 750;

/// When the suite proposes an incident by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentRules {
    /// Complaint-like tickets naming one batch within `window` that propose a quality
    /// incident for it; 0 turns the rule off.
    pub batch_threshold: u32,
    pub window: Duration,
    /// An urgent complaint-like ticket naming a batch or SKU proposes a safety incident
    /// at once.
    pub on_urgent_complaint: bool,
    /// The public statement is due this long after the declaration.
    pub statement_within: Duration,
    /// The recall of a safety or quality incident's batch is due this long after it.
    pub recall_within: Duration,
}

impl Default for IncidentRules {
    fn default() -> Self {
        Self {
            batch_threshold: 5,
            window: Duration::hours(24),
            on_urgent_complaint: true,
            statement_within: STATEMENT_WITHIN,
            recall_within: RECALL_WITHIN,
        }
    }
}

/// Which tickets an incident concerns: every part it names must match; it names at
/// least one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub sku: Option<String>,
    pub batch: Option<String>,
    pub region: Option<String>,
}

impl Scope {
    pub fn is_empty(&self) -> bool {
        self.sku.is_none() && self.batch.is_none() && self.region.is_none()
    }

    pub fn matches(&self, dims: &Dims) -> bool {
        let part = |named: &Option<String>, known: &Option<String>| {
            named.as_ref().is_none_or(|n| known.as_ref() == Some(n))
        };
        !self.is_empty()
            && part(&self.sku, &dims.sku)
            && part(&self.batch, &dims.batch)
            && part(&self.region, &dims.region)
    }

    /// The key that keeps two open incidents from covering the same scope.
    pub fn key(&self) -> String {
        let part = |p: &Option<String>| p.clone().unwrap_or_default();
        format!(
            "sku={}|batch={}|region={}",
            part(&self.sku),
            part(&self.batch),
            part(&self.region)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Milestone {
    pub kind: MilestoneKind,
    pub due_at: DateTime<Utc>,
    pub warn_at: DateTime<Utc>,
    pub met_at: Option<DateTime<Utc>>,
    pub warned: bool,
    pub breached: bool,
}

impl Milestone {
    fn new(kind: MilestoneKind, from: DateTime<Utc>, within: Duration) -> Self {
        let warn_after =
            Duration::milliseconds(within.num_milliseconds() * WARN_AT_PERMILLE / 1000);
        Self {
            kind,
            due_at: from + within,
            warn_at: from + warn_after,
            met_at: None,
            warned: false,
            breached: false,
        }
    }

    /// The next instant this clock acts at, if any.
    fn next_instant(&self) -> Option<DateTime<Utc>> {
        if self.met_at.is_some() {
            return None;
        }
        if !self.warned {
            return Some(self.warn_at);
        }
        (!self.breached).then_some(self.due_at)
    }
}

/// What happened on an incident, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub action: IncidentAction,
    /// What was done or said, e.g. the statement's channel or the compensation given;
    /// never a customer's contact.
    pub note: String,
    /// An outside reference (a press release, a recall notice, a payment).
    pub reference: String,
    pub actor_id: String,
    pub at: DateTime<Utc>,
}

/// What firing an incident's clocks produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockOutcome {
    Warned(MilestoneKind),
    /// Missed: escalated to the level given.
    Breached(MilestoneKind, u32),
    /// A regional emergency reached its planned end and closed.
    Ended,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub kind: IncidentKind,
    pub status: IncidentStatus,
    pub scope: Scope,
    pub title: String,
    /// Why the suite proposed it ("" when declared by hand).
    pub proposed_because: String,
    pub opened_at: DateTime<Utc>,
    pub declared_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub milestones: Vec<Milestone>,
    /// 0 on declaration; one more for each missed clock.
    pub escalation_level: u32,
    pub actions: Vec<ActionRecord>,
    pub linked_tickets: u64,
    /// A regional emergency's planned end, if one was given.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
}

fn precondition(message: impl Into<String>) -> DomainError {
    DomainError::Precondition(message.into())
}

impl Incident {
    /// A proposal by the suite: no clock runs until it is declared.
    pub fn propose(
        id: String,
        kind: IncidentKind,
        scope: Scope,
        title: String,
        because: String,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            kind,
            status: IncidentStatus::Proposed,
            scope,
            title,
            proposed_because: because,
            opened_at: now,
            declared_at: None,
            closed_at: None,
            milestones: Vec::new(),
            escalation_level: 0,
            actions: Vec::new(),
            linked_tickets: 0,
            ends_at: None,
        }
    }

    /// Declares the incident (a proposal, or a new one): its clocks start at `now`; a
    /// regional emergency may be given its planned end, `until`.
    pub fn declare(
        &mut self,
        now: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
        rules: &IncidentRules,
    ) -> Result<(), DomainError> {
        if self.status != IncidentStatus::Proposed {
            return Err(precondition(format!(
                "incident {} is {}, only a proposed one can be declared",
                self.id,
                self.status.as_str()
            )));
        }
        if matches!(self.kind, IncidentKind::Safety | IncidentKind::Quality)
            && self.scope.batch.is_none()
            && self.scope.sku.is_none()
        {
            return Err(DomainError::Invalid {
                field: "scope".into(),
                reason: "a safety or quality incident names the batch or SKU to recall".into(),
            });
        }
        let emergency = self.kind == IncidentKind::RegionalEmergency;
        if emergency && self.scope.region.is_none() {
            return Err(DomainError::Invalid {
                field: "scope.region_code".into(),
                reason: "a regional emergency names its region".into(),
            });
        }
        if let Some(until) = until {
            if !emergency {
                return Err(DomainError::Invalid {
                    field: "until".into(),
                    reason: "only a regional emergency has a planned end".into(),
                });
            }
            if until <= now {
                return Err(DomainError::Invalid {
                    field: "until".into(),
                    reason: "must be later than now".into(),
                });
            }
        }
        self.status = IncidentStatus::Active;
        self.declared_at = Some(now);
        self.ends_at = until;
        if emergency {
            return Ok(());
        }
        self.milestones = vec![Milestone::new(
            MilestoneKind::Statement,
            now,
            rules.statement_within,
        )];
        if matches!(self.kind, IncidentKind::Safety | IncidentKind::Quality) {
            self.milestones.push(Milestone::new(
                MilestoneKind::Recall,
                now,
                rules.recall_within,
            ));
        }
        Ok(())
    }

    pub fn is_open(&self) -> bool {
        self.status != IncidentStatus::Closed
    }

    /// Records what was done; a statement or a recall meets its clock.
    pub fn record(&mut self, record: ActionRecord) -> Result<(), DomainError> {
        if self.status != IncidentStatus::Active {
            return Err(precondition(format!(
                "incident {} is {}: actions are recorded on an active incident",
                self.id,
                self.status.as_str()
            )));
        }
        let meets = match record.action {
            IncidentAction::Statement => Some(MilestoneKind::Statement),
            IncidentAction::Recall => Some(MilestoneKind::Recall),
            IncidentAction::Compensation
            | IncidentAction::Assistance
            | IncidentAction::TicketsUpdated => None,
        };
        if let Some(kind) = meets {
            for m in self.milestones.iter_mut().filter(|m| m.kind == kind) {
                m.met_at.get_or_insert(record.at);
            }
        }
        self.actions.push(record);
        Ok(())
    }

    pub fn close(&mut self, now: DateTime<Utc>) -> Result<(), DomainError> {
        if self.status == IncidentStatus::Closed {
            return Err(precondition(format!("incident {} is closed", self.id)));
        }
        self.status = IncidentStatus::Closed;
        self.closed_at = Some(now);
        Ok(())
    }

    /// Acts on every clock whose instant has come, once each: never before its instant.
    pub fn fire(&mut self, now: DateTime<Utc>) -> Vec<ClockOutcome> {
        if self.status != IncidentStatus::Active {
            return Vec::new();
        }
        if self.ends_at.is_some_and(|end| end <= now) {
            self.status = IncidentStatus::Closed;
            self.closed_at = Some(now);
            return vec![ClockOutcome::Ended];
        }
        let mut outcomes = Vec::new();
        for m in &mut self.milestones {
            if m.met_at.is_some() {
                continue;
            }
            if !m.warned && m.warn_at <= now {
                m.warned = true;
                outcomes.push(ClockOutcome::Warned(m.kind));
            }
            if !m.breached && m.due_at <= now {
                m.breached = true;
                self.escalation_level += 1;
                outcomes.push(ClockOutcome::Breached(m.kind, self.escalation_level));
            }
        }
        outcomes
    }

    /// When the clocks next act (`None` when none will).
    pub fn next_instant(&self) -> Option<DateTime<Utc>> {
        if self.status != IncidentStatus::Active {
            return None;
        }
        self.milestones
            .iter()
            .filter_map(Milestone::next_instant)
            .chain(self.ends_at)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_790_000_000_000 + ms).unwrap()
    }

    fn batch(b: &str) -> Scope {
        Scope {
            batch: Some(b.into()),
            ..Scope::default()
        }
    }

    fn declared(kind: IncidentKind) -> Incident {
        let mut i = Incident::propose(
            "i".into(),
            kind,
            batch("B7"),
            "t".into(),
            String::new(),
            at(0),
        );
        i.declare(at(0), None, &IncidentRules::default()).unwrap();
        i
    }

    #[test]
    fn clocks_warn_at_three_quarters_and_escalate_on_a_miss_never_early() {
        let mut i = declared(IncidentKind::Safety);
        let two_h = STATEMENT_WITHIN.num_milliseconds();
        assert_eq!(i.next_instant(), Some(at(two_h * 3 / 4)));
        assert!(
            i.fire(at(two_h * 3 / 4 - 1)).is_empty(),
            "a millisecond early"
        );
        assert_eq!(
            i.fire(at(two_h * 3 / 4)),
            [ClockOutcome::Warned(MilestoneKind::Statement)]
        );
        assert!(i.fire(at(two_h * 3 / 4)).is_empty(), "once");
        assert_eq!(i.next_instant(), Some(at(two_h)));
        assert!(i.fire(at(two_h - 1)).is_empty());
        assert_eq!(
            i.fire(at(two_h)),
            [ClockOutcome::Breached(MilestoneKind::Statement, 1)]
        );
        // The recall is met before its warning: it never acts.
        i.record(ActionRecord {
            action: IncidentAction::Recall,
            note: "batch B7 recalled".into(),
            reference: "R-1".into(),
            actor_id: "m".into(),
            at: at(two_h + 1),
        })
        .unwrap();
        assert_eq!(i.next_instant(), None);
        assert!(i.fire(at(RECALL_WITHIN.num_milliseconds())).is_empty());
        assert_eq!(i.escalation_level, 1);
    }

    #[test]
    fn an_outage_runs_the_statement_clock_only_and_a_quality_one_needs_what_to_recall() {
        let i = declared(IncidentKind::ServiceOutage);
        assert_eq!(i.milestones.len(), 1);
        let mut q = Incident::propose(
            "q".into(),
            IncidentKind::Quality,
            Scope {
                region: Some("CN-SH".into()),
                ..Scope::default()
            },
            "t".into(),
            String::new(),
            at(0),
        );
        assert!(matches!(
            q.declare(at(0), None, &IncidentRules::default()),
            Err(DomainError::Invalid { .. })
        ));
    }

    #[test]
    fn a_regional_emergency_holds_its_region_until_its_planned_end() {
        let region = Scope {
            region: Some("CN-GD".into()),
            ..Scope::default()
        };
        let mut e = Incident::propose(
            "e".into(),
            IncidentKind::RegionalEmergency,
            region,
            "typhoon".into(),
            String::new(),
            at(0),
        );
        assert!(matches!(
            e.clone().declare(at(0), Some(at(0)), &IncidentRules::default()),
            Err(DomainError::Invalid { field, .. }) if field == "until"
        ));
        e.declare(at(0), Some(at(1_000)), &IncidentRules::default())
            .unwrap();
        assert!(e.milestones.is_empty(), "no statement or recall clock");
        assert_eq!(e.next_instant(), Some(at(1_000)));
        assert!(e.fire(at(999)).is_empty());
        assert_eq!(e.fire(at(1_000)), [ClockOutcome::Ended]);
        assert_eq!(e.status, IncidentStatus::Closed);
        assert_eq!(e.next_instant(), None);
        let mut quality = declared(IncidentKind::Quality);
        quality.status = IncidentStatus::Proposed;
        assert!(matches!(
            quality.declare(at(0), Some(at(5)), &IncidentRules::default()),
            Err(DomainError::Invalid { field, .. }) if field == "until"
        ));
    }

    #[test]
    fn a_scope_matches_on_every_part_it_names() {
        let dims = Dims {
            sku: Some("S1".into()),
            batch: Some("B7".into()),
            region: Some("CN-SH".into()),
            ..Dims::default()
        };
        assert!(batch("B7").matches(&dims));
        assert!(!batch("B8").matches(&dims));
        assert!(
            !Scope::default().matches(&dims),
            "an empty scope matches nothing"
        );
        let both = Scope {
            region: Some("CN-BJ".into()),
            ..batch("B7")
        };
        assert!(!both.matches(&dims));
    }
}
