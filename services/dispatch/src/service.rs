//! The use cases of the dispatch service. Each command is one transaction that locks the
//! job, applies a domain rule (re-dispatching at once when an offer is declined or
//! lapses), and writes the job, its offers and quotes, outbox events and the idempotency
//! record together; after the commit the offer and visit deadlines go on the deadline
//! queue and the relay is woken. A partner actor is confined to its own jobs throughout.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Instant,
};

use aftersales_deadlines::DeadlineQueue;
use aftersales_platform::{
    db::now as db_now,
    idempotency::{Idempotency, once_more_after_a_twin, recall_json, remember_json},
};
use aftersales_runtime::firing::schedule_all;
use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, TransactionTrait};
use tokio::sync::Notify;

use crate::{
    domain::{
        Actor, AreaKind, CompletionOutcome, DomainError, JobStatus, OfferStatus, QuoteStatus,
        SettlementAction,
        job::{
            JobAggregate, JobEvent, NewJob, OfferAnswer, Photo, REPEAT_WINDOW_DAYS, VisitTargets,
        },
        keys::{self, PartnerKey},
        matching::{self, Candidate, JobNeeds},
        new_id,
        partner::{Partner, PartnerSpec},
        quote::{PriceCheck, Quote, QuoteLine},
        scorecard::{self, JobFact, OfferFact, Scorecard},
        settlement::{Settlement, SettlementLine, month_bounds},
    },
    error::{DispatchError, not_found},
    events,
    store::{self, JobFilter, OFFER_MEMBER, PartnerFilter, VISIT_MEMBER},
};

const REGISTER_SCOPE: &str = "dispatch.RegisterPartner";
const CREATE_SCOPE: &str = "dispatch.CreateJob";
const QUOTE_SCOPE: &str = "dispatch.SubmitQuote";
const COMPLETE_SCOPE: &str = "dispatch.CompleteJob";

/// How far back a partner's record counts when ranking it.
const RANKING_HISTORY_DAYS: i64 = 90;
/// How long a computed ranking record is reused.
const QUALITY_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// How long the old key stays valid after a rotation unless told otherwise.
const DEFAULT_KEY_OVERLAP: Duration = Duration::hours(24);

/// What only the dispatch rules are configured with.
#[derive(Debug, Clone, Copy)]
pub struct DispatchRules {
    pub offer_timeout: Duration,
    pub visit_targets: VisitTargets,
    pub quote_tolerance_percent: u32,
}

impl DispatchRules {
    /// The handbook's: 30-minute offers, 24 h / 48 h on site, 5 % price tolerance.
    pub fn handbook() -> Self {
        Self {
            offer_timeout: Duration::minutes(30),
            visit_targets: VisitTargets::handbook(),
            quote_tolerance_percent: 5,
        }
    }
}

pub struct DispatchCore {
    db: DatabaseConnection,
    queue: DeadlineQueue,
    relay_nudge: Arc<Notify>,
    rules: DispatchRules,
    /// Ranking record per partner and when it was computed.
    quality: Mutex<HashMap<String, (Instant, f64)>>,
}

/// What a job command produced besides the changed job.
#[derive(Debug, Default)]
struct Effects {
    events: Vec<JobEvent>,
    /// Other jobs changed on the way (a repeated job losing its first-time fix).
    also_saved: Vec<JobAggregate>,
}

impl From<Vec<JobEvent>> for Effects {
    fn from(events: Vec<JobEvent>) -> Self {
        Self {
            events,
            also_saved: Vec::new(),
        }
    }
}

fn forbid_partner(actor: &Actor, action: &'static str) -> Result<(), DispatchError> {
    match actor.partner() {
        Some(_) => Err(DispatchError::PartnerForbidden(action)),
        None => Ok(()),
    }
}

