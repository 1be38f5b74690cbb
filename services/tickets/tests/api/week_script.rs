//! The script of the week (`week`): the desk's agents, groups, rosters and routing rules,
//! and what happens when — arrivals, claims, resolutions.

use aftersales_protos::tickets::v1 as pb;
use chrono::{DateTime, Duration, Utc};

use crate::team_support::{hours, t0};

pub const ARRIVALS: usize = 200;

/// An agent as the model knows it.
pub struct ModelAgent {
    pub id: &'static str,
    pub groups: &'static [&'static str],
    pub skills: &'static [&'static str],
    pub capacity: usize,
}

pub const AGENTS: &[ModelAgent] = &[
    ModelAgent {
        id: "c1",
        groups: &["complaints"],
        skills: &["complaints"],
        capacity: 2,
    },
    ModelAgent {
        id: "c2",
        groups: &["complaints"],
        skills: &["complaints"],
        capacity: 3,
    },
    ModelAgent {
        id: "c3",
        groups: &["complaints"],
        skills: &["complaints"],
        capacity: 1,
    },
    ModelAgent {
        id: "o1",
        groups: &["orders"],
        skills: &["orders"],
        capacity: 3,
    },
    ModelAgent {
        id: "o2",
        groups: &["orders"],
        skills: &["orders"],
        capacity: 2,
    },
    ModelAgent {
        id: "o3",
        groups: &["complaints", "orders"],
        skills: &["complaints", "orders"],
        capacity: 4,
    },
    ModelAgent {
        id: "o4",
        groups: &["orders"],
        skills: &["returns"],
        capacity: 5,
    },
    ModelAgent {
        id: "r1",
        groups: &["refunds"],
        skills: &[],
        capacity: 2,
    },
    ModelAgent {
        id: "r2",
        groups: &["refunds"],
        skills: &[],
        capacity: 2,
    },
    ModelAgent {
        id: "r3",
        groups: &["refunds"],
        skills: &[],
        capacity: 3,
    },
];

/// (group, skills, round-robin)
pub const GROUPS: &[(&str, &[&str], bool)] = &[
    ("complaints", &["complaints"], false),
    ("orders", &["orders"], false),
    ("refunds", &[], true),
];

pub struct ModelShift {
    pub id: String,
    pub group: &'static str,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub agents: Vec<&'static str>,
}

/// The rosters, with the gaps the coverage test expects: orders' Friday day shift ends at
/// 14:00 (not 16:00), refunds' Saturday night shift has nobody, complaints has no
/// Wednesday evening shift.
pub fn rosters() -> Vec<ModelShift> {
    let mut shifts = Vec::new();
    let mut add = |id: String, group, start: i64, end: i64, agents: &[&'static str]| {
        shifts.push(ModelShift {
            id,
            group,
            start: hours(start),
            end: hours(end),
            agents: agents.to_vec(),
        });
    };
    for d in 0..7 {
        let h = 24 * d;
        add(format!("orders-{d}-night"), "orders", h, h + 8, &["o2"]);
        let day_end = if d == 4 { h + 14 } else { h + 16 };
        add(
            format!("orders-{d}-day"),
            "orders",
            h + 8,
            day_end,
            &["o3", "o4", "o2"],
        );
        add(
            format!("orders-{d}-evening"),
            "orders",
            h + 16,
            h + 24,
            &["o1"],
        );
        add(
            format!("complaints-{d}-night"),
            "complaints",
            h,
            h + 8,
            &["c3"],
        );
        add(
            format!("complaints-{d}-day"),
            "complaints",
            h + 8,
            h + 16,
            &["c1", "c2", "o3"],
        );
        if d != 2 {
            add(
                format!("complaints-{d}-evening"),
                "complaints",
                h + 16,
                h + 24,
                &["c2"],
            );
        }
        add(
            format!("refunds-{d}-day"),
            "refunds",
            h + 8,
            h + 20,
            &["r1", "r2", "r3"],
        );
    }
    for d in -1..7 {
        let h = 24 * d;
        let agents: &[&str] = if d == 5 { &[] } else { &["r1"] };
        add(
            format!("refunds-{d}-night"),
            "refunds",
            h + 20,
            h + 32,
            agents,
        );
    }
    shifts
}

