//! What a partner may see of a dispatch job. Dispatch already scopes its answers to the
//! partner actor; this is the second wall: internal ids are dropped, only the partner's
//! own offers and quotes pass, and customer contact passes only while the job is the
//! partner's, accepted and open.

use aftersales_protos::{
    dispatch::v1::{Completion, Job, JobStatus, Offer, OfferStatus},
    partner::v1::PartnerJob,
};

/// The job as partner `partner_id` sees it.
pub fn partner_job(job: Job, partner_id: &str) -> PartnerJob {
    let offer = job
        .offers
        .iter()
        .find(|o| o.partner_id == partner_id && o.status == OfferStatus::Open as i32)
        .cloned();
    partner_job_with_offer(job, partner_id, offer)
}

/// The job with `offer` as its open offer (from dispatch's list of open offers).
pub fn partner_job_with_offer(job: Job, partner_id: &str, offer: Option<Offer>) -> PartnerJob {
    let offer = offer.filter(|o| o.partner_id == partner_id);
    let contact = job
        .contact
        .filter(|_| shows_contact(job.status, &job.partner_id, partner_id));
    PartnerJob {
        id: job.id,
        status: job.status,
        product_line: job.product_line,
        fault_description: job.fault_description,
        urgency: job.urgency,
        warranty: job.warranty,
        location: job.location,
        contact,
        area: job.area,
        offer,
        accepted_at: job.accepted_at,
        scheduled_for: job.scheduled_for,
        visit_due_at: job.visit_due_at,
        visited_at: job.visited_at,
        quotes: job
            .quotes
            .into_iter()
            .filter(|q| q.partner_id == partner_id)
            .collect(),
        completion: job.completion.map(|c| Completion {
            // The repeat job may have gone to another partner: its id is not ours to show.
            repeat_job_id: String::new(),
            ..c
        }),
    }
}

/// Accepted and open (accepted, scheduled or on site) and held by this partner.
fn shows_contact(status: i32, holder: &str, partner_id: &str) -> bool {
    let open = [JobStatus::Accepted, JobStatus::Scheduled, JobStatus::OnSite]
        .iter()
        .any(|s| *s as i32 == status);
    open && holder == partner_id
}

#[cfg(test)]
mod tests {
    use aftersales_protos::dispatch::v1::{CustomerContact, Quote};

    use super::*;

    fn offer(partner: &str, status: OfferStatus) -> Offer {
        Offer {
            id: format!("offer-{partner}"),
            partner_id: partner.into(),
            status: status as i32,
            ..Default::default()
        }
    }

    fn job(status: JobStatus, holder: &str) -> Job {
        Job {
            id: "job-1".into(),
            ticket_id: "ticket-9".into(),
            return_id: "return-9".into(),
            customer_id: "customer-9".into(),
            contact: Some(CustomerContact {
                name: "Li Lei".into(),
                phone: "+86 138 0000 0000".into(),
                address: "1 Nanjing Rd".into(),
            }),
            status: status as i32,
            partner_id: holder.into(),
            offers: vec![
                offer("p-b", OfferStatus::Declined),
                offer("p-a", OfferStatus::Open),
            ],
            quotes: vec![Quote {
                id: "q-1".into(),
                partner_id: holder.into(),
                ..Default::default()
            }],
            completion: Some(Completion {
                repeat_job_id: "job-2".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn contact_shows_only_for_the_holder_of_an_open_accepted_job() {
        for status in [JobStatus::Accepted, JobStatus::Scheduled, JobStatus::OnSite] {
            assert!(partner_job(job(status, "p-a"), "p-a").contact.is_some());
            assert!(partner_job(job(status, "p-a"), "p-b").contact.is_none());
        }
        for status in [
            JobStatus::Offered,
            JobStatus::Completed,
            JobStatus::CannotComplete,
            JobStatus::Cancelled,
            JobStatus::Unassigned,
        ] {
            assert!(
                partner_job(job(status, "p-a"), "p-a").contact.is_none(),
                "{status:?}"
            );
        }
    }

    #[test]
    fn only_the_partners_own_open_offer_and_quotes_pass() {
        let seen = partner_job(job(JobStatus::Offered, "p-a"), "p-a");
        assert_eq!(seen.offer.unwrap().id, "offer-p-a");
        let seen = partner_job(job(JobStatus::Offered, "p-a"), "p-b");
        assert!(seen.offer.is_none());
        assert!(seen.quotes.is_empty());
        let seen = partner_job(job(JobStatus::Completed, "p-a"), "p-a");
        assert_eq!(seen.quotes.len(), 1);
        assert!(seen.completion.unwrap().repeat_job_id.is_empty());
        let other = partner_job_with_offer(
            job(JobStatus::Offered, "p-a"),
            "p-b",
            Some(offer("p-a", OfferStatus::Open)),
        );
        assert!(other.offer.is_none());
    }
}
