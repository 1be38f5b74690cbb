//! A repair job and its lifecycle: pending_dispatch → offered → accepted → scheduled →
//! on_site → completed | cannot_complete, or cancelled, or unassigned when no partner is
//! left; open work may wait for parts (waiting_for_parts → accepted, see `parts`). Each operation returns the events it caused. The offer rules (who holds the job,
//! answers, lapses and withdrawals) live in `offer`, the on-site visit and its SLA in
//! `visit`, the quotes the job takes and their review in `quotes`, completion (on site or
//! remote) and the repeat rule in `completion`; this module keeps the job itself and
//! cancellation.

mod completion;
mod offer;
mod parts;
mod quotes;
mod visit;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use offer::{Offer, OfferAnswer};
pub use visit::VisitTargets;

use aftersales_platform::seal::{mask_address, mask_name, mask_phone, normalise_phone};

use super::{
    Actor, AreaKind, CompletionMode, CompletionOutcome, DomainError, JobStatus, Urgency, new_id,
    partner::GeoPoint, quote::Quote,
};

/// How long a repeat job looks back for the job whose fix did not hold.
pub const REPEAT_WINDOW_DAYS: i64 = 30;

/// The customer's contact in clear text: as a creator sends it and a permitted reader
/// sees it. A job never keeps it so; it keeps a [`SealedContact`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    pub phone: String,
    pub address: String,
}

/// The name shown for a contact erased because the customer was anonymised.
pub const ERASED_NAME: &str = "(anonymised)";

impl Contact {
    /// What a reader without `pii:read` sees.
    pub fn masked(&self) -> Contact {
        Contact {
            name: mask_name(&self.name),
            phone: mask_phone(&normalise_phone(&self.phone)),
            address: mask_address(&self.address),
        }
    }

    /// What is shown of a contact erased on the customer's anonymisation.
    pub fn erased() -> Contact {
        Contact {
            name: ERASED_NAME.into(),
            phone: String::new(),
            address: String::new(),
        }
    }
}

/// The customer's contact as a job keeps it: each field sealed (`aftersales_platform::
/// seal`, the job id and field name as associated data) under the key `key_id` names.
/// An empty `key_id` marks a contact stored in clear text by a version before contacts
/// were sealed; start-up seals those.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedContact {
    #[serde(default)]
    pub key_id: String,
    pub name: String,
    pub phone: String,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Photo {
    pub url: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    pub outcome: CompletionOutcome,
    pub photos: Vec<Photo>,
    pub notes: String,
    pub completed_at: DateTime<Utc>,
    pub first_time_fix_revoked: bool,
    pub repeat_job_id: Option<String>,
    #[serde(default)]
    pub mode: CompletionMode,
}

