//! Follow-up visits after a resolution: due within a window of the resolution, recorded
//! once by an agent; an unsolved or unsatisfied outcome sends the ticket back.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{DomainError, FollowUpStatus, new_id};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    pub id: String,
    pub ticket_id: String,
    pub customer_id: String,
    pub status: FollowUpStatus,
    pub resolved_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub outcome: Option<Outcome>,
    /// The outcome asked for the ticket to reopen.
    pub reopen_requested: bool,
    /// The tickets service confirmed the reopen (or the ticket was already reopened).
    pub ticket_reopened: bool,
    pub created_at: DateTime<Utc>,
}

/// What the agent learned from the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub reached: bool,
    pub solved: bool,
    pub satisfied: bool,
    /// 1–5 when the customer gave a score.
    pub csat: Option<u8>,
    pub comment: String,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

impl Outcome {
    /// A customer reached who says the problem is not solved, or is not satisfied: the
    /// handbook sends the ticket back. An unreachable customer reopens nothing.
    pub fn wants_reopen(&self) -> bool {
        self.reached && (!self.solved || !self.satisfied)
    }
}

/// Checks a CSAT score: 1–5, or 0 for "not given".
pub fn csat(field: &str, score: u32) -> Result<Option<u8>, DomainError> {
    match score {
        0 => Ok(None),
        1..=5 => Ok(Some(score as u8)),
        _ => Err(DomainError::invalid(field, "must be between 1 and 5")),
    }
}

impl FollowUp {
    /// The follow-up a resolution calls for, due `window` after it.
    pub fn after_resolution(
        ticket_id: &str,
        customer_id: &str,
        resolved_at: DateTime<Utc>,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: new_id(),
            ticket_id: ticket_id.to_owned(),
            customer_id: customer_id.to_owned(),
            status: FollowUpStatus::Pending,
            resolved_at,
            due_at: resolved_at + window,
            outcome: None,
            reopen_requested: false,
            ticket_reopened: false,
            created_at: now,
        }
    }

    /// Records the visit; a follow-up is recorded once.
    pub fn record(&mut self, outcome: Outcome) -> Result<(), DomainError> {
        if self.status == FollowUpStatus::Done {
            return Err(DomainError::Precondition(format!(
                "follow-up {} is already recorded",
                self.id
            )));
        }
        if outcome.csat.is_some() && !outcome.reached {
            return Err(DomainError::invalid(
                "csat",
                "needs a customer who was reached",
            ));
        }
        self.reopen_requested = outcome.wants_reopen();
        self.outcome = Some(outcome);
        self.status = FollowUpStatus::Done;
        Ok(())
    }

    /// The due time passed without a record; true when this changed anything.
    pub fn lapse(&mut self, now: DateTime<Utc>) -> bool {
        if self.status == FollowUpStatus::Pending && now >= self.due_at {
            self.status = FollowUpStatus::Overdue;
            return true;
        }
        false
    }

    /// Recorded (customer reached) within the window of the resolution.
    pub fn within_window(&self) -> bool {
        self.outcome
            .as_ref()
            .is_some_and(|o| o.reached && o.recorded_at <= self.due_at)
    }

    /// A reopen was asked for and not yet confirmed.
    pub fn reopen_pending(&self) -> bool {
        self.reopen_requested && !self.ticket_reopened
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + h * 3600, 0).unwrap()
    }

    fn outcome(reached: bool, solved: bool, satisfied: bool, at: i64) -> Outcome {
        Outcome {
            reached,
            solved,
            satisfied,
            csat: None,
            comment: String::new(),
            recorded_by: "agent".into(),
            recorded_at: t(at),
        }
    }

    #[test]
    fn unsolved_or_unsatisfied_reopens_but_unreached_does_not() {
        assert!(outcome(true, false, true, 1).wants_reopen());
        assert!(outcome(true, true, false, 1).wants_reopen());
        assert!(!outcome(true, true, true, 1).wants_reopen());
        assert!(!outcome(false, false, false, 1).wants_reopen());
    }

    #[test]
    fn recorded_once_and_late_records_still_count_as_done() {
        let mut f = FollowUp::after_resolution("t", "c", t(0), Duration::hours(24), t(0));
        assert_eq!(f.due_at, t(24));
        assert!(!f.lapse(t(23)));
        assert!(f.lapse(t(24)));
        f.record(outcome(true, true, false, 30)).unwrap();
        assert!(f.reopen_pending());
        assert!(!f.within_window());
        assert!(f.record(outcome(true, true, true, 31)).is_err());
        assert_eq!(
            csat("csat", 6).unwrap_err().to_string(),
            "csat: must be between 1 and 5"
        );
    }
}
