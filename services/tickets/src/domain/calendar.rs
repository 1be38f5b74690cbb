//! Business calendars: working hours per weekday in a time zone, minus holidays, and the
//! two sums SLA clocks need — "this much working time after t" and "working time between
//! a and b". Local times are mapped to instants day by day, so DST changes, holidays and
//! weekends fall out of the same walk. Both sums are exact to the nanosecond: a clock that
//! rounds to whole seconds comes due early by the fraction it drops.

use std::{collections::BTreeSet, sync::Arc};

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::DomainError;

/// How far ahead a walk looks before giving up on a calendar with no working time left.
const MAX_DAYS: i64 = 3_660;
const DAY_SECONDS: u32 = 86_400;

/// Working time within one local day, in seconds since local midnight: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Slot {
    pub start: u32,
    pub end: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessCalendar {
    pub id: String,
    pub name: String,
    /// IANA name, e.g. `Asia/Shanghai`.
    pub time_zone: String,
    /// Monday first; each day's slots sorted and disjoint.
    pub week: [Vec<Slot>; 7],
    pub holidays: BTreeSet<NaiveDate>,
    #[serde(skip, default = "utc")]
    tz: Tz,
}

fn utc() -> Tz {
    Tz::UTC
}

/// One entry of a working week as the caller lists it: a weekday and its slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingDay {
    pub weekday: Weekday,
    pub slots: Vec<Slot>,
}

const MONDAY_FIRST: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// Parses `HH:MM` (or `24:00` as the end of a day) into seconds since midnight.
pub fn parse_time_of_day(text: &str) -> Result<u32, String> {
    let (h, m) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not HH:MM"))?;
    let (h, m): (u32, u32) = match (h.parse(), m.parse()) {
        (Ok(h), Ok(m)) if m < 60 && (h < 24 || (h == 24 && m == 0)) => (h, m),
        _ => return Err(format!("{text:?} is not a time between 00:00 and 24:00")),
    };
    Ok(h * 3600 + m * 60)
}

/// Formats seconds since midnight as `HH:MM`.
pub fn format_time_of_day(seconds: u32) -> String {
    format!("{:02}:{:02}", seconds / 3600, seconds % 3600 / 60)
}

impl BusinessCalendar {
    /// Validates and builds a calendar from a whole week, `week[0]` being Monday: a
    /// violation names a day by its index in `week`. A caller holding its own list of
    /// days should use [`Self::from_working_days`], so violations name its entries.
    pub fn new(
        id: String,
        name: String,
        time_zone: String,
        week: [Vec<Slot>; 7],
        holidays: BTreeSet<NaiveDate>,
    ) -> Result<Self, DomainError> {
        let working_days = MONDAY_FIRST
            .into_iter()
            .zip(week)
            .map(|(weekday, slots)| WorkingDay { weekday, slots })
            .collect();
        Self::from_working_days(id, name, time_zone, working_days, holidays)
    }

    /// Validates and builds a calendar from working days in the caller's order (each
    /// weekday at most once; weekdays not listed have no working time). A violation names
    /// the entry by its index in `working_days`, e.g. `working_days[0].slots` for the
    /// first entry whatever its weekday.
    pub fn from_working_days(
        id: String,
        name: String,
        time_zone: String,
        working_days: Vec<WorkingDay>,
        holidays: BTreeSet<NaiveDate>,
    ) -> Result<Self, DomainError> {
        let tz: Tz = time_zone.parse().map_err(|_| {
            DomainError::invalid(
                "time_zone",
                format!("{time_zone:?} is not an IANA time zone"),
            )
        })?;
        let mut week: [Vec<Slot>; 7] = Default::default();
        let mut listed = [false; 7];
        for (i, WorkingDay { weekday, mut slots }) in working_days.into_iter().enumerate() {
            let day = weekday.num_days_from_monday() as usize;
            if std::mem::replace(&mut listed[day], true) {
                return Err(DomainError::invalid(
                    format!("working_days[{i}].weekday"),
                    "appears twice",
                ));
            }
            slots.sort();
            if slots
                .iter()
                .any(|slot| slot.start >= slot.end || slot.end > DAY_SECONDS)
            {
                return Err(DomainError::invalid(
                    format!("working_days[{i}].slots"),
                    "each slot must end after it starts, by 24:00",
                ));
            }
            if slots.windows(2).any(|w| w[0].end > w[1].start) {
                return Err(DomainError::invalid(
                    format!("working_days[{i}].slots"),
                    "slots overlap",
                ));
            }
            week[day] = slots;
        }
        if week.iter().all(Vec::is_empty) {
            return Err(DomainError::invalid(
                "working_days",
                "at least one working slot is required",
            ));
        }
        Ok(Self {
            id,
            name,
            time_zone,
            week,
            holidays,
            tz,
        })
    }

