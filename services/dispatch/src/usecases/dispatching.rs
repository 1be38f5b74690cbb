//! Placing a job with a partner: the candidates covering its region with what the store
//! knows of their day and record, the ranking, and the offer to the best one that still
//! has room today, counted again under the partner's lock (`capacity`) so concurrent
//! dispatches never push a partner past its capacity.

use std::{
    collections::HashMap,
    sync::PoisonError,
    time::{Duration as StdDuration, Instant},
};

use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction};

use crate::{
    domain::{
        job::{JobAggregate, JobEvent},
        matching::{self, Candidate, JobNeeds, Ranked},
        partner::Partner,
        scorecard,
    },
    error::DispatchError,
    store,
};

use super::{DispatchCore, settlement::card_of};

/// How far back a partner's record counts when ranking it.
const RANKING_HISTORY_DAYS: i64 = 90;
/// Why a job is left unassigned when every partner ranked for it was full once locked.
pub(super) const ALL_FULL: &str = "every eligible partner reached today's capacity meanwhile";
/// How long a computed ranking record is reused.
const QUALITY_TTL: StdDuration = StdDuration::from_secs(60);

/// Who may take a pending job.
#[derive(Debug)]
pub(super) enum Ranking {
    /// The eligible partners, best first.
    Ranked(Vec<Ranked>),
    /// Nobody: why, for the dispatcher who must step in.
    Nobody(String),
}

impl Ranking {
    /// Ranks `candidates` for the job of `agg`.
    pub(super) fn of(agg: &JobAggregate, candidates: &[Candidate]) -> Self {
        let needs = JobNeeds {
            region_code: &agg.job.region_code,
            point: agg.job.point,
            product_line: &agg.job.product_line,
        };
        match matching::rank(&needs, candidates) {
            Ok(ranked) => Ranking::Ranked(ranked),
            Err(shortfall) => Ranking::Nobody(shortfall.reason(&needs)),
        }
    }

    /// The partners a placement may lock.
    pub(super) fn partner_ids(&self) -> impl Iterator<Item = &str> {
        let ranked = match self {
            Ranking::Ranked(ranked) => ranked.as_slice(),
            Ranking::Nobody(_) => &[],
        };
        ranked.iter().map(|r| r.partner_id.as_str())
    }
}

