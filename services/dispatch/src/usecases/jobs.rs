//! A repair job's own lifecycle: creating it (keyed by the caller's idempotency key, and
//! dispatched at once; its contact sealed under the new job's id), reading and listing
//! jobs as the actor may see them (see `contacts`), completing (on site or remotely) and
//! cancelling, each settling the parts reserved for the job (see `stock`).

use aftersales_platform::idempotency::Idempotency;
use aftersales_platform::pii::masked;
use aftersales_runtime::command::{Begun, Remembered};
use chrono::Duration;

use crate::{
    domain::{
        Actor, CompletionOutcome,
        job::{Contact, JobAggregate, JobView, NewJob, Photo, REPEAT_WINDOW_DAYS},
        listing::JobFilter,
    },
    error::{DispatchError, not_found},
    events, store,
};

use super::{Changes, ContactRight, DispatchCore, forbid_partner, paged, replayed, save};

const CREATE_SCOPE: &str = "dispatch.CreateJob";
const COMPLETE_SCOPE: &str = "dispatch.CompleteJob";
const REMOTE_SCOPE: &str = "dispatch.ResolveRemotely";
const CANCEL_SCOPE: &str = "dispatch.CancelJob";

impl DispatchCore {
    /// Creates a job and offers it to the best partner at once (or leaves it unassigned).
    /// A retry with the same key answers with the job the first attempt created, as it is
    /// now. The answer shows the contact masked (the creator already knows it).
    pub async fn create_job(
        &self,
        new: NewJob,
        contact: Option<Contact>,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<JobView, DispatchError> {
        forbid_partner(actor, "create jobs")?;
        let agg = self
            .pipeline
            .keyed(idem, || {
                self.try_create_job(&new, contact.as_ref(), idem, actor)
            })
            .await?;
        let mut views = self.views(vec![agg], actor, ContactRight::Masked)?;
        views.pop().ok_or_else(|| not_found("job", "(created)"))
    }

    async fn try_create_job(
        &self,
        new: &NewJob,
        contact: Option<&Contact>,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<JobAggregate, DispatchError> {
        let mut cmd = match self.pipeline.begin(CREATE_SCOPE, idem).await? {
            Begun::Replay(remembered) => return self.load(replayed(&remembered)?).await,
            Begun::Fresh(cmd) => cmd,
        };
        let now = cmd.now();
        // A job of a return without a ticket repeats nothing: the ticket is what links jobs.
        let repeated = if new.ticket_id.is_empty() {
            None
        } else {
            let since = now - Duration::days(REPEAT_WINDOW_DAYS);
            store::repeated_job(cmd.txn(), &new.ticket_id, &new.product_line, since).await?
        };
        let mut new = new.clone();
        new.fault_description = masked(&new.fault_description);
        let (mut agg, mut events) = JobAggregate::create(new, repeated.clone(), actor, now);
        agg.job.contact = contact
            .map(|c| self.seal_contact(&agg.job.id, c))
            .transpose()?;
        let mut changes = Changes::default();
        if let Some(earlier_id) = repeated
            && let Some(mut earlier) = self.load_for_update(cmd.txn(), &earlier_id).await?
            && earlier.revoke_first_time_fix(&agg.job.id, now)
        {
            changes.also_saved.push(earlier);
        }
        events.extend(self.dispatch(cmd.txn(), &mut agg, now).await?);
        changes.events = events;
        save(&mut cmd, &agg, changes).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&agg.job.id))
            .await?;
        Ok(agg)
    }