    /// Restores the parsed time zone after deserialising.
    pub fn revalidated(self) -> Result<Self, DomainError> {
        Self::new(self.id, self.name, self.time_zone, self.week, self.holidays)
    }

    fn to_instant(&self, date: NaiveDate, seconds: u32) -> DateTime<Utc> {
        let midnight = NaiveDateTime::from(date);
        let local = midnight + Duration::seconds(i64::from(seconds));
        resolve_local(&self.tz, local)
    }

    /// Working intervals as instants, in order, from the local day before `from` on.
    fn intervals_from(
        &self,
        from: DateTime<Utc>,
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        let first = from.with_timezone(&self.tz).date_naive() - Duration::days(1);
        (0..MAX_DAYS)
            .map(move |i| first + Duration::days(i))
            .filter(|day| !self.holidays.contains(day))
            .flat_map(move |day| {
                self.week[day.weekday().num_days_from_monday() as usize]
                    .iter()
                    .map(move |slot| {
                        (
                            self.to_instant(day, slot.start),
                            self.to_instant(day, slot.end),
                        )
                    })
            })
            .filter(move |(start, end)| end > start && *end > from)
    }

    /// The instant `working` (not negative) of working time after `start`.
    pub fn add(&self, start: DateTime<Utc>, working: Duration) -> DateTime<Utc> {
        let mut left = working;
        for (open, close) in self.intervals_from(start) {
            let from = open.max(start);
            let available = close - from;
            if left <= available {
                return from + left;
            }
            left -= available;
        }
        start + Duration::days(MAX_DAYS)
    }

    /// Working time in `[a, b)`.
    pub fn between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
        if b <= a {
            return Duration::zero();
        }
        self.intervals_from(a)
            .take_while(|(open, _)| *open < b)
            .map(|(open, close)| (close.min(b) - open.max(a)).max(Duration::zero()))
            .sum()
    }
}

/// Maps a local wall-clock time to an instant: the earlier one when the clock is turned
/// back, and the first instant after the gap when it is turned forward.
fn resolve_local(tz: &Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    for _ in 0..=180 {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(earlier, _) => return earlier.with_timezone(&Utc),
            LocalResult::None => probe += Duration::minutes(1),
        }
    }
    Utc.from_utc_datetime(&local)
}

/// How a clock measures time: around the clock, or on a business calendar.
#[derive(Debug, Clone)]
pub enum Schedule {
    AlwaysOn,
    Calendar(Arc<BusinessCalendar>),
}

impl Schedule {
    /// The instant `working` (not negative) of measured time after `start`; past the
    /// end of time, the end of time.
    pub fn add(&self, start: DateTime<Utc>, working: Duration) -> DateTime<Utc> {
        match self {
            Schedule::AlwaysOn => start
                .checked_add_signed(working)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            Schedule::Calendar(c) => c.add(start, working),
        }
    }

    /// Measured time in `[a, b)`.
    pub fn between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
        match self {
            Schedule::AlwaysOn => (b - a).max(Duration::zero()),
            Schedule::Calendar(c) => c.between(a, b),
        }
    }
}

/// The default calendar: Monday to Friday, 09:00–12:00 and 13:00–18:00, China time.
pub fn default_calendar() -> BusinessCalendar {
    let day = vec![
        Slot {
            start: 9 * 3600,
            end: 12 * 3600,
        },
        Slot {
            start: 13 * 3600,
            end: 18 * 3600,
        },
    ];
    let week = [
        day.clone(),
        day.clone(),
        day.clone(),
        day.clone(),
        day,
        Vec::new(),
        Vec::new(),
    ];
    BusinessCalendar::new(
        DEFAULT_CALENDAR_ID.into(),
        "China working days".into(),
        "Asia/Shanghai".into(),
        week,
        BTreeSet::new(),
    )
    .unwrap_or_else(|_| unreachable!("the built-in calendar is valid"))
}

