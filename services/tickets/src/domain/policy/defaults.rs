//! The handbooks' default SLA policies, edition by edition, and how a database seeded with
//! an older edition moves to the newest without touching staff's own changes.
//!
//! Edition 2 (issue 16): *complexity* decides the resolution target (simple: 24 hours
//! around the clock; complex: 3 working days on the default calendar), *severity* decides
//! hand-off and escalation (urgent starts at a supervisor), and negative online sentiment
//! (marketplace reviews, social media) is answered within 1 hour and solved within 24
//! hours whatever its complexity. Every ticket gets a first response within 1 hour (the
//! platform manual), which is also the deadline of the urgent hand-off: an urgent ticket
//! is in a supervisor's hands from the start and must be answered within the hour. No
//! default gives a more severe ticket a looser target than a less severe one with the
//! same other facts (see the tests).
//!
//! Edition 3 gives the hand-off a clock of its own: urgent tickets in a supervisor's hands
//! within 1 hour, important ones in a specialist's within 2 hours (see `default_policies`).
//!
//! Edition 1 made urgent and important tickets "complex" (3 working days) and general ones
//! 24 hours, so it gave urgent tickets looser targets. Tickets matched to either earlier
//! edition keep it.

use chrono::{DateTime, Utc};

use super::{HandOff, Milestones, SlaPolicy, SlaTarget};
use crate::domain::{
    Channel, Complexity, Level, Severity, Status, calendar::DEFAULT_CALENDAR_ID, team::AgentRole,
};

const HOUR: u64 = 3600;
/// A working day of the default calendar (09:00–12:00, 13:00–18:00).
const WORKING_DAY: u64 = 8 * HOUR;
/// The channels where a complaint is negative online sentiment.
const ONLINE: [Channel; 2] = [Channel::MarketplaceReview, Channel::Social];

/// A default policy matching anything: answer within 1 hour, solve within 24 hours.
fn base(id: &str, version: u32, name: &str, priority: i32, now: DateTime<Utc>) -> SlaPolicy {
    SlaPolicy {
        id: id.into(),
        version,
        name: name.into(),
        priority,
        match_severities: Vec::new(),
        match_categories: Vec::new(),
        match_tiers: Vec::new(),
        match_channels: Vec::new(),
        match_complexities: Vec::new(),
        first_response: SlaTarget::always_on(HOUR),
        resolution: SlaTarget::always_on(24 * HOUR),
        periodic_update: None,
        pause_statuses: vec![Status::PendingCustomer],
        warning_percent: 75,
        escalate_on_breach: true,
        initial_level: Level::Agent,
        created_at: now,
        milestones: Default::default(),
        warnings: Vec::new(),
    }
}

fn three_working_days() -> SlaTarget {
    SlaTarget::business(3 * WORKING_DAY, DEFAULT_CALENDAR_ID)
}

/// The first edition, as databases seeded before issue 16 hold it.
fn edition_one(now: DateTime<Utc>) -> Vec<SlaPolicy> {
    let base = |id: &str, name: &str, priority: i32| base(id, 1, name, priority, now);
    vec![
        SlaPolicy {
            match_severities: vec![Severity::Urgent],
            resolution: three_working_days(),
            initial_level: Level::Supervisor,
            ..base("urgent", "Urgent: supervisor at once, 3 working days", 10)
        },
        SlaPolicy {
            match_severities: vec![Severity::Important],
            resolution: three_working_days(),
            ..base("important", "Important: 3 working days", 20)
        },
        base("default", "General: respond in 1 h, resolve in 24 h", 1000),
    ]
}

/// The current edition (3), each policy at the version it has in a database that has
/// seen every edition (so `urgent@3` means the same everywhere): edition 2 with the
/// handbook's hand-off as a milestone of its own — urgent tickets in a supervisor's hands
/// within 1 hour, important ones in a specialist's within 2 hours — and the policies
/// important tickets need for it (simple ones, and online ones, matched the general
/// policies before). Priorities stay at 10 and above, leaving 1–9 for staff's own
/// policies in front of every default.
pub fn default_policies(now: DateTime<Utc>) -> Vec<SlaPolicy> {
    let hand_off = |severity: &[Severity]| match severity {
        [Severity::Urgent] => Some(HandOff {
            within: SlaTarget::always_on(HOUR),
            role: AgentRole::Supervisor,
        }),
        [Severity::Important] => Some(HandOff {
            within: SlaTarget::always_on(2 * HOUR),
            role: AgentRole::Specialist,
        }),
        _ => None,
    };
    let with_hand_off = |p: SlaPolicy| match hand_off(&p.match_severities) {
        Some(h) => SlaPolicy {
            version: p.version + 1,
            name: format!(
                "{}; in a {}'s hands within {} h",
                p.name,
                h.role,
                h.within.seconds / HOUR
            ),
            milestones: Milestones {
                hand_off: Some(h),
                ..Milestones::default()
            },
            ..p
        },
        None => p,
    };
    let important = |id: &str, name: &str, priority: i32| SlaPolicy {
        match_severities: vec![Severity::Important],
        ..base(id, 0, name, priority, now)
    };
    let mut policies = Vec::new();
    for p in edition_two(now) {
        let id = p.id.clone();
        policies.push(with_hand_off(p));
        if id == "online-urgent" {
            policies.push(with_hand_off(SlaPolicy {
                match_channels: ONLINE.to_vec(),
                ..important(
                    "online-important",
                    "Important online sentiment: answer in 1 h, solve in 24 h",
                    10,
                )
            }));
        }
        if id == "important" {
            policies.push(with_hand_off(important(
                "important-simple",
                "Important: respond in 1 h, resolve in 24 h",
                31,
            )));
        }
    }
    policies
}

