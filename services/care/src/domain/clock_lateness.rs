//! Clock lateness for the KPIs: the SLA clocks care was told were met
//! (`tickets.SlaClockMet`) and, per clock kind, how many were met, how many late, and the
//! mean and largest "actual minus standard" (business time from due to met, negative
//! when early).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// One met cycle of one clock; `(clock_id, cycle)` is met once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetClock {
    pub ticket_id: String,
    pub clock_id: String,
    /// Next-reply and periodic-update clocks run once per customer message or update.
    pub cycle: u32,
    /// The tickets contract's `ClockKind` number. Care only groups and orders by it, so a
    /// kind tickets adds later is reported without a change here.
    pub kind: i32,
    pub due_at: Option<DateTime<Utc>>,
    pub met_at: DateTime<Utc>,
    /// Business milliseconds on the clock's own calendar, as tickets computed them: care
    /// has no calendars to recompute them with.
    pub actual_minus_standard_ms: i64,
}

impl MetClock {
    /// Met after its due instant; exactly on time is in time.
    pub fn is_late(&self) -> bool {
        self.actual_minus_standard_ms > 0
    }
}

/// The figures of the met clocks of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockLateness {
    pub kind: i32,
    pub met: u64,
    pub met_late: u64,
    /// i128: a sum of many i64 millisecond values must not overflow.
    pub sum_ms: i128,
    pub max_ms: i64,
}

impl ClockLateness {
    fn add(&mut self, clock: &MetClock) {
        let ms = clock.actual_minus_standard_ms;
        // The first clock sets the maximum: with only early clocks it stays negative.
        self.max_ms = if self.met == 0 {
            ms
        } else {
            self.max_ms.max(ms)
        };
        self.met += 1;
        self.met_late += u64::from(clock.is_late());
        self.sum_ms += i128::from(ms);
    }

    /// 0 when none was met.
    pub fn mean_seconds(&self) -> f64 {
        if self.met == 0 {
            0.0
        } else {
            self.sum_ms as f64 / self.met as f64 / 1000.0
        }
    }

    pub fn max_seconds(&self) -> f64 {
        self.max_ms as f64 / 1000.0
    }
}

/// Lateness per clock kind, in kind number order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatenessByKind(BTreeMap<i32, ClockLateness>);

impl LatenessByKind {
    pub fn add(&mut self, clock: &MetClock) {
        self.0
            .entry(clock.kind)
            .or_insert_with(|| ClockLateness {
                kind: clock.kind,
                ..Default::default()
            })
            .add(clock);
    }

    /// One entry per kind with a met clock, in kind number order.
    pub fn into_kinds(self) -> Vec<ClockLateness> {
        self.0.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn met(kind: i32, clock: &str, ms: i64) -> MetClock {
        MetClock {
            ticket_id: "t".into(),
            clock_id: clock.into(),
            cycle: 0,
            kind,
            due_at: None,
            met_at: DateTime::UNIX_EPOCH,
            actual_minus_standard_ms: ms,
        }
    }

    #[test]
    fn kinds_come_in_number_order_with_early_clocks_negative() {
        let mut by_kind = LatenessByKind::default();
        for clock in [
            met(4, "r1", -90_000),
            met(1, "f1", 1_500),
            met(4, "r2", -30_000),
            met(1, "f2", 0),
            met(1, "f3", -4_500),
        ] {
            by_kind.add(&clock);
        }
        let kinds = by_kind.into_kinds();
        let figures: Vec<(i32, u64, u64, f64, f64)> = kinds
            .iter()
            .map(|k| (k.kind, k.met, k.met_late, k.mean_seconds(), k.max_seconds()))
            .collect();
        assert_eq!(
            figures,
            [(1, 3, 1, -1.0, 1.5), (4, 2, 0, -60.0, -30.0)],
            "on time is not late; only early clocks keep a negative maximum"
        );
        assert_eq!(ClockLateness::default().mean_seconds(), 0.0);
    }
}
