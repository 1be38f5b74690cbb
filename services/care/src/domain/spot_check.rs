//! Quality spot checks: which resolved tickets of a week are reviewed, and their scores.
//!
//! The sample is a pure function of the week's resolved tickets: per agent (the one the
//! ticket was assigned to when first resolved), the `ceil(rate × n)` tickets (at least
//! one) with the smallest stable hash of (ticket id, week). No clock, no draw event and
//! no stored sample: every replica, every redelivery and every event order gives the
//! same set, and a ticket keeps its rank whatever else the week holds. The sample of a
//! week still running grows as tickets resolve; a scored spot check stays listed even if
//! a later resolution would rank above it, so a review is never lost.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use sha2::{Digest, Sha256};

use super::{DomainError, quality::week_start};

/// The sampling rate when none is configured.
pub const DEFAULT_RATE_PERCENT: u32 = 10;
/// The highest score a reviewer gives.
pub const MAX_SCORE: u32 = 100;

/// A ticket first resolved in the week, with who had it then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub ticket_id: String,
    /// Empty: nobody was assigned; such tickets are sampled as one pool of their own.
    pub agent_id: String,
    pub group_id: String,
    pub resolved_at: DateTime<Utc>,
}

/// A reviewer's score of one spot check; the note stays in care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Score {
    pub score: u32,
    pub note: String,
    pub scored_by: String,
    pub scored_at: DateTime<Utc>,
}

/// One ticket of a week's sample, with its score once given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotCheck {
    pub week_start: DateTime<Utc>,
    pub candidate: Candidate,
    pub score: Option<Score>,
}

impl SpotCheck {
    pub fn id(&self) -> String {
        spot_check_id(self.week_start, &self.candidate.ticket_id)
    }
}

/// `<Monday's date>/<ticket id>`: readable, and enough to find the spot check again.
pub fn spot_check_id(week_start: DateTime<Utc>, ticket_id: &str) -> String {
    format!("{}/{ticket_id}", week_start.date_naive())
}

/// The week start and ticket id of a spot-check id; the date must be a Monday.
pub fn parse_spot_check_id(id: &str) -> Result<(DateTime<Utc>, String), DomainError> {
    let bad = || DomainError::invalid("spot_check_id", "must be <monday yyyy-mm-dd>/<ticket id>");
    let (date, ticket) = id.split_once('/').ok_or_else(bad)?;
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| bad())?;
    let start = date.and_time(NaiveTime::MIN).and_utc();
    if ticket.trim().is_empty() || week_start(start) != start {
        return Err(bad());
    }
    Ok((start, ticket.to_owned()))
}

/// `[start, end)` of the week `at` falls in.
pub fn week_of(at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = week_start(at);
    (start, start + Duration::days(7))
}

/// The rank of a ticket in its week's draw: the first 8 bytes of SHA-256 of the
/// spot-check id. A cryptographic hash rather than `std`'s hasher (whose output may
/// change between Rust releases, and replicas may run different builds) or a short one
/// like FNV (whose high bits barely move with the last characters, so sequential ticket
/// ids would be sampled as one contiguous block).
pub fn rank(ticket_id: &str, week_start: DateTime<Utc>) -> u64 {
    let digest = Sha256::digest(spot_check_id(week_start, ticket_id).as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// How many of an agent's `n` tickets are sampled: `ceil(n × rate / 100)`, at least one
/// when the agent resolved any.
pub fn quota(n: usize, rate_percent: u32) -> usize {
    if n == 0 {
        return 0;
    }
    (n * rate_percent as usize).div_ceil(100).max(1)
}

/// The week's sample of `resolved` (tickets first resolved in the week), in ticket id
/// order; does not depend on the order of `resolved`.
pub fn draw(
    resolved: &[Candidate],
    week_start: DateTime<Utc>,
    rate_percent: u32,
) -> Vec<Candidate> {
    let mut by_agent: BTreeMap<&str, Vec<(u64, &Candidate)>> = BTreeMap::new();
    for c in resolved {
        by_agent
            .entry(c.agent_id.as_str())
            .or_default()
            .push((rank(&c.ticket_id, week_start), c));
    }
    let mut sample: Vec<Candidate> = Vec::new();
    for mut tickets in by_agent.into_values() {
        tickets.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.ticket_id.cmp(&b.1.ticket_id)));
        tickets.dedup_by(|a, b| a.1.ticket_id == b.1.ticket_id);
        let take = quota(tickets.len(), rate_percent);
        sample.extend(tickets.into_iter().take(take).map(|(_, c)| c.clone()));
    }
    sample.sort_by(|a, b| a.ticket_id.cmp(&b.ticket_id));
    sample
}

/// A reviewer's score, checked field by field.
pub fn check_score(score: u32, note: &str) -> Result<(), DomainError> {
    if score > MAX_SCORE {
        return Err(DomainError::invalid("score", "must be 0 to 100"));
    }
    if note.trim().is_empty() {
        return Err(DomainError::invalid("note", "is required"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monday() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-16T00:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn candidates(agent: &str, n: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                ticket_id: format!("{agent}-t{i}"),
                agent_id: agent.into(),
                group_id: "g".into(),
                resolved_at: monday() + Duration::hours(i as i64),
            })
            .collect()
    }

    #[test]
    fn each_agent_gets_the_rate_rounded_up_and_at_least_one() {
        assert_eq!(
            (quota(0, 10), quota(1, 10), quota(10, 10), quota(11, 10)),
            (0, 1, 1, 2)
        );
        assert_eq!(quota(40, 25), 10);
        let mut all = candidates("a", 40);
        all.extend(candidates("b", 3));
        let sample = draw(&all, monday(), 25);
        let of = |agent: &str| sample.iter().filter(|c| c.agent_id == agent).count();
        assert_eq!((of("a"), of("b")), (10, 1));
    }

    #[test]
    fn the_sample_does_not_depend_on_order_or_repeats() {
        let all = candidates("a", 30);
        let mut shuffled: Vec<Candidate> = all.iter().rev().cloned().collect();
        shuffled.extend(all.iter().take(5).cloned());
        assert_eq!(draw(&all, monday(), 10), draw(&shuffled, monday(), 10));
        assert_ne!(
            draw(&all, monday(), 10),
            draw(&all, monday() + Duration::days(7), 10),
            "another week draws again"
        );
    }

    #[test]
    fn ids_round_trip_and_name_a_monday() {
        let id = spot_check_id(monday(), "T-1");
        assert_eq!(id, "2026-11-16/T-1");
        assert_eq!(parse_spot_check_id(&id), Ok((monday(), "T-1".into())));
        for bad in ["2026-11-17/T-1", "T-1", "2026-11-16/", "x/T-1"] {
            assert!(parse_spot_check_id(bad).is_err(), "{bad}");
        }
        assert!(check_score(101, "ok").is_err());
        assert!(check_score(100, " ").is_err());
        assert!(check_score(0, "ok").is_ok());
    }
}
