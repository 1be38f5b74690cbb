//! Proactive care: warranty records and the reminder tasks they call for (before expiry
//! and on the purchase anniversary, with an extended-warranty offer for VIPs), and the
//! task an emergency notice leaves for each affected customer.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DomainError, TaskKind, Tier, new_id};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warranty {
    pub id: String,
    pub customer_id: String,
    pub product: String,
    pub product_line: String,
    pub purchase_date: NaiveDate,
    pub months: u32,
}

impl Warranty {
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.months == 0 || self.months > 240 {
            return Err(DomainError::invalid("months", "must be between 1 and 240"));
        }
        Ok(())
    }

    pub fn expires_on(&self) -> NaiveDate {
        self.purchase_date
            .checked_add_months(Months::new(self.months))
            .unwrap_or(NaiveDate::MAX)
    }

    /// The reminders still ahead of `now`: `days_before` days before expiry, and the
    /// next purchase anniversary while the warranty runs. VIPs get the extended-warranty
    /// offer on both.
    pub fn reminders(&self, days_before: u32, tier: Tier, now: DateTime<Utc>) -> Vec<CareTask> {
        let offer = tier == Tier::Vip;
        let expires = self.expires_on();
        let mut tasks = Vec::new();
        let expiry_reminder = expires - Duration::days(i64::from(days_before));
        if at_start(expiry_reminder) > now {
            tasks.push(CareTask::new(
                &self.customer_id,
                TaskKind::WarrantyExpiry,
                &self.id,
                at_start(expiry_reminder),
                format!("warranty of {} ends on {expires}", self.product),
                offer,
                now,
            ));
        }
        let today = now.date_naive();
        let next_anniversary = (1..=self.months.div_ceil(12))
            .filter_map(|years| {
                self.purchase_date
                    .checked_add_months(Months::new(years * 12))
            })
            .find(|d| *d > today && *d < expires);
        if let Some(date) = next_anniversary {
            tasks.push(CareTask::new(
                &self.customer_id,
                TaskKind::PurchaseAnniversary,
                &self.id,
                at_start(date),
                format!(
                    "{} years since buying {}",
                    date.year() - self.purchase_date.year(),
                    self.product
                ),
                offer,
                now,
            ));
        }
        tasks
    }
}

/// A calendar date from "YYYY-MM-DD" (a purchase date).
pub fn parse_date(field: &str, text: &str) -> Result<NaiveDate, DomainError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| DomainError::invalid(field, "must be a date YYYY-MM-DD"))
}

fn at_start(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::MIN).and_utc()
}

/// Something an agent should do for a customer, from a certain time on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CareTask {
    pub id: String,
    pub customer_id: String,
    pub kind: TaskKind,
    pub subject_id: String,
    pub due_at: DateTime<Utc>,
    pub note: String,
    pub offer_extended_warranty: bool,
    pub created_at: DateTime<Utc>,
}

impl CareTask {
    pub fn new(
        customer_id: &str,
        kind: TaskKind,
        subject_id: &str,
        due_at: DateTime<Utc>,
        note: String,
        offer_extended_warranty: bool,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: new_id(),
            customer_id: customer_id.to_owned(),
            kind,
            subject_id: subject_id.to_owned(),
            due_at,
            note,
            offer_extended_warranty,
            created_at: now,
        }
    }

    /// One task per customer, kind and subject (and due date for reminders): replays and
    /// duplicated events add nothing.
    pub fn dedupe_key(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.kind,
            self.subject_id,
            self.customer_id,
            self.due_at.date_naive()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminders_before_expiry_and_on_the_next_anniversary() {
        let w = Warranty {
            id: "w".into(),
            customer_id: "c".into(),
            product: "washer".into(),
            product_line: "appliance".into(),
            purchase_date: NaiveDate::from_ymd_opt(2025, 3, 10).unwrap(),
            months: 24,
        };
        let now = NaiveDate::from_ymd_opt(2026, 1, 1)
            .unwrap()
            .and_time(NaiveTime::MIN)
            .and_utc();
        let tasks = w.reminders(30, Tier::Vip, now);
        assert_eq!(
            w.expires_on(),
            NaiveDate::from_ymd_opt(2027, 3, 10).unwrap()
        );
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].kind, TaskKind::WarrantyExpiry);
        assert_eq!(
            tasks[0].due_at.date_naive(),
            NaiveDate::from_ymd_opt(2027, 2, 8).unwrap()
        );
        assert_eq!(tasks[1].kind, TaskKind::PurchaseAnniversary);
        assert_eq!(
            tasks[1].due_at.date_naive(),
            NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()
        );
        assert!(tasks.iter().all(|t| t.offer_extended_warranty));
        assert!(
            w.reminders(30, Tier::Regular, now)
                .iter()
                .all(|t| !t.offer_extended_warranty)
        );
    }
}