impl Completion {
    pub fn first_time_fix(&self) -> bool {
        self.outcome.is_fix() && !self.first_time_fix_revoked
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub from: JobStatus,
    pub to: JobStatus,
    pub actor_id: String,
    pub actor_role: String,
    pub note: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub ticket_id: String,
    pub return_id: Option<String>,
    pub customer_id: String,
    pub region_code: String,
    pub point: Option<GeoPoint>,
    pub contact: Option<SealedContact>,
    /// The contact was erased because the customer was anonymised.
    #[serde(default)]
    pub contact_erased: bool,
    pub product_line: String,
    pub fault_description: String,
    pub urgency: Urgency,
    pub warranty: bool,
    pub status: JobStatus,
    /// The partner holding the open offer, or the one that accepted.
    pub partner_id: Option<String>,
    pub area: Option<AreaKind>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub visit_due_at: Option<DateTime<Utc>>,
    pub visited_at: Option<DateTime<Utc>>,
    pub visit_late: bool,
    /// Since when the job waits for parts (the on-site clock paused meanwhile).
    #[serde(default)]
    pub parts_waiting_since: Option<DateTime<Utc>>,
    pub completion: Option<Completion>,
    pub status_reason: String,
    pub repeat_of_job_id: Option<String>,
    pub history: Vec<StepRecord>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Job {
    /// The visit counted against the on-site SLA: true on time, false late, `None` while
    /// undecided (or never required, for a job not accepted).
    pub fn visit_on_time(&self) -> Option<bool> {
        if self.visit_late {
            return Some(false);
        }
        self.visited_at.map(|_| true)
    }
}

/// A job as its creator describes it; its contact comes apart, to be sealed under the new
/// job's id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub ticket_id: String,
    pub return_id: Option<String>,
    pub customer_id: String,
    pub region_code: String,
    pub point: Option<GeoPoint>,
    pub product_line: String,
    pub fault_description: String,
    pub urgency: Urgency,
    pub warranty: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    Created,
    Offered {
        offer_id: String,
        attempt: u32,
    },
    Accepted {
        offer_id: String,
    },
    Declined {
        offer_id: String,
        partner_id: String,
        reason: String,
        expired: bool,
    },
    Unassigned {
        reason: String,
    },
    VisitLate,
    Completed,
    /// Every part the job waited for is reserved: it is accepted work again.
    PartsReady,
    QuoteNeedsReview {
        quote_id: String,
    },
    /// A reviewer approved or rejected a quote that waited for review.
    QuoteReviewed {
        quote_id: String,
    },
    /// A quote approved after the job finished: its cost is published again.
    Costed,
    Cancelled {
        reason: String,
        /// Who held the offer or the work when the job was cancelled.
        partner_id: Option<String>,
    },
    /// An open offer was taken back before its partner answered and before it lapsed.
    OfferWithdrawn {
        offer_id: String,
        partner_id: String,
        reason: String,
    },
}

/// A job as one reader may see it: the job scoped to the reader, and its customer's
/// contact in clear text, masked, or absent.
#[derive(Debug, Clone)]
pub struct JobView {
    pub job: JobAggregate,
    pub contact: Option<Contact>,
}

/// A job with its offers and quotes: what one transaction reads and writes.
#[derive(Debug, Clone, PartialEq)]
pub struct JobAggregate {
    pub job: Job,
    pub offers: Vec<Offer>,
    pub quotes: Vec<Quote>,
}

impl JobAggregate {
    pub fn create(
        new: NewJob,
        repeat_of: Option<String>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> (Self, Vec<JobEvent>) {
        let job = Job {
            id: new_id(),
            ticket_id: new.ticket_id,
            return_id: new.return_id,
            customer_id: new.customer_id,
            region_code: new.region_code,
            point: new.point,
            contact: None,
            contact_erased: false,
            product_line: new.product_line,
            fault_description: new.fault_description,
            urgency: new.urgency,
            warranty: new.warranty,
            status: JobStatus::PendingDispatch,
            partner_id: None,
            area: None,
            accepted_at: None,
            scheduled_for: None,
            visit_due_at: None,
            visited_at: None,
            visit_late: false,
            parts_waiting_since: None,
            completion: None,
            status_reason: String::new(),
            repeat_of_job_id: repeat_of,
            history: vec![StepRecord {
                from: JobStatus::PendingDispatch,
                to: JobStatus::PendingDispatch,
                actor_id: actor.id.clone(),
                actor_role: actor.role.clone(),
                note: "created".into(),
                at: now,
            }],
            created_at: now,
            updated_at: now,
        };
        let agg = Self {
            job,
            offers: Vec::new(),
            quotes: Vec::new(),
        };
        (agg, vec![JobEvent::Created])
    }

    fn move_to(
        &mut self,
        to: JobStatus,
        actor: &Actor,
        note: impl Into<String>,
        now: DateTime<Utc>,
    ) {
        self.job.history.push(StepRecord {
            from: self.job.status,
            to,
            actor_id: actor.id.clone(),
            actor_role: actor.role.clone(),
            note: note.into(),
            at: now,
        });
        self.job.status = to;
        self.job.updated_at = now;
    }

    fn illegal(&self, action: &'static str) -> DomainError {
        DomainError::IllegalTransition {
            from: self.job.status,
            action,
        }
    }

    /// Whether a partner may see this job at all: it holds the open offer or the job.
    pub fn visible_to(&self, partner_id: &str) -> bool {
        self.job.partner_id.as_deref() == Some(partner_id)
    }

    /// The job as `partner_id` may see it: only its own offers, the holder only when that
    /// is itself (a partner that just declined is not told who is asked next), and the
    /// customer's contact only while the job is its accepted, open work.
    pub fn scoped_to(&self, partner_id: &str) -> JobAggregate {
        let mut scoped = self.clone();
        scoped.offers.retain(|o| o.partner_id == partner_id);
        scoped.quotes.retain(|q| q.partner_id == partner_id);
        if !self.visible_to(partner_id) {
            scoped.job.partner_id = None;
        }
        if !self.shows_contact_to(partner_id) {
            scoped.job.contact = None;
        }
        scoped.job.history.clear();
        scoped
    }

    pub fn shows_contact_to(&self, partner_id: &str) -> bool {
        self.visible_to(partner_id) && self.job.status.is_open_work() && self.job.contact.is_some()
    }

    /// Erases the customer's contact (the customer was anonymised); whether anything
    /// changed, so a second erasure changes nothing.
    pub fn erase_contact(&mut self, now: DateTime<Utc>) -> bool {
        if self.job.contact_erased && self.job.contact.is_none() {
            return false;
        }
        self.job.contact = None;
        self.job.contact_erased = true;
        self.job.updated_at = now;
        true
    }

    pub fn cancel(
        &mut self,
        reason: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DomainError> {
        if self.job.status.is_final() {
            return Err(self.illegal("be cancelled"));
        }
        let mut events = self.close_open_offers(offer::WITHDRAWN_ON_CANCEL, now);
        self.job.status_reason = reason.to_owned();
        self.move_to(JobStatus::Cancelled, actor, reason, now);
        events.push(JobEvent::Cancelled {
            reason: reason.to_owned(),
            partner_id: self.job.partner_id.clone(),
        });
        Ok(events)
    }
}

/// What the tests of the job rules start from.
#[cfg(test)]
mod fixtures {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::domain::matching::Ranked;

    pub(super) fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    pub(super) fn partner(id: &str) -> Actor {
        Actor::new(id, Actor::PARTNER_ROLE)
    }

    pub(super) fn new_job() -> JobAggregate {
        let new = NewJob {
            ticket_id: "T-1".into(),
            return_id: None,
            customer_id: "C-1".into(),
            region_code: "310104".into(),
            point: None,
            product_line: "appliance".into(),
            fault_description: "no power".into(),
            urgency: Urgency::Normal,
            warranty: true,
        };
        let mut agg = JobAggregate::create(new, None, &Actor::system("dispatch"), t(0)).0;
        agg.job.contact = Some(SealedContact {
            key_id: "k1".into(),
            name: "sealed-name".into(),
            phone: "sealed-phone".into(),
            address: "sealed-address".into(),
        });
        agg
    }

    pub(super) const HANDBOOK: VisitTargets = VisitTargets {
        urban: Duration::hours(24),
        county: Duration::hours(48),
    };

    pub(super) fn accept(area: AreaKind) -> OfferAnswer<'static> {
        OfferAnswer::Accept {
            area,
            targets: &HANDBOOK,
        }
    }

    pub(super) fn ranked(id: &str) -> Ranked {
        Ranked {
            partner_id: id.into(),
            score: 0.9,
            distance_km: Some(1.0),
            taken_today: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::{fixtures::*, *};

    #[test]
    fn partners_see_only_their_own_offers_and_contact_only_on_open_work() {
        let mut agg = new_job();
        agg.offer_to(&ranked("A"), Duration::minutes(30), t(0))
            .unwrap();
        let a = agg.offers[0].id.clone();
        agg.respond(&a, OfferAnswer::Decline { reason: "" }, &partner("A"), t(1))
            .unwrap();
        agg.offer_to(&ranked("B"), Duration::minutes(30), t(2))
            .unwrap();
        assert!(!agg.visible_to("A"));
        assert!(agg.visible_to("B"));
        let declined = agg.scoped_to("A");
        assert_eq!(declined.job.partner_id, None, "A is not told who is next");
        assert_eq!(declined.offers.len(), 1);
        assert_eq!(declined.offers[0].partner_id, "A");
        let scoped = agg.scoped_to("B");
        assert_eq!(scoped.job.partner_id.as_deref(), Some("B"));
        assert_eq!(scoped.offers.len(), 1);
        assert_eq!(
            scoped.job.contact, None,
            "an offer does not show the contact"
        );
        let b = agg.offers[1].id.clone();
        agg.respond(&b, accept(AreaKind::Urban), &partner("B"), t(3))
            .unwrap();
        assert!(agg.scoped_to("B").job.contact.is_some());
        agg.complete(CompletionOutcome::Fixed, vec![], "", &partner("B"), t(4))
            .unwrap();
        assert_eq!(
            agg.scoped_to("B").job.contact,
            None,
            "closed work hides it again"
        );
    }

    #[test]
    fn an_erased_contact_stays_erased_and_a_second_erasure_changes_nothing() {
        let mut agg = new_job();
        assert!(agg.erase_contact(t(5)));
        assert_eq!(agg.job.contact, None);
        assert!(agg.job.contact_erased);
        assert_eq!(agg.job.updated_at, t(5));
        assert!(!agg.erase_contact(t(9)));
        assert_eq!(agg.job.updated_at, t(5), "nothing changed the second time");
    }

    #[test]
    fn masks_keep_only_a_hint() {
        let contact = Contact {
            name: "Li Lei".into(),
            phone: "+86 138-0000-1234".into(),
            address: "1 Huaihai Road".into(),
        };
        assert_eq!(
            contact.masked(),
            Contact {
                name: "L**".into(),
                phone: "138****1234".into(),
                address: "1 Hu***".into(),
            }
        );
    }
}