pub struct Rule {
    pub id: &'static str,
    pub priority: i32,
    pub group: &'static str,
    pub categories: &'static [pb::Category],
    pub severities: &'static [pb::Severity],
    pub channels: &'static [pb::Channel],
    pub lines: &'static [&'static str],
    pub regions: &'static [&'static str],
    pub disabled: bool,
}

pub const RULES: &[Rule] = &[
    Rule {
        id: "everything",
        priority: 1,
        group: "refunds",
        categories: &[],
        severities: &[],
        channels: &[],
        lines: &[],
        regions: &[],
        disabled: true,
    },
    Rule {
        id: "urgent",
        priority: 10,
        group: "complaints",
        categories: &[],
        severities: &[pb::Severity::Urgent],
        channels: &[],
        lines: &[],
        regions: &[],
        disabled: false,
    },
    Rule {
        id: "refunds",
        priority: 20,
        group: "refunds",
        categories: &[pb::Category::ReturnExchange],
        severities: &[],
        channels: &[],
        lines: &[],
        regions: &[],
        disabled: false,
    },
    Rule {
        id: "sh-kettles",
        priority: 30,
        group: "complaints",
        categories: &[],
        severities: &[],
        channels: &[],
        lines: &["kettle"],
        regions: &["CN-SH"],
        disabled: false,
    },
    Rule {
        id: "orders",
        priority: 40,
        group: "orders",
        categories: &[pb::Category::Inquiry, pb::Category::TechnicalSupport],
        severities: &[],
        channels: &[],
        lines: &[],
        regions: &[],
        disabled: false,
    },
    Rule {
        id: "complaints",
        priority: 50,
        group: "complaints",
        categories: &[pb::Category::Complaint],
        severities: &[],
        channels: &[],
        lines: &[],
        regions: &[],
        disabled: false,
    },
    Rule {
        id: "social",
        priority: 60,
        group: "orders",
        categories: &[],
        severities: &[],
        channels: &[pb::Channel::Social],
        lines: &[],
        regions: &[],
        disabled: false,
    },
];

/// What arrives as ticket `i`, and when.
pub struct Arrival {
    pub at: DateTime<Utc>,
    pub category: pb::Category,
    pub severity: pb::Severity,
    pub channel: pb::Channel,
    pub line: &'static str,
    pub region: &'static str,
}

pub fn arrival(i: usize) -> Arrival {
    use pb::{Category as C, Channel as Ch, Severity as S};
    let categories = [
        C::Inquiry,
        C::Complaint,
        C::ReturnExchange,
        C::Repair,
        C::TechnicalSupport,
    ];
    let channels = [
        Ch::Hotline,
        Ch::Chat,
        Ch::Email,
        Ch::App,
        Ch::MarketplaceReview,
        Ch::Store,
        Ch::Social,
    ];
    let severity = if i.is_multiple_of(11) {
        S::Urgent
    } else if i % 4 == 1 {
        S::Important
    } else {
        S::General
    };
    Arrival {
        // Five past, then every 50 minutes: never on an hour, so never at a shift's end.
        at: t0() + Duration::minutes(5 + 50 * i as i64),
        category: categories[i % 5],
        severity,
        channel: channels[i % 7],
        line: ["kettle", "fridge", "phone"][i % 3],
        region: ["CN-SH", "CN-BJ"][(i / 2) % 2],
    }
}

pub fn first_response(severity: pb::Severity) -> Duration {
    match severity {
        pb::Severity::Urgent => Duration::hours(1),
        pb::Severity::Important => Duration::hours(2),
        _ => Duration::hours(8),
    }
}

/// The claims of the week: at arrival `i` with `i % 3 == 0`, before the ticket arrives.
pub fn claimer(i: usize) -> Option<(&'static str, &'static str)> {
    const ROTA: [(&str, &str); 9] = [
        ("c1", "complaints"),
        ("o1", "orders"),
        ("r2", "refunds"),
        ("c3", "complaints"),
        ("o2", "orders"),
        ("c2", "complaints"),
        ("o4", "orders"),
        ("o3", "complaints"),
        ("r1", "refunds"),
    ];
    (i.is_multiple_of(3)).then(|| ROTA[(i / 3) % ROTA.len()])
}

/// The resolutions of the week: at arrival `i`, ticket `i - 4` is resolved, except for
/// every fourth one, which stays open for good.
pub fn resolved_at(i: usize) -> Option<usize> {
    (i >= 4 && i % 4 != 3).then(|| i - 4)
}
