//! A repair job and its lifecycle: pending_dispatch → offered → accepted → scheduled →
//! on_site → completed | cannot_complete, or cancelled, or unassigned when no partner is
//! left. Every offer is kept (the offer history), a decline or a lapsed offer sends the
//! job back to dispatch, and the on-site SLA runs from acceptance. Each operation returns
//! the events it caused.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Actor, AreaKind, CompletionOutcome, DomainError, JobStatus, OfferStatus, QuoteStatus, Urgency,
    matching::Ranked, new_id, partner::GeoPoint, quote::Quote,
};

/// How long a repeat job looks back for the job whose fix did not hold.
pub const REPEAT_WINDOW_DAYS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
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
}

impl Completion {
    pub fn first_time_fix(&self) -> bool {
        self.outcome.is_fix() && !self.first_time_fix_revoked
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub id: String,
    pub job_id: String,
    pub partner_id: String,
    pub status: OfferStatus,
    pub offered_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub responded_at: Option<DateTime<Utc>>,
    pub decline_reason: String,
    pub score: f64,
    pub distance_km: Option<f64>,
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
    pub contact: Option<Contact>,
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

#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub ticket_id: String,
    pub return_id: Option<String>,
    pub customer_id: String,
    pub region_code: String,
    pub point: Option<GeoPoint>,
    pub contact: Option<Contact>,
    pub product_line: String,
    pub fault_description: String,
    pub urgency: Urgency,
    pub warranty: bool,
}

/// The on-site SLA from acceptance, by area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisitTargets {
    pub urban: Duration,
    pub county: Duration,
}

impl VisitTargets {
    /// The handbook's: urban 24 h, county 48 h.
    pub fn handbook() -> Self {
        Self {
            urban: Duration::hours(24),
            county: Duration::hours(48),
        }
    }

    pub fn of(&self, area: AreaKind) -> Duration {
        match area {
            AreaKind::Urban => self.urban,
            AreaKind::County => self.county,
        }
    }
}

