//! The desk's teams: support groups with their skills and calendar, agents with their
//! groups, skills, capacity and role, and rosters — shifts per group saying who is on
//! duty when — with the check of a group's 24-hour coverage. Pure data and rules.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use aftersales_platform::text_enum;

use super::{DomainError, Status};

/// The longest id of a group, agent, shift, rule or skill.
pub const MAX_CODE: usize = 64;
/// The most an agent's capacity may be.
pub const MAX_CAPACITY: u32 = 1_000;
/// The longest shift.
pub const MAX_SHIFT: Duration = Duration::days(7);
/// The window a coverage check looks at.
pub const COVERAGE_WINDOW: Duration = Duration::days(7);

text_enum!(
    /// An agent's role: the trust model's desk roles and the handbook's specialist.
    AgentRole {
        Agent = "agent",
        Specialist = "specialist",
        Supervisor = "supervisor",
        Manager = "manager",
    }
);

/// A code (group, agent, shift, rule or skill id): 1 to [`MAX_CODE`] letters, digits and
/// `-_.:`, so it can be neither a name nor a contact.
pub fn code(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("is required".into());
    }
    if value.chars().count() > MAX_CODE {
        return Err(format!("must be at most {MAX_CODE} characters"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err("may hold only letters, digits and `-` `_` `.` `:`".into());
    }
    Ok(value.to_owned())
}

/// A group of the desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportGroup {
    pub id: String,
    pub name: String,
    /// Sorted, no duplicates.
    pub skills: Vec<String>,
    pub calendar_id: Option<String>,
    pub round_robin: bool,
}

/// An agent of the desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub id: String,
    /// Sorted, no duplicates.
    pub group_ids: Vec<String>,
    /// Sorted, no duplicates.
    pub skills: Vec<String>,
    pub capacity: u32,
    pub role: AgentRole,
}

impl Agent {
    pub fn is_member_of(&self, group_id: &str) -> bool {
        self.group_ids.iter().any(|g| g == group_id)
    }

    /// Whether the agent may be given the group's work: a member with all its skills.
    pub fn qualifies_for(&self, group: &SupportGroup) -> bool {
        self.is_member_of(&group.id) && group.skills.iter().all(|s| self.skills.contains(s))
    }
}

/// A shift of a group's roster: `agent_ids` are on duty in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    pub id: String,
    pub group_id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Sorted, no duplicates.
    pub agent_ids: Vec<String>,
    /// Its end was handled: the open work of its agents handed over.
    pub ended: bool,
}

impl Shift {
    /// Whether the shift is on at `at`.
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end && !self.agent_ids.is_empty()
    }

    /// Checks the shape of a shift: whole seconds, an end after the start, at most
    /// [`MAX_SHIFT`] long.
    pub fn validate(&self) -> Result<(), DomainError> {
        for (field, at) in [("shift.start", self.start), ("shift.end", self.end)] {
            if at.timestamp_subsec_nanos() != 0 {
                return Err(DomainError::invalid(field, "must be a whole second"));
            }
        }
        if self.end <= self.start {
            return Err(DomainError::invalid(
                "shift.end",
                "must be after shift.start",
            ));
        }
        if self.end - self.start > MAX_SHIFT {
            return Err(DomainError::invalid(
                "shift.end",
                "a shift lasts at most 7 days",
            ));
        }
        Ok(())
    }
}

/// Whether a ticket in this status counts against its assignee's capacity.
pub fn is_open(status: Status) -> bool {
    !matches!(status, Status::Resolved | Status::Closed)
}

/// The agents on duty in `shifts` at `at` (sorted, no duplicates).
pub fn on_duty(shifts: &[Shift], at: DateTime<Utc>) -> Vec<String> {
    let mut agents: Vec<String> = shifts
        .iter()
        .filter(|s| s.covers(at))
        .flat_map(|s| s.agent_ids.iter().cloned())
        .collect();
    agents.sort();
    agents.dedup();
    agents
}

/// The gaps in `[from, to)` that no shift with an agent covers: maximal, in order, none
/// empty. Shifts that touch or overlap cover their union.
pub fn coverage_gaps(
    shifts: &[Shift],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut covered: Vec<(DateTime<Utc>, DateTime<Utc>)> = shifts
        .iter()
        .filter(|s| !s.agent_ids.is_empty())
        .map(|s| (s.start.max(from), s.end.min(to)))
        .filter(|(a, b)| a < b)
        .collect();
    covered.sort();
    let mut gaps = Vec::new();
    let mut cursor = from;
    for (start, end) in covered {
        if start > cursor {
            gaps.push((cursor, start));
        }
        cursor = cursor.max(end);
    }
    if cursor < to {
        gaps.push((cursor, to));
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + Duration::hours(h)
    }

    fn shift(start: i64, end: i64, agents: &[&str]) -> Shift {
        Shift {
            id: format!("s{start}"),
            group_id: "g".into(),
            start: at(start),
            end: at(end),
            agent_ids: agents.iter().map(|a| (*a).to_owned()).collect(),
            ended: false,
        }
    }

    #[test]
    fn gaps_are_what_no_staffed_shift_covers() {
        let shifts = [
            shift(0, 8, &["a"]),
            shift(8, 16, &["b"]),
            shift(14, 20, &["c"]),
            shift(20, 22, &[]),
            shift(23, 30, &["a"]),
        ];
        assert_eq!(
            coverage_gaps(&shifts, at(-2), at(26)),
            vec![(at(-2), at(0)), (at(20), at(23))]
        );
        assert_eq!(coverage_gaps(&[], at(0), at(1)), vec![(at(0), at(1))]);
        assert!(coverage_gaps(&shifts, at(1), at(19)).is_empty());
    }

    #[test]
    fn on_duty_is_half_open() {
        let shifts = [shift(0, 8, &["b", "a"]), shift(8, 16, &["c"])];
        assert_eq!(on_duty(&shifts, at(0)), ["a", "b"]);
        assert_eq!(on_duty(&shifts, at(8)), ["c"]);
        assert!(on_duty(&shifts, at(16)).is_empty());
    }

    #[test]
    fn codes_refuse_text_that_could_be_a_name_or_contact() {
        assert_eq!(code(" complaints ").as_deref(), Ok("complaints"));
        assert!(code("Li Lei").is_err());
        assert!(code("a@b.cn").is_err());
        assert!(code("").is_err());
        assert!(code(&"x".repeat(65)).is_err());
    }
}
