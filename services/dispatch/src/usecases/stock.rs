//! Stock movements driven by jobs and goods: a job's request for parts (reserved at once
//! where available, waiting for the rest), settling a finished job's reservations
//! (consumed by a fix, released otherwise), receipts and transfers, whose arrivals (and
//! released units, right after their release) are given to the jobs waiting at the site,
//! oldest request first, resuming those made whole in the same transaction.
//!
//! Locks: the transfer (receiving one), then jobs in id order, then stock rows in (part,
//! site) order ([`Locked`]).

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::{Begun, Remembered};
use chrono::{DateTime, Utc};

use crate::{
    domain::{
        Actor, DomainError, JobStatus,
        job::{JobAggregate, JobView},
        new_id,
        parts::{
            Receipt, Reservation, ReservationStatus, SiteKind, Transfer, TransferStatus, whole,
        },
    },
    error::{DispatchError, not_found},
    events, store,
};

use super::{
    DispatchCore, InCommand, forbid_partner, replayed, save,
    stock_rows::{Locked, warned},
};

const REQUEST_SCOPE: &str = "dispatch.RequestParts";
const RECEIVE_SCOPE: &str = "dispatch.ReceiveParts";
const SHIP_SCOPE: &str = "dispatch.ShipTransfer";
const ARRIVE_SCOPE: &str = "dispatch.ReceiveTransfer";
const GIVE_SCOPE: &str = "dispatch.GiveReleasedParts";

/// What settling a finished job's reservations left for after its commit.
#[derive(Debug, Default)]
pub(super) struct Settled {
    warnings: u32,
    /// `(site_id, part_id)` of the units released.
    released: Vec<(String, String)>,
    /// What a fix consumed, valued for its `RepairCosted`.
    pub(super) consumed: Vec<events::Consumed>,
}

/// A job's view with its reservations.
pub struct JobParts {
    pub view: JobView,
    pub reservations: Vec<Reservation>,
}

