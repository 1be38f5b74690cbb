//! Care's read model of other services' work: one fact per ticket and per repair job,
//! folded from events. Every fold is order-independent and idempotent: instants keep
//! their earliest (first response, first resolution) or the status of the latest event,
//! flags only turn on, and where two events disagree on a dimension the smaller value
//! wins, so any order of the same events yields the same fact.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Category, Channel, KpiDimension, Severity, TicketState};

/// The dimensions a fact can be grouped by; `None` groups as "unknown".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dims {
    pub channel: Option<Channel>,
    pub severity: Option<Severity>,
    pub category: Option<Category>,
    pub region: Option<String>,
    pub product_line: Option<String>,
    pub sku: Option<String>,
    pub batch: Option<String>,
    /// Who had the ticket when it was first resolved, else who has it now; derived from
    /// [`TicketFact::assignments`] after every fold.
    pub agent: Option<String>,
    pub group: Option<String>,
}

impl Dims {
    pub fn key(&self, by: KpiDimension) -> String {
        let known = match by {
            KpiDimension::All => return "all".into(),
            KpiDimension::Channel => self.channel.map(|c| c.as_str().to_owned()),
            KpiDimension::Severity => self.severity.map(|s| s.as_str().to_owned()),
            KpiDimension::Category => self.category.map(|c| c.as_str().to_owned()),
            KpiDimension::Region => self.region.clone(),
            KpiDimension::ProductLine => self.product_line.clone(),
            KpiDimension::Sku => self.sku.clone(),
            KpiDimension::Batch => self.batch.clone(),
            KpiDimension::Agent => return self.agent.clone().unwrap_or_else(unassigned),
            KpiDimension::Group => return self.group.clone().unwrap_or_else(unassigned),
        };
        known.unwrap_or_else(|| "unknown".into())
    }
}

/// The key of tickets nobody (or no group) had.
pub fn unassigned() -> String {
    "unassigned".into()
}

/// One change of a ticket's group or agent (an empty agent: back in the group's queue).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Assignment {
    pub at: DateTime<Utc>,
    /// The event's id: breaks ties between changes of the same instant (tickets' ids are
    /// time-ordered) and makes a redelivery a no-op.
    pub event_id: String,
    pub agent_id: String,
    pub group_id: String,
}

/// What care knows about one ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TicketFact {
    pub ticket_id: String,
    pub customer_id: String,
    pub order_id: String,
    pub dims: Dims,
    pub created_at: Option<DateTime<Utc>>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub first_resolved_at: Option<DateTime<Utc>>,
    /// The status the latest event left, and that event's instant.
    pub state: Option<TicketState>,
    pub state_at: Option<DateTime<Utc>>,
    pub resolution_breached: bool,
    /// Ids of breached clocks: a clock breaches once.
    pub breached_clocks: Vec<String>,
    pub breaches: u32,
    pub escalated: bool,
    pub reopened: bool,
    pub has_return: bool,
    /// The ticket itself named its product line / region: a job's or return's naming
    /// no longer counts for it.
    pub line_from_ticket: bool,
    pub region_from_ticket: bool,
    /// Every assignment, in (instant, event id) order.
    pub assignments: Vec<Assignment>,
}

/// The product facts a ticket names at creation (each optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamedProduct {
    pub sku: Option<String>,
    pub product_line: Option<String>,
    pub batch: Option<String>,
    pub region: Option<String>,
}

/// One event about a ticket, as far as the facts care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketObservation {
    Created {
        customer_id: String,
        order_id: String,
        channel: Option<Channel>,
        severity: Option<Severity>,
        category: Option<Category>,
        product: NamedProduct,
        at: DateTime<Utc>,
    },
    StatusChanged {
        from: Option<TicketState>,
        to: TicketState,
        at: DateTime<Utc>,
    },
    Resolved {
        customer_id: String,
        at: DateTime<Utc>,
    },
    Reopened {
        customer_id: String,
        at: DateTime<Utc>,
    },
    Escalated,
    Breached {
        clock_id: String,
        resolution: bool,
    },
    /// A repair job or return for the ticket names the product line and region.
    Work {
        product_line: Option<String>,
        region: Option<String>,
    },
    ReturnRequested,
    Assigned(Assignment),
}

