//! SLA clock arithmetic: examples and properties.

use std::sync::Arc;

use chrono::{Datelike, Duration};
use proptest::prelude::*;

use super::*;
use crate::domain::calendar::{DEFAULT_CALENDAR_ID, default_calendar};

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(1_800_000_000 + seconds)
}

fn clock(target: u64) -> SlaClock {
    SlaClock::start(
        "c".into(),
        "t".into(),
        ClockKind::Resolution,
        &SlaTarget::always_on(target),
        &[75],
        &Schedule::AlwaysOn,
        t(0),
    )
}

#[test]
fn warns_at_75_percent_then_breaches_once_and_never_early() {
    let mut c = clock(100);
    assert_eq!(c.next_fire_at(), Some(t(75)));
    let on = Schedule::AlwaysOn;
    assert_eq!(c.fire(&on, t(74)), []);
    assert_eq!(c.fire(&on, t(75)), [Fired::Warning(75)]);
    assert_eq!(c.next_fire_at(), Some(t(100)));
    assert_eq!(c.fire(&on, t(99)), []);
    assert_eq!(c.fire(&on, t(100)), [Fired::Breached]);
    assert_eq!(c.fire(&on, t(101)), [], "a breach fires once");
    assert_eq!(c.next_fire_at(), None);
}

