//! The use cases of the dispatch service, one module per capability. Every command runs
//! through the suite's command pipeline ([`Pipeline`]): it opens the command (a keyed one
//! answers a retry with what the first run produced, as it is now), loads and locks the
//! job through `store`, applies a `domain` rule at the command's "now" (re-dispatching at
//! once when an offer is declined or lapses), saves the job with its offers and quotes
//! and outbox events, hands the offer and visit deadlines it changed to the command, and
//! commits; the pipeline schedules them and wakes the relay after the commit. A partner
//! actor is confined to its own jobs throughout. Spare parts (`parts`, `stock`) go
//! through the same pipeline; the command that finishes a job settles its reservations. The customer's contact is sealed and
//! opened only in `contacts`; every answer is a [`JobView`].
//!
//! May depend on `domain`, `store` and `events`; never on `api` or protobuf.

mod capacity;
mod contacts;
mod deadlines;
mod dispatching;
mod jobs;
mod keys;
mod offers;
mod partners;
mod parts;
mod quotes;
mod repairs;
mod settlement;
mod stock;
mod stock_rows;
mod visits;

use std::{collections::HashMap, sync::Mutex, time::Instant};

use aftersales_platform::{db::corrupt, seal::Vault};
use aftersales_runtime::command::{Command, Pipeline, Remembered};
use chrono::{DateTime, Duration, Utc};
use sea_orm::DatabaseConnection;

pub use contacts::{ContactRight, SEAL_CONTEXT};
pub use deadlines::DispatchDeadline;
pub use parts::NewSite;
pub use repairs::{ReturnRepair, repair_job_id};
pub use stock::JobParts;

use crate::{
    domain::{
        Actor, OfferStatus,
        job::{JobAggregate, JobEvent, JobView, VisitTargets},
        partner::Partner,
    },
    error::{DispatchError, not_found},
    events, store,
};

/// A command of the dispatch service.
type Cmd = Command<DispatchDeadline>;

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

/// The dispatch service's core: the pipeline every command runs through, the rules, the
/// vault customers' contacts are sealed with, and what dispatching keeps between jobs
/// (partners' ranking records, parsed partners).
pub struct DispatchCore {
    pipeline: Pipeline<DispatchDeadline>,
    rules: DispatchRules,
    vault: Vault,
    /// Ranking record per partner and when it was computed.
    quality: Mutex<HashMap<String, (Instant, f64)>>,
    /// Held while ranking records are recomputed.
    quality_refresh: tokio::sync::Mutex<()>,
    /// Partners as last parsed, checked against their version before use.
    partners: Mutex<HashMap<String, Partner>>,
    /// PostgreSQL's `max_connections`, read at the first placement (see `capacity`).
    max_connections: tokio::sync::OnceCell<i64>,
}

/// What a job command produced besides the changed job.
#[derive(Debug, Default)]
struct Changes {
    events: Vec<JobEvent>,
    /// Other jobs changed on the way (a repeated job losing its first-time fix).
    also_saved: Vec<JobAggregate>,
}

impl From<Vec<JobEvent>> for Changes {
    fn from(events: Vec<JobEvent>) -> Self {
        Self {
            events,
            also_saved: Vec::new(),
        }
    }
}