/// A partner's answer to an offer.
#[derive(Debug, Clone, Copy)]
pub enum OfferAnswer<'a> {
    /// Starts the on-site clock for the job's area.
    Accept {
        area: AreaKind,
        targets: &'a VisitTargets,
    },
    Decline {
        reason: &'a str,
    },
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
    QuoteNeedsReview {
        quote_id: String,
    },
    Cancelled {
        reason: String,
    },
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
            contact: new.contact,
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

    /// Partners this job was offered to already (they are not asked twice).
    pub fn offered_partners(&self) -> Vec<String> {
        self.offers.iter().map(|o| o.partner_id.clone()).collect()
    }

    pub fn open_offer(&self) -> Option<&Offer> {
        self.offers.iter().find(|o| o.status == OfferStatus::Open)
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

    /// Offers the job to the best-ranked candidate.
    pub fn offer_to(
        &mut self,
        best: &Ranked,
        timeout: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DomainError> {
        if self.job.status != JobStatus::PendingDispatch {
            return Err(self.illegal("be offered"));
        }
        let offer = Offer {
            id: new_id(),
            job_id: self.job.id.clone(),
            partner_id: best.partner_id.clone(),
            status: OfferStatus::Open,
            offered_at: now,
            expires_at: now + timeout,
            responded_at: None,
            decline_reason: String::new(),
            score: best.score,
            distance_km: best.distance_km,
        };
        let offer_id = offer.id.clone();
        self.job.partner_id = Some(best.partner_id.clone());
        self.offers.push(offer);
        self.move_to(
            JobStatus::Offered,
            &Actor::system(),
            format!("offered to {}", best.partner_id),
            now,
        );
        Ok(vec![JobEvent::Offered {
            offer_id,
            attempt: self.offers.len() as u32,
        }])
    }

    /// No candidate is left: a dispatcher must step in.
    pub fn unassign(
        &mut self,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DomainError> {
        if self.job.status != JobStatus::PendingDispatch {
            return Err(self.illegal("be unassigned"));
        }
        self.job.partner_id = None;
        self.job.status_reason = reason.clone();
        self.move_to(JobStatus::Unassigned, &Actor::system(), reason.clone(), now);
        Ok(vec![JobEvent::Unassigned { reason }])
    }

    /// The holder of the open offer accepts or declines it.
    pub fn respond(
        &mut self,
        offer_id: &str,
        answer: OfferAnswer<'_>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DomainError> {
        let Some(index) = self.offers.iter().position(|o| o.id == offer_id) else {
            return Err(DomainError::invalid(
                "offer_id",
                "is not an offer of this job",
            ));
        };
        let offer = &self.offers[index];
        if offer.status != OfferStatus::Open || self.job.status != JobStatus::Offered {
            return Err(DomainError::Precondition(format!(
                "offer {offer_id} is {}, not open",
                offer.status
            )));
        }
        if now >= offer.expires_at {
            return Err(DomainError::Precondition(format!(
                "offer {offer_id} lapsed at {}",
                offer.expires_at.to_rfc3339()
            )));
        }
        let partner_id = offer.partner_id.clone();
        let offer = &mut self.offers[index];
        offer.responded_at = Some(now);
        match answer {
            OfferAnswer::Accept { area, targets } => {
                offer.status = OfferStatus::Accepted;
                self.job.area = Some(area);
                self.job.accepted_at = Some(now);
                self.job.visit_due_at = Some(now + targets.of(area));
                self.move_to(
                    JobStatus::Accepted,
                    actor,
                    format!("accepted by {partner_id}"),
                    now,
                );
                Ok(vec![JobEvent::Accepted {
                    offer_id: offer_id.to_owned(),
                }])
            }
            OfferAnswer::Decline {
                reason: decline_reason,
            } => {
                offer.status = OfferStatus::Declined;
                offer.decline_reason = decline_reason.to_owned();
                self.job.partner_id = None;
                self.move_to(
                    JobStatus::PendingDispatch,
                    actor,
                    format!("declined by {partner_id}: {decline_reason}"),
                    now,
                );
                Ok(vec![JobEvent::Declined {
                    offer_id: offer_id.to_owned(),
                    partner_id,
                    reason: decline_reason.to_owned(),
                    expired: false,
                }])
            }
        }
    }

    /// The acceptance deadline of an offer passed: it lapses and the job goes back to
    /// dispatch. Nothing when the offer was answered meanwhile.
    pub fn expire_offer(&mut self, offer_id: &str, now: DateTime<Utc>) -> Vec<JobEvent> {
        let Some(offer) = self.offers.iter_mut().find(|o| o.id == offer_id) else {
            return Vec::new();
        };
        if offer.status != OfferStatus::Open || now < offer.expires_at {
            return Vec::new();
        }
        offer.status = OfferStatus::Expired;
        offer.responded_at = Some(now);
        let partner_id = offer.partner_id.clone();
        self.job.partner_id = None;
        self.move_to(
            JobStatus::PendingDispatch,
            &Actor::system(),
            format!("offer to {partner_id} lapsed"),
            now,
        );
        vec![JobEvent::Declined {
            offer_id: offer_id.to_owned(),
            partner_id,
            reason: "acceptance deadline passed".into(),
            expired: true,
        }]
    }

    pub fn schedule(
        &mut self,
        at: DateTime<Utc>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DomainError> {
        if !matches!(self.job.status, JobStatus::Accepted | JobStatus::Scheduled) {
            return Err(self.illegal("be scheduled"));
        }
        self.job.scheduled_for = Some(at);
        self.move_to(
            JobStatus::Scheduled,
            actor,
            format!("visit at {}", at.to_rfc3339()),
            now,
        );
        Ok(Vec::new())
    }

    /// The technician arrived; a visit after the SLA is late (reported once).
    pub fn record_visit(
        &mut self,
        arrived_at: DateTime<Utc>,
        notes: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DomainError> {
        if !matches!(self.job.status, JobStatus::Accepted | JobStatus::Scheduled) {
            return Err(self.illegal("record a visit"));
        }
        if arrived_at > now {
            return Err(DomainError::invalid(
                "arrived_at",
                "must not lie in the future",
            ));
        }
        if self
            .job
            .accepted_at
            .is_some_and(|accepted| arrived_at < accepted)
        {
            return Err(DomainError::invalid(
                "arrived_at",
                "must not be before the job was accepted",
            ));
        }
        self.job.visited_at = Some(arrived_at);
        self.move_to(JobStatus::OnSite, actor, notes, now);
        let late = self.job.visit_due_at.is_some_and(|due| arrived_at > due);
        if late && !self.job.visit_late {
            self.job.visit_late = true;
            return Ok(vec![JobEvent::VisitLate]);
        }
        Ok(Vec::new())
    }

    /// The on-site deadline passed: late once, unless the visit happened in time.
    pub fn fire_visit_deadline(&mut self, now: DateTime<Utc>) -> Vec<JobEvent> {
        let due = match self.job.visit_due_at {
            Some(due) if now >= due => due,
            _ => return Vec::new(),
        };
        let waiting = matches!(self.job.status, JobStatus::Accepted | JobStatus::Scheduled);
        if !waiting || self.job.visit_late {
            return Vec::new();
        }
        self.job.visit_late = true;
        self.job.updated_at = now;
        self.job.history.push(StepRecord {
            from: self.job.status,
            to: self.job.status,
            actor_id: Actor::system().id,
            actor_role: Actor::system().role,
            note: format!("on-site visit due {} missed", due.to_rfc3339()),
            at: now,
        });
        vec![JobEvent::VisitLate]
    }

    /// When the visit deadline still has to be watched.
    pub fn visit_watch(&self) -> Option<DateTime<Utc>> {
        let waiting = matches!(self.job.status, JobStatus::Accepted | JobStatus::Scheduled);
        (waiting && !self.job.visit_late)
            .then_some(self.job.visit_due_at)
            .flatten()
    }

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

    pub fn complete(
        &mut self,
        outcome: CompletionOutcome,
        photos: Vec<Photo>,
        notes: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DomainError> {
        if !self.job.status.is_open_work() {
            return Err(self.illegal("be completed"));
        }
        self.job.completion = Some(Completion {
            outcome,
            photos,
            notes: notes.to_owned(),
            completed_at: now,
            first_time_fix_revoked: false,
            repeat_job_id: None,
        });
        let to = if outcome.is_fix() {
            JobStatus::Completed
        } else {
            JobStatus::CannotComplete
        };
        self.move_to(to, actor, format!("outcome {outcome}"), now);
        Ok(vec![JobEvent::Completed])
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
        for offer in self
            .offers
            .iter_mut()
            .filter(|o| o.status == OfferStatus::Open)
        {
            offer.status = OfferStatus::Withdrawn;
            offer.responded_at = Some(now);
        }
        self.job.status_reason = reason.to_owned();
        self.move_to(JobStatus::Cancelled, actor, reason, now);
        Ok(vec![JobEvent::Cancelled {
            reason: reason.to_owned(),
        }])
    }

    /// A repeat job came for the same ticket and product line: this job's fix did not
    /// hold. True when this changed the record (only the first repeat counts).
    pub fn revoke_first_time_fix(&mut self, repeat_job_id: &str, now: DateTime<Utc>) -> bool {
        let Some(completion) = self.job.completion.as_mut() else {
            return false;
        };
        if !completion.outcome.is_fix() || completion.first_time_fix_revoked {
            return false;
        }
        completion.first_time_fix_revoked = true;
        completion.repeat_job_id = Some(repeat_job_id.to_owned());
        self.job.updated_at = now;
        true
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn partner(id: &str) -> Actor {
        Actor {
            id: id.into(),
            role: Actor::PARTNER_ROLE.into(),
        }
    }

    fn new_job() -> JobAggregate {
        let new = NewJob {
            ticket_id: "T-1".into(),
            return_id: None,
            customer_id: "C-1".into(),
            region_code: "310104".into(),
            point: None,
            contact: Some(Contact {
                name: "Li".into(),
                phone: "13800000000".into(),
                address: "1 Road".into(),
            }),
            product_line: "appliance".into(),
            fault_description: "no power".into(),
            urgency: Urgency::Normal,
            warranty: true,
        };
        JobAggregate::create(new, None, &Actor::system(), t(0)).0
    }

    const HANDBOOK: VisitTargets = VisitTargets {
        urban: Duration::hours(24),
        county: Duration::hours(48),
    };

    fn accept(area: AreaKind) -> OfferAnswer<'static> {
        OfferAnswer::Accept {
            area,
            targets: &HANDBOOK,
        }
    }

    fn ranked(id: &str) -> Ranked {
        Ranked {
            partner_id: id.into(),
            score: 0.9,
            distance_km: Some(1.0),
        }
    }

    #[test]
    fn decline_and_lapse_send_the_job_back_keeping_the_history() {
        let mut agg = new_job();
        let events = agg
            .offer_to(&ranked("A"), Duration::minutes(30), t(0))
            .unwrap();
        assert_eq!(
            events,
            vec![JobEvent::Offered {
                offer_id: agg.offers[0].id.clone(),
                attempt: 1
            }]
        );
        let first = agg.offers[0].id.clone();
        let events = agg
            .respond(
                &first,
                OfferAnswer::Decline { reason: "busy" },
                &partner("A"),
                t(5),
            )
            .unwrap();
        assert!(matches!(
            &events[0],
            JobEvent::Declined { expired: false, .. }
        ));
        assert_eq!(agg.job.status, JobStatus::PendingDispatch);
        assert_eq!(agg.job.partner_id, None);

        agg.offer_to(&ranked("B"), Duration::minutes(30), t(6))
            .unwrap();
        let second = agg.offers[1].id.clone();
        assert!(agg.expire_offer(&second, t(35)).is_empty(), "not due yet");
        let events = agg.expire_offer(&second, t(36));
        assert!(matches!(
            &events[0],
            JobEvent::Declined { expired: true, .. }
        ));
        assert!(agg.expire_offer(&second, t(40)).is_empty(), "lapses once");
        assert_eq!(
            agg.offered_partners(),
            vec!["A".to_string(), "B".to_string()]
        );
        let events = agg.unassign("nobody left".into(), t(36)).unwrap();
        assert_eq!(
            events,
            vec![JobEvent::Unassigned {
                reason: "nobody left".into()
            }]
        );
        assert_eq!(agg.job.status, JobStatus::Unassigned);
    }

    #[test]
    fn acceptance_starts_the_on_site_clock_by_area() {
        let mut agg = new_job();
        agg.offer_to(&ranked("A"), Duration::minutes(30), t(0))
            .unwrap();
        let offer = agg.offers[0].id.clone();
        agg.respond(&offer, accept(AreaKind::County), &partner("A"), t(10))
            .unwrap();
        assert_eq!(agg.job.visit_due_at, Some(t(10) + Duration::hours(48)));
        assert_eq!(agg.visit_watch(), agg.job.visit_due_at);
        assert!(
            agg.fire_visit_deadline(t(10) + Duration::hours(47))
                .is_empty()
        );
        assert_eq!(
            agg.fire_visit_deadline(t(10) + Duration::hours(48)),
            vec![JobEvent::VisitLate]
        );
        assert!(
            agg.fire_visit_deadline(t(10) + Duration::hours(49))
                .is_empty(),
            "late once"
        );
        let now = t(10) + Duration::hours(50);
        assert!(
            agg.record_visit(now, "", &partner("A"), now)
                .unwrap()
                .is_empty(),
            "already reported"
        );
        assert_eq!(agg.job.visit_on_time(), Some(false));
    }

    #[test]
    fn a_visit_in_time_is_on_time_and_a_late_one_reports_itself() {
        let mut agg = new_job();
        agg.offer_to(&ranked("A"), Duration::minutes(30), t(0))
            .unwrap();
        let offer = agg.offers[0].id.clone();
        agg.respond(&offer, accept(AreaKind::Urban), &partner("A"), t(1))
            .unwrap();
        let mut late = agg.clone();
        let arrived = t(60);
        assert!(
            agg.record_visit(arrived, "", &partner("A"), t(61))
                .unwrap()
                .is_empty()
        );
        assert_eq!(agg.job.visit_on_time(), Some(true));
        assert_eq!(agg.visit_watch(), None);
        let arrived = t(1) + Duration::hours(25);
        assert_eq!(
            late.record_visit(arrived, "", &partner("A"), arrived)
                .unwrap(),
            vec![JobEvent::VisitLate]
        );
        assert!(
            late.record_visit(t(0), "", &partner("A"), t(0)).is_err(),
            "on site already"
        );
    }

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
    fn completion_outcomes_and_the_repeat_rule() {
        let mut agg = new_job();
        agg.offer_to(&ranked("A"), Duration::minutes(30), t(0))
            .unwrap();
        let offer = agg.offers[0].id.clone();
        agg.respond(&offer, accept(AreaKind::Urban), &partner("A"), t(1))
            .unwrap();
        let mut not_fixed = agg.clone();
        not_fixed
            .complete(
                CompletionOutcome::NeedsParts,
                vec![],
                "",
                &partner("A"),
                t(2),
            )
            .unwrap();
        assert_eq!(not_fixed.job.status, JobStatus::CannotComplete);
        assert!(!not_fixed.revoke_first_time_fix("J2", t(3)));
        agg.complete(CompletionOutcome::Fixed, vec![], "", &partner("A"), t(2))
            .unwrap();
        assert!(agg.job.completion.as_ref().unwrap().first_time_fix());
        assert!(agg.revoke_first_time_fix("J2", t(3)));
        assert!(
            !agg.revoke_first_time_fix("J3", t(4)),
            "only the first repeat counts"
        );
        assert_eq!(
            agg.job
                .completion
                .as_ref()
                .unwrap()
                .repeat_job_id
                .as_deref(),
            Some("J2")
        );
        assert!(agg.cancel("late", &Actor::system(), t(5)).is_err());
    }
}