impl DispatchCore {
    /// Offers a pending job to the best candidate left, or leaves it unassigned.
    pub(super) async fn dispatch(
        &self,
        txn: &DatabaseTransaction,
        agg: &mut JobAggregate,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DispatchError> {
        let ranking = self.ranking(txn, agg, now).await?;
        self.place(txn, agg, ranking, now).await
    }

    /// Ranks the candidates for a pending job, from counts read without locks.
    pub(super) async fn ranking<C: ConnectionTrait>(
        &self,
        conn: &C,
        agg: &JobAggregate,
        now: DateTime<Utc>,
    ) -> Result<Ranking, DispatchError> {
        let candidates = self.candidates(conn, agg, now).await?;
        Ok(Ranking::of(agg, &candidates))
    }

    /// Offers the job to the first ranked partner that still has room today, or leaves it
    /// unassigned.
    ///
    /// The ranking's counts were read without locks: each partner is locked and counted
    /// again. Each try runs in a savepoint, so a partner found full is unlocked at once and
    /// a transaction only ever holds the partner it offers to (a partner the transaction
    /// locked before the savepoint, as a batch of lapsed offers does, stays locked).
    pub(super) async fn place(
        &self,
        txn: &DatabaseTransaction,
        agg: &mut JobAggregate,
        ranking: Ranking,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DispatchError> {
        let ranked = match ranking {
            Ranking::Ranked(ranked) => ranked,
            Ranking::Nobody(reason) => return Ok(agg.unassign(reason, now)?),
        };
        for best in &ranked {
            if self
                .has_room(txn, &best.partner_id, best.taken_today, now)
                .await?
            {
                return Ok(agg.offer_to(best, self.rules.offer_timeout, now)?);
            }
        }
        Ok(agg.unassign(ALL_FULL.into(), now)?)
    }

    /// Every partner covering the job's region, with what the store knows of its day and
    /// record: nothing in it depends on the job but its region and `offered_before`.
    pub(super) async fn candidates<C: ConnectionTrait>(
        &self,
        conn: &C,
        agg: &JobAggregate,
        now: DateTime<Utc>,
    ) -> Result<Vec<Candidate>, DispatchError> {
        let partners = self.covering_partners(conn, &agg.job.region_code).await?;
        if partners.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = partners.iter().map(|p| p.id.clone()).collect();
        let taken = taken_today(conn, &partners, now).await?;
        let active: HashMap<String, i64> = store::active_jobs(conn, &ids)
            .await?
            .into_iter()
            .filter_map(|(p, n)| Some((p?, n)))
            .collect();
        let quality = self.quality_of(conn, &partners, now).await?;
        let offered_before = agg.offered_partners();
        let count = |map: &HashMap<String, i64>, id: &String| {
            u32::try_from(map.get(id).copied().unwrap_or(0)).unwrap_or(u32::MAX)
        };
        Ok(partners
            .into_iter()
            .map(|partner| Candidate {
                offered_before: offered_before.contains(&partner.id),
                quality: quality.get(&partner.id).copied().unwrap_or(0.0),
                taken_today: count(&taken, &partner.id),
                active_jobs: count(&active, &partner.id),
                partner,
            })
            .collect())
    }

    /// Each partner's recent record for ranking, from a cache refreshed every
    /// `QUALITY_TTL`: a record moves slowly, and computing it reads months of history.
    async fn quality_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        partners: &[Partner],
        now: DateTime<Utc>,
    ) -> Result<HashMap<String, f64>, DispatchError> {
        let fresh = |at: &Instant| at.elapsed() < QUALITY_TTL;
        let mut known = HashMap::new();
        let mut stale = Vec::new();
        {
            let cache = self.quality.lock().unwrap_or_else(PoisonError::into_inner);
            for p in partners {
                match cache.get(&p.id) {
                    Some((at, q)) if fresh(at) => {
                        known.insert(p.id.clone(), *q);
                    }
                    _ => stale.push(p),
                }
            }
        }
        if stale.is_empty() {
            return Ok(known);
        }
        // One refresh at a time: the dispatches that find the same records stale wait for
        // it instead of each reading months of history.
        let _refreshing = self.quality_refresh.lock().await;
        {
            let cache = self.quality.lock().unwrap_or_else(PoisonError::into_inner);
            stale.retain(|p| match cache.get(&p.id) {
                Some((at, q)) if fresh(at) => {
                    known.insert(p.id.clone(), *q);
                    false
                }
                _ => true,
            });
        }
        if stale.is_empty() {
            return Ok(known);
        }
        let ids: Vec<String> = stale.iter().map(|p| p.id.clone()).collect();
        let from = now - Duration::days(RANKING_HISTORY_DAYS);
        let offers = store::offer_facts(conn, &ids, from, now).await?;
        let jobs = store::job_facts(conn, &ids, from, now).await?;
        let mut cache = self.quality.lock().unwrap_or_else(PoisonError::into_inner);
        for p in stale {
            let q = scorecard::quality(&card_of(p, from, now, &offers, &jobs));
            cache.insert(p.id.clone(), (Instant::now(), q));
            known.insert(p.id.clone(), q);
        }
        Ok(known)
    }
}

/// Offers each partner has taken (open or accepted) since its day began. Partners in one
/// time zone share a day start: one count per distinct start.
pub(super) async fn taken_today<C: ConnectionTrait>(
    conn: &C,
    partners: &[Partner],
    now: DateTime<Utc>,
) -> Result<HashMap<String, i64>, DispatchError> {
    let mut day_starts: HashMap<DateTime<Utc>, Vec<String>> = HashMap::new();
    for p in partners {
        day_starts
            .entry(start_of_day(p, now))
            .or_default()
            .push(p.id.clone());
    }
    let mut taken = HashMap::new();
    for (since, group) in &day_starts {
        taken.extend(store::taken_since(conn, group, *since).await?);
    }
    Ok(taken)
}

/// When the partner's current day began, in its own time zone.
pub(super) fn start_of_day(partner: &Partner, now: DateTime<Utc>) -> DateTime<Utc> {
    let Ok(tz) = partner.spec.tz() else {
        return now - Duration::hours(24);
    };
    let local = now.with_timezone(&tz).date_naive();
    tz.from_local_datetime(&local.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map_or(now - Duration::hours(24), |t| t.with_timezone(&Utc))
}