impl DispatchCore {
    pub fn new(
        db: DatabaseConnection,
        queue: DeadlineQueue,
        relay_nudge: Arc<Notify>,
        rules: DispatchRules,
    ) -> Self {
        Self {
            db,
            queue,
            relay_nudge,
            rules,
            quality: Mutex::default(),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    // ---- partners ----------------------------------------------------------------------

    pub async fn register_partner(
        &self,
        spec: PartnerSpec,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<Partner, DispatchError> {
        forbid_partner(actor, "register partners")?;
        spec.validate()?;
        once_more_after_a_twin(idem, || async {
            let now = db_now();
            let txn = self.db.begin().await?;
            if let Some(id) = recall_json::<_, String>(&txn, REGISTER_SCOPE, idem).await? {
                txn.rollback().await?;
                return self.get_partner(&id).await;
            }
            let partner = Partner {
                id: new_id(),
                spec: spec.clone(),
                version: 1,
                created_at: now,
                updated_at: now,
            };
            store::save_partner(&txn, &partner).await?;
            remember_json(&txn, REGISTER_SCOPE, idem, &partner.id, now).await?;
            txn.commit().await?;
            Ok(partner)
        })
        .await
    }

    pub async fn update_partner(
        &self,
        id: &str,
        spec: PartnerSpec,
        expected_version: Option<u64>,
        actor: &Actor,
    ) -> Result<Partner, DispatchError> {
        forbid_partner(actor, "change partners")?;
        spec.validate()?;
        let txn = self.db.begin().await?;
        let mut partner = store::get_partner(&txn, id, true)
            .await?
            .ok_or_else(|| not_found("partner", id))?;
        if let Some(expected) = expected_version
            && expected != partner.version
        {
            return Err(DispatchError::VersionConflict {
                expected,
                actual: partner.version,
            });
        }
        partner.spec = spec;
        partner.version += 1;
        partner.updated_at = db_now();
        store::save_partner(&txn, &partner).await?;
        txn.commit().await?;
        Ok(partner)
    }

    pub async fn get_partner(&self, id: &str) -> Result<Partner, DispatchError> {
        store::get_partner(&self.db, id, false)
            .await?
            .ok_or_else(|| not_found("partner", id))
    }

    pub async fn list_partners(
        &self,
        filter: &PartnerFilter,
        before: Option<&str>,
        size: u64,
    ) -> Result<(Vec<Partner>, Option<String>), DispatchError> {
        let page = store::list_partners(&self.db, filter, before, size + 1).await?;
        Ok(paged(page, size, |p| p.id.clone()))
    }

    // ---- jobs --------------------------------------------------------------------------

    pub async fn create_job(
        &self,
        new: NewJob,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<JobAggregate, DispatchError> {
        forbid_partner(actor, "create jobs")?;
        once_more_after_a_twin(idem, || self.try_create_job(&new, idem, actor)).await
    }

    async fn try_create_job(
        &self,
        new: &NewJob,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<JobAggregate, DispatchError> {
        let now = db_now();
        let txn = self.db.begin().await?;
        if let Some(id) = recall_json::<_, String>(&txn, CREATE_SCOPE, idem).await? {
            txn.rollback().await?;
            return self.load(&id).await;
        }
        let since = now - Duration::days(REPEAT_WINDOW_DAYS);
        let repeated = store::repeated_job(&txn, &new.ticket_id, &new.product_line, since).await?;
        let (mut agg, mut events) = JobAggregate::create(new.clone(), repeated.clone(), actor, now);
        let mut effects = Effects::default();
        if let Some(earlier_id) = repeated
            && let Some(mut earlier) = store::load_job(&txn, &earlier_id, true).await?
            && earlier.revoke_first_time_fix(&agg.job.id, now)
        {
            effects.also_saved.push(earlier);
        }
        events.extend(self.dispatch(&txn, &mut agg, now).await?);
        effects.events = events;
        remember_json(&txn, CREATE_SCOPE, idem, &agg.job.id, now).await?;
        self.finish(txn, &agg, effects, now).await?;
        Ok(agg)
    }

    /// Offers a pending job to the best candidate left, or leaves it unassigned.
    async fn dispatch(
        &self,
        conn: &DatabaseTransaction,
        agg: &mut JobAggregate,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DispatchError> {
        let candidates = self.candidates(conn, agg, now).await?;
        let needs = JobNeeds {
            region_code: &agg.job.region_code,
            point: agg.job.point,
            product_line: &agg.job.product_line,
        };
        let ranked = match matching::rank(&needs, &candidates) {
            Ok(ranked) => ranked,
            Err(shortfall) => {
                let reason = shortfall.reason(&needs);
                return Ok(agg.unassign(reason, now)?);
            }
        };
        // The counts above were read without locks: lock the partner and count again, so
        // concurrent jobs cannot push it past today's capacity. Each try runs in a
        // savepoint: a partner found full is unlocked at once, so a transaction only
        // ever holds the partner it offers to and two dispatches never wait on each other.
        for best in &ranked {
            let attempt = conn.begin().await?;
            let Some(partner) = store::get_partner(&attempt, &best.partner_id, true).await? else {
                attempt.rollback().await?;
                continue;
            };
            let since = start_of_day(&partner, now);
            let taken =
                store::offers_taken_since(&attempt, std::slice::from_ref(&partner.id), since)
                    .await?
                    .first()
                    .map_or(0, |(_, n)| *n);
            if taken < i64::from(partner.spec.daily_capacity) {
                attempt.commit().await?;
                return Ok(agg.offer_to(best, self.rules.offer_timeout, now)?);
            }
            attempt.rollback().await?;
        }
        Ok(agg.unassign(
            "every eligible partner reached today's capacity meanwhile".into(),
            now,
        )?)
    }

    async fn candidates<C: ConnectionTrait>(
        &self,
        conn: &C,
        agg: &JobAggregate,
        now: DateTime<Utc>,
    ) -> Result<Vec<Candidate>, DispatchError> {
        let partners = store::partners_covering(conn, &agg.job.region_code).await?;
        if partners.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = partners.iter().map(|p| p.id.clone()).collect();
        // Partners in one time zone share a day start: one count per distinct start.
        let mut day_starts: HashMap<DateTime<Utc>, Vec<String>> = HashMap::new();
        for p in &partners {
            day_starts
                .entry(start_of_day(p, now))
                .or_default()
                .push(p.id.clone());
        }
        let mut taken: HashMap<String, i64> = HashMap::new();
        for (since, group) in &day_starts {
            taken.extend(store::offers_taken_since(conn, group, *since).await?);
        }
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

    async fn load(&self, id: &str) -> Result<JobAggregate, DispatchError> {
        store::load_job(&self.db, id, false)
            .await?
            .ok_or_else(|| not_found("job", id))
    }

    /// A job as `actor` may see it; a partner's read of customer contact is audited.
    pub async fn get_job(&self, id: &str, actor: &Actor) -> Result<JobAggregate, DispatchError> {
        let agg = self.load(id).await?;
        let mut shown = self.shown_to(actor, vec![agg], "GetJob").await?;
        shown.pop().ok_or_else(|| not_found("job", id))
    }

    /// Scopes jobs to a partner actor, dropping the ones it may not see.
    async fn shown_to(
        &self,
        actor: &Actor,
        mut jobs: Vec<JobAggregate>,
        operation: &str,
    ) -> Result<Vec<JobAggregate>, DispatchError> {
        if let Some(partner) = actor.partner() {
            jobs.retain(|agg| agg.visible_to(partner));
        }
        self.scoped(jobs, actor, operation).await
    }

    /// The job as `actor` may see it (a partner that just declined still gets its view).
    async fn answer_as(
        &self,
        agg: JobAggregate,
        actor: &Actor,
        operation: &str,
    ) -> Result<JobAggregate, DispatchError> {
        let id = agg.job.id.clone();
        self.scoped(vec![agg], actor, operation)
            .await?
            .pop()
            .ok_or_else(|| not_found("job", &id))
    }

    /// Jobs as `actor` may see them; the customer contacts a partner is shown are written
    /// to the audit table in one insert.
    async fn scoped(
        &self,
        jobs: Vec<JobAggregate>,
        actor: &Actor,
        operation: &str,
    ) -> Result<Vec<JobAggregate>, DispatchError> {
        let Some(partner) = actor.partner() else {
            return Ok(jobs);
        };
        let read: Vec<&str> = jobs
            .iter()
            .filter(|agg| agg.shows_contact_to(partner))
            .map(|agg| agg.job.id.as_str())
            .collect();
        store::record_contact_reads(&self.db, &read, partner, operation, db_now()).await?;
        Ok(jobs.iter().map(|agg| agg.scoped_to(partner)).collect())
    }

    pub async fn list_jobs(
        &self,
        mut filter: JobFilter,
        before: Option<&str>,
        size: u64,
        actor: &Actor,
    ) -> Result<(Vec<JobAggregate>, Option<String>), DispatchError> {
        if let Some(partner) = actor.partner() {
            filter.partner_id = Some(partner.to_owned());
        }
        let page = store::list_jobs(&self.db, &filter, before, size + 1).await?;
        let (page, next) = paged(page, size, |a| a.job.id.clone());
        Ok((self.shown_to(actor, page, "ListJobs").await?, next))
    }

    /// Open offers waiting for a partner: `(offer, job)` pairs, oldest first.
    pub async fn list_offers(
        &self,
        partner_id: &str,
        actor: &Actor,
    ) -> Result<Vec<JobAggregate>, DispatchError> {
        let partner_id = actor.partner().unwrap_or(partner_id);
        if partner_id.is_empty() {
            return Err(DomainError::invalid("partner_id", "is required").into());
        }
        let filter = JobFilter {
            partner_id: Some(partner_id.to_owned()),
            ticket_id: None,
            statuses: vec![JobStatus::Offered],
        };
        let mut jobs = store::list_jobs(&self.db, &filter, None, 500).await?;
        jobs.reverse();
        Ok(jobs
            .into_iter()
            .map(|agg| agg.scoped_to(partner_id))
            .collect())
    }

    pub async fn cancel_job(
        &self,
        id: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<JobAggregate, DispatchError> {
        forbid_partner(actor, "cancel jobs")?;
        self.command(id, actor, "CancelJob", |agg, now| {
            Ok(agg.cancel(reason, actor, now)?.into())
        })
        .await
    }

    /// Accepts or declines an open offer; a decline sends the job to the next candidate
    /// in the same transaction.
    pub async fn respond(
        &self,
        job_id: &str,
        offer_id: &str,
        accept: bool,
        decline_reason: &str,
        actor: &Actor,
    ) -> Result<JobAggregate, DispatchError> {
        let (txn, mut agg, now) = self.begin(job_id, actor).await?;
        let offer = agg
            .offers
            .iter()
            .find(|o| o.id == offer_id)
            .cloned()
            .ok_or_else(|| DomainError::invalid("offer_id", "is not an offer of this job"))?;
        // A retried answer that already took effect changes nothing.
        let wanted = if accept {
            OfferStatus::Accepted
        } else {
            OfferStatus::Declined
        };
        if offer.status == wanted {
            txn.rollback().await?;
            return self.get_job(job_id, actor).await;
        }
        let partner = store::get_partner(&txn, &offer.partner_id, false)
            .await?
            .ok_or_else(|| not_found("partner", &offer.partner_id))?;
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
            events.extend(self.dispatch(&txn, &mut agg, now).await?);
        }
        self.finish(txn, &agg, events.into(), now).await?;
        self.answer_as(agg, actor, "RespondToOffer").await
    }

    pub async fn schedule_visit(
        &self,
        id: &str,
        at: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<JobAggregate, DispatchError> {
        self.command(id, actor, "ScheduleVisit", |agg, now| {
            Ok(agg.schedule(at, actor, now)?.into())
        })
        .await
    }

    pub async fn record_visit(
        &self,
        id: &str,
        arrived_at: Option<DateTime<Utc>>,
        notes: &str,
        actor: &Actor,
    ) -> Result<JobAggregate, DispatchError> {
        self.command(id, actor, "RecordVisit", |agg, now| {
            Ok(agg
                .record_visit(arrived_at.unwrap_or(now), notes, actor, now)?
                .into())
        })
        .await
    }

    pub async fn submit_quote(
        &self,
        job_id: &str,
        lines: Vec<QuoteLine>,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<Quote, DispatchError> {
        once_more_after_a_twin(idem, || async {
            let (txn, mut agg, now) = self.begin(job_id, actor).await?;
            if let Some(id) = recall_json::<_, String>(&txn, QUOTE_SCOPE, idem).await? {
                txn.rollback().await?;
                return self.quote(&id).await;
            }
            let partner_id = agg
                .job
                .partner_id
                .clone()
                .filter(|_| agg.job.status.is_open_work())
                .ok_or(DomainError::IllegalTransition {
                    from: agg.job.status,
                    action: "take a quote",
                })?;
            let partner = store::get_partner(&txn, &partner_id, false)
                .await?
                .ok_or_else(|| not_found("partner", &partner_id))?;
            let check = PriceCheck {
                fees: &partner.spec.fees,
                product_line: &agg.job.product_line,
                warranty: agg.job.warranty,
                tolerance_percent: self.rules.quote_tolerance_percent,
            };
            let quote = Quote::submit(job_id, &partner_id, lines.clone(), check, now)?;
            let events = agg.add_quote(quote.clone(), now)?;
            remember_json(&txn, QUOTE_SCOPE, idem, &quote.id, now).await?;
            self.finish(txn, &agg, events.into(), now).await?;
            Ok(quote)
        })
        .await
    }

    pub async fn review_quote(
        &self,
        quote_id: &str,
        approve: bool,
        note: &str,
        actor: &Actor,
    ) -> Result<Quote, DispatchError> {
        forbid_partner(actor, "review quotes")?;
        let job_id = store::quote_job_id(&self.db, quote_id)
            .await?
            .ok_or_else(|| not_found("quote", quote_id))?;
        let agg = self
            .command(&job_id, actor, "ReviewQuote", |agg, now| {
                let quote = agg
                    .quotes
                    .iter_mut()
                    .find(|q| q.id == quote_id)
                    .ok_or_else(|| DomainError::invalid("quote_id", "is not a quote of its job"))?;
                quote.review(approve, note, actor, now)?;
                agg.job.updated_at = now;
                Ok(Effects::default())
            })
            .await?;
        find_quote(&agg, quote_id)
    }

    async fn quote(&self, quote_id: &str) -> Result<Quote, DispatchError> {
        let job_id = store::quote_job_id(&self.db, quote_id)
            .await?
            .ok_or_else(|| not_found("quote", quote_id))?;
        find_quote(&self.load(&job_id).await?, quote_id)
    }

    pub async fn complete_job(
        &self,
        id: &str,
        outcome: CompletionOutcome,
        photos: Vec<Photo>,
        notes: &str,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<JobAggregate, DispatchError> {
        once_more_after_a_twin(idem, || async {
            let (txn, mut agg, now) = self.begin(id, actor).await?;
            if recall_json::<_, String>(&txn, COMPLETE_SCOPE, idem)
                .await?
                .is_some()
            {
                txn.rollback().await?;
                return self.get_job(id, actor).await;
            }
            let events = agg.complete(outcome, photos.clone(), notes, actor, now)?;
            remember_json(&txn, COMPLETE_SCOPE, idem, &agg.job.id, now).await?;
            self.finish(txn, &agg, events.into(), now).await?;
            self.answer_as(agg, actor, "CompleteJob").await
        })
        .await
    }

    // ---- scorecards and settlement -----------------------------------------------------

    pub async fn scorecard(
        &self,
        partner_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Scorecard, DispatchError> {
        if to <= from {
            return Err(DomainError::invalid("to", "must be after from").into());
        }
        let partner = self.get_partner(partner_id).await?;
        let ids = [partner.id.clone()];
        let offers = store::offer_facts(&self.db, &ids, from, to).await?;
        let jobs = store::job_facts(&self.db, &ids, from, to).await?;
        Ok(card_of(&partner, from, to, &offers, &jobs))
    }

    pub async fn generate_settlement(
        &self,
        partner_id: &str,
        month: &str,
        actor: &Actor,
    ) -> Result<Settlement, DispatchError> {
        forbid_partner(actor, "generate settlements")?;
        let partner = self.get_partner(partner_id).await?;
        let (from, to) = month_bounds(month, partner.spec.tz()?)?;
        let now = db_now();
        if from > now {
            return Err(DomainError::invalid("month", "lies in the future").into());
        }
        let txn = self.db.begin().await?;
        let existing = store::settlement_of(&txn, partner_id, month).await?;
        let existing = match existing {
            Some(s) => store::get_settlement(&txn, &s.id, true).await?,
            None => None,
        };
        let lines = store::settled_work(&txn, partner_id, from, to)
            .await?
            .into_iter()
            .flat_map(|agg| {
                let completed_at = agg
                    .job
                    .completion
                    .as_ref()
                    .map_or(agg.job.updated_at, |c| c.completed_at);
                agg.quotes
                    .into_iter()
                    .filter(|q| q.status == QuoteStatus::Approved)
                    .map(move |q| SettlementLine {
                        job_id: q.job_id,
                        quote_id: q.id,
                        completed_at,
                        payer: q.payer,
                        amount: q.total,
                    })
            })
            .collect();
        let currency = partner.spec.fees.currency().unwrap_or("CNY").to_owned();
        let settlement = Settlement::build(existing, partner_id, month, &currency, lines, now)?;
        store::save_settlement(&txn, &settlement).await?;
        txn.commit().await?;
        Ok(settlement)
    }

    pub async fn get_settlement(
        &self,
        id: &str,
        actor: &Actor,
    ) -> Result<Settlement, DispatchError> {
        store::get_settlement(&self.db, id, false)
            .await?
            .filter(|s| actor.partner().is_none_or(|p| p == s.partner_id))
            .ok_or_else(|| not_found("settlement", id))
    }

    pub async fn list_settlements(
        &self,
        partner_id: Option<&str>,
        before: Option<&str>,
        size: u64,
        actor: &Actor,
    ) -> Result<(Vec<Settlement>, Option<String>), DispatchError> {
        let partner_id = actor.partner().or(partner_id);
        let page = store::list_settlements(&self.db, partner_id, before, size + 1).await?;
        Ok(paged(page, size, |s| s.id.clone()))
    }

    pub async fn update_settlement(
        &self,
        id: &str,
        action: SettlementAction,
        reason: &str,
        actor: &Actor,
    ) -> Result<Settlement, DispatchError> {
        forbid_partner(actor, "change settlements")?;
        let txn = self.db.begin().await?;
        let mut settlement = store::get_settlement(&txn, id, true)
            .await?
            .ok_or_else(|| not_found("settlement", id))?;
        settlement.apply(action, reason, db_now())?;
        store::save_settlement(&txn, &settlement).await?;
        txn.commit().await?;
        Ok(settlement)
    }

    // ---- partner keys ------------------------------------------------------------------

    /// A new key for an existing partner: the stored record and the clear key (once).
    pub async fn issue_key(
        &self,
        partner_id: &str,
        label: &str,
        actor: &Actor,
    ) -> Result<(PartnerKey, String), DispatchError> {
        forbid_partner(actor, "issue keys")?;
        self.get_partner(partner_id).await?;
        let secret = keys::generate();
        let key = PartnerKey {
            id: new_id(),
            partner_id: partner_id.to_owned(),
            prefix: keys::shown_part(&secret),
            label: label.to_owned(),
            created_at: db_now(),
            expires_at: None,
            revoked_at: None,
        };
        store::insert_key(&self.db, &key, &keys::hash(&secret)).await?;
        tracing::info!(partner_id, key_id = %key.id, actor = %actor.id, "partner key issued");
        Ok((key, secret))
    }

    /// A new key, with the old one valid for `overlap` more (both work meanwhile).
    pub async fn rotate_key(
        &self,
        key_id: &str,
        overlap: Option<Duration>,
        actor: &Actor,
    ) -> Result<(PartnerKey, String), DispatchError> {
        forbid_partner(actor, "rotate keys")?;
        let mut old = self.valid_key(key_id).await?;
        let (new, secret) = self.issue_key(&old.partner_id, &old.label, actor).await?;
        let end = db_now() + overlap.unwrap_or(DEFAULT_KEY_OVERLAP);
        old.expires_at = Some(old.expires_at.map_or(end, |e| e.min(end)));
        store::end_key(&self.db, &old).await?;
        Ok((new, secret))
    }

    pub async fn revoke_key(
        &self,
        key_id: &str,
        actor: &Actor,
    ) -> Result<PartnerKey, DispatchError> {
        forbid_partner(actor, "revoke keys")?;
        let mut key = store::get_key(&self.db, key_id)
            .await?
            .ok_or_else(|| not_found("key", key_id))?;
        if key.revoked_at.is_none() {
            key.revoked_at = Some(db_now());
            store::end_key(&self.db, &key).await?;
            tracing::info!(key_id, partner_id = %key.partner_id, actor = %actor.id, "partner key revoked");
        }
        Ok(key)
    }

    async fn valid_key(&self, key_id: &str) -> Result<PartnerKey, DispatchError> {
        let key = store::get_key(&self.db, key_id)
            .await?
            .ok_or_else(|| not_found("key", key_id))?;
        if !key.valid_at(db_now()) {
            return Err(
                DomainError::Precondition(format!("key {key_id} is no longer valid")).into(),
            );
        }
        Ok(key)
    }

    pub async fn list_keys(
        &self,
        partner_id: Option<&str>,
    ) -> Result<Vec<PartnerKey>, DispatchError> {
        Ok(store::keys_of(&self.db, partner_id).await?)
    }

    /// The active partner a presented key belongs to.
    pub async fn authenticate(&self, secret: &str) -> Result<PartnerKey, DispatchError> {
        let key = store::key_by_hash(&self.db, &keys::hash(secret))
            .await?
            .filter(|k| k.valid_at(db_now()))
            .ok_or(DispatchError::BadKey)?;
        let partner = store::get_partner(&self.db, &key.partner_id, false).await?;
        if !partner.is_some_and(|p| p.spec.active) {
            return Err(DispatchError::BadKey);
        }
        Ok(key)
    }

    // ---- deadlines ---------------------------------------------------------------------

    /// Fires one scheduled member: an offer's acceptance deadline or a job's visit
    /// deadline. Safe to run twice: the domain acts only on what is still due.
    pub async fn fire(&self, member: &str) -> Result<(), DispatchError> {
        let system = Actor::system();
        if let Some(offer_id) = member.strip_prefix(OFFER_MEMBER) {
            let Some(job_id) = store::offer_job_id(&self.db, offer_id).await? else {
                return Ok(());
            };
            let (txn, mut agg, now) = self.begin(&job_id, &system).await?;
            let mut events = agg.expire_offer(offer_id, now);
            if events.is_empty() {
                txn.rollback().await?;
                self.after_commit(&agg).await;
                return Ok(());
            }
            events.extend(self.dispatch(&txn, &mut agg, now).await?);
            return self.finish(txn, &agg, events.into(), now).await;
        }
        let Some(job_id) = member.strip_prefix(VISIT_MEMBER) else {
            tracing::warn!(member, "unknown member on the dispatch queue; dropping it");
            return Ok(());
        };
        let (txn, mut agg, now) = match self.begin(job_id, &system).await {
            Err(DispatchError::NotFound { .. }) => return Ok(()),
            other => other?,
        };
        let events = agg.fire_visit_deadline(now);
        if events.is_empty() {
            txn.rollback().await?;
            self.after_commit(&agg).await;
            return Ok(());
        }
        self.finish(txn, &agg, events.into(), now).await
    }

    /// Puts every open offer and watched visit back on the schedule.
    pub async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, DispatchError> {
        let mut count = 0;
        for (offers, prefix) in [(true, OFFER_MEMBER), (false, VISIT_MEMBER)] {
            count += schedule_all(queue, prefix, |after, limit| async move {
                Ok::<_, DispatchError>(
                    store::pending_fire_times(&self.db, offers, &after, limit).await?,
                )
            })
            .await?;
        }
        Ok(count)
    }

    // ---- the command skeleton ----------------------------------------------------------

    /// One command on one job: lock it, apply `rule`, store the result and its effects,
    /// answer with the job as the actor may see it.
    async fn command(
        &self,
        id: &str,
        actor: &Actor,
        operation: &str,
        rule: impl FnOnce(&mut JobAggregate, DateTime<Utc>) -> Result<Effects, DispatchError>,
    ) -> Result<JobAggregate, DispatchError> {
        let (txn, mut agg, now) = self.begin(id, actor).await?;
        let effects = rule(&mut agg, now)?;
        self.finish(txn, &agg, effects, now).await?;
        self.answer_as(agg, actor, operation).await
    }

    /// Locks the job; a partner that does not hold it is told it does not exist.
    async fn begin(
        &self,
        id: &str,
        actor: &Actor,
    ) -> Result<(DatabaseTransaction, JobAggregate, DateTime<Utc>), DispatchError> {
        let txn = self.db.begin().await?;
        let agg = store::load_job(&txn, id, true)
            .await?
            .filter(|agg| actor.partner().is_none_or(|p| agg.visible_to(p)))
            .ok_or_else(|| not_found("job", id))?;
        Ok((txn, agg, db_now()))
    }

    async fn finish(
        &self,
        txn: DatabaseTransaction,
        agg: &JobAggregate,
        effects: Effects,
        now: DateTime<Utc>,
    ) -> Result<(), DispatchError> {
        store::save_job(&txn, agg).await?;
        for other in &effects.also_saved {
            store::save_job(&txn, other).await?;
        }
        let rows = events::encode(agg, &effects.events, now);
        aftersales_eventbus::outbox::enqueue(&txn, rows, now).await?;
        txn.commit().await?;
        if effects.events.contains(&JobEvent::VisitLate) {
            aftersales_platform::metrics::breach("dispatch");
        }
        self.after_commit(agg).await;
        Ok(())
    }

    /// Schedules the deadlines that can still fire, drops the rest, wakes the relay.
    async fn after_commit(&self, agg: &JobAggregate) {
        let mut items = Vec::new();
        let mut done = Vec::new();
        for offer in &agg.offers {
            let member = format!("{OFFER_MEMBER}{}", offer.id);
            if offer.status == OfferStatus::Open {
                items.push((member, offer.expires_at.timestamp_millis()));
            } else {
                done.push(member);
            }
        }
        let visit = format!("{VISIT_MEMBER}{}", agg.job.id);
        match agg.visit_watch() {
            Some(at) => items.push((visit, at.timestamp_millis())),
            None => done.push(visit),
        }
        if let Err(err) = self.queue.schedule(&items).await {
            tracing::warn!(error = %err, job_id = %agg.job.id, "scheduling deadlines failed; the next rebuild restores them");
        }
        if let Err(err) = self.queue.cancel(&done).await {
            tracing::debug!(error = %err, "unscheduling finished deadlines failed; the worker skips them");
        }
        self.relay_nudge.notify_one();
    }
}

fn find_quote(agg: &JobAggregate, quote_id: &str) -> Result<Quote, DispatchError> {
    agg.quotes
        .iter()
        .find(|q| q.id == quote_id)
        .cloned()
        .ok_or_else(|| not_found("quote", quote_id))
}

/// A page cut to `size` and the id to continue before, if more exist.
fn paged<T>(mut page: Vec<T>, size: u64, id: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
    let next = (page.len() as u64 > size).then(|| {
        page.truncate(size as usize);
        page.last().map(&id)
    });
    (page, next.flatten())
}

/// When the partner's current day began, in its own time zone.
fn start_of_day(partner: &Partner, now: DateTime<Utc>) -> DateTime<Utc> {
    let Ok(tz) = partner.spec.tz() else {
        return now - Duration::hours(24);
    };
    let local = now.with_timezone(&tz).date_naive();
    tz.from_local_datetime(&local.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map_or(now - Duration::hours(24), |t| t.with_timezone(&Utc))
}

/// One partner's scorecard from facts fetched for several.
fn card_of(
    partner: &Partner,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    offers: &[(String, OfferFact)],
    jobs: &[(String, JobFact)],
) -> Scorecard {
    let mine = |id: &String| *id == partner.id;
    let offers: Vec<OfferFact> = offers
        .iter()
        .filter(|(p, _)| mine(p))
        .map(|(_, f)| *f)
        .collect();
    let jobs: Vec<JobFact> = jobs
        .iter()
        .filter(|(p, _)| mine(p))
        .map(|(_, f)| f.clone())
        .collect();
    let currency = partner.spec.fees.currency().unwrap_or("CNY");
    scorecard::compute(&partner.id, from, to, currency, &offers, &jobs)
}
