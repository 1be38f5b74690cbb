//! Parts turnover, as dispatch reports it for its stock and care for the cost of
//! after-sales: one definition, so the two figures agree.

use chrono::{DateTime, Utc};

/// A change of the on-hand quantity, for the turnover figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnHandChange {
    pub at: DateTime<Utc>,
    pub delta: i64,
    /// Units consumed by jobs in this change.
    pub consumed: i64,
}

/// Parts turnover over a period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Turnover {
    pub consumed: i64,
    pub average_on_hand: f64,
    pub turnover: f64,
}

/// **Parts turnover** of `[from, to)`: the quantity consumed by jobs in the period divided
/// by the average quantity on hand over it, where the average is time-weighted (each
/// on-hand level counts for as long as it lasted). `opening` is the quantity on hand at
/// `from`; `changes` are the changes within the period, oldest first. No stock on average
/// gives a turnover of 0 rather than infinity.
pub fn turnover(
    opening: i64,
    changes: &[OnHandChange],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Turnover {
    let span = (to - from).num_milliseconds();
    let mut level = opening;
    let mut since = from;
    let mut weighted: i128 = 0;
    let mut consumed = 0;
    for c in changes.iter().filter(|c| c.at >= from && c.at < to) {
        weighted += i128::from(level) * i128::from((c.at - since).num_milliseconds());
        level += c.delta;
        since = c.at;
        consumed += c.consumed;
    }
    weighted += i128::from(level) * i128::from((to - since).num_milliseconds());
    let average_on_hand = if span > 0 {
        weighted as f64 / span as f64
    } else {
        0.0
    };
    let turnover = if average_on_hand > 0.0 {
        consumed as f64 / average_on_hand
    } else {
        0.0
    };
    Turnover {
        consumed,
        average_on_hand,
        turnover,
    }
}
