//! KPI figures from the facts care keeps about tickets, repair jobs, returns, follow-ups
//! and surveys. Facts are order-independent summaries of the events (earliest and latest
//! instants, flags that only turn on), so the figures are the same whatever order the
//! events arrived in; this module only counts.
//!
//! Definitions (tickets are those created in the period):
//! - first response: creation → the first status change out of `new` (the first agent
//!   reply); resolution: creation → the first resolution. Mean and nearest-rank p50/p90.
//! - closure: tickets whose latest status is resolved or closed, over tickets.
//! - resolved within SLA: resolved tickets whose resolution clock never breached, over
//!   resolved tickets; SLA breaches: breach events of any clock of those tickets.
//! - escalation: tickets escalated at least once, over tickets.
//! - reopen: tickets reopened at least once, over tickets resolved at least once.
//! - repeat complaint: complaint tickets whose customer had another complaint about the
//!   same product (its product line, else its order) in the 30 days before, over
//!   complaint tickets.
//! - CSAT: scores of 4–5 over scores (surveys recorded in the period, follow-ups of the
//!   period's resolutions).
//! - follow-up within window: follow-ups of resolutions in the period that reached the
//!   customer by their due time, over those follow-ups.
//! - return rate: tickets with a return request, over tickets.
//! - first-time fix: completed repair jobs (created in the period) that fixed the fault
//!   and were not repeated within 30 days, over completed jobs.
//! - remote resolution: completed repair jobs closed by remote diagnosis (no visit), over
//!   completed jobs.
//! - spot-check score: the mean of the spot-check scores (0–100) recorded in the period.
//! - milestones: per clock kind, the clocks met in the period (by their met instant, of
//!   tickets created at any time), those met late, and the mean and largest actual minus
//!   standard (see `clock_lateness`).
//!
//! By agent and by group, a ticket (and its surveys, follow-ups, jobs, spot checks and
//! met clocks) counts for the agent and group it was assigned to when first resolved,
//! else the ones it is assigned to now: the reopen rate of an agent is that of the
//! resolutions the agent gave. A met clock names the agent who had the ticket then, but
//! is charged by the same rule, so every figure of an agent covers the same tickets.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::{
    KpiDimension, TicketState,
    clock_lateness::{ClockLateness, LatenessByKind, MetClock},
    facts::{Dims, TicketFact},
};

/// How far back an earlier complaint makes a new one a repeat.
pub const REPEAT_WINDOW_DAYS: i64 = 30;

/// One completed repair job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFact {
    pub dims: Dims,
    pub fixed: bool,
    pub repeated: bool,
    /// Closed by remote diagnosis, without a visit.
    pub remote: bool,
}

/// Everything a report is computed from.
#[derive(Debug, Clone, Default)]
pub struct KpiInput {
    /// Tickets created in the period.
    pub tickets: Vec<TicketFact>,
    /// Complaint tickets of the same customers from `REPEAT_WINDOW_DAYS` before the
    /// period to its end (the period's own included).
    pub complaint_history: Vec<TicketFact>,
    /// CSAT scores recorded in the period.
    pub scores: Vec<(Dims, u8)>,
    /// Follow-ups of resolutions in the period: reached within the window or not.
    pub follow_ups: Vec<(Dims, bool)>,
    /// Completed repair jobs created in the period.
    pub jobs: Vec<JobFact>,
    /// Spot-check scores recorded in the period.
    pub spot_checks: Vec<(Dims, u32)>,
    /// Clocks met in the period, with their tickets' dimensions.
    pub met_clocks: Vec<(Dims, MetClock)>,
}

/// Scores and their mean.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScoreStats {
    pub count: u64,
    pub sum: u64,
}

