//! SLA policies: which targets apply to a ticket, matched in priority order on severity,
//! complexity, category, customer tier and channel (first match wins; a catch-all must
//! exist). Policies are versioned: a ticket keeps the version it was matched against.
//! The handbook's defaults, edition by edition, are in `defaults`.

mod defaults;
mod milestones;

pub use defaults::{default_policies, upgrades};
pub use milestones::{HandOff, Milestones, WarningAction, WarningThreshold};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Category, Channel, Complexity, DomainError, Level, Severity, Status, Tier};

/// One target: how long, measured on which calendar (`None` = 24x7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaTarget {
    pub seconds: u64,
    pub calendar_id: Option<String>,
}

impl SlaTarget {
    pub fn always_on(seconds: u64) -> Self {
        Self {
            seconds,
            calendar_id: None,
        }
    }

    pub fn business(seconds: u64, calendar_id: &str) -> Self {
        Self {
            seconds,
            calendar_id: Some(calendar_id.to_owned()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaPolicy {
    pub id: String,
    pub version: u32,
    pub name: String,
    /// Lower is tried first.
    pub priority: i32,
    /// Empty lists match anything.
    pub match_severities: Vec<Severity>,
    pub match_categories: Vec<Category>,
    pub match_tiers: Vec<Tier>,
    pub match_channels: Vec<Channel>,
    /// Stored policies written before complexity existed have none: they match anything.
    #[serde(default)]
    pub match_complexities: Vec<Complexity>,
    pub first_response: SlaTarget,
    pub resolution: SlaTarget,
    pub periodic_update: Option<SlaTarget>,
    /// Statuses that stop the clocks.
    pub pause_statuses: Vec<Status>,
    /// Percent of a target at which a warning fires.
    pub warning_percent: u8,
    pub escalate_on_breach: bool,
    /// The level a new ticket starts at.
    pub initial_level: Level,
    pub created_at: DateTime<Utc>,
    /// The handbook's milestones; stored policies written before them have none.
    #[serde(default)]
    pub milestones: Milestones,
    /// Warning thresholds with actions; empty: one notice at `warning_percent`.
    #[serde(default)]
    pub warnings: Vec<WarningThreshold>,
}

/// What a policy is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketFacts {
    pub severity: Severity,
    pub complexity: Complexity,
    pub category: Category,
    pub tier: Tier,
    pub channel: Channel,
}

fn admits<T: PartialEq>(allowed: &[T], value: &T) -> bool {
    allowed.is_empty() || allowed.contains(value)
}

impl SlaPolicy {
    pub fn matches(&self, facts: &TicketFacts) -> bool {
        admits(&self.match_severities, &facts.severity)
            && admits(&self.match_categories, &facts.category)
            && admits(&self.match_tiers, &facts.tier)
            && admits(&self.match_channels, &facts.channel)
            && admits(&self.match_complexities, &facts.complexity)
    }

    /// Whether `other` says the same as this policy, whatever its version and age.
    pub fn same_rules(&self, other: &SlaPolicy) -> bool {
        let aligned = SlaPolicy {
            version: self.version,
            created_at: self.created_at,
            ..other.clone()
        };
        &aligned == self
    }

    pub fn is_catch_all(&self) -> bool {
        self.match_severities.is_empty()
            && self.match_categories.is_empty()
            && self.match_tiers.is_empty()
            && self.match_channels.is_empty()
            && self.match_complexities.is_empty()
    }

    pub fn pauses_in(&self, status: Status) -> bool {
        self.pause_statuses.contains(&status)
    }

    /// The thresholds every clock of the policy warns at, ascending.
    pub fn thresholds(&self) -> Vec<WarningThreshold> {
        let mut thresholds = if self.warnings.is_empty() {
            vec![WarningThreshold {
                percent: self.warning_percent,
                action: WarningAction::Notify,
            }]
        } else {
            self.warnings.clone()
        };
        thresholds.sort_by_key(|t| t.percent);
        thresholds
    }

    /// The percents of [`Self::thresholds`], as a clock keeps them.
    pub fn warning_percents(&self) -> Vec<u8> {
        self.thresholds().iter().map(|t| t.percent).collect()
    }

    /// What the policy does at `percent`; a threshold it no longer has only notifies.
    pub fn action_at(&self, percent: u8) -> WarningAction {
        self.thresholds()
            .iter()
            .find(|t| t.percent == percent)
            .map_or(WarningAction::Notify, |t| t.action)
    }

    /// Checks the rules a policy must keep on its own.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.id.trim().is_empty() {
            return Err(DomainError::invalid("policy.id", "is required"));
        }
        if self.first_response.seconds == 0 {
            return Err(DomainError::invalid(
                "policy.first_response.seconds",
                "must be greater than zero",
            ));
        }
        if self.resolution.seconds == 0 {
            return Err(DomainError::invalid(
                "policy.resolution.seconds",
                "must be greater than zero",
            ));
        }
        if self
            .periodic_update
            .as_ref()
            .is_some_and(|t| t.seconds == 0)
        {
            return Err(DomainError::invalid(
                "policy.periodic_update.seconds",
                "must be greater than zero",
            ));
        }
        if !(1..=99).contains(&self.warning_percent) {
            return Err(DomainError::invalid(
                "policy.warning_percent",
                "must be between 1 and 99",
            ));
        }
        self.milestones.validate()?;
        milestones::validate_thresholds(&self.warnings)?;
        if self
            .pause_statuses
            .iter()
            .any(|s| matches!(s, Status::Resolved | Status::Closed))
        {
            return Err(DomainError::invalid(
                "policy.pause_statuses",
                "resolved and closed stop the clocks for good; they cannot pause them",
            ));
        }
        Ok(())
    }

    /// Every calendar the policy's targets use.
    pub fn calendar_ids(&self) -> impl Iterator<Item = &str> {
        [
            Some(&self.first_response),
            Some(&self.resolution),
            self.periodic_update.as_ref(),
        ]
        .into_iter()
        .flatten()
        .chain(self.milestones.targets().map(|(_, target)| target))
        .filter_map(|t| t.calendar_id.as_deref())
    }
}

/// The first policy, in priority order, that matches.
pub fn select<'a>(policies: &'a [SlaPolicy], facts: &TicketFacts) -> Option<&'a SlaPolicy> {
    let mut ordered: Vec<&SlaPolicy> = policies.iter().collect();
    ordered.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
    ordered.into_iter().find(|p| p.matches(facts))
}