#[test]
fn a_pause_moves_the_due_instant_by_the_paused_time() {
    let mut c = clock(100);
    assert!(c.pause(t(10)));
    assert_eq!(c.next_fire_at(), None);
    assert_eq!(
        c.fire(&Schedule::AlwaysOn, t(500)),
        [],
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
    c.fire(&Schedule::AlwaysOn, t(100));
    assert!(c.meet(t(130)), "met late: published once");
    assert!(!c.meet(t(140)), "and only once");
    assert_eq!(c.state, ClockState::Breached);
    assert_eq!(c.lateness_seconds(t(999)), 30);
}

#[test]
fn retarget_keeps_elapsed_and_paused_time() {
    let mut c = clock(100);
    c.pause(t(10));
    c.resume(&Schedule::AlwaysOn, t(20));
    let on = Schedule::AlwaysOn;
    c.retarget(&SlaTarget::always_on(50), &[75], &on, &on);
    assert_eq!(c.due_at, t(60));
}

#[test]
fn retarget_keeps_the_fraction_of_a_second_paused() {
    let on = Schedule::AlwaysOn;
    let mut c = start_on(&SlaTarget::always_on(3), 50, &on, t(0));
    c.pause(t(1));
    c.resume(&on, t(1) + ms(3040));
    assert_eq!(c.paused_seconds, 3, "the stored whole seconds");
    c.retarget(&SlaTarget::always_on(10), &[50], &on, &on);
    assert_eq!(c.due_at, t(10) + ms(3040));
    assert_eq!(c.warning_at, t(5) + ms(3040));
    // Onto a business calendar: 3.04 s of pause counted from Monday 09:00 China time.
    let china = Schedule::Calendar(Arc::new(default_calendar()));
    let mut c = start_on(
        &SlaTarget::always_on(3),
        50,
        &on,
        at("2026-11-23T01:00:00Z"),
    );
    c.pause(at("2026-11-23T01:00:01Z"));
    c.resume(&on, at("2026-11-23T01:00:04.040Z"));
    c.retarget(
        &SlaTarget::business(3600, DEFAULT_CALENDAR_ID),
        &[50],
        &on,
        &china,
    );
    assert_eq!(c.due_at, at("2026-11-23T02:00:03.040Z"));
    assert_eq!(c.warning_at, at("2026-11-23T01:30:03.040Z"));
    // And a later pause adds to the fraction: 0.04 s + 0.98 s is one more second.
    c.pause(at("2026-11-23T01:10:00Z"));
    c.resume(&china, at("2026-11-23T01:10:00.980Z"));
    assert_eq!(c.paused_seconds, 4);
    assert_eq!(c.due_at, at("2026-11-23T02:00:04.020Z"));
}

#[test]
fn a_clock_stored_with_whole_paused_seconds_keeps_its_instants() {
    // As rows written before fractions counted look: whole seconds, and due instants
    // computed from them.
    let on = Schedule::AlwaysOn;
    let mut c = clock(100);
    c.paused_seconds = 30;
    c.due_at = t(130);
    c.warning_at = t(105);
    c.pause(t(50));
    c.resume(&on, t(50) + ms(500));
    assert_eq!(
        (c.due_at, c.warning_at),
        (t(130) + ms(500), t(105) + ms(500))
    );
    let mut c = clock(100);
    c.paused_seconds = 30;
    c.due_at = t(130);
    c.warning_at = t(105);
    c.retarget(&SlaTarget::always_on(200), &[50], &on, &on);
    assert_eq!((c.due_at, c.warning_at), (t(230), t(130)));
}

fn ms(n: i64) -> Duration {
    Duration::milliseconds(n)
}

fn start_on(target: &SlaTarget, percent: u8, schedule: &Schedule, at: DateTime<Utc>) -> SlaClock {
    SlaClock::start(
        "c".into(),
        "t".into(),
        ClockKind::FirstResponse,
        target,
        &[percent],
        schedule,
        at,
    )
}

#[test]
fn a_half_way_warning_on_a_3_second_target_fires_at_1_5_seconds() {
    let mut c = start_on(&SlaTarget::always_on(3), 50, &Schedule::AlwaysOn, t(0));
    assert_eq!(c.warning_at, t(0) + ms(1500));
    assert_eq!(c.due_at, t(3));
    let on = Schedule::AlwaysOn;
    assert_eq!(c.fire(&on, t(0) + ms(1499)), []);
    assert_eq!(c.fire(&on, t(0) + ms(1500)), [Fired::Warning(50)]);
}

#[test]
fn a_fractional_pause_moves_both_instants_by_exactly_the_time_paused() {
    let mut c = start_on(&SlaTarget::always_on(3), 50, &Schedule::AlwaysOn, t(0));
    c.pause(t(0) + ms(200));
    c.resume(&Schedule::AlwaysOn, t(0) + ms(3240));
    assert_eq!(c.due_at, t(3) + ms(3040));
    assert_eq!(c.warning_at, t(0) + ms(1500 + 3040));
    // Fractions of a second add up across pauses: 3.04 s + 0.6 s + 0.6 s.
    for _ in 0..2 {
        c.pause(t(10));
        c.resume(&Schedule::AlwaysOn, t(10) + ms(600));
    }
    assert_eq!(c.due_at, t(3) + ms(4240));
    assert_eq!(c.warning_at, t(0) + ms(1500 + 4240));
}

#[test]
fn fractions_of_a_second_count_on_a_business_calendar_too() {
    let china = Schedule::Calendar(Arc::new(default_calendar()));
    let target = SlaTarget::business(1, DEFAULT_CALENDAR_ID);
    // Monday 2026-11-23 11:59:59.500 China time: half a second before lunch and half
    // a second after it.
    let before_lunch = at("2026-11-23T03:59:59.500Z");
    let c = start_on(&target, 50, &china, before_lunch);
    assert_eq!(c.warning_at, at("2026-11-23T04:00:00Z"));
    assert_eq!(c.due_at, at("2026-11-23T05:00:00.500Z"));
    // A pause over lunch counts the working 0.5 s before it and 0.25 s after it.
    let mut c = start_on(&target, 50, &china, at("2026-11-23T03:00:00Z"));
    c.pause(before_lunch);
    c.resume(&china, at("2026-11-23T05:00:00.250Z"));
    assert_eq!(c.due_at, at("2026-11-23T03:00:01.750Z"));
    assert_eq!(c.warning_at, at("2026-11-23T03:00:01.250Z"));
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// An independent model of the two schedules, exact to the nanosecond: around the
/// clock, and the default calendar written out by hand (China keeps UTC+8 all year,
/// so its working time is 01:00–04:00Z and 05:00–10:00Z, Monday to Friday).
#[derive(Debug, Clone, Copy)]
enum Model {
    AlwaysOn,
    China,
}

impl Model {
    fn schedule(self) -> Schedule {
        match self {
            Model::AlwaysOn => Schedule::AlwaysOn,
            Model::China => Schedule::Calendar(Arc::new(default_calendar())),
        }
    }

    fn target(self, seconds: u64) -> SlaTarget {
        match self {
            Model::AlwaysOn => SlaTarget::always_on(seconds),
            Model::China => SlaTarget::business(seconds, DEFAULT_CALENDAR_ID),
        }
    }

    fn working(self, from: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let first = from.date_naive() - Duration::days(1);
        (0..400)
            .map(|i| first + Duration::days(i))
            .filter(|d| d.weekday().num_days_from_monday() < 5)
            .flat_map(|d| {
                let h = |hour| d.and_hms_opt(hour, 0, 0).unwrap().and_utc();
                [(h(1), h(4)), (h(5), h(10))]
            })
            .filter(|(_, close)| *close > from)
            .collect()
    }

    /// The exact instant `d` of working time after `start`.
    fn add(self, start: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
        if let Model::AlwaysOn = self {
            return start + d;
        }
        let mut left = d;
        for (open, close) in self.working(start) {
            let from = open.max(start);
            if left <= close - from {
                return from + left;
            }
            left -= close - from;
        }
        unreachable!("the model looks far enough ahead")
    }

    /// The exact working time in `[a, b)`.
    fn between(self, a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
        if let Model::AlwaysOn = self {
            return b - a;
        }
        self.working(a)
            .into_iter()
            .take_while(|(open, _)| *open < b)
            .map(|(open, close)| (close.min(b) - open.max(a)).max(Duration::zero()))
            .sum()
    }
}

/// `computed` is the exact instant, or at most a millisecond after it; never before.
fn on_time(what: &str, computed: DateTime<Utc>, exact: DateTime<Utc>) -> Result<(), TestCaseError> {
    prop_assert!(computed >= exact, "{what} {computed} is before {exact}");
    prop_assert!(
        computed - exact < ms(1),
        "{what} {computed} is late for {exact}"
    );
    Ok(())
}

proptest! {
    #[test]
    fn warning_and_due_instants_are_never_early(
        china in any::<bool>(),
        target in 1u64..=5 * 86_400,
        percent in 1u8..=99,
        start_us in 0i64..=21 * 86_400_000_000,
        pauses in prop::collection::vec((0i64..=86_400_000_000, 0i64..=86_400_000_000), 0..4),
        retarget in prop::option::of((any::<bool>(), 1u64..=5 * 86_400, 1u8..=99)),
    ) {
        let model = if china { Model::China } else { Model::AlwaysOn };
        let schedule = model.schedule();
        // Monday 2026-11-02 00:00Z, plus a start to the microsecond (the stores' precision).
        let start = at("2026-11-02T00:00:00Z") + Duration::microseconds(start_us);
        let mut c = start_on(&model.target(target), percent, &schedule, start);
        let full = Duration::seconds(target as i64);
        // Exact: target × percent / 100 seconds is a whole number of 10 ms.
        let warn = ms(target as i64 * i64::from(percent) * 10);
        let mut paused = Duration::zero();
        let mut now = start;
        for (run, pause) in pauses {
            now += Duration::microseconds(run);
            c.pause(now);
            let paused_at = now;
            now += Duration::microseconds(pause);
            c.resume(&schedule, now);
            paused += model.between(paused_at, now);
            on_time("due", c.due_at, model.add(start, full + paused))?;
            on_time("warning", c.warning_at, model.add(start, warn + paused))?;
        }
        on_time("due", c.due_at, model.add(start, full + paused))?;
        on_time("warning", c.warning_at, model.add(start, warn + paused))?;
        // A severity change: a new target, percentage and schedule; pauses keep counting.
        if let Some((china, target, percent)) = retarget {
            let next = if china { Model::China } else { Model::AlwaysOn };
            c.retarget(&next.target(target), &[percent], &schedule, &next.schedule());
            let full = Duration::seconds(target as i64);
            let warn = ms(target as i64 * i64::from(percent) * 10);
            on_time("retargeted due", c.due_at, next.add(start, full + paused))?;
            on_time("retargeted warning", c.warning_at, next.add(start, warn + paused))?;
        }
    }
}

#[test]
fn rearm_starts_a_new_cycle() {
    let mut c = clock(100);
    c.fire(&Schedule::AlwaysOn, t(100));
    c.rearm(
        &SlaTarget::always_on(100),
        &[75],
        &Schedule::AlwaysOn,
        t(200),
    );
    assert_eq!(
        (c.state, c.cycle, c.due_at, c.breached_at),
        (ClockState::Running, 2, t(300), None)
    );
}

#[test]
fn thresholds_fire_in_order_each_once_at_their_exact_instants() {
    let on = Schedule::AlwaysOn;
    let mut c = SlaClock::start(
        "c".into(),
        "t".into(),
        ClockKind::Agreement,
        &SlaTarget::always_on(3),
        &[50, 75, 90],
        &on,
        t(0),
    );
    assert_eq!(c.next_fire_at(), Some(t(0) + ms(1500)));
    assert_eq!(c.fire(&on, t(0) + ms(1499)), []);
    assert_eq!(c.fire(&on, t(0) + ms(1500)), [Fired::Warning(50)]);
    assert_eq!(c.fire(&on, t(0) + ms(1500)), [], "once");
    // A pause of 0.5 s moves the next two thresholds by exactly that.
    c.pause(t(2));
    c.resume(&on, t(2) + ms(500));
    assert_eq!(c.next_fire_at(), Some(t(0) + ms(2250 + 500)));
    // A worker that wakes late fires both passed thresholds, in order.
    assert_eq!(
        c.fire(&on, t(0) + ms(3200)),
        [Fired::Warning(75), Fired::Warning(90)]
    );
    assert!(c.warned());
    assert_eq!(c.next_fire_at(), Some(t(3) + ms(500)));
    assert_eq!(c.fire(&on, t(3) + ms(499)), []);
    assert_eq!(c.fire(&on, t(3) + ms(500)), [Fired::Breached]);
    // Met late: actual minus standard is the time past due.
    assert!(c.meet(t(4)));
    assert_eq!(c.actual_minus_standard(&on), Some(ms(500)));
}

#[test]
fn a_breach_passes_over_thresholds_not_fired_yet() {
    let on = Schedule::AlwaysOn;
    let mut c = start_on(&SlaTarget::always_on(10), 50, &on, t(0));
    assert_eq!(c.fire(&on, t(11)), [Fired::Breached]);
    assert!(c.warned());
    assert_eq!(c.next_fire_at(), None);
}

#[test]
fn new_thresholds_keep_those_already_fired() {
    let on = Schedule::AlwaysOn;
    let mut c = clock(100);
    c.retarget(&SlaTarget::always_on(100), &[50, 75, 90], &on, &on);
    assert_eq!(c.fire(&on, t(80)), [Fired::Warning(50), Fired::Warning(75)]);
    c.retarget(&SlaTarget::always_on(200), &[25, 60, 95], &on, &on);
    assert_eq!(
        c.warnings_fired, 2,
        "25 and 60 are below the 75 already fired"
    );
    assert_eq!(c.warning_at, t(190));
}

#[test]
fn met_early_counts_negative_business_time() {
    let china = Schedule::Calendar(Arc::new(default_calendar()));
    // Due Monday 10:00 China time; met the Friday before at 17:00: 2 working hours early
    // (17:00–18:00 on Friday, 09:00–10:00 on Monday).
    let mut c = start_on(
        &SlaTarget::business(3600, DEFAULT_CALENDAR_ID),
        50,
        &china,
        at("2026-11-23T01:00:00Z"),
    );
    assert_eq!(c.due_at, at("2026-11-23T02:00:00Z"));
    assert!(c.meet(at("2026-11-20T09:00:00Z")));
    assert_eq!(c.actual_minus_standard(&china), Some(-Duration::hours(2)));
}