impl DispatchCore {
    pub fn new(pipeline: Pipeline<DispatchDeadline>, rules: DispatchRules, vault: Vault) -> Self {
        Self {
            pipeline,
            rules,
            vault,
            quality: Mutex::default(),
            quality_refresh: tokio::sync::Mutex::default(),
            partners: Mutex::default(),
            max_connections: tokio::sync::OnceCell::new(),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        self.pipeline.db()
    }

    /// The pipeline, for the event consumer's work inside its transaction.
    pub fn pipeline(&self) -> &Pipeline<DispatchDeadline> {
        &self.pipeline
    }

    /// Opens an unkeyed command on one job, locked until the command ends.
    async fn open(
        &self,
        scope: &'static str,
        id: &str,
        actor: &Actor,
    ) -> Result<(Cmd, JobAggregate), DispatchError> {
        let cmd = self.pipeline.begin_unkeyed(scope).await?;
        self.lock(cmd, id, actor).await
    }

    /// Locks the job in the command's transaction; a partner that does not hold it is
    /// told it does not exist.
    async fn lock(
        &self,
        cmd: Cmd,
        id: &str,
        actor: &Actor,
    ) -> Result<(Cmd, JobAggregate), DispatchError> {
        let found = self
            .load_for_update(cmd.txn(), id)
            .await?
            .filter(|agg| actor.partner().is_none_or(|p| agg.visible_to(p)));
        match found {
            Some(agg) => Ok((cmd, agg)),
            None => {
                cmd.abandon().await?;
                Err(not_found("job", id))
            }
        }
    }

    /// One command on one job: lock it, apply `rule`, save what it changed, commit, and
    /// answer with the job as the actor may see it.
    async fn command(
        &self,
        scope: &'static str,
        id: &str,
        actor: &Actor,
        rule: impl FnOnce(&mut JobAggregate, DateTime<Utc>) -> Result<Changes, DispatchError>,
    ) -> Result<JobView, DispatchError> {
        let (mut cmd, mut agg) = self.open(scope, id, actor).await?;
        let changes = rule(&mut agg, cmd.now())?;
        save(&mut cmd, &agg, changes).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&agg.job.id))
            .await?;
        self.answer_as(agg, actor)
    }
}

/// A command of this service, owning its transaction or nested in a consumer's.
trait InCommand: aftersales_runtime::command::InCommand<DispatchDeadline> {}

impl<T: aftersales_runtime::command::InCommand<DispatchDeadline>> InCommand for T {}

/// Writes a changed job and what its rule produced in the command's transaction: the job
/// with its offers and quotes, other jobs changed on the way, outbox events; and hands
/// the command the job's deadlines to schedule or drop once it commits.
async fn save(
    cmd: &mut impl InCommand,
    agg: &JobAggregate,
    changes: Changes,
) -> Result<(), DispatchError> {
    store::save_job(cmd.txn(), agg).await?;
    for other in &changes.also_saved {
        store::save_job(cmd.txn(), other).await?;
    }
    for event in &changes.events {
        if *event == JobEvent::VisitLate {
            cmd.breached();
        }
    }
    let rows = events::encode(agg, &changes.events, cmd.now());
    cmd.publish(rows).await?;
    reschedule(cmd, agg);
    Ok(())
}

/// Schedules the deadlines of `agg` that can still fire (open offers, an awaited visit)
/// and drops the others.
fn reschedule(cmd: &mut impl InCommand, agg: &JobAggregate) {
    for offer in &agg.offers {
        let at = (offer.status == OfferStatus::Open).then_some(offer.expires_at);
        cmd.reschedule(DispatchDeadline::Offer(offer.id.clone()), at);
    }
    // A job never accepted has no visit due and so never had its visit scheduled: nothing
    // to take off the queue (a round trip to Redis saved on every job created or offered).
    if agg.job.visit_due_at.is_some() {
        cmd.reschedule(
            DispatchDeadline::Visit(agg.job.id.clone()),
            agg.visit_watch(),
        );
    }
}

/// The id a keyed command remembered (its aggregate's).
fn replayed(remembered: &Remembered) -> Result<&str, DispatchError> {
    remembered
        .first()
        .ok_or_else(|| corrupt("idempotency_keys", "a remembered command without ids").into())
}

fn forbid_partner(actor: &Actor, action: &'static str) -> Result<(), DispatchError> {
    match actor.partner() {
        Some(_) => Err(DispatchError::PartnerForbidden(action)),
        None => Ok(()),
    }
}

/// A page cut to `size` and the id to continue before, if more exist.
fn paged<T>(mut page: Vec<T>, size: u64, id: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
    let next = (page.len() as u64 > size).then(|| {
        page.truncate(size as usize);
        page.last().map(&id)
    });
    (page, next.flatten())
}
