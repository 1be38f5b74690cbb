//! What the dispatch service keeps on its deadline queue and what firing it means: an
//! offer's acceptance deadline (the offer lapses and the job goes to the next candidate
//! at once) and a job's on-site deadline (the visit is late, once). The deadline worker
//! claims due members and hands them here in batches; the database is the truth, and
//! [`Deadlines::reconcile`] rebuilds the schedule from it.

use std::collections::{BTreeSet, HashMap, hash_map::Entry};

use aftersales_deadlines::{
    DeadlineQueue,
    worker::{Deadlines, Due, Member},
};
use aftersales_runtime::{command::Remembered, firing::schedule_all};
use chrono::{DateTime, Duration, Utc};
use sea_orm::DatabaseTransaction;

use crate::{
    domain::{
        job::{JobAggregate, JobEvent, Offer},
        matching::Candidate,
        partner::Partner,
    },
    error::DispatchError,
    events, store,
};

use super::{
    DispatchCore,
    dispatching::{ALL_FULL, Ranking, start_of_day, taken_today},
    reschedule,
};

const FIRE_SCOPE: &str = "dispatch.FireDeadlines";

aftersales_deadlines::deadline_members! {
    /// A deadline of the dispatch service, as the queue keeps it.
    pub enum DispatchDeadline {
        /// An offer's acceptance deadline, by the offer id.
        Offer = "offer:",
        /// A job's on-site visit deadline, by the job id.
        Visit = "visit:",
    }
}

impl Deadlines for DispatchCore {
    type Member = DispatchDeadline;
    type Error = DispatchError;

    async fn fire(&self, batch: &[Due<DispatchDeadline>]) -> Result<(), DispatchError> {
        self.fire_batch(batch).await
    }

    /// Puts every open offer and awaited visit back on the schedule.
    async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, DispatchError> {
        let db = self.db();
        let offers = schedule_all(queue, DispatchDeadline::Offer, |after, limit| async move {
            Ok::<_, DispatchError>(store::open_offer_deadlines(db, &after, limit).await?)
        })
        .await?;
        let visits = schedule_all(queue, DispatchDeadline::Visit, |after, limit| async move {
            Ok::<_, DispatchError>(store::visit_deadlines(db, &after, limit).await?)
        })
        .await?;
        Ok(offers + visits)
    }
}

/// A job of the batch, locked, with what its due deadlines did to it.
struct Fired {
    agg: JobAggregate,
    events: Vec<JobEvent>,
    /// Its offers that lapsed, as they are now: the job goes to the next candidate.
    lapsed: Vec<Offer>,
}

impl DispatchCore {
    /// Fires a claimed batch in one command. Safe to run twice: the domain acts only on
    /// what is still due; a deadline not due yet is only put back on the schedule, one
    /// already settled or gone changes nothing.
    ///
    /// Locks are taken in the service's one order, so concurrent batches and commands
    /// cannot deadlock: first every job of the batch, by id; then, for the jobs whose
    /// offer lapsed, every partner they may be offered to, by id, exclusively, before any
    /// is counted. Holding them all, the batch counts each partner's day once and keeps
    /// the count as it offers ([`Seats`]): exactly what counting again before each offer
    /// would find, at a few statements per batch instead of a dozen per job.
    async fn fire_batch(&self, batch: &[Due<DispatchDeadline>]) -> Result<(), DispatchError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut cmd = self.pipeline.begin_unkeyed(FIRE_SCOPE).await?;
        let now = cmd.now();
        let mut fired = fire_due(cmd.txn(), batch, now).await?;
        let rankings = self.rank_lapsed(cmd.txn(), &fired, now).await?;
        let partners: BTreeSet<&str> = rankings
            .iter()
            .flatten()
            .flat_map(Ranking::partner_ids)
            .collect();
        let partners: Vec<String> = partners.into_iter().map(str::to_owned).collect();
        let lapsed = fired.iter().flat_map(|job| &job.lapsed);
        let mut seats = Seats::lock(cmd.txn(), &partners, lapsed, now).await?;
        for (job, ranking) in fired.iter_mut().zip(rankings) {
            if let Some(ranking) = ranking {
                let timeout = self.rules.offer_timeout;
                let offered = seats.place(&mut job.agg, ranking, timeout, now)?;
                job.events.extend(offered);
            }
        }
        let mut changed = Vec::new();
        let mut outbox = Vec::new();
        for job in &fired {
            reschedule(&mut cmd, &job.agg);
            if job.events.is_empty() {
                continue;
            }
            // What `save` writes for a job, for the whole batch at once: the jobs with
            // their offers, then every event in one insert.
            for event in &job.events {
                if *event == JobEvent::VisitLate {
                    cmd.breached();
                }
            }
            outbox.extend(events::encode(&job.agg, &job.events, now));
            changed.push(&job.agg);
        }
        store::save_jobs(cmd.txn(), &changed).await?;
        cmd.publish(outbox).await?;
        let members = batch.iter().map(|due| due.member.to_text());
        cmd.commit(&self.pipeline, &Remembered::ids(members))
            .await?;
        Ok(())
    }

    /// Ranks the candidates of every job whose offer lapsed (`None` for the others). The
    /// candidates of a region are read once for the batch: only whether a partner was
    /// offered the job before differs between its jobs.
    async fn rank_lapsed(
        &self,
        txn: &DatabaseTransaction,
        fired: &[Fired],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<Ranking>>, DispatchError> {
        let mut by_region: HashMap<&str, Vec<Candidate>> = HashMap::new();
        let mut rankings = Vec::with_capacity(fired.len());
        for job in fired {
            if job.lapsed.is_empty() {
                rankings.push(None);
                continue;
            }
            let region = job.agg.job.region_code.as_str();
            let candidates = match by_region.entry(region) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(slot) => slot.insert(self.candidates(txn, &job.agg, now).await?),
            };
            let offered_before = job.agg.offered_partners();
            for c in candidates.iter_mut() {
                c.offered_before = offered_before.contains(&c.partner.id);
            }
            rankings.push(Some(Ranking::of(&job.agg, candidates)));
        }
        Ok(rankings)
    }
}