impl DispatchCore {
    /// Reserves parts at a site for a job's open work: what is available now is held; if
    /// anything is missing the job waits for parts. A retry with the same key answers
    /// with the job and its reservations as they are now.
    pub async fn request_parts(
        &self,
        job_id: &str,
        site_id: &str,
        lines: Vec<(String, i64)>,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<JobParts, DispatchError> {
        self.pipeline
            .keyed(idem, || async {
                let cmd = match self.pipeline.begin(REQUEST_SCOPE, idem).await? {
                    Begun::Replay(remembered) => {
                        return self.job_parts(replayed(&remembered)?, actor).await;
                    }
                    Begun::Fresh(cmd) => cmd,
                };
                let (mut cmd, mut agg) = self.lock(cmd, job_id, actor).await?;
                let now = cmd.now();
                agg.check_parts_request()?;
                let site = self.require_site(cmd.txn(), site_id).await?;
                // A partner draws on warehouses, parts centres and its own outlet; another
                // partner's outlet is not its to see.
                if let Some(partner) = actor.partner()
                    && site.kind == SiteKind::PartnerOutlet
                    && site.partner_id.as_deref() != Some(partner)
                {
                    return Err(not_found("site", site_id));
                }
                let part_ids: Vec<String> = lines.iter().map(|(p, _)| p.clone()).collect();
                self.require_parts(cmd.txn(), &part_ids).await?;
                let keys: Vec<(String, String)> = part_ids
                    .iter()
                    .map(|p| (p.clone(), site_id.to_owned()))
                    .collect();
                let mut stock = Locked::lock(&cmd, &keys).await?;
                let mut reservations =
                    store::reservations_of(cmd.txn(), &[job_id.to_owned()]).await?;
                let mut new = Vec::new();
                for (part_id, quantity) in &lines {
                    let entry = stock.row(part_id, site_id)?;
                    let (granted, movement) = entry.stock.reserve(*quantity)?;
                    entry.movements.extend(movement);
                    new.push(Reservation {
                        id: new_id(),
                        job_id: job_id.to_owned(),
                        site_id: site_id.to_owned(),
                        part_id: part_id.clone(),
                        quantity: *quantity,
                        reserved: granted,
                        status: ReservationStatus::Open,
                        created_at: now,
                    });
                }
                store::save_reservations(cmd.txn(), &new).await?;
                reservations.extend(new);
                let events = if whole(&reservations) {
                    agg.parts_ready(now)
                } else {
                    agg.wait_for_parts(actor, now);
                    Vec::new()
                };
                save(&mut cmd, &agg, events.into()).await?;
                let (_, n) = stock.save(&mut cmd, &format!("job:{job_id}")).await?;
                cmd.commit(&self.pipeline, &Remembered::id(job_id)).await?;
                warned(n);
                Ok(JobParts {
                    view: self.answer_as(agg, actor)?,
                    reservations,
                })
            })
            .await
    }

    /// A job as `actor` may see it, with its reservations.
    pub async fn job_parts(&self, job_id: &str, actor: &Actor) -> Result<JobParts, DispatchError> {
        let agg = self.load(job_id).await?;
        if actor.partner().is_some_and(|p| !agg.visible_to(p)) {
            return Err(not_found("job", job_id));
        }
        let reservations = store::reservations_of(self.db(), &[job_id.to_owned()]).await?;
        Ok(JobParts {
            view: self.answer_as(agg, actor)?,
            reservations,
        })
    }

    /// Settles the reservations of a job its command just finished: a fix (completed)
    /// consumes what was reserved, any other end gives it back. Runs after the job's lock,
    /// in the same transaction; [`Self::after_settling`] runs once it committed.
    pub(super) async fn settle_parts(
        &self,
        cmd: &mut impl InCommand,
        agg: &JobAggregate,
    ) -> Result<Settled, DispatchError> {
        let mut lines: Vec<Reservation> =
            store::reservations_of(cmd.txn(), std::slice::from_ref(&agg.job.id))
                .await?
                .into_iter()
                .filter(|l| l.status == ReservationStatus::Open)
                .collect();
        if lines.is_empty() {
            return Ok(Settled::default());
        }
        let consume = agg.job.status == JobStatus::Completed;
        let keys: Vec<(String, String)> = lines
            .iter()
            .map(|l| (l.part_id.clone(), l.site_id.clone()))
            .collect();
        let mut stock = Locked::lock(cmd, &keys).await?;
        let mut released = Vec::new();
        let mut consumed = Vec::new();
        for line in &mut lines {
            if consume && line.reserved > 0 {
                consumed.push(events::Consumed {
                    part_id: line.part_id.clone(),
                    site_id: line.site_id.clone(),
                    quantity: line.reserved,
                    unit_value: self.part_value(cmd, agg, &line.part_id).await?,
                });
            }
            let entry = stock.row(&line.part_id, &line.site_id)?;
            let change = if consume {
                line.status = ReservationStatus::Consumed;
                entry.stock.consume(line.reserved)
            } else {
                line.status = ReservationStatus::Released;
                if line.reserved > 0 {
                    released.push((line.site_id.clone(), line.part_id.clone()));
                }
                entry.stock.release(line.reserved)
            };
            entry.apply(change)?;
        }
        store::save_reservations(cmd.txn(), &lines).await?;
        let (_, warnings) = stock.save(cmd, &format!("job:{}", agg.job.id)).await?;
        Ok(Settled {
            warnings,
            released,
            consumed,
        })
    }

    /// A consumed part's value: the job's partner's fee-schedule price of the part's fee
    /// code; `None` when the part has no fee code or the schedule no price for it.
    async fn part_value(
        &self,
        cmd: &impl InCommand,
        agg: &JobAggregate,
        part_id: &str,
    ) -> Result<Option<crate::domain::Money>, DispatchError> {
        let Some(code) = store::get_part(cmd.txn(), part_id)
            .await?
            .and_then(|p| p.fee_code)
        else {
            return Ok(None);
        };
        let Some(partner_id) = &agg.job.partner_id else {
            return Ok(None);
        };
        Ok(store::get_partner(cmd.txn(), partner_id, false)
            .await?
            .and_then(|p| p.spec.fees.part(&code).cloned()))
    }

    /// After a finishing command committed: counts its low-stock warnings, and gives the
    /// units it released to jobs waiting for them at the same sites. That is a command of
    /// its own, so its locks follow the service's order (waiting jobs, then stock) rather
    /// than coming after the finished job's; if it fails, the units stay available and
    /// the next arrival at the site gives them.
    pub(super) async fn after_settling(&self, settled: Settled) {
        warned(settled.warnings);
        let mut sites: Vec<&str> = settled.released.iter().map(|(s, _)| s.as_str()).collect();
        sites.sort_unstable();
        sites.dedup();
        for site_id in sites {
            let part_ids: Vec<String> = settled
                .released
                .iter()
                .filter(|(s, _)| s == site_id)
                .map(|(_, p)| p.clone())
                .collect();
            if let Err(err) = self.give_released(site_id, &part_ids).await {
                tracing::warn!(site_id, error = %err, "giving released parts to waiting jobs failed; the next arrival gives them");
            }
        }
    }

    async fn give_released(&self, site_id: &str, part_ids: &[String]) -> Result<(), DispatchError> {
        let mut cmd = self.pipeline.begin_unkeyed(GIVE_SCOPE).await?;
        let (mut jobs, mut reservations) = lock_waiting(&cmd, site_id, part_ids).await?;
        if jobs.is_empty() {
            cmd.abandon().await?;
            return Ok(());
        }
        let keys: Vec<(String, String)> = part_ids
            .iter()
            .map(|p| (p.clone(), site_id.to_owned()))
            .collect();
        let mut stock = Locked::lock(&cmd, &keys).await?;
        let given = allocate(&mut stock, site_id, &mut reservations, &mut jobs, cmd.now())?;
        store::save_reservations(cmd.txn(), &reservations).await?;
        for (agg, events) in given.jobs {
            save(&mut cmd, &agg, events.into()).await?;
        }
        let (_, n) = stock.save(&mut cmd, "released").await?;
        cmd.commit(&self.pipeline, &Remembered::id(site_id)).await?;
        warned(n);
        Ok(())
    }

    /// Books goods received at a site and gives them to the jobs waiting there. A retry
    /// with the same key answers with the first receipt.
    pub async fn receive_parts(
        &self,
        site_id: &str,
        lines: Vec<(String, i64)>,
        reference: &str,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<Receipt, DispatchError> {
        forbid_partner(actor, "book receipts")?;
        self.pipeline
            .keyed(idem, || async {
                let mut cmd = match self.pipeline.begin(RECEIVE_SCOPE, idem).await? {
                    Begun::Replay(remembered) => {
                        let id = replayed(&remembered)?;
                        return store::get_receipt(self.db(), id)
                            .await?
                            .ok_or_else(|| not_found("receipt", id));
                    }
                    Begun::Fresh(cmd) => cmd,
                };
                self.require_site(cmd.txn(), site_id).await?;
                let part_ids: Vec<String> = lines.iter().map(|(p, _)| p.clone()).collect();
                self.require_parts(cmd.txn(), &part_ids).await?;
                let (mut jobs, mut reservations) = lock_waiting(&cmd, site_id, &part_ids).await?;
                let keys: Vec<(String, String)> = part_ids
                    .iter()
                    .map(|p| (p.clone(), site_id.to_owned()))
                    .collect();
                let mut stock = Locked::lock(&cmd, &keys).await?;
                for (part_id, quantity) in &lines {
                    let entry = stock.row(part_id, site_id)?;
                    let change = entry.stock.receive(*quantity);
                    entry.apply(change)?;
                }
                let id = new_id();
                let given = allocate(&mut stock, site_id, &mut reservations, &mut jobs, cmd.now())?;
                store::save_reservations(cmd.txn(), &reservations).await?;
                for (agg, events) in given.jobs {
                    save(&mut cmd, &agg, events.into()).await?;
                }
                let receipt = Receipt {
                    id: id.clone(),
                    site_id: site_id.to_owned(),
                    lines: lines.clone(),
                    reference: reference.to_owned(),
                    received_at: cmd.now(),
                    resumed_job_ids: given.resumed,
                };
                store::insert_receipt(cmd.txn(), &receipt).await?;
                let (_, n) = stock.save(&mut cmd, &format!("receipt:{id}")).await?;
                cmd.commit(&self.pipeline, &Remembered::id(&id)).await?;
                warned(n);
                Ok(receipt)
            })
            .await
    }

    /// Ships available units of a part from one site to another: off the sender's stock,
    /// in transit at the receiver's.
    pub async fn ship_transfer(
        &self,
        part_id: &str,
        from: &str,
        to: &str,
        quantity: i64,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<(Transfer, Vec<String>), DispatchError> {
        forbid_partner(actor, "ship transfers")?;
        if from == to {
            return Err(DomainError::invalid("to_site_id", "must differ from from_site_id").into());
        }
        self.pipeline
            .keyed(idem, || async {
                let mut cmd = match self.pipeline.begin(SHIP_SCOPE, idem).await? {
                    Begun::Replay(remembered) => {
                        return self.transfer(replayed(&remembered)?).await;
                    }
                    Begun::Fresh(cmd) => cmd,
                };
                self.require_site(cmd.txn(), from).await?;
                self.require_site(cmd.txn(), to).await?;
                self.require_parts(cmd.txn(), &[part_id.to_owned()]).await?;
                let keys = [
                    (part_id.to_owned(), from.to_owned()),
                    (part_id.to_owned(), to.to_owned()),
                ];
                let mut stock = Locked::lock(&cmd, &keys).await?;
                let sender = stock.row(part_id, from)?;
                let change = sender.stock.ship(quantity);
                sender.apply(change)?;
                let receiver = stock.row(part_id, to)?;
                let change = receiver.stock.expect(quantity);
                receiver.apply(change)?;
                let transfer = Transfer {
                    id: new_id(),
                    part_id: part_id.to_owned(),
                    from_site_id: from.to_owned(),
                    to_site_id: to.to_owned(),
                    quantity,
                    status: TransferStatus::InTransit,
                    shipped_at: cmd.now(),
                    received_at: None,
                };
                store::save_transfer(cmd.txn(), &transfer, &[]).await?;
                let (_, n) = stock
                    .save(&mut cmd, &format!("transfer:{}", transfer.id))
                    .await?;
                cmd.commit(&self.pipeline, &Remembered::id(&transfer.id))
                    .await?;
                warned(n);
                Ok((transfer, Vec::new()))
            })
            .await
    }

    /// A shipment arrived: on hand at the receiver, and given to the jobs waiting there.
    /// A transfer is received once; a retry with the same key answers with it as it is.
    pub async fn receive_transfer(
        &self,
        id: &str,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<(Transfer, Vec<String>), DispatchError> {
        forbid_partner(actor, "receive transfers")?;
        self.pipeline
            .keyed(idem, || async {
                let mut cmd = match self.pipeline.begin(ARRIVE_SCOPE, idem).await? {
                    Begun::Replay(remembered) => {
                        return self.transfer(replayed(&remembered)?).await;
                    }
                    Begun::Fresh(cmd) => cmd,
                };
                let (mut transfer, _) = store::get_transfer(cmd.txn(), id, true)
                    .await?
                    .ok_or_else(|| not_found("transfer", id))?;
                if transfer.status != TransferStatus::InTransit {
                    return Err(DomainError::Precondition(format!(
                        "transfer {id} was received already"
                    ))
                    .into());
                }
                let (site_id, part_id) = (transfer.to_site_id.clone(), transfer.part_id.clone());
                let part_ids = [part_id.clone()];
                let (mut jobs, mut reservations) = lock_waiting(&cmd, &site_id, &part_ids).await?;
                let mut stock = Locked::lock(&cmd, &[(part_id.clone(), site_id.clone())]).await?;
                let entry = stock.row(&part_id, &site_id)?;
                let change = entry.stock.arrive(transfer.quantity);
                entry.apply(change)?;
                let given = allocate(
                    &mut stock,
                    &site_id,
                    &mut reservations,
                    &mut jobs,
                    cmd.now(),
                )?;
                store::save_reservations(cmd.txn(), &reservations).await?;
                for (agg, events) in given.jobs {
                    save(&mut cmd, &agg, events.into()).await?;
                }
                transfer.status = TransferStatus::Received;
                transfer.received_at = Some(cmd.now());
                store::save_transfer(cmd.txn(), &transfer, &given.resumed).await?;
                let (_, n) = stock.save(&mut cmd, &format!("transfer:{id}")).await?;
                cmd.commit(&self.pipeline, &Remembered::id(id)).await?;
                warned(n);
                Ok((transfer, given.resumed))
            })
            .await
    }

    pub async fn transfer(&self, id: &str) -> Result<(Transfer, Vec<String>), DispatchError> {
        store::get_transfer(self.db(), id, false)
            .await?
            .ok_or_else(|| not_found("transfer", id))
    }
}

/// Locks the jobs with requests still missing units of `part_ids` at `site_id` (in id
/// order, before any stock row) and reads their reservations under the lock.
async fn lock_waiting(
    cmd: &impl InCommand,
    site_id: &str,
    part_ids: &[String],
) -> Result<(Vec<JobAggregate>, Vec<Reservation>), DispatchError> {
    let ids = store::jobs_waiting_at(cmd.txn(), site_id, part_ids).await?;
    let jobs = store::load_jobs(cmd.txn(), &ids, true).await?;
    let reservations = store::reservations_of(cmd.txn(), &ids).await?;
    Ok((jobs, reservations))
}

/// What arrivals gave: the jobs resumed, each with its events, to save.
struct Given {
    jobs: Vec<(JobAggregate, Vec<crate::domain::job::JobEvent>)>,
    resumed: Vec<String>,
}

/// Gives what is now available at `site_id` of the locked rows to the open requests
/// there still missing units, oldest request first; every job whose requests all became
/// whole resumes.
fn allocate(
    stock: &mut Locked,
    site_id: &str,
    reservations: &mut [Reservation],
    jobs: &mut Vec<JobAggregate>,
    now: DateTime<Utc>,
) -> Result<Given, DispatchError> {
    for line in reservations.iter_mut().filter(|l| l.site_id == site_id) {
        let missing = line.missing();
        if missing == 0 {
            continue;
        }
        let Some(entry) = stock.find(&line.part_id, site_id) else {
            continue;
        };
        let (granted, movement) = entry.stock.reserve(missing)?;
        entry.movements.extend(movement);
        line.reserved += granted;
    }
    let mut given = Given {
        jobs: Vec::new(),
        resumed: Vec::new(),
    };
    for mut agg in std::mem::take(jobs) {
        let mine: Vec<Reservation> = reservations
            .iter()
            .filter(|l| l.job_id == agg.job.id)
            .cloned()
            .collect();
        if !whole(&mine) {
            continue;
        }
        let events = agg.parts_ready(now);
        if !events.is_empty() {
            given.resumed.push(agg.job.id.clone());
            given.jobs.push((agg, events));
        }
    }
    Ok(given)
}
