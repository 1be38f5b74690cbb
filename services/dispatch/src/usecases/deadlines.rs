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
use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;

use crate::{
    domain::{
        job::{JobAggregate, JobEvent},
        matching::Candidate,
    },
    error::DispatchError,
    store,
};

use super::{DispatchCore, dispatching::Ranking, reschedule, save};

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
    /// An offer lapsed: the job goes to the next candidate.
    lapsed: bool,
}

impl DispatchCore {
    /// Fires a claimed batch in one command. Safe to run twice: the domain acts only on
    /// what is still due; a deadline not due yet is only put back on the schedule, one
    /// already settled or gone changes nothing.
    ///
    /// Locks are taken in the service's one order, so concurrent batches and commands
    /// cannot deadlock: first every job of the batch, by id, in one query; then, for the
    /// jobs whose offer lapsed, every partner they may be offered to, by id, before any is
    /// counted. The re-offers then count each partner's capacity under its lock, seeing
    /// the offers made earlier in the batch, exactly as a single decline does: each job is
    /// saved as soon as it is placed. The reads that do not depend on the job (the
    /// candidates of a region) are made once per batch.
    async fn fire_batch(&self, batch: &[Due<DispatchDeadline>]) -> Result<(), DispatchError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut cmd = self.pipeline.begin_unkeyed(FIRE_SCOPE).await?;
        let now = cmd.now();
        let fired = fire_due(cmd.txn(), batch, now).await?;
        let rankings = self.rank_lapsed(cmd.txn(), &fired, now).await?;
        for (mut job, ranking) in fired.into_iter().zip(rankings) {
            if let Some(ranking) = ranking {
                let offered = self.place(cmd.txn(), &mut job.agg, ranking, now).await?;
                job.events.extend(offered);
            }
            if job.events.is_empty() {
                reschedule(&mut cmd, &job.agg);
            } else {
                save(&mut cmd, &job.agg, job.events.into()).await?;
            }
        }
        let members = batch.iter().map(|due| due.member.to_text());
        cmd.commit(&self.pipeline, &Remembered::ids(members))
            .await?;
        Ok(())
    }

    /// Ranks the candidates of every job whose offer lapsed (`None` for the others), then
    /// locks all of them, by id. The candidates of a region are read once for the batch:
    /// only whether a partner was offered the job before differs between its jobs.
    async fn rank_lapsed(
        &self,
        txn: &DatabaseTransaction,
        fired: &[Fired],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<Ranking>>, DispatchError> {
        let mut by_region: HashMap<&str, Vec<Candidate>> = HashMap::new();
        let mut rankings = Vec::with_capacity(fired.len());
        let mut partners = BTreeSet::new();
        for job in fired {
            if !job.lapsed {
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
            let ranking = Ranking::of(&job.agg, candidates);
            partners.extend(ranking.partner_ids().map(str::to_owned));
            rankings.push(Some(ranking));
        }
        let partners: Vec<String> = partners.into_iter().collect();
        store::lock_partners(txn, &partners).await?;
        Ok(rankings)
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
        let mut lapsed = false;
        for member in due_of.remove(agg.job.id.as_str()).unwrap_or_default() {
            match member {
                DispatchDeadline::Offer(offer_id) => {
                    let lapse = agg.expire_offer(offer_id, now);
                    lapsed |= !lapse.is_empty();
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