fn earliest(slot: &mut Option<DateTime<Utc>>, at: DateTime<Utc>) {
    if slot.is_none_or(|known| at < known) {
        *slot = Some(at);
    }
}

fn smallest(slot: &mut Option<String>, value: Option<String>) {
    if let Some(value) = value.filter(|v| !v.is_empty())
        && slot.as_ref().is_none_or(|known| value < *known)
    {
        *slot = Some(value);
    }
}

impl TicketFact {
    pub fn new(ticket_id: &str) -> Self {
        Self {
            ticket_id: ticket_id.to_owned(),
            ..Default::default()
        }
    }

    /// Folds one event in; the result does not depend on the order events come in.
    pub fn observe(&mut self, observation: &TicketObservation) {
        match observation {
            TicketObservation::Created {
                customer_id,
                order_id,
                channel,
                severity,
                category,
                product,
                at,
            } => {
                self.customer_id.clone_from(customer_id);
                self.order_id.clone_from(order_id);
                self.dims.channel = *channel;
                self.dims.severity = *severity;
                self.dims.category = *category;
                self.dims.sku.clone_from(&product.sku);
                self.dims.batch.clone_from(&product.batch);
                // What the ticket names is the fact; what its work names fills a gap.
                if let Some(line) = &product.product_line {
                    self.dims.product_line = Some(line.clone());
                    self.line_from_ticket = true;
                }
                if let Some(region) = &product.region {
                    self.dims.region = Some(region.clone());
                    self.region_from_ticket = true;
                }
                self.created_at = Some(*at);
                self.latest_state(TicketState::New, *at);
            }
            TicketObservation::StatusChanged { from, to, at } => {
                if *from == Some(TicketState::New) {
                    earliest(&mut self.first_response_at, *at);
                }
                if *to == TicketState::Resolved {
                    earliest(&mut self.first_resolved_at, *at);
                }
                self.latest_state(*to, *at);
            }
            TicketObservation::Resolved { customer_id, at } => {
                self.know_customer(customer_id);
                earliest(&mut self.first_resolved_at, *at);
                self.latest_state(TicketState::Resolved, *at);
            }
            TicketObservation::Reopened { customer_id, at } => {
                self.know_customer(customer_id);
                self.reopened = true;
                self.latest_state(TicketState::Reopened, *at);
            }
            TicketObservation::Escalated => self.escalated = true,
            TicketObservation::Breached {
                clock_id,
                resolution,
            } => {
                if !self.breached_clocks.contains(clock_id) {
                    self.breached_clocks.push(clock_id.clone());
                    self.breached_clocks.sort();
                    self.breaches = self.breached_clocks.len() as u32;
                }
                self.resolution_breached |= *resolution;
            }
            TicketObservation::Work {
                product_line,
                region,
            } => {
                if !self.line_from_ticket {
                    smallest(&mut self.dims.product_line, product_line.clone());
                }
                if !self.region_from_ticket {
                    smallest(&mut self.dims.region, region.clone());
                }
            }
            TicketObservation::ReturnRequested => self.has_return = true,
            TicketObservation::Assigned(a) => {
                if !self.assignments.iter().any(|k| k.event_id == a.event_id) {
                    self.assignments.push(a.clone());
                    self.assignments.sort();
                }
            }
        }
        self.attribute();
    }

    /// The assignment in force at the first resolution (the latest at or before it),
    /// else the latest; `None` when the ticket was never assigned (or its resolution
    /// came before any assignment).
    pub fn responsible(&self) -> Option<&Assignment> {
        match self.first_resolved_at {
            Some(resolved) => self.assignments.iter().rev().find(|a| a.at <= resolved),
            None => self.assignments.last(),
        }
    }

    /// Derives the agent and group dimensions from the assignments and the resolution,
    /// both order-independent, so the result is too.
    fn attribute(&mut self) {
        let (agent, group) = match self.responsible() {
            Some(a) => (
                Some(a.agent_id.clone()).filter(|v| !v.is_empty()),
                Some(a.group_id.clone()).filter(|v| !v.is_empty()),
            ),
            None => (None, None),
        };
        self.dims.agent = agent;
        self.dims.group = group;
    }

    /// What a repeat complaint is compared on: the product line, else the order.
    pub fn product_key(&self) -> String {
        match &self.dims.product_line {
            Some(line) => format!("line:{line}"),
            None => format!("order:{}", self.order_id),
        }
    }

