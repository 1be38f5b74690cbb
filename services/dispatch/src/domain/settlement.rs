//! Monthly settlement with a partner: the approved quotes of its finished jobs, split by
//! who pays (the company for warranty work, the customer otherwise), as a statement that
//! moves draft → issued → paid, or issued → disputed → (rebuilt) draft | issued.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{DomainError, Money, Payer, SettlementAction, SettlementStatus, new_id};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementLine {
    pub job_id: String,
    pub quote_id: String,
    pub completed_at: DateTime<Utc>,
    pub payer: Payer,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    pub id: String,
    pub partner_id: String,
    pub month: String,
    pub status: SettlementStatus,
    pub lines: Vec<SettlementLine>,
    pub company_total: Money,
    pub customer_total: Money,
    pub total: Money,
    pub dispute_reason: String,
    pub generated_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a change of a settlement tells others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettlementEvent {
    /// It entered `issued` (again, after a dispute): the partner is told what it is owed.
    Issued,
}

/// The instants a month (`YYYY-MM`) of a partner's calendar starts and ends.
pub fn month_bounds(month: &str, tz: Tz) -> Result<(DateTime<Utc>, DateTime<Utc>), DomainError> {
    let bad = || DomainError::invalid("month", "must be YYYY-MM");
    if month.len() != 7 {
        return Err(bad());
    }
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").map_err(|_| bad())?;
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    }
    .ok_or_else(bad)?;
    let start = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(bad)
    };
    Ok((start(first)?, start(next)?))
}

impl Settlement {
    /// A fresh draft for the month, or the existing one rebuilt when it is still a draft
    /// or under dispute (the fix goes out as a new draft).
    pub fn build(
        existing: Option<Settlement>,
        partner_id: &str,
        month: &str,
        currency: &str,
        mut lines: Vec<SettlementLine>,
        now: DateTime<Utc>,
    ) -> Result<Settlement, DomainError> {
        if let Some(existing) = &existing
            && !matches!(
                existing.status,
                SettlementStatus::Draft | SettlementStatus::Disputed
            )
        {
            return Err(DomainError::Precondition(format!(
                "the settlement of {month} is {}; only a draft or a disputed one is rebuilt",
                existing.status
            )));
        }
        if let Some(line) = lines.iter().find(|l| l.amount.currency != currency) {
            return Err(DomainError::Precondition(format!(
                "quote {} is in {}, the statement in {currency}",
                line.quote_id, line.amount.currency
            )));
        }
        lines.sort_by(|a, b| (a.completed_at, &a.job_id).cmp(&(b.completed_at, &b.job_id)));
        let sum = |payer: Payer| -> i64 {
            lines
                .iter()
                .filter(|l| l.payer == payer)
                .map(|l| l.amount.minor)
                .sum()
        };
        let (company, customer) = (sum(Payer::Company), sum(Payer::Customer));
        let (id, generated_at) = existing
            .map(|e| (e.id, e.generated_at))
            .unwrap_or_else(|| (new_id(), now));
        Ok(Settlement {
            id,
            partner_id: partner_id.to_owned(),
            month: month.to_owned(),
            status: SettlementStatus::Draft,
            lines,
            company_total: Money::new(company, currency),
            customer_total: Money::new(customer, currency),
            total: Money::new(company + customer, currency),
            dispute_reason: String::new(),
            generated_at,
            updated_at: now,
        })
    }

    /// Moves the statement on by `action`; the events the move caused.
    pub fn apply(
        &mut self,
        action: SettlementAction,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<SettlementEvent>, DomainError> {
        use SettlementAction as A;
        use SettlementStatus as S;
        let to = match (self.status, action) {
            (S::Draft | S::Disputed, A::Issue) => S::Issued,
            (S::Issued, A::Dispute) => {
                if reason.trim().is_empty() {
                    return Err(DomainError::invalid("reason", "a dispute needs a reason"));
                }
                S::Disputed
            }
            (S::Issued, A::Pay) => S::Paid,
            (from, action) => {
                return Err(DomainError::Precondition(format!(
                    "a {from} settlement cannot take {action}"
                )));
            }
        };
        if to == S::Disputed {
            self.dispute_reason = reason.to_owned();
        }
        self.status = to;
        self.updated_at = now;
        Ok(match to {
            S::Issued => vec![SettlementEvent::Issued],
            S::Draft | S::Disputed | S::Paid => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(job: &str, payer: Payer, minor: i64, day: u32) -> SettlementLine {
        SettlementLine {
            job_id: job.into(),
            quote_id: format!("q-{job}"),
            completed_at: Utc.with_ymd_and_hms(2026, 11, day, 3, 0, 0).unwrap(),
            payer,
            amount: Money::new(minor, "CNY"),
        }
    }

    #[test]
    fn totals_split_by_payer() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let s = Settlement::build(
            None,
            "P",
            "2026-11",
            "CNY",
            vec![
                line("b", Payer::Company, 12_000, 9),
                line("a", Payer::Customer, 3_000, 2),
                line("c", Payer::Company, 500, 20),
            ],
            now,
        )
        .unwrap();
        assert_eq!(s.company_total, Money::new(12_500, "CNY"));
        assert_eq!(s.customer_total, Money::new(3_000, "CNY"));
        assert_eq!(s.total, Money::new(15_500, "CNY"));
        assert_eq!(s.lines[0].job_id, "a", "lines in completion order");
    }

    #[test]
    fn statement_states_move_one_way() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let mut s = Settlement::build(None, "P", "2026-11", "CNY", vec![], now).unwrap();
        assert!(
            s.apply(SettlementAction::Pay, "", now).is_err(),
            "a draft is not paid"
        );
        assert_eq!(
            s.apply(SettlementAction::Issue, "", now).unwrap(),
            vec![SettlementEvent::Issued]
        );
        assert!(Settlement::build(Some(s.clone()), "P", "2026-11", "CNY", vec![], now).is_err());
        assert!(s.apply(SettlementAction::Dispute, " ", now).is_err());
        assert!(
            s.apply(SettlementAction::Dispute, "job x missing", now)
                .unwrap()
                .is_empty()
        );
        let rebuilt =
            Settlement::build(Some(s.clone()), "P", "2026-11", "CNY", vec![], now).unwrap();
        assert_eq!(
            (rebuilt.id.as_str(), rebuilt.status),
            (s.id.as_str(), SettlementStatus::Draft)
        );
        assert_eq!(
            s.apply(SettlementAction::Issue, "", now).unwrap(),
            vec![SettlementEvent::Issued],
            "issued again after the dispute"
        );
        assert!(s.apply(SettlementAction::Pay, "", now).unwrap().is_empty());
        assert!(s.apply(SettlementAction::Dispute, "late", now).is_err());
    }

    #[test]
    fn months_follow_the_partner_calendar() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let (start, end) = month_bounds("2026-12", tz).unwrap();
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 11, 30, 16, 0, 0).unwrap());
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 12, 31, 16, 0, 0).unwrap());
        assert!(month_bounds("2026-13", tz).is_err());
        assert!(month_bounds("2026-1", tz).is_err());
    }
}