impl ScoreStats {
    fn add(&mut self, score: u32) {
        self.count += 1;
        self.sum += u64::from(score);
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rate {
    pub numerator: u64,
    pub denominator: u64,
}

impl Rate {
    fn add(&mut self, hit: bool) {
        self.denominator += 1;
        if hit {
            self.numerator += 1;
        }
    }

    pub fn value(&self) -> f64 {
        if self.denominator == 0 {
            0.0
        } else {
            self.numerator as f64 / self.denominator as f64
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DurationStats {
    pub count: u64,
    pub mean_seconds: f64,
    pub p50_seconds: i64,
    pub p90_seconds: i64,
}

impl DurationStats {
    pub fn of(mut seconds: Vec<i64>) -> Self {
        if seconds.is_empty() {
            return Self::default();
        }
        seconds.sort_unstable();
        let n = seconds.len();
        let sum: i64 = seconds.iter().sum();
        Self {
            count: n as u64,
            mean_seconds: sum as f64 / n as f64,
            p50_seconds: nearest_rank(&seconds, 50),
            p90_seconds: nearest_rank(&seconds, 90),
        }
    }
}

/// The nearest-rank percentile of sorted, non-empty values.
fn nearest_rank(sorted: &[i64], percent: usize) -> i64 {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct KpiGroup {
    pub key: String,
    pub tickets: u64,
    pub first_response: DurationStats,
    pub resolution: DurationStats,
    pub closure: Rate,
    pub resolved_within_sla: Rate,
    pub sla_breaches: u64,
    pub escalation: Rate,
    pub reopen: Rate,
    pub repeat_complaint: Rate,
    pub csat: Rate,
    pub follow_up_within_window: Rate,
    pub return_rate: Rate,
    pub first_time_fix: Rate,
    pub remote_resolution: Rate,
    pub spot_check_score: ScoreStats,
    /// One entry per clock kind with a met clock, in kind number order.
    pub milestones: Vec<ClockLateness>,
}

#[derive(Default)]
struct Acc {
    group: KpiGroup,
    first_response: Vec<i64>,
    resolution: Vec<i64>,
    milestones: LatenessByKind,
}

/// The figures of `input`, one group per value of `by`, ordered by key.
pub fn compute(input: &KpiInput, by: KpiDimension) -> Vec<KpiGroup> {
    let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
    let repeats = repeat_complaints(&input.complaint_history);
    for t in &input.tickets {
        let Some(created) = t.created_at else {
            continue;
        };
        let a = group_of(&mut groups, t.dims.key(by));
        let g = &mut a.group;
        g.tickets += 1;
        if let Some(at) = t.first_response_at {
            a.first_response.push((at - created).num_seconds());
        }
        g.closure.add(t.state.is_some_and(TicketState::is_done));
        if let Some(at) = t.first_resolved_at {
            a.resolution.push((at - created).num_seconds());
            g.resolved_within_sla.add(!t.resolution_breached);
            g.reopen.add(t.reopened);
        }
        g.sla_breaches += u64::from(t.breaches);
        g.escalation.add(t.escalated);
        if t.is_complaint() {
            g.repeat_complaint.add(repeats.contains(&t.ticket_id));
        }
        g.return_rate.add(t.has_return);
    }
    for (dims, score) in &input.scores {
        group_of(&mut groups, dims.key(by))
            .group
            .csat
            .add(*score >= 4);
    }
    for (dims, within) in &input.follow_ups {
        group_of(&mut groups, dims.key(by))
            .group
            .follow_up_within_window
            .add(*within);
    }
    for job in &input.jobs {
        let g = &mut group_of(&mut groups, job.dims.key(by)).group;
        g.first_time_fix.add(job.fixed && !job.repeated);
        g.remote_resolution.add(job.remote);
    }
    for (dims, score) in &input.spot_checks {
        group_of(&mut groups, dims.key(by))
            .group
            .spot_check_score
            .add(*score);
    }
    for (dims, clock) in &input.met_clocks {
        group_of(&mut groups, dims.key(by)).milestones.add(clock);
    }
    groups
        .into_values()
        .map(|mut a| {
            a.group.first_response = DurationStats::of(a.first_response);
            a.group.resolution = DurationStats::of(a.resolution);
            a.group.milestones = a.milestones.into_kinds();
            a.group
        })
        .collect()
}

fn group_of(groups: &mut BTreeMap<String, Acc>, key: String) -> &mut Acc {
    groups.entry(key.clone()).or_insert_with(|| Acc {
        group: KpiGroup {
            key,
            ..Default::default()
        },
        ..Default::default()
    })
}

/// Ids of the complaint tickets that repeat an earlier one of the same customer and
/// product within the window.
pub fn repeat_complaints(history: &[TicketFact]) -> std::collections::HashSet<String> {
    // (customer, product) → (created, ticket id) of each complaint.
    type Subject = (String, String);
    let mut by_subject: BTreeMap<Subject, Vec<(DateTime<Utc>, &str)>> = BTreeMap::new();
    for t in history.iter().filter(|t| t.is_complaint()) {
        if let Some(at) = t.created_at {
            by_subject
                .entry((t.customer_id.clone(), t.product_key()))
                .or_default()
                .push((at, &t.ticket_id));
        }
    }
    let window = Duration::days(REPEAT_WINDOW_DAYS);
    let mut repeats = std::collections::HashSet::new();
    for mut tickets in by_subject.into_values() {
        tickets.sort();
        for pair in tickets.windows(2) {
            let ((earlier, _), (later, id)) = (pair[0], pair[1]);
            if later - earlier <= window {
                repeats.insert(id.to_string());
            }
        }
    }
    repeats
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::domain::facts::{Dims, TicketFact};

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + h * 3600, 0).unwrap()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let s = DurationStats::of(vec![50, 10, 40, 20, 30]);
        assert_eq!(
            (s.count, s.mean_seconds, s.p50_seconds, s.p90_seconds),
            (5, 30.0, 30, 50)
        );
        assert_eq!(DurationStats::of(vec![]).count, 0);
    }

    #[test]
    fn complaints_repeat_within_thirty_days_of_the_same_product() {
        let complaint = |id: &str, customer: &str, order: &str, at| TicketFact {
            ticket_id: id.into(),
            customer_id: customer.into(),
            order_id: order.into(),
            dims: Dims {
                category: Some(crate::domain::Category::Complaint),
                ..Default::default()
            },
            created_at: Some(at),
            ..Default::default()
        };
        let history = vec![
            complaint("a", "c1", "o1", t(0)),
            complaint("b", "c1", "o1", t(24 * 29)),
            complaint("c", "c1", "o1", t(24 * 70)),
            complaint("d", "c1", "o2", t(24 * 70)),
            complaint("e", "c2", "o1", t(1)),
        ];
        let repeats = repeat_complaints(&history);
        assert_eq!(repeats.len(), 1);
        assert!(repeats.contains("b"));
    }

    #[test]
    fn remote_resolutions_count_over_completed_jobs_per_group() {
        let job = |line: &str, fixed, remote| JobFact {
            dims: Dims {
                product_line: Some(line.into()),
                ..Default::default()
            },
            fixed,
            repeated: false,
            remote,
        };
        let input = KpiInput {
            jobs: vec![
                job("tv", true, true),
                job("tv", true, false),
                job("tv", false, false),
                job("washer", true, true),
            ],
            ..Default::default()
        };
        let groups = compute(&input, KpiDimension::ProductLine);
        let remote: Vec<(String, u64, u64)> = groups
            .iter()
            .map(|g| {
                (
                    g.key.clone(),
                    g.remote_resolution.numerator,
                    g.remote_resolution.denominator,
                )
            })
            .collect();
        assert_eq!(
            remote,
            [("tv".to_owned(), 1, 3), ("washer".to_owned(), 1, 1)]
        );
        assert_eq!(groups[0].first_time_fix.numerator, 2);
    }

    #[test]
    fn spot_check_scores_average_per_agent_and_the_unassigned_group_apart() {
        let of = |agent: Option<&str>| Dims {
            agent: agent.map(str::to_owned),
            ..Default::default()
        };
        let input = KpiInput {
            spot_checks: vec![(of(Some("a1")), 80), (of(Some("a1")), 55), (of(None), 100)],
            ..Default::default()
        };
        let groups = compute(&input, KpiDimension::Agent);
        let scores: Vec<(&str, u64, f64)> = groups
            .iter()
            .map(|g| {
                let s = g.spot_check_score;
                (g.key.as_str(), s.count, s.mean())
            })
            .collect();
        assert_eq!(scores, [("a1", 2, 67.5), ("unassigned", 1, 100.0)]);
        assert_eq!(ScoreStats::default().mean(), 0.0);
    }
}