/// The second edition (issue 16: severity against complexity), before the hand-off had a
/// clock of its own.
fn edition_two(now: DateTime<Utc>) -> Vec<SlaPolicy> {
    vec![
        SlaPolicy {
            match_severities: vec![Severity::Urgent],
            match_channels: ONLINE.to_vec(),
            initial_level: Level::Supervisor,
            ..base(
                "online-urgent",
                1,
                "Urgent online sentiment: supervisor at once, answer in 1 h, solve in 24 h",
                10,
                now,
            )
        },
        SlaPolicy {
            match_channels: ONLINE.to_vec(),
            ..base(
                "online",
                1,
                "Negative online sentiment: answer in 1 h, solve in 24 h",
                11,
                now,
            )
        },
        SlaPolicy {
            match_severities: vec![Severity::Urgent],
            match_complexities: vec![Complexity::Complex],
            resolution: three_working_days(),
            initial_level: Level::Supervisor,
            ..base(
                "urgent-complex",
                1,
                "Urgent, complex: supervisor at once, 3 working days",
                20,
                now,
            )
        },
        SlaPolicy {
            match_severities: vec![Severity::Urgent],
            initial_level: Level::Supervisor,
            ..base(
                "urgent",
                2,
                "Urgent: supervisor at once, respond in 1 h, resolve in 24 h",
                21,
                now,
            )
        },
        SlaPolicy {
            match_severities: vec![Severity::Important],
            match_complexities: vec![Complexity::Complex],
            resolution: three_working_days(),
            ..base(
                "important",
                2,
                "Important, complex: 3 working days",
                30,
                now,
            )
        },
        SlaPolicy {
            match_complexities: vec![Complexity::Complex],
            resolution: three_working_days(),
            ..base("complex", 1, "Complex: 3 working days", 40, now)
        },
        base(
            "default",
            1,
            "General: respond in 1 h, resolve in 24 h",
            1000,
            now,
        ),
    ]
}

