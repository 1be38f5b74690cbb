//! The weekly quality report: complaint-like tickets of a week against the week before,
//! by fault type, product line and region, and the keys that moved most.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc};

/// Monday 00:00 UTC of the week `at` falls in.
pub fn week_start(at: DateTime<Utc>) -> DateTime<Utc> {
    let date = at.date_naive() - Duration::days(i64::from(at.weekday().num_days_from_monday()));
    date.and_time(NaiveTime::MIN).and_utc()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualityCount {
    pub key: String,
    pub this_week: u64,
    pub last_week: u64,
}

impl QualityCount {
    pub fn change(&self) -> i64 {
        self.this_week as i64 - self.last_week as i64
    }
}

/// Counts per key for this week's and last week's keys, ordered by this week's count
/// (largest first), then key.
pub fn compare(this_week: &[String], last_week: &[String]) -> Vec<QualityCount> {
    let mut counts: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for key in this_week {
        counts.entry(key).or_default().0 += 1;
    }
    for key in last_week {
        counts.entry(key).or_default().1 += 1;
    }
    let mut rows: Vec<QualityCount> = counts
        .into_iter()
        .map(|(key, (this_week, last_week))| QualityCount {
            key: key.to_owned(),
            this_week,
            last_week,
        })
        .collect();
    rows.sort_by(|a, b| b.this_week.cmp(&a.this_week).then(a.key.cmp(&b.key)));
    rows
}

/// The `n` rows with the largest absolute change, prefixed with their dimension.
pub fn top_movers(dimensions: &[(&str, &[QualityCount])], n: usize) -> Vec<QualityCount> {
    let mut all: Vec<QualityCount> = dimensions
        .iter()
        .flat_map(|(dim, rows)| {
            rows.iter().map(move |r| QualityCount {
                key: format!("{dim}:{}", r.key),
                ..r.clone()
            })
        })
        .filter(|r| r.change() != 0)
        .collect();
    all.sort_by(|a, b| {
        b.change()
            .abs()
            .cmp(&a.change().abs())
            .then(a.key.cmp(&b.key))
    });
    all.truncate(n);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday_and_movers_rank_by_change() {
        let wed = DateTime::parse_from_rfc3339("2026-11-25T15:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(week_start(wed).to_rfc3339(), "2026-11-23T00:00:00+00:00");
        let keys = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let rows = compare(&keys(&["a", "a", "a", "b"]), &keys(&["b", "b", "b", "c"]));
        assert_eq!(
            rows[0],
            QualityCount {
                key: "a".into(),
                this_week: 3,
                last_week: 0
            }
        );
        let movers = top_movers(&[("region", &rows)], 2);
        assert_eq!(movers[0].key, "region:a");
        assert_eq!(movers[1].key, "region:b");
    }
}
