//! Offers: the job offered to the best-ranked partner, the holder's answer, an offer that
//! lapses, and open offers closed without an answer when the job is cancelled. Every
//! offer is kept (the offer history); a decline or a lapse sends the job back to dispatch.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{JobAggregate, JobEvent, VisitTargets};
use crate::domain::{
    Actor, AreaKind, DomainError, JobStatus, OfferStatus, matching::Ranked, new_id,
};

/// Why an open offer is withdrawn when its job is cancelled: dispatch's words, not the
/// canceller's (their reason stays on the job).
pub(super) const WITHDRAWN_ON_CANCEL: &str = "job cancelled";

/// Why a lapsed offer is declined.
const LAPSED: &str = "acceptance deadline passed";

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

impl Offer {
    /// The acceptance deadline passed unanswered: what its partner is told.
    fn lapse(&mut self, now: DateTime<Utc>) -> JobEvent {
        self.status = OfferStatus::Expired;
        self.responded_at = Some(now);
        JobEvent::Declined {
            offer_id: self.id.clone(),
            partner_id: self.partner_id.clone(),
            reason: LAPSED.into(),
            expired: true,
        }
    }

    /// Taken back from its partner before it answered: what the partner is told.
    fn withdraw(&mut self, reason: &str, now: DateTime<Utc>) -> JobEvent {
        self.status = OfferStatus::Withdrawn;
        self.responded_at = Some(now);
        JobEvent::OfferWithdrawn {
            offer_id: self.id.clone(),
            partner_id: self.partner_id.clone(),
            reason: reason.to_owned(),
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

impl JobAggregate {
    /// Partners this job was offered to already (they are not asked twice).
    pub fn offered_partners(&self) -> Vec<String> {
        self.offers.iter().map(|o| o.partner_id.clone()).collect()
    }

    pub fn open_offer(&self) -> Option<&Offer> {
        self.offers.iter().find(|o| o.status == OfferStatus::Open)
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
            &Actor::system("dispatch"),
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
        self.move_to(
            JobStatus::Unassigned,
            &Actor::system("dispatch"),
            reason.clone(),
            now,
        );
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
        let partner_id = offer.partner_id.clone();
        let lapsed = offer.lapse(now);
        self.job.partner_id = None;
        self.move_to(
            JobStatus::PendingDispatch,
            &Actor::system("dispatch"),
            format!("offer to {partner_id} lapsed"),
            now,
        );
        vec![lapsed]
    }

    /// Closes every open offer without its partner's answer, the job staying with the
    /// caller: an offer still running is withdrawn; one whose deadline already passed
    /// (its firing still on the way) lapses, as the deadline would have had it, so a
    /// partner is never told of a withdrawal after its offer lapsed.
    pub(super) fn close_open_offers(&mut self, reason: &str, now: DateTime<Utc>) -> Vec<JobEvent> {
        self.offers
            .iter_mut()
            .filter(|o| o.status == OfferStatus::Open)
            .map(|o| {
                if now >= o.expires_at {
                    o.lapse(now)
                } else {
                    o.withdraw(reason, now)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::{super::fixtures::*, *};

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
    fn cancelling_withdraws_a_running_offer_and_lapses_one_past_its_deadline() {
        let system = Actor::system("dispatch");
        let mut running = new_job();
        running
            .offer_to(&ranked("A"), Duration::minutes(30), t(0))
            .unwrap();
        let offer_id = running.offers[0].id.clone();
        let events = running.cancel("duplicate", &system, t(29)).unwrap();
        assert_eq!(
            events,
            vec![
                JobEvent::OfferWithdrawn {
                    offer_id,
                    partner_id: "A".into(),
                    reason: WITHDRAWN_ON_CANCEL.into(),
                },
                JobEvent::Cancelled {
                    reason: "duplicate".into(),
                    partner_id: Some("A".into()),
                },
            ]
        );
        assert_eq!(running.offers[0].status, OfferStatus::Withdrawn);

        let mut lapsed = new_job();
        lapsed
            .offer_to(&ranked("A"), Duration::minutes(30), t(0))
            .unwrap();
        let events = lapsed.cancel("duplicate", &system, t(30)).unwrap();
        assert!(
            matches!(&events[..], [
                JobEvent::Declined { expired: true, partner_id, .. },
                JobEvent::Cancelled { .. },
            ] if partner_id == "A"),
            "{events:?}"
        );
        assert_eq!(lapsed.offers[0].status, OfferStatus::Expired);
        assert!(
            lapsed
                .expire_offer(&lapsed.offers[0].id.clone(), t(31))
                .is_empty(),
            "the deadline firing later changes nothing"
        );

        let mut answered = new_job();
        answered
            .offer_to(&ranked("A"), Duration::minutes(30), t(0))
            .unwrap();
        let offer_id = answered.offers[0].id.clone();
        answered
            .respond(&offer_id, accept(AreaKind::Urban), &partner("A"), t(1))
            .unwrap();
        assert_eq!(
            answered.cancel("duplicate", &system, t(2)).unwrap(),
            vec![JobEvent::Cancelled {
                reason: "duplicate".into(),
                partner_id: Some("A".into()),
            }],
            "an answered offer is not withdrawn"
        );
    }
}