/// The room left today of the partners a batch may offer to, counted once under their
/// exclusive locks. While the batch holds them no other transaction can offer to them,
/// so the count stays exact as long as the batch adds its own offers to it.
struct Seats {
    partners: HashMap<String, Partner>,
    taken: HashMap<String, i64>,
}

impl Seats {
    /// Locks the partners, by id, and counts their offers taken today (open or accepted).
    /// The batch's lapsed offers are still open in the database but expired once it
    /// commits, so they are not counted.
    async fn lock<'a>(
        txn: &DatabaseTransaction,
        ids: &[String],
        lapsed: impl Iterator<Item = &'a Offer>,
        now: DateTime<Utc>,
    ) -> Result<Self, DispatchError> {
        let partners = store::lock_and_load_partners(txn, ids).await?;
        let mut taken = taken_today(txn, &partners, now).await?;
        let partners: HashMap<String, Partner> =
            partners.into_iter().map(|p| (p.id.clone(), p)).collect();
        for offer in lapsed {
            if let Some(p) = partners.get(&offer.partner_id)
                && offer.offered_at >= start_of_day(p, now)
            {
                *taken.entry(offer.partner_id.clone()).or_default() -= 1;
            }
        }
        Ok(Self { partners, taken })
    }

    /// Offers the job to the first ranked partner that still has room today, or leaves it
    /// unassigned: the decision of `DispatchCore::place`, on the batch's count.
    fn place(
        &mut self,
        agg: &mut JobAggregate,
        ranking: Ranking,
        timeout: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DispatchError> {
        let ranked = match ranking {
            Ranking::Ranked(ranked) => ranked,
            Ranking::Nobody(reason) => return Ok(agg.unassign(reason, now)?),
        };
        for best in &ranked {
            let Some(partner) = self.partners.get(&best.partner_id) else {
                continue;
            };
            let taken = self.taken.entry(partner.id.clone()).or_default();
            if *taken < i64::from(partner.spec.daily_capacity) {
                let events = agg.offer_to(best, timeout, now)?;
                *taken += 1;
                return Ok(events);
            }
        }
        Ok(agg.unassign(ALL_FULL.into(), now)?)
    }
}

/// Locks the jobs of the batch, by id, and applies their due deadlines at `now`. A member
/// whose offer or job is gone is left out.
async fn fire_due(
    txn: &DatabaseTransaction,
    batch: &[Due<DispatchDeadline>],
    now: DateTime<Utc>,
) -> Result<Vec<Fired>, DispatchError> {
    let offer_ids: Vec<String> = batch
        .iter()
        .filter_map(|due| match &due.member {
            DispatchDeadline::Offer(id) => Some(id.clone()),
            DispatchDeadline::Visit(_) => None,
        })
        .collect();
    let job_of: HashMap<String, String> = store::offer_jobs(txn, &offer_ids)
        .await?
        .into_iter()
        .collect();
    let mut due_of: HashMap<&str, Vec<&DispatchDeadline>> = HashMap::new();
    for due in batch {
        let job_id = match &due.member {
            DispatchDeadline::Offer(id) => job_of.get(id).map(String::as_str),
            DispatchDeadline::Visit(job_id) => Some(job_id.as_str()),
        };
        if let Some(job_id) = job_id {
            due_of.entry(job_id).or_default().push(&due.member);
        }
    }
    let mut job_ids: Vec<String> = due_of.keys().map(|id| (*id).to_owned()).collect();
    job_ids.sort();
    let mut fired = Vec::new();
    for mut agg in store::load_jobs(txn, &job_ids, true).await? {
        let mut events = Vec::new();
        let mut lapsed = Vec::new();
        for member in due_of.remove(agg.job.id.as_str()).unwrap_or_default() {
            match member {
                DispatchDeadline::Offer(offer_id) => {
                    let lapse = agg.expire_offer(offer_id, now);
                    if !lapse.is_empty() {
                        lapsed.extend(agg.offers.iter().find(|o| o.id == *offer_id).cloned());
                    }
                    events.extend(lapse);
                }
                DispatchDeadline::Visit(_) => events.extend(agg.fire_visit_deadline(now)),
            }
        }
        fired.push(Fired {
            agg,
            events,
            lapsed,
        });
    }
    Ok(fired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keep_the_text_forms_already_on_the_queue() {
        for member in [
            DispatchDeadline::Offer("0193a1b2-offer".into()),
            DispatchDeadline::Visit("0193a1b2-job".into()),
        ] {
            assert_eq!(DispatchDeadline::from_text(&member.to_text()), Some(member));
        }
        assert_eq!(
            DispatchDeadline::Offer("o-1".into()).to_text(),
            "offer:o-1",
            "what earlier versions scheduled"
        );
        assert_eq!(DispatchDeadline::Visit("j-1".into()).to_text(), "visit:j-1");
        assert_eq!(
            DispatchDeadline::from_text("visit:j-1"),
            Some(DispatchDeadline::Visit("j-1".into()))
        );
    }

    #[test]
    fn unknown_text_is_no_member() {
        for text in [
            "",
            "offer:",
            "visit:",
            "j-1",
            "offers:o-1",
            "Offer:o-1",
            "visit",
            "step:d-1",
        ] {
            assert_eq!(DispatchDeadline::from_text(text), None, "{text:?}");
        }
    }
}
