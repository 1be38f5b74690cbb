//! One SLA clock: a target measured on a schedule from a start instant, minus the
//! business time spent paused. The due instant is always derived the same way —
//! `schedule.add(started_at, target + paused)` — so pausing, resuming and a new target
//! after a severity change all recompute it from one formula.
//!
//! The arithmetic is exact (chrono durations, nanoseconds): a warning at 50 % of 3 s is
//! at +1.5 s and a pause of 3.04 s moves the instants by 3.04 s. Rounding to whole
//! seconds anywhere would make a clock come due early by the fraction dropped.
//!
//! A clock has several warning thresholds (percents of its target, ascending); each fires
//! once per cycle, in order, and `warning_at` is always the next one's instant.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{ClockKind, ClockState, calendar::Schedule, policy::SlaTarget};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaClock {
    pub id: String,
    pub ticket_id: String,
    pub kind: ClockKind,
    pub state: ClockState,
    pub target_seconds: u64,
    pub calendar_id: Option<String>,
    /// Ascending, distinct, each 1–99; may be empty (no warnings).
    pub warning_percents: Vec<u8>,
    pub started_at: DateTime<Utc>,
    /// Whole business seconds spent in finished pauses. The rest under a second is not
    /// lost: `due_at` is computed from the exact sum and carries it (see `paused`), so
    /// the stored form stays what it always was.
    pub paused_seconds: u64,
    /// Set while paused.
    pub paused_at: Option<DateTime<Utc>>,
    pub due_at: DateTime<Utc>,
    /// The next threshold's instant; `due_at` once every threshold has fired.
    pub warning_at: DateTime<Utc>,
    /// How many thresholds have fired this cycle.
    pub warnings_fired: u8,
    pub met_at: Option<DateTime<Utc>>,
    pub breached_at: Option<DateTime<Utc>>,
    /// Bumped each time the clock is armed again (a reopened ticket, a new update period).
    pub cycle: u32,
}

/// What firing a clock found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    /// A warning threshold, by its percent.
    Warning(u8),
    Breached,
}

impl SlaClock {
    pub fn start(
        id: String,
        ticket_id: String,
        kind: ClockKind,
        target: &SlaTarget,
        warning_percents: &[u8],
        schedule: &Schedule,
        now: DateTime<Utc>,
    ) -> Self {
        let mut clock = Self {
            id,
            ticket_id,
            kind,
            state: ClockState::Running,
            target_seconds: target.seconds,
            calendar_id: target.calendar_id.clone(),
            warning_percents: warning_percents.to_vec(),
            started_at: now,
            paused_seconds: 0,
            paused_at: None,
            due_at: now,
            warning_at: now,
            warnings_fired: 0,
            met_at: None,
            breached_at: None,
            cycle: 1,
        };
        clock.recompute(schedule, Duration::zero());
        clock
    }

    fn target(&self) -> Duration {
        saturating_seconds(u128::from(self.target_seconds))
    }

    /// `percent` of the target. Exact, so never early: whole seconds times a whole
    /// percent is a whole number of 10 ms.
    fn warn_after(&self, percent: u8) -> Duration {
        saturating_millis(u128::from(self.target_seconds) * u128::from(percent) * 1000 / 100)
    }

    /// Whether every threshold has fired this cycle.
    pub fn warned(&self) -> bool {
        usize::from(self.warnings_fired) >= self.warning_percents.len()
    }

    /// The threshold that fires next, if one is left.
    fn next_threshold(&self) -> Option<u8> {
        self.warning_percents
            .get(usize::from(self.warnings_fired))
            .copied()
    }

    /// Business time spent in finished pauses, exactly, measured on `schedule` (the one
    /// `due_at` was computed on). `paused_seconds` holds the whole seconds; the rest is
    /// the working time from the instant those alone would make due to `due_at`. A clock
    /// stored before fractions counted has none; the cap keeps a calendar edited since
    /// from turning into more than the fraction it can be.
    fn paused(&self, schedule: &Schedule) -> Duration {
        let whole = saturating_seconds(u128::from(self.paused_seconds));
        let due_of_whole = schedule.add(self.started_at, saturating_sum(self.target(), whole));
        let rest = schedule
            .between(due_of_whole, self.due_at)
            .min(Duration::seconds(1) - Duration::nanoseconds(1));
        saturating_sum(whole, rest)
    }

    fn recompute(&mut self, schedule: &Schedule, paused: Duration) {
        self.paused_seconds = u64::try_from(paused.num_seconds()).unwrap_or(0);
        self.due_at = schedule.add(self.started_at, saturating_sum(self.target(), paused));
        self.warning_at = match self.next_threshold() {
            Some(percent) => schedule.add(
                self.started_at,
                saturating_sum(self.warn_after(percent), paused),
            ),
            None => self.due_at,
        };
    }

    pub fn is_live(&self) -> bool {
        matches!(self.state, ClockState::Running | ClockState::Paused)
    }

    /// When the worker must look at this clock next; `None` when nothing can fire.
    pub fn next_fire_at(&self) -> Option<DateTime<Utc>> {
        match self.state {
            ClockState::Running if !self.warned() && self.warning_at < self.due_at => {
                Some(self.warning_at)
            }
            ClockState::Running => Some(self.due_at),
            _ => None,
        }
    }

    pub fn pause(&mut self, now: DateTime<Utc>) -> bool {
        if self.state != ClockState::Running {
            return false;
        }
        self.state = ClockState::Paused;
        self.paused_at = Some(now);
        true
    }

