//! The quotes a job takes while it is open work: one at a time waits for review, and a
//! reviewer's decision on it. The price check itself is `domain::quote`'s.

use chrono::{DateTime, Utc};

use super::{JobAggregate, JobEvent};
use crate::domain::{Actor, DomainError, QuoteStatus, quote::Quote};

impl JobAggregate {
    pub fn add_quote(
        &mut self,
        quote: Quote,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DomainError> {
        if !self.job.status.is_open_work() {
            return Err(self.illegal("take a quote"));
        }
        if let Some(pending) = self
            .quotes
            .iter()
            .find(|q| q.status == QuoteStatus::PendingReview)
        {
            return Err(DomainError::Precondition(format!(
                "quote {} still awaits review",
                pending.id
            )));
        }
        let events = if quote.status == QuoteStatus::PendingReview {
            vec![JobEvent::QuoteNeedsReview {
                quote_id: quote.id.clone(),
            }]
        } else {
            Vec::new()
        };
        self.quotes.push(quote);
        self.job.updated_at = now;
        Ok(events)
    }

    /// A reviewer approves or rejects the quote waiting for review; its partner is told.
    pub fn review_quote(
        &mut self,
        quote_id: &str,
        approve: bool,
        note: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DomainError> {
        let quote = self
            .quotes
            .iter_mut()
            .find(|q| q.id == quote_id)
            .ok_or_else(|| DomainError::invalid("quote_id", "is not a quote of its job"))?;
        quote.review(approve, note, actor, now)?;
        self.job.updated_at = now;
        let mut events = vec![JobEvent::QuoteReviewed {
            quote_id: quote_id.to_owned(),
        }];
        // The job's cost went out at its completion; a quote approved since is added.
        if approve && self.job.completion.is_some() {
            events.push(JobEvent::Costed);
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::{super::fixtures::*, *};
    use crate::domain::{
        AreaKind, Money, Payer, QuoteLineKind,
        quote::{Quote, QuoteLine},
    };

    fn pending(job_id: &str, partner_id: &str) -> Quote {
        Quote {
            id: "q-1".into(),
            job_id: job_id.into(),
            partner_id: partner_id.into(),
            lines: vec![QuoteLine {
                kind: QuoteLineKind::Part,
                part_code: "VALVE-9".into(),
                description: String::new(),
                quantity: 1,
                unit_price: Money::new(8_000, "CNY"),
                within_schedule: false,
                schedule_price: None,
            }],
            status: QuoteStatus::PendingReview,
            auto_approved: false,
            total: Money::new(8_000, "CNY"),
            payer: Payer::Company,
            review_note: String::new(),
            reviewed_by: String::new(),
            submitted_at: t(5),
            reviewed_at: None,
        }
    }

    #[test]
    fn a_review_decides_the_waiting_quote_once_and_says_so() {
        let mut agg = new_job();
        agg.offer_to(&ranked("A"), Duration::minutes(30), t(0))
            .unwrap();
        let offer = agg.offers[0].id.clone();
        agg.respond(&offer, accept(AreaKind::Urban), &partner("A"), t(1))
            .unwrap();
        let quote = pending(&agg.job.id, "A");
        assert_eq!(
            agg.add_quote(quote, t(5)).unwrap(),
            vec![JobEvent::QuoteNeedsReview {
                quote_id: "q-1".into()
            }]
        );
        let desk = Actor::new("agent-1", "agent");
        assert!(agg.review_quote("q-9", true, "", &desk, t(6)).is_err());
        assert_eq!(
            agg.review_quote("q-1", false, "too dear", &desk, t(6))
                .unwrap(),
            vec![JobEvent::QuoteReviewed {
                quote_id: "q-1".into()
            }]
        );
        assert_eq!(agg.quotes[0].status, QuoteStatus::Rejected);
        assert!(
            agg.review_quote("q-1", true, "", &desk, t(7)).is_err(),
            "decided once"
        );
    }
}
