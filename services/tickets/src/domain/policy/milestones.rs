//! The handbook's milestones a policy may carry beside first response and resolution
//! (record, hand-off, agreement, remedy, feedback, next reply), and the warning thresholds
//! of every clock of a policy with what happens at each (notify, escalate, reassign).

use aftersales_platform::text_enum;
use serde::{Deserialize, Serialize};

use super::SlaTarget;
use crate::domain::{ClockKind, DomainError, team::AgentRole};

/// The most thresholds a policy may have.
pub const MAX_THRESHOLDS: usize = 5;

text_enum!(
    /// What a policy does when a clock reaches a warning threshold: notify (a warning
    /// only: the group, the agent and the watchers are told), escalate (the ticket rises
    /// one level) or reassign (to another agent of its group on duty, else its queue).
    WarningAction {
        Notify = "notify",
        Escalate = "escalate",
        Reassign = "reassign",
    }
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarningThreshold {
    pub percent: u8,
    pub action: WarningAction,
}

/// The hand-off: in the hands of an agent of `role` or above within `within`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandOff {
    pub within: SlaTarget,
    pub role: AgentRole,
}

/// The milestones of a policy; each is optional. Stored policies written before they
/// existed have none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Milestones {
    /// From the report until the complaint is recorded.
    #[serde(default)]
    pub record: Option<SlaTarget>,
    /// From the report until an agent of the role or above has the ticket.
    #[serde(default)]
    pub hand_off: Option<HandOff>,
    /// From the report until the customer accepts a solution.
    #[serde(default)]
    pub agreement: Option<SlaTarget>,
    /// From the agreement until the remedy is scheduled.
    #[serde(default)]
    pub remedy: Option<SlaTarget>,
    /// From the resolution until an agent's public reply.
    #[serde(default)]
    pub feedback: Option<SlaTarget>,
    /// From the oldest customer message not answered until an agent's public reply.
    #[serde(default)]
    pub next_reply: Option<SlaTarget>,
}

impl Milestones {
    /// The target of a milestone clock kind; `None` for the kinds that are not milestones
    /// or that the policy does not have.
    pub fn target(&self, kind: ClockKind) -> Option<&SlaTarget> {
        match kind {
            ClockKind::Record => self.record.as_ref(),
            ClockKind::HandOff => self.hand_off.as_ref().map(|h| &h.within),
            ClockKind::Agreement => self.agreement.as_ref(),
            ClockKind::Remedy => self.remedy.as_ref(),
            ClockKind::Feedback => self.feedback.as_ref(),
            ClockKind::NextReply => self.next_reply.as_ref(),
            ClockKind::FirstResponse | ClockKind::Resolution | ClockKind::PeriodicUpdate => None,
        }
    }

    pub fn targets(&self) -> impl Iterator<Item = (&'static str, &SlaTarget)> {
        [
            ("record", self.record.as_ref()),
            ("hand_off.within", self.hand_off.as_ref().map(|h| &h.within)),
            ("agreement", self.agreement.as_ref()),
            ("remedy", self.remedy.as_ref()),
            ("feedback", self.feedback.as_ref()),
            ("next_reply", self.next_reply.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, target)| target.map(|t| (name, t)))
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        for (name, target) in self.targets() {
            if target.seconds == 0 {
                return Err(DomainError::invalid(
                    format!("policy.{name}.seconds"),
                    "must be greater than zero",
                ));
            }
        }
        if self
            .hand_off
            .as_ref()
            .is_some_and(|h| h.role == AgentRole::Agent)
        {
            return Err(DomainError::invalid(
                "policy.hand_off.role",
                "must be specialist, supervisor or manager: every agent has the ticket already",
            ));
        }
        Ok(())
    }
}

/// Checks a policy's thresholds: at most [`MAX_THRESHOLDS`], each 1–99, distinct.
pub fn validate_thresholds(thresholds: &[WarningThreshold]) -> Result<(), DomainError> {
    if thresholds.len() > MAX_THRESHOLDS {
        return Err(DomainError::invalid(
            "policy.warnings",
            format!("at most {MAX_THRESHOLDS} thresholds"),
        ));
    }
    let mut seen = Vec::with_capacity(thresholds.len());
    for threshold in thresholds {
        if !(1..=99).contains(&threshold.percent) {
            return Err(DomainError::invalid(
                "policy.warnings.percent",
                "must be between 1 and 99",
            ));
        }
        if seen.contains(&threshold.percent) {
            return Err(DomainError::invalid(
                "policy.warnings.percent",
                format!("{} appears twice", threshold.percent),
            ));
        }
        seen.push(threshold.percent);
    }
    Ok(())
}