    /// Resumes and moves the due instant by the business time spent paused.
    pub fn resume(&mut self, schedule: &Schedule, now: DateTime<Utc>) -> bool {
        let (ClockState::Paused, Some(paused_at)) = (self.state, self.paused_at) else {
            return false;
        };
        let paused = saturating_sum(self.paused(schedule), schedule.between(paused_at, now));
        self.paused_at = None;
        self.state = ClockState::Running;
        self.recompute(schedule, paused);
        true
    }

    /// The target was reached. A breached clock keeps its state but records when it was
    /// finally met, for the "actual − standard" figure. True when `met_at` was set now
    /// (so the caller publishes it once).
    pub fn meet(&mut self, now: DateTime<Utc>) -> bool {
        match self.state {
            ClockState::Running | ClockState::Paused => {
                self.state = ClockState::Met;
                self.met_at = Some(now);
                self.paused_at = None;
                true
            }
            ClockState::Breached if self.met_at.is_none() => {
                self.met_at = Some(now);
                true
            }
            _ => false,
        }
    }

    /// The handbook's "actual − standard" of a met clock: the business time on `schedule`
    /// (the clock's own) from the due instant to the met instant, negative when early.
    pub fn actual_minus_standard(&self, schedule: &Schedule) -> Option<Duration> {
        let met_at = self.met_at?;
        Some(if met_at >= self.due_at {
            schedule.between(self.due_at, met_at)
        } else {
            -schedule.between(met_at, self.due_at)
        })
    }

    pub fn cancel(&mut self) -> bool {
        if !self.is_live() {
            return false;
        }
        self.state = ClockState::Cancelled;
        self.paused_at = None;
        true
    }

    /// Applies a new target (a severity change matched another policy) to a live clock;
    /// time already elapsed and paused keeps counting. `current` is the schedule the clock
    /// has run on so far, `next` the new target's.
    pub fn retarget(
        &mut self,
        target: &SlaTarget,
        warning_percents: &[u8],
        current: &Schedule,
        next: &Schedule,
    ) -> bool {
        if !self.is_live() {
            return false;
        }
        let paused = self.paused(current);
        self.target_seconds = target.seconds;
        self.calendar_id = target.calendar_id.clone();
        self.set_thresholds(warning_percents);
        self.recompute(next, paused);
        true
    }

    /// Starts a new cycle from `now` (a reopened ticket, an agent update).
    pub fn rearm(
        &mut self,
        target: &SlaTarget,
        warning_percents: &[u8],
        schedule: &Schedule,
        now: DateTime<Utc>,
    ) {
        self.cycle += 1;
        self.state = ClockState::Running;
        self.target_seconds = target.seconds;
        self.calendar_id = target.calendar_id.clone();
        self.warning_percents = warning_percents.to_vec();
        self.started_at = now;
        self.paused_seconds = 0;
        self.paused_at = None;
        self.warnings_fired = 0;
        self.met_at = None;
        self.breached_at = None;
        self.recompute(schedule, Duration::zero());
    }

    /// New thresholds for a live clock: those already fired stay fired (counted among the
    /// new ones below the next unfired instant's percent).
    fn set_thresholds(&mut self, warning_percents: &[u8]) {
        let fired_up_to = self
            .warnings_fired
            .checked_sub(1)
            .and_then(|last| self.warning_percents.get(usize::from(last)))
            .copied();
        self.warning_percents = warning_percents.to_vec();
        let fired = fired_up_to.map_or(0, |last| {
            warning_percents.iter().filter(|p| **p <= last).count()
        });
        self.warnings_fired = u8::try_from(fired).unwrap_or(u8::MAX);
    }

    /// Decides what is due at `now`: the thresholds passed and not fired yet, in order, or
    /// the breach (which leaves thresholds still unfired behind: the breach is what
    /// counts then). Never fires before an instant: the schedule may wake the worker
    /// early, the clock itself decides. `schedule` is the clock's own.
    pub fn fire(&mut self, schedule: &Schedule, now: DateTime<Utc>) -> Vec<Fired> {
        if self.state != ClockState::Running {
            return Vec::new();
        }
        if now >= self.due_at {
            self.state = ClockState::Breached;
            self.breached_at = Some(now);
            self.warnings_fired = u8::try_from(self.warning_percents.len()).unwrap_or(u8::MAX);
            self.warning_at = self.due_at;
            return vec![Fired::Breached];
        }
        let mut fired = Vec::new();
        while let Some(percent) = self.next_threshold() {
            if now < self.warning_at {
                break;
            }
            fired.push(Fired::Warning(percent));
            self.warnings_fired += 1;
            let paused = self.paused(schedule);
            self.recompute(schedule, paused);
        }
        fired
    }

    /// Seconds past due (negative while time is left); for a met clock, met − due.
    pub fn lateness_seconds(&self, now: DateTime<Utc>) -> i64 {
        let reference = match self.state {
            ClockState::Met | ClockState::Breached => self.met_at.unwrap_or(now),
            ClockState::Paused => self.paused_at.unwrap_or(now),
            ClockState::Cancelled => return 0,
            ClockState::Running => now,
        };
        (reference - self.due_at).num_seconds()
    }
}

/// Targets are `u64` seconds from the API; beyond chrono's range (some 292 million
/// years) a duration saturates, which puts the instant at the end of time.
fn saturating_seconds(seconds: u128) -> Duration {
    saturating_millis(seconds.saturating_mul(1000))
}

fn saturating_millis(millis: u128) -> Duration {
    i64::try_from(millis)
        .ok()
        .and_then(Duration::try_milliseconds)
        .unwrap_or(Duration::MAX)
}

fn saturating_sum(a: Duration, b: Duration) -> Duration {
    a.checked_add(&b).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests;
