//! Settling a return sent to repair on what dispatch reports of its repair job (whose id
//! the return chose when it was sent to repair): the job created (its id confirmed on the
//! return), completed with a fix (the goods go back to the
//! customer), or ended without one (completed unfixed, cancelled, left without a partner:
//! a refund or an exchange, by `RETURNS_UNREPAIRABLE`). Each runs as a command nested in
//! the event consumer's transaction, which records the event processed, so a redelivery
//! changes nothing; the domain ignores an outcome for a return already settled. A refund is
//! started here and paid after the commit through the payment port ([`ReturnsCore::
//! pay_refund`]), keyed by the refund id, with the worker's safety net behind it.

use aftersales_runtime::command::Nested;

use crate::{
    domain::{
        eligibility::Policies,
        refund::{self, Refund},
        rma::repair::{JobOutcome, Settled, Unrepairable},
    },
    error::ReturnsError,
    store,
};

use super::{Changes, ReturnsCore, ReturnsDeadline, save};

/// Where returned goods are repaired and what goods that cannot be repaired become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairSettings {
    /// The region code of the after-sales warehouse the goods wait in
    /// (`RETURNS_REPAIR_REGION_CODE`): dispatch places the repair job there.
    pub region_code: String,
    /// `RETURNS_UNREPAIRABLE`.
    pub unrepairable: Unrepairable,
}

impl Default for RepairSettings {
    fn default() -> Self {
        Self {
            region_code: "warehouse".into(),
            unrepairable: Unrepairable::Refund,
        }
    }
}

/// A command nested in the consumer's transaction.
type Cmd<'t> = Nested<'t, ReturnsDeadline>;

impl ReturnsCore {
    /// Dispatch created the repair job of `return_id`: the return keeps its id. Returns of
    /// other systems are ignored.
    pub async fn repair_job_created(
        &self,
        cmd: &mut Cmd<'_>,
        return_id: &str,
        job_id: &str,
    ) -> Result<(), ReturnsError> {
        let Some(mut agg) = store::load_aggregate(cmd.txn(), return_id, true).await? else {
            return Ok(());
        };
        if agg.repair_job_created(job_id, cmd.now()) {
            save(cmd, &agg, Changes::default()).await?;
        }
        Ok(())
    }

    /// The return whose repair job is `job_id`, if any (for the job's events that do not
    /// name their return).
    pub async fn return_of_repair_job(
        &self,
        cmd: &Cmd<'_>,
        job_id: &str,
    ) -> Result<Option<String>, ReturnsError> {
        Ok(store::return_of_repair_job(cmd.txn(), job_id).await?)
    }

    /// Settles `return_id` on the outcome of its repair job. Answers the refund to pay
    /// once the consumer's transaction has committed, if one was started.
    pub async fn settle_repair(
        &self,
        cmd: &mut Cmd<'_>,
        return_id: &str,
        job_id: &str,
        outcome: JobOutcome,
    ) -> Result<Option<String>, ReturnsError> {
        let Some(mut agg) = store::load_aggregate(cmd.txn(), return_id, true).await? else {
            return Ok(None);
        };
        let now = cmd.now();
        let policy = self.repair.unrepairable;
        let mut changes = Changes::default();
        match agg.settle_repair(job_id, outcome, policy, now)? {
            Settled::Nothing => return Ok(None),
            Settled::Done(events) => changes.events = events,
            Settled::Refund => {
                let policies = Policies::new(store::policies(cmd.txn()).await?);
                let (amount, lines) = refund::compute(&agg.rma, &policies)?;
                let refund = Refund::start(&agg.rma, amount, lines, self.refund_safety_net, now);
                agg.refund_started(refund.id.clone(), now);
                changes.refund = Some(refund);
            }
        }
        let refund_id = changes.refund.as_ref().map(|r| r.id.clone());
        save(cmd, &agg, changes).await?;
        tracing::info!(return_id, job_id, status = %agg.rma.status, refund_id = ?refund_id, "return settled on its repair job");
        Ok(refund_id)
    }
}
