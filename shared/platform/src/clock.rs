//! Time as the use cases and rules see it: a [`Clock`] the service is built with, the
//! system's in production and a [`ManualClock`] in tests that advance time instead of
//! sleeping.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, SubsecRound, Utc};

/// Where "now" comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in microseconds (what the databases keep), so a value read back is the same.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// A shared handle on a clock; the system's unless a test says otherwise.
pub type SharedClock = Arc<dyn Clock>;

/// The system clock as a [`SharedClock`].
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that stands still until told to move.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn at(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(start.trunc_subsecs(6))))
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }

    /// Sets the time.
    pub fn set(&self, to: DateTime<Utc>) {
        if let Ok(mut now) = self.0.lock() {
            *now = to.trunc_subsecs(6);
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        // A poisoned lock still holds the last time set.
        match self.0.lock() {
            Ok(now) => *now,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = Utc::now();
        let clock = ManualClock::at(start);
        assert_eq!(clock.now(), start.trunc_subsecs(6));
        clock.advance(Duration::milliseconds(1_500));
        assert_eq!(
            clock.now(),
            start.trunc_subsecs(6) + Duration::milliseconds(1_500)
        );
    }
}
