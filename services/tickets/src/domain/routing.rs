//! Routing: the ordered rules that choose a new ticket's group, the choice of the agent
//! within the group (least loaded on duty and under capacity, or round-robin), and the
//! order of a group's queue by SLA risk. Pure rules over what the use case read at the
//! command's instant.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Category, Channel, ClockKind, ClockState, Severity,
    clock::SlaClock,
    team::{Agent, AgentRole, SupportGroup},
    ticket::Ticket,
};

/// A rule choosing the group of a new ticket; empty lists match anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingRule {
    pub id: String,
    pub priority: i32,
    pub match_categories: Vec<Category>,
    pub match_severities: Vec<Severity>,
    pub match_channels: Vec<Channel>,
    pub match_product_lines: Vec<String>,
    pub match_region_codes: Vec<String>,
    pub group_id: String,
    pub disabled: bool,
}

impl RoutingRule {
    pub fn matches(&self, t: &Ticket) -> bool {
        fn any_or<T: PartialEq>(list: &[T], value: Option<&T>) -> bool {
            list.is_empty() || value.is_some_and(|v| list.contains(v))
        }
        !self.disabled
            && any_or(&self.match_categories, Some(&t.category))
            && any_or(&self.match_severities, Some(&t.severity))
            && any_or(&self.match_channels, Some(&t.channel))
            && any_or(&self.match_product_lines, t.product.product_line.as_ref())
            && any_or(&self.match_region_codes, t.product.region_code.as_ref())
    }
}

/// Sorts rules into matching order: priority, then id.
pub fn sort_rules(rules: &mut [RoutingRule]) {
    rules.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
}

/// The first rule (of rules in matching order) matching the ticket.
pub fn select_rule<'a>(rules: &'a [RoutingRule], ticket: &Ticket) -> Option<&'a RoutingRule> {
    rules.iter().find(|r| r.matches(ticket))
}

/// An agent routing may consider, with its open tickets now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub agent: &'a Agent,
    pub load: u32,
}

/// [`choose_agent`] for one ticket: never `exclude` (the agent it is taken from), and an
/// agent of the role `needs` or above when one is available (a hand-off still owed, so an
/// urgent ticket goes to a supervisor on duty first), else anyone available.
pub fn choose_for<'a>(
    group: &SupportGroup,
    candidates: &[Candidate<'a>],
    last: Option<&str>,
    needs: Option<AgentRole>,
    exclude: Option<&str>,
) -> Option<&'a Agent> {
    let eligible: Vec<Candidate<'a>> = candidates
        .iter()
        .filter(|c| Some(c.agent.id.as_str()) != exclude)
        .cloned()
        .collect();
    if let Some(role) = needs {
        let senior: Vec<Candidate<'a>> = eligible
            .iter()
            .filter(|c| c.agent.role >= role)
            .cloned()
            .collect();
        if let Some(agent) = choose_agent(group, &senior, last) {
            return Some(agent);
        }
    }
    choose_agent(group, &eligible, last)
}

/// Who gets the group's next ticket among `candidates` (the group's agents on duty at the
/// instant, with their loads): only agents with the group's skills and under capacity;
/// the least loaded, ties to the lowest id — or, for a round-robin group, the first in id
/// order after `last` (wrapping). `None`: nobody is available.
pub fn choose_agent<'a>(
    group: &SupportGroup,
    candidates: &[Candidate<'a>],
    last: Option<&str>,
) -> Option<&'a Agent> {
    let mut available: Vec<&Candidate<'a>> = candidates
        .iter()
        .filter(|c| c.agent.qualifies_for(group) && c.load < c.agent.capacity)
        .collect();
    available.sort_by(|a, b| a.agent.id.cmp(&b.agent.id));
    if group.round_robin {
        return available
            .iter()
            .find(|c| last.is_none_or(|l| c.agent.id.as_str() > l))
            .or_else(|| available.first())
            .map(|c| c.agent);
    }
    available
        .iter()
        .min_by(|a, b| {
            a.load
                .cmp(&b.load)
                .then_with(|| a.agent.id.cmp(&b.agent.id))
        })
        .map(|c| c.agent)
}

/// What puts a ticket at risk: the earliest due instant among its clocks that are running
/// or breached (a breached one counts at its due instant, already past), and that clock's
/// kind; `None` when none is (all paused, met or cancelled).
pub fn risk(clocks: &[SlaClock]) -> Option<(DateTime<Utc>, ClockKind)> {
    clocks
        .iter()
        .filter(|c| matches!(c.state, ClockState::Running | ClockState::Breached))
        .map(|c| (c.due_at, c.kind))
        .min_by_key(|(due, _)| *due)
}

/// The queue order: by risk instant (earliest first, none last), then ticket id (UUIDv7,
/// so creation order).
pub fn queue_key(
    ticket_id: &str,
    risk: Option<DateTime<Utc>>,
) -> (bool, Option<DateTime<Utc>>, String) {
    (risk.is_none(), risk, ticket_id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::team::AgentRole;

    fn agent(id: &str, capacity: u32, skills: &[&str]) -> Agent {
        Agent {
            id: id.into(),
            group_ids: vec!["g".into()],
            skills: skills.iter().map(|s| (*s).to_owned()).collect(),
            capacity,
            role: AgentRole::Agent,
        }
    }

    fn group(round_robin: bool) -> SupportGroup {
        SupportGroup {
            id: "g".into(),
            name: "g".into(),
            skills: vec!["zh".into()],
            calendar_id: None,
            round_robin,
        }
    }

    #[test]
    fn least_loaded_under_capacity_with_the_skills_ties_to_the_lowest_id() {
        let (a, b, c, d) = (
            agent("a", 2, &["zh"]),
            agent("b", 5, &["zh"]),
            agent("c", 5, &["zh", "en"]),
            agent("d", 9, &["en"]),
        );
        let candidates = [
            Candidate { agent: &c, load: 1 },
            Candidate { agent: &a, load: 2 },
            Candidate { agent: &b, load: 1 },
            Candidate { agent: &d, load: 0 },
        ];
        let chosen = choose_agent(&group(false), &candidates, None);
        assert_eq!(chosen.map(|a| a.id.as_str()), Some("b"));
        let full = [Candidate { agent: &a, load: 2 }];
        assert_eq!(choose_agent(&group(false), &full, None), None);
    }

    #[test]
    fn round_robin_takes_the_next_id_after_the_last_and_wraps() {
        let (a, b, c) = (
            agent("a", 1, &["zh"]),
            agent("b", 3, &["zh"]),
            agent("c", 3, &["zh"]),
        );
        let candidates = [
            Candidate { agent: &a, load: 0 },
            Candidate { agent: &b, load: 2 },
            Candidate { agent: &c, load: 0 },
        ];
        let pick = |last| choose_agent(&group(true), &candidates, last).map(|a| a.id.clone());
        assert_eq!(pick(None).as_deref(), Some("a"));
        assert_eq!(pick(Some("a")).as_deref(), Some("b"));
        assert_eq!(pick(Some("b")).as_deref(), Some("c"));
        assert_eq!(pick(Some("c")).as_deref(), Some("a"));
        assert_eq!(pick(Some("zz")).as_deref(), Some("a"));
    }
}