/// The default policy versions to store as current, given the current policies: each
/// default whose id has no policy yet, and each that replaces an older default version
/// staff have left as shipped. A policy staff changed (or a newer one) stays as it is.
/// Versions already stored are never rewritten, so tickets keep the ones they have.
pub fn upgrades(current: &[SlaPolicy], now: DateTime<Utc>) -> Vec<SlaPolicy> {
    let shipped: Vec<SlaPolicy> = edition_one(now)
        .into_iter()
        .chain(edition_two(now))
        .collect();
    let as_shipped = |p: &SlaPolicy| {
        shipped
            .iter()
            .any(|s| s.id == p.id && s.version == p.version && s.same_rules(p))
    };
    default_policies(now)
        .into_iter()
        .filter(|d| match current.iter().find(|p| p.id == d.id) {
            None => true,
            Some(p) => p.version < d.version && as_shipped(p),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Category, Tier,
        calendar::default_calendar,
        policy::{TicketFacts, select},
        ticket::Schedules,
    };
    use chrono::Duration;
    use proptest::prelude::*;

    fn any_of<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
        proptest::sample::select(all)
    }

    const SEVERITIES: &[Severity] = &[Severity::Urgent, Severity::Important, Severity::General];
    const COMPLEXITIES: &[Complexity] = &[Complexity::Simple, Complexity::Complex];
    const CATEGORIES: &[Category] = &[
        Category::Inquiry,
        Category::Complaint,
        Category::ReturnExchange,
        Category::Repair,
        Category::TechnicalSupport,
    ];
    const TIERS: &[Tier] = &[Tier::Vip, Tier::Potential, Tier::Regular];
    const CHANNELS: &[Channel] = &[
        Channel::Hotline,
        Channel::Chat,
        Channel::Email,
        Channel::App,
        Channel::MarketplaceReview,
        Channel::Store,
        Channel::Social,
    ];

    fn rank(s: Severity) -> u8 {
        match s {
            Severity::Urgent => 0,
            Severity::Important => 1,
            Severity::General => 2,
        }
    }

    proptest! {
        /// Whatever the other facts and whenever the ticket opens, a more severe ticket's
        /// every target is due no later than a less severe one's, and starts no lower.
        #[test]
        fn no_default_gives_a_more_severe_ticket_a_looser_target(
            a in any_of(SEVERITIES),
            b in any_of(SEVERITIES),
            complexity in any_of(COMPLEXITIES),
            category in any_of(CATEGORIES),
            tier in any_of(TIERS),
            channel in any_of(CHANNELS),
            offset_s in 0i64..(4 * 366 * 86_400),
        ) {
            let (severe, mild) = if rank(a) <= rank(b) { (a, b) } else { (b, a) };
            let now = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap().to_utc();
            let opened = now + Duration::seconds(offset_s);
            let policies = default_policies(now);
            let schedules = Schedules::new([default_calendar()]);
            let facts = |severity| TicketFacts { severity, complexity, category, tier, channel };
            let severe = select(&policies, &facts(severe)).unwrap();
            let mild = select(&policies, &facts(mild)).unwrap();
            let due = |t: &SlaTarget| {
                let seconds = i64::try_from(t.seconds).unwrap();
                schedules.get(t.calendar_id.as_deref()).add(opened, Duration::seconds(seconds))
            };
            prop_assert!(due(&severe.first_response) <= due(&mild.first_response));
            prop_assert!(due(&severe.resolution) <= due(&mild.resolution));
            prop_assert!(severe.initial_level >= mild.initial_level);
            prop_assert!(severe.escalate_on_breach || !mild.escalate_on_breach);
            // A hand-off the milder ticket owes, the more severe one owes sooner, to a role
            // at least as senior.
            if let Some(mild) = &mild.milestones.hand_off {
                let severe = severe.milestones.hand_off.as_ref();
                prop_assert!(severe.is_some_and(|s| due(&s.within) <= due(&mild.within) && s.role >= mild.role));
            }
        }
    }

    #[test]
    fn every_default_is_valid_and_a_catch_all_remains() {
        let policies = default_policies(Utc::now());
        for p in &policies {
            p.validate().unwrap();
        }
        assert!(policies.iter().any(SlaPolicy::is_catch_all));
        let mut ids: Vec<&str> = policies.iter().map(|p| p.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), policies.len(), "one version per id");
    }

    #[test]
    fn a_fresh_database_gets_every_default() {
        let now = Utc::now();
        assert_eq!(upgrades(&[], now), default_policies(now));
    }

    #[test]
    fn edition_one_moves_to_the_current_edition_and_a_seeded_one_stays() {
        let now = Utc::now();
        let stored = edition_one(now - Duration::days(30));
        let ids: Vec<(String, u32)> = upgrades(&stored, now)
            .iter()
            .map(|p| (p.id.clone(), p.version))
            .collect();
        let expected = [
            ("online-urgent", 2),
            ("online-important", 1),
            ("online", 1),
            ("urgent-complex", 2),
            ("urgent", 3),
            ("important", 3),
            ("important-simple", 1),
            ("complex", 1),
        ];
        assert_eq!(
            ids,
            expected.map(|(id, v)| (id.to_owned(), v)),
            "the unchanged catch-all keeps its version"
        );
        assert!(upgrades(&default_policies(now), now).is_empty());
    }

    #[test]
    fn edition_two_moves_to_edition_three_with_the_hand_offs() {
        let now = Utc::now();
        let upgraded = upgrades(&edition_two(now - Duration::days(30)), now);
        type HandOffOf = (String, u32, Option<(u64, AgentRole)>);
        let hand_offs: Vec<HandOffOf> = upgraded
            .iter()
            .map(|p| {
                let h = p.milestones.hand_off.as_ref();
                (
                    p.id.clone(),
                    p.version,
                    h.map(|h| (h.within.seconds, h.role)),
                )
            })
            .collect();
        let supervisor = Some((3_600, AgentRole::Supervisor));
        let specialist = Some((7_200, AgentRole::Specialist));
        assert_eq!(
            hand_offs,
            [
                ("online-urgent", 2, supervisor),
                ("online-important", 1, specialist),
                ("urgent-complex", 2, supervisor),
                ("urgent", 3, supervisor),
                ("important", 3, specialist),
                ("important-simple", 1, specialist),
            ]
            .map(|(id, v, h)| (id.to_owned(), v, h))
        );
    }

    #[test]
    fn staff_changes_are_never_replaced() {
        let now = Utc::now();
        let mut stored = edition_one(now);
        // Staff tightened the urgent policy (their version 2) and retuned important in
        // place (same version number cannot happen, but different rules must not match).
        stored[0] = SlaPolicy {
            version: 2,
            first_response: SlaTarget::always_on(900),
            ..stored[0].clone()
        };
        stored[1].warning_percent = 50;
        let ids: Vec<String> = upgrades(&stored, now).into_iter().map(|p| p.id).collect();
        assert!(!ids.iter().any(|id| id == "urgent" || id == "important"));
        assert!(ids.iter().any(|id| id == "complex"));
    }
}