    pub fn is_complaint(&self) -> bool {
        self.dims.category.is_some_and(Category::is_complaint)
    }

    fn know_customer(&mut self, customer_id: &str) {
        if self.customer_id.is_empty() {
            self.customer_id = customer_id.to_owned();
        }
    }

    /// Last writer wins by event instant; a tie goes to the later status in the
    /// lifecycle's order, so the outcome never depends on arrival order.
    fn latest_state(&mut self, state: TicketState, at: DateTime<Utc>) {
        let newer = match (self.state_at, self.state) {
            (Some(known_at), Some(known)) => (at, state) > (known_at, known),
            _ => true,
        };
        if newer {
            self.state = Some(state);
            self.state_at = Some(at);
        }
    }
}

/// What care knows about one repair job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    pub ticket_id: String,
    pub customer_id: String,
    pub product_line: String,
    pub region: String,
    pub created_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub fixed: bool,
    /// Closed by remote diagnosis, without a visit.
    #[serde(default)]
    pub remote: bool,
    /// A later job within 30 days repeated this one: the fix did not hold.
    pub repeated: bool,
    pub cancelled: bool,
}

impl JobRecord {
    pub fn is_open(&self) -> bool {
        self.created_at.is_some() && self.completed_at.is_none() && !self.cancelled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(m: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + m * 60, 0).unwrap()
    }

    fn history() -> Vec<TicketObservation> {
        vec![
            TicketObservation::Created {
                customer_id: "c".into(),
                order_id: "o".into(),
                channel: Some(Channel::Hotline),
                severity: Some(Severity::General),
                category: Some(Category::Complaint),
                product: NamedProduct {
                    batch: Some("B7".into()),
                    region: Some("CN-SH".into()),
                    ..NamedProduct::default()
                },
                at: t(0),
            },
            TicketObservation::StatusChanged {
                from: Some(TicketState::New),
                to: TicketState::Open,
                at: t(30),
            },
            TicketObservation::Resolved {
                customer_id: "c".into(),
                at: t(120),
            },
            TicketObservation::Reopened {
                customer_id: "c".into(),
                at: t(200),
            },
            TicketObservation::StatusChanged {
                from: Some(TicketState::Reopened),
                to: TicketState::Open,
                at: t(210),
            },
            TicketObservation::Resolved {
                customer_id: "c".into(),
                at: t(300),
            },
            TicketObservation::Breached {
                clock_id: "k".into(),
                resolution: true,
            },
            TicketObservation::Work {
                product_line: Some("tv".into()),
                region: Some("310104".into()),
            },
            assigned("e1", "a1", 10),
            assigned("e2", "a2", 120),
            assigned("e3", "a3", 250),
        ]
    }

    fn assigned(event: &str, agent: &str, m: i64) -> TicketObservation {
        TicketObservation::Assigned(Assignment {
            at: t(m),
            event_id: event.into(),
            agent_id: agent.into(),
            group_id: "g".into(),
        })
    }

    #[test]
    fn any_order_and_any_repeat_give_the_same_fact() {
        let mut forward = TicketFact::new("t");
        for o in history() {
            forward.observe(&o);
        }
        let mut backward = TicketFact::new("t");
        for o in history().iter().rev().chain(history().iter()) {
            backward.observe(o);
        }
        assert_eq!(forward, backward);
        assert_eq!(forward.first_response_at, Some(t(30)));
        assert_eq!(forward.first_resolved_at, Some(t(120)));
        assert_eq!(forward.state, Some(TicketState::Resolved));
        assert_eq!(forward.breaches, 1);
        assert!(forward.reopened && forward.resolution_breached);
        assert_eq!(forward.dims.batch.as_deref(), Some("B7"));
        assert_eq!(
            forward.dims.region.as_deref(),
            Some("CN-SH"),
            "the ticket's own region, before or after its job's"
        );
        assert_eq!(
            forward.dims.product_line.as_deref(),
            Some("tv"),
            "the job's line fills the gap"
        );
        assert_eq!(
            forward.dims.agent.as_deref(),
            Some("a2"),
            "the agent assigned at the first resolution (same instant counts)"
        );
        assert_eq!(forward.assignments.len(), 3);
    }
}
