//! One SLA clock: a target measured on a schedule from a start instant, minus the
//! business time spent paused. The due instant is always derived the same way —
//! `schedule.add(started_at, target + paused_seconds)` — so pausing, resuming and a new
//! target after a severity change all recompute it from one formula.

use chrono::{DateTime, Utc};
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
    pub warning_percent: u8,
    pub started_at: DateTime<Utc>,
    /// Business seconds spent in finished pauses.
    pub paused_seconds: u64,
    /// Set while paused.
    pub paused_at: Option<DateTime<Utc>>,
    pub due_at: DateTime<Utc>,
    pub warning_at: DateTime<Utc>,
    pub warned: bool,
    pub met_at: Option<DateTime<Utc>>,
    pub breached_at: Option<DateTime<Utc>>,
    /// Bumped each time the clock is armed again (a reopened ticket, a new update period).
    pub cycle: u32,
}

/// What firing a clock found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    /// Not due yet (the schedule woke us early) or not running.
    Nothing,
    Warning,
    Breached,
}

impl SlaClock {
    pub fn start(
        id: String,
        ticket_id: String,
        kind: ClockKind,
        target: &SlaTarget,
        warning_percent: u8,
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
            warning_percent,
            started_at: now,
            paused_seconds: 0,
            paused_at: None,
            due_at: now,
            warning_at: now,
            warned: false,
            met_at: None,
            breached_at: None,
            cycle: 1,
        };
        clock.recompute(schedule);
        clock
    }

    fn recompute(&mut self, schedule: &Schedule) {
        let warn_after = self.target_seconds * u64::from(self.warning_percent) / 100;
        self.due_at = schedule.add(self.started_at, self.target_seconds + self.paused_seconds);
        self.warning_at = schedule.add(self.started_at, warn_after + self.paused_seconds);
    }

    pub fn is_live(&self) -> bool {
        matches!(self.state, ClockState::Running | ClockState::Paused)
    }

    /// When the worker must look at this clock next; `None` when nothing can fire.
    pub fn next_fire_at(&self) -> Option<DateTime<Utc>> {
        match self.state {
            ClockState::Running if !self.warned && self.warning_at < self.due_at => {
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
        self.paused_seconds += schedule.between(paused_at, now);
        self.paused_at = None;
        self.state = ClockState::Running;
        self.recompute(schedule);
        true
    }

    /// The target was reached in time. A breached clock keeps its state but records when
    /// it was finally met, for the "actual − standard" figure.
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
                false
            }
            _ => false,
        }
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
    /// time already elapsed and paused keeps counting.
    pub fn retarget(
        &mut self,
        target: &SlaTarget,
        warning_percent: u8,
        schedule: &Schedule,
    ) -> bool {
        if !self.is_live() {
            return false;
        }
        self.target_seconds = target.seconds;
        self.calendar_id = target.calendar_id.clone();
        self.warning_percent = warning_percent;
        self.recompute(schedule);
        true
    }

    /// Starts a new cycle from `now` (a reopened ticket, an agent update).
    pub fn rearm(
        &mut self,
        target: &SlaTarget,
        warning_percent: u8,
        schedule: &Schedule,
        now: DateTime<Utc>,
    ) {
        self.cycle += 1;
        self.state = ClockState::Running;
        self.target_seconds = target.seconds;
        self.calendar_id = target.calendar_id.clone();
        self.warning_percent = warning_percent;
        self.started_at = now;
        self.paused_seconds = 0;
        self.paused_at = None;
        self.warned = false;
        self.met_at = None;
        self.breached_at = None;
        self.recompute(schedule);
    }

    /// Decides what is due at `now`. Never fires before the instant: the schedule may
    /// wake the worker early, the clock itself decides.
    pub fn fire(&mut self, now: DateTime<Utc>) -> Fired {
        if self.state != ClockState::Running {
            return Fired::Nothing;
        }
        if now >= self.due_at {
            self.state = ClockState::Breached;
            self.breached_at = Some(now);
            self.warned = true;
            return Fired::Breached;
        }
        if !self.warned && now >= self.warning_at {
            self.warned = true;
            return Fired::Warning;
        }
        Fired::Nothing
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

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(1_800_000_000 + seconds)
    }

    fn clock(target: u64) -> SlaClock {
        SlaClock::start(
            "c".into(),
            "t".into(),
            ClockKind::Resolution,
            &SlaTarget::always_on(target),
            75,
            &Schedule::AlwaysOn,
            t(0),
        )
    }

    #[test]
    fn warns_at_75_percent_then_breaches_once_and_never_early() {
        let mut c = clock(100);
        assert_eq!(c.next_fire_at(), Some(t(75)));
        assert_eq!(c.fire(t(74)), Fired::Nothing);
        assert_eq!(c.fire(t(75)), Fired::Warning);
        assert_eq!(c.next_fire_at(), Some(t(100)));
        assert_eq!(c.fire(t(99)), Fired::Nothing);
        assert_eq!(c.fire(t(100)), Fired::Breached);
        assert_eq!(c.fire(t(101)), Fired::Nothing, "a breach fires once");
        assert_eq!(c.next_fire_at(), None);
    }

    #[test]
    fn a_pause_moves_the_due_instant_by_the_paused_time() {
        let mut c = clock(100);
        assert!(c.pause(t(10)));
        assert_eq!(c.next_fire_at(), None);
        assert_eq!(
            c.fire(t(500)),
            Fired::Nothing,
            "a paused clock does not breach"
        );
        assert!(c.resume(&Schedule::AlwaysOn, t(40)));
        assert_eq!(c.due_at, t(130));
        assert_eq!(c.warning_at, t(105));
        // A second pause adds up.
        c.pause(t(50));
        c.resume(&Schedule::AlwaysOn, t(60));
        assert_eq!(c.due_at, t(140));
    }

    #[test]
    fn a_late_first_response_is_still_recorded() {
        let mut c = clock(100);
        c.fire(t(100));
        assert!(!c.meet(t(130)));
        assert_eq!(c.state, ClockState::Breached);
        assert_eq!(c.lateness_seconds(t(999)), 30);
    }

    #[test]
    fn retarget_keeps_elapsed_and_paused_time() {
        let mut c = clock(100);
        c.pause(t(10));
        c.resume(&Schedule::AlwaysOn, t(20));
        c.retarget(&SlaTarget::always_on(50), 75, &Schedule::AlwaysOn);
        assert_eq!(c.due_at, t(60));
    }

    #[test]
    fn rearm_starts_a_new_cycle() {
        let mut c = clock(100);
        c.fire(t(100));
        c.rearm(&SlaTarget::always_on(100), 75, &Schedule::AlwaysOn, t(200));
        assert_eq!(
            (c.state, c.cycle, c.due_at, c.breached_at),
            (ClockState::Running, 2, t(300), None)
        );
    }
}
