//! Quotes: the partner holding the work submits one (keyed by its idempotency key),
//! price-checked against its fee schedule; one outside the schedule waits for review, and
//! the reviewer's decision is published for the partner.

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::{Begun, Remembered};

use crate::{
    domain::{
        Actor, DomainError,
        job::JobAggregate,
        quote::{PriceCheck, Quote, QuoteLine},
    },
    error::{DispatchError, not_found},
    store,
};

use super::{DispatchCore, forbid_partner, replayed, save};

const SUBMIT_SCOPE: &str = "dispatch.SubmitQuote";
const REVIEW_SCOPE: &str = "dispatch.ReviewQuote";

impl DispatchCore {
    /// Adds a quote to the job's open work. A retry with the same key answers with the
    /// quote the first attempt submitted, as it is now.
    pub async fn submit_quote(
        &self,
        job_id: &str,
        lines: Vec<QuoteLine>,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<Quote, DispatchError> {
        self.pipeline
            .keyed(idem, || async {
                let cmd = match self.pipeline.begin(SUBMIT_SCOPE, idem).await? {
                    Begun::Replay(remembered) => {
                        return self.quote_as(replayed(&remembered)?, actor).await;
                    }
                    Begun::Fresh(cmd) => cmd,
                };
                let (mut cmd, mut agg) = self.lock(cmd, job_id, actor).await?;
                let now = cmd.now();
                let partner_id = agg
                    .job
                    .partner_id
                    .clone()
                    .filter(|_| agg.job.status.is_open_work())
                    .ok_or(DomainError::IllegalTransition {
                        from: agg.job.status,
                        action: "take a quote",
                    })?;
                let partner = store::get_partner(cmd.txn(), &partner_id, false)
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
                save(&mut cmd, &agg, events.into()).await?;
                cmd.commit(&self.pipeline, &Remembered::id(&quote.id))
                    .await?;
                Ok(quote)
            })
            .await
    }

    /// Approves or rejects a quote waiting for review.
    pub async fn review_quote(
        &self,
        quote_id: &str,
        approve: bool,
        note: &str,
        actor: &Actor,
    ) -> Result<Quote, DispatchError> {
        forbid_partner(actor, "review quotes")?;
        let job_id = store::quote_job_id(self.db(), quote_id)
            .await?
            .ok_or_else(|| not_found("quote", quote_id))?;
        let view = self
            .command(REVIEW_SCOPE, &job_id, actor, |agg, now| {
                Ok(agg
                    .review_quote(quote_id, approve, note, actor, now)?
                    .into())
            })
            .await?;
        find_quote(&view.job, quote_id)
    }

    /// A quote as it is now, if `actor` may see its job.
    async fn quote_as(&self, quote_id: &str, actor: &Actor) -> Result<Quote, DispatchError> {
        let job_id = store::quote_job_id(self.db(), quote_id)
            .await?
            .ok_or_else(|| not_found("quote", quote_id))?;
        let agg = self.load(&job_id).await?;
        if actor.partner().is_some_and(|p| !agg.visible_to(p)) {
            return Err(not_found("job", &job_id));
        }
        find_quote(&agg, quote_id)
    }
}

fn find_quote(agg: &JobAggregate, quote_id: &str) -> Result<Quote, DispatchError> {
    agg.quotes
        .iter()
        .find(|q| q.id == quote_id)
        .cloned()
        .ok_or_else(|| not_found("quote", quote_id))
}
