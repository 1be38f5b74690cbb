//! When a failed delivery is tried again: exponential back-off with jitter (backon's
//! schedule), from `first` up to `max` apart, for as long as the endpoint is not disabled.

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    /// The wait after the first failure.
    pub first: std::time::Duration,
    /// The longest wait between two attempts.
    pub max: std::time::Duration,
}

impl RetrySchedule {
    /// 5 s after the first failure, doubling up to an hour.
    pub fn standard() -> Self {
        Self {
            first: std::time::Duration::from_secs(5),
            max: std::time::Duration::from_secs(3_600),
        }
    }

    /// The wait after the `failures`-th failed attempt in a row (1 for the first):
    /// `first · 2^(failures-1)` capped at `max`, with jitter added (at most the wait again,
    /// still capped), so endpoints that failed together are not retried together.
    pub fn delay_after(&self, failures: u32) -> Duration {
        let mut schedule = ExponentialBuilder::default()
            .with_min_delay(self.first)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build();
        let nth = failures.saturating_sub(1).min(64) as usize;
        let wait = schedule.nth(nth).unwrap_or(self.max).min(self.max);
        Duration::from_std(wait).unwrap_or(Duration::hours(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_from_the_first_and_stay_within_the_cap() {
        let s = RetrySchedule::standard();
        for _ in 0..50 {
            let first = s.delay_after(1);
            assert!(
                first >= Duration::seconds(5) && first <= Duration::seconds(10),
                "{first}"
            );
            let third = s.delay_after(3);
            assert!(
                third >= Duration::seconds(20) && third <= Duration::seconds(40),
                "{third}"
            );
            assert!(s.delay_after(40) <= Duration::hours(1));
            assert!(s.delay_after(40) >= Duration::minutes(30));
        }
    }
}