/// Checks that replacing (or adding) `candidate` among the current policies still leaves
/// a catch-all, so every ticket gets a policy.
pub fn check_catch_all_remains(
    current: &[SlaPolicy],
    candidate: &SlaPolicy,
) -> Result<(), DomainError> {
    let remains = candidate.is_catch_all()
        || current
            .iter()
            .any(|p| p.id != candidate.id && p.is_catch_all());
    if remains {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "policy.match_*",
            "this change would leave no catch-all policy (one with no match conditions)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catch_all(policies: &[SlaPolicy]) -> SlaPolicy {
        policies.iter().find(|p| p.is_catch_all()).unwrap().clone()
    }

    fn facts(severity: Severity) -> TicketFacts {
        TicketFacts {
            severity,
            complexity: Complexity::Simple,
            category: Category::Complaint,
            tier: Tier::Regular,
            channel: Channel::Hotline,
        }
    }

    #[test]
    fn the_first_match_in_priority_order_wins() {
        let policies = default_policies(Utc::now());
        assert_eq!(
            select(&policies, &facts(Severity::Urgent)).unwrap().id,
            "urgent"
        );
        let important = select(&policies, &facts(Severity::Important)).unwrap();
        assert_eq!(
            (important.id.as_str(), important.resolution.seconds),
            ("important-simple", 86_400),
            "a simple important problem has the general targets, and a hand-off"
        );
        let complex = TicketFacts {
            complexity: Complexity::Complex,
            ..facts(Severity::Important)
        };
        assert_eq!(select(&policies, &complex).unwrap().id, "important");
        assert_eq!(
            select(&policies, &facts(Severity::General)).unwrap().id,
            "default"
        );
        let urgent = select(&policies, &facts(Severity::Urgent)).unwrap();
        assert_eq!(urgent.initial_level, Level::Supervisor);
        assert_eq!(urgent.first_response.seconds, 3600);
    }

    #[test]
    fn a_vip_policy_can_sit_in_front() {
        let mut policies = default_policies(Utc::now());
        policies.push(SlaPolicy {
            id: "vip".into(),
            priority: 5,
            match_tiers: vec![Tier::Vip],
            first_response: SlaTarget::always_on(900),
            ..catch_all(&policies)
        });
        let vip = TicketFacts {
            tier: Tier::Vip,
            ..facts(Severity::Urgent)
        };
        assert_eq!(select(&policies, &vip).unwrap().id, "vip");
        assert_eq!(
            select(&policies, &facts(Severity::Urgent)).unwrap().id,
            "urgent"
        );
    }

    #[test]
    fn the_catch_all_cannot_be_narrowed_away() {
        let policies = default_policies(Utc::now());
        let narrowed = SlaPolicy {
            match_channels: vec![Channel::Email],
            ..catch_all(&policies)
        };
        assert!(check_catch_all_remains(&policies, &narrowed).is_err());
        let other = SlaPolicy {
            id: "email".into(),
            ..narrowed
        };
        assert!(check_catch_all_remains(&policies, &other).is_ok());
    }

    #[test]
    fn defaults_are_valid() {
        for p in default_policies(Utc::now()) {
            p.validate().unwrap();
        }
    }

    #[test]
    fn complexity_narrows_a_match_and_old_bodies_match_any() {
        let mut p = catch_all(&default_policies(Utc::now()));
        p.match_complexities = vec![Complexity::Complex];
        assert!(!p.is_catch_all());
        assert!(!p.matches(&facts(Severity::General)));
        let stored = serde_json::to_value(&p).unwrap();
        let mut old = stored.clone();
        old.as_object_mut().unwrap().remove("match_complexities");
        let read: SlaPolicy = serde_json::from_value(old).unwrap();
        assert!(read.match_complexities.is_empty() && read.is_catch_all());
        assert!(p.same_rules(&SlaPolicy {
            version: 9,
            ..p.clone()
        }));
        assert!(!p.same_rules(&read));
    }
}