pub const DEFAULT_CALENDAR_ID: &str = "cn-workdays";

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn calendar(
        tz: &str,
        slots: &[(&str, &str)],
        days: &[usize],
        holidays: &[&str],
    ) -> BusinessCalendar {
        let slots: Vec<Slot> = slots
            .iter()
            .map(|(a, b)| Slot {
                start: parse_time_of_day(a).unwrap(),
                end: parse_time_of_day(b).unwrap(),
            })
            .collect();
        let mut week: [Vec<Slot>; 7] = Default::default();
        for d in days {
            week[*d] = slots.clone();
        }
        let holidays = holidays.iter().map(|d| d.parse().unwrap()).collect();
        BusinessCalendar::new("c".into(), "c".into(), tz.into(), week, holidays).unwrap()
    }

    const WEEKDAYS: &[usize] = &[0, 1, 2, 3, 4];

    #[test]
    fn a_friday_afternoon_ticket_is_due_on_monday() {
        let c = default_calendar();
        // Friday 2026-11-20 17:00 China time = 09:00Z; 2 business hours → Monday 10:00.
        assert_eq!(
            c.add(at("2026-11-20T09:00:00Z"), Duration::hours(2)),
            at("2026-11-23T02:00:00Z")
        );
    }

    #[test]
    fn the_lunch_break_does_not_count() {
        let c = default_calendar();
        // Monday 11:00 local + 2h → 14:00 local (12:00–13:00 is not working time).
        assert_eq!(
            c.add(at("2026-11-23T03:00:00Z"), Duration::hours(2)),
            at("2026-11-23T06:00:00Z")
        );
    }

    #[test]
    fn a_ticket_created_at_the_weekend_starts_counting_on_monday_morning() {
        let c = default_calendar();
        // Saturday 2026-11-21 15:00 local + 2h → Monday 11:00 local.
        assert_eq!(
            c.add(at("2026-11-21T07:00:00Z"), Duration::hours(2)),
            at("2026-11-23T03:00:00Z")
        );
        // Outside hours the clock has not started, so no business time has passed yet.
        assert_eq!(
            c.between(at("2026-11-21T07:00:00Z"), at("2026-11-23T01:00:00Z")),
            Duration::zero()
        );
    }

    #[test]
    fn holidays_are_skipped() {
        let c = calendar(
            "Asia/Shanghai",
            &[("09:00", "18:00")],
            WEEKDAYS,
            &["2026-11-23", "2026-11-24"],
        );
        // Friday 17:00 local + 2h: 1h on Friday, Monday and Tuesday are holidays → Wed 10:00.
        assert_eq!(
            c.add(at("2026-11-20T09:00:00Z"), Duration::hours(2)),
            at("2026-11-25T02:00:00Z")
        );
    }

    #[test]
    fn working_hours_follow_the_local_clock_across_spring_forward() {
        let c = calendar("America/New_York", &[("09:00", "17:00")], WEEKDAYS, &[]);
        // Friday 2026-03-06 16:00 EST (21:00Z) + 2h → Monday 10:00 EDT = 14:00Z.
        assert_eq!(
            c.add(at("2026-03-06T21:00:00Z"), Duration::hours(2)),
            at("2026-03-09T14:00:00Z")
        );
    }

    #[test]
    fn a_round_the_clock_calendar_has_a_23_hour_day_in_spring_and_25_in_autumn() {
        let all_days = &[0, 1, 2, 3, 4, 5, 6];
        let c = calendar("America/New_York", &[("00:00", "24:00")], all_days, &[]);
        // Sunday 2026-03-08 00:00 EST = 05:00Z to Monday 00:00 EDT = 04:00Z.
        assert_eq!(
            c.between(at("2026-03-08T05:00:00Z"), at("2026-03-09T04:00:00Z")),
            Duration::hours(23)
        );
        // Sunday 2026-11-01 00:00 EDT = 04:00Z to Monday 00:00 EST = 05:00Z.
        assert_eq!(
            c.between(at("2026-11-01T04:00:00Z"), at("2026-11-02T05:00:00Z")),
            Duration::hours(25)
        );
        // Adding is the inverse of measuring across the change.
        let start = at("2026-03-07T17:00:00Z");
        let due = c.add(start, Duration::hours(24));
        assert_eq!(due, at("2026-03-08T17:00:00Z"));
        assert_eq!(c.between(start, due), Duration::hours(24));
    }

    #[test]
    fn a_slot_inside_the_spring_gap_starts_when_the_clock_resumes() {
        let c = calendar("America/New_York", &[("02:30", "04:00")], &[6], &[]);
        // Sunday 2026-03-08: 02:30 does not exist; work runs 03:00–04:00 EDT (07:00–08:00Z).
        assert_eq!(
            c.add(at("2026-03-08T00:00:00Z"), Duration::minutes(1)),
            at("2026-03-08T07:01:00Z")
        );
    }

    #[test]
    fn invalid_calendars_name_the_field() {
        let err = BusinessCalendar::new(
            "c".into(),
            "c".into(),
            "Mars/Base".into(),
            Default::default(),
            BTreeSet::new(),
        )
        .unwrap_err();
        assert!(matches!(err, DomainError::Invalid { ref field, .. } if field == "time_zone"));
        let overlapping = [
            vec![
                Slot {
                    start: 0,
                    end: 7200,
                },
                Slot {
                    start: 3600,
                    end: 9000,
                },
            ],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        ];
        let err = BusinessCalendar::new(
            "c".into(),
            "c".into(),
            "UTC".into(),
            overlapping,
            BTreeSet::new(),
        )
        .unwrap_err();
        assert!(
            matches!(err, DomainError::Invalid { ref field, .. } if field == "working_days[0].slots")
        );
        assert!(parse_time_of_day("24:01").is_err());
        assert_eq!(parse_time_of_day("24:00"), Ok(86_400));
        assert_eq!(format_time_of_day(13 * 3600 + 5 * 60), "13:05");
    }

    #[test]
    fn violations_name_the_entry_in_the_callers_list_not_the_weekday() {
        let day = |weekday, slots: &[(u32, u32)]| WorkingDay {
            weekday,
            slots: slots
                .iter()
                .map(|&(start, end)| Slot { start, end })
                .collect(),
        };
        let build = |days| {
            BusinessCalendar::from_working_days(
                "c".into(),
                "c".into(),
                "Asia/Shanghai".into(),
                days,
                BTreeSet::new(),
            )
        };
        let field = |r: Result<BusinessCalendar, DomainError>| match r {
            Err(DomainError::Invalid { field, .. }) => field,
            other => panic!("expected a violation, got {other:?}"),
        };
        // Friday listed first, overlapping: entry 0, not weekday 5.
        assert_eq!(
            field(build(vec![day(Weekday::Fri, &[(0, 7200), (3600, 9000)])])),
            "working_days[0].slots"
        );
        // Wednesday, then a Monday whose slot ends before it starts: entry 1.
        assert_eq!(
            field(build(vec![
                day(Weekday::Wed, &[(32_400, 64_800)]),
                day(Weekday::Mon, &[(64_800, 32_400)]),
            ])),
            "working_days[1].slots"
        );
        assert_eq!(
            field(build(vec![
                day(Weekday::Tue, &[(32_400, 64_800)]),
                day(Weekday::Tue, &[(32_400, 64_800)]),
            ])),
            "working_days[1].weekday"
        );
        // A list in any order builds the same calendar as the whole week.
        let listed = build(vec![
            day(Weekday::Wed, &[(46_800, 64_800), (32_400, 43_200)]),
            day(Weekday::Mon, &[(32_400, 43_200), (46_800, 64_800)]),
        ])
        .unwrap();
        let mut week: [Vec<Slot>; 7] = Default::default();
        week[0] = default_calendar().week[0].clone();
        week[2] = week[0].clone();
        let whole = BusinessCalendar::new(
            "c".into(),
            "c".into(),
            "Asia/Shanghai".into(),
            week,
            BTreeSet::new(),
        )
        .unwrap();
        assert_eq!(listed, whole);
    }
}