    /// Records the outcome of the work. A retry with the same key answers with the job as
    /// it is now.
    pub async fn complete_job(
        &self,
        id: &str,
        outcome: CompletionOutcome,
        photos: Vec<Photo>,
        notes: &str,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<JobView, DispatchError> {
        self.pipeline
            .keyed(idem, || async {
                let cmd = match self.pipeline.begin(COMPLETE_SCOPE, idem).await? {
                    Begun::Replay(remembered) => {
                        return self
                            .get_job(replayed(&remembered)?, actor, ContactRight::Masked)
                            .await;
                    }
                    Begun::Fresh(cmd) => cmd,
                };
                let (mut cmd, mut agg) = self.lock(cmd, id, actor).await?;
                let events =
                    agg.complete(outcome, photos.clone(), &masked(notes), actor, cmd.now())?;
                let settled = self.settle_parts(&mut cmd, &agg).await?;
                let cost = events::encode_repair_cost(&agg, &settled.consumed, cmd.now());
                save(&mut cmd, &agg, events.into()).await?;
                cmd.publish(vec![cost]).await?;
                cmd.commit(&self.pipeline, &Remembered::id(&agg.job.id))
                    .await?;
                self.after_settling(settled).await;
                self.answer_as(agg, actor)
            })
            .await
    }

    /// Closes the job by remote diagnosis, without a visit. A retry with the same key
    /// answers with the job as it is now.
    pub async fn resolve_remotely(
        &self,
        id: &str,
        outcome: CompletionOutcome,
        notes: &str,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<JobView, DispatchError> {
        self.pipeline
            .keyed(idem, || async {
                let cmd = match self.pipeline.begin(REMOTE_SCOPE, idem).await? {
                    Begun::Replay(remembered) => {
                        return self
                            .get_job(replayed(&remembered)?, actor, ContactRight::Masked)
                            .await;
                    }
                    Begun::Fresh(cmd) => cmd,
                };
                let (mut cmd, mut agg) = self.lock(cmd, id, actor).await?;
                let events = agg.resolve_remotely(outcome, &masked(notes), actor, cmd.now())?;
                let settled = self.settle_parts(&mut cmd, &agg).await?;
                let cost = events::encode_repair_cost(&agg, &settled.consumed, cmd.now());
                save(&mut cmd, &agg, events.into()).await?;
                cmd.publish(vec![cost]).await?;
                cmd.commit(&self.pipeline, &Remembered::id(&agg.job.id))
                    .await?;
                self.after_settling(settled).await;
                self.answer_as(agg, actor)
            })
            .await
    }

    pub async fn cancel_job(
        &self,
        id: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<JobView, DispatchError> {
        forbid_partner(actor, "cancel jobs")?;
        let (mut cmd, mut agg) = self.open(CANCEL_SCOPE, id, actor).await?;
        let events = agg.cancel(&masked(reason), actor, cmd.now())?;
        // Parts held for the job go back to the site's available stock.
        let settled = self.settle_parts(&mut cmd, &agg).await?;
        save(&mut cmd, &agg, events.into()).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&agg.job.id))
            .await?;
        self.after_settling(settled).await;
        self.answer_as(agg, actor)
    }

    /// A job as it is, for whoever may see all of it.
    pub(super) async fn load(&self, id: &str) -> Result<JobAggregate, DispatchError> {
        store::load_job(self.db(), id, false)
            .await?
            .ok_or_else(|| not_found("job", id))
    }

    /// A job as `actor` may see it (see `contacts`): with `right` [`ContactRight::Clear`]
    /// (a reader holding `pii:read`) the contact in clear text, audited.
    pub async fn get_job(
        &self,
        id: &str,
        actor: &Actor,
        right: ContactRight,
    ) -> Result<JobView, DispatchError> {
        let agg = self.load(id).await?;
        let mut shown = self.shown_to(actor, vec![agg], right)?;
        shown.pop().ok_or_else(|| not_found("job", id))
    }

    /// A page of jobs, newest first, as `actor` may see them (contacts masked); a partner
    /// sees its own.
    pub async fn list_jobs(
        &self,
        mut filter: JobFilter,
        before: Option<&str>,
        size: u64,
        actor: &Actor,
    ) -> Result<(Vec<JobView>, Option<String>), DispatchError> {
        if let Some(partner) = actor.partner() {
            filter.partner_id = Some(partner.to_owned());
        }
        let page = store::list_jobs(self.db(), &filter, before, size + 1).await?;
        let (page, next) = paged(page, size, |a| a.job.id.clone());
        let shown = self.shown_to(actor, page, ContactRight::Masked)?;
        Ok((shown, next))
    }

    /// Drops the jobs a partner actor may not see, and shows the others.
    fn shown_to(
        &self,
        actor: &Actor,
        mut jobs: Vec<JobAggregate>,
        right: ContactRight,
    ) -> Result<Vec<JobView>, DispatchError> {
        if let Some(partner) = actor.partner() {
            jobs.retain(|agg| agg.visible_to(partner));
        }
        self.views(jobs, actor, right)
    }

    /// The job as `actor` may see it after its command, contact masked (a partner that
    /// just declined still gets its view).
    pub(super) fn answer_as(
        &self,
        agg: JobAggregate,
        actor: &Actor,
    ) -> Result<JobView, DispatchError> {
        let id = agg.job.id.clone();
        self.views(vec![agg], actor, ContactRight::Masked)?
            .pop()
            .ok_or_else(|| not_found("job", &id))
    }
}
