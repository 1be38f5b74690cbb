//! Offers from a partner's side: the open offers waiting for it, and its answer. A
//! decline sends the job to the next candidate in the same command.

use aftersales_platform::pii::masked;
use aftersales_runtime::command::Remembered;

use crate::{
    domain::{
        Actor, AreaKind, DomainError, JobStatus, OfferStatus,
        job::{JobView, OfferAnswer},
        listing::JobFilter,
    },
    error::{DispatchError, not_found},
    store,
};

use super::{ContactRight, DispatchCore, save};

const RESPOND_SCOPE: &str = "dispatch.RespondToOffer";

/// The most open offers listed for one partner.
const MAX_OPEN_OFFERS: u64 = 500;

impl DispatchCore {
    /// Open offers waiting for a partner, oldest first, each with its job as the partner
    /// may see it.
    pub async fn list_offers(
        &self,
        partner_id: &str,
        actor: &Actor,
    ) -> Result<Vec<JobView>, DispatchError> {
        let partner_id = actor.partner().unwrap_or(partner_id);
        if partner_id.is_empty() {
            return Err(DomainError::invalid("partner_id", "is required").into());
        }
        let filter = JobFilter {
            partner_id: Some(partner_id.to_owned()),
            ticket_id: None,
            statuses: vec![JobStatus::Offered],
        };
        let mut jobs = store::list_jobs(self.db(), &filter, None, MAX_OPEN_OFFERS).await?;
        jobs.reverse();
        // An offer never shows the customer's contact.
        Ok(jobs
            .into_iter()
            .map(|agg| JobView {
                job: agg.scoped_to(partner_id),
                contact: None,
            })
            .collect())
    }

    /// Accepts or declines an open offer; a decline sends the job to the next candidate
    /// in the same transaction. An answer that already took effect changes nothing.
    pub async fn respond(
        &self,
        job_id: &str,
        offer_id: &str,
        accept: bool,
        decline_reason: &str,
        actor: &Actor,
    ) -> Result<JobView, DispatchError> {
        let (mut cmd, mut agg) = self.open(RESPOND_SCOPE, job_id, actor).await?;
        let now = cmd.now();
        let offer = agg
            .offers
            .iter()
            .find(|o| o.id == offer_id)
            .cloned()
            .ok_or_else(|| DomainError::invalid("offer_id", "is not an offer of this job"))?;
        let wanted = if accept {
            OfferStatus::Accepted
        } else {
            OfferStatus::Declined
        };
        if offer.status == wanted {
            cmd.abandon().await?;
            return self.get_job(job_id, actor, ContactRight::Masked).await;
        }
        let partner = store::get_partner(cmd.txn(), &offer.partner_id, false)
            .await?
            .ok_or_else(|| not_found("partner", &offer.partner_id))?;
        let decline_reason = &masked(decline_reason);
        let answer = if accept {
            OfferAnswer::Accept {
                area: partner
                    .spec
                    .area_of(&agg.job.region_code)
                    .unwrap_or(AreaKind::Urban),
                targets: &self.rules.visit_targets,
            }
        } else {
            OfferAnswer::Decline {
                reason: decline_reason,
            }
        };
        let mut events = agg.respond(offer_id, answer, actor, now)?;
        if !accept {
            events.extend(self.dispatch(cmd.txn(), &mut agg, now).await?);
        }
        save(&mut cmd, &agg, events.into()).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&agg.job.id))
            .await?;
        self.answer_as(agg, actor)
    }
}
