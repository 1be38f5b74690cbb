//! A return request's own lifecycle: asking for a return (eligibility decided at once,
//! keyed by the caller's idempotency key), reading and listing returns, review,
//! withdrawal and closing.

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::{Begun, Remembered};
use chrono_tz::Tz;

use crate::{
    domain::{
        DomainError,
        eligibility::{self, Policies},
        listing::ReturnFilter,
        refund_variants,
        rma::{Actor, NewReturn, ReturnAggregate},
    },
    error::ReturnsError,
    store,
};

use super::{Changes, ReturnsCore, masked, not_found, remembered_id, save};

const REQUEST_SCOPE: &str = "returns.RequestReturn";

impl ReturnsCore {
    /// Records a request with the eligibility decision. A retry with the same key answers
    /// with the return the first attempt created, as it is now.
    pub async fn request_return(
        &self,
        mut new: NewReturn,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        new.evidence = new.evidence.iter().map(|e| masked(e)).collect();
        self.pipeline
            .keyed(idem, || self.try_request_return(&new, idem, actor))
            .await
    }

    async fn try_request_return(
        &self,
        new: &NewReturn,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        let mut cmd = match self.pipeline.begin(REQUEST_SCOPE, idem).await? {
            Begun::Replay(remembered) => return self.replay(&remembered).await,
            Begun::Fresh(cmd) => cmd,
        };
        let now = cmd.now();
        let tz: Tz = new
            .customer_time_zone
            .parse()
            .map_err(|_| DomainError::invalid("customer_time_zone", "is not an IANA time zone"))?;
        let policies = Policies::new(store::policies(cmd.txn()).await?);
        let variant_rule = if new.refund_only {
            Some(refund_variants::refund_only(
                &new.lines, new.reason, &policies,
            )?)
        } else {
            None
        };
        let decision = eligibility::decide(
            &new.lines,
            new.reason,
            new.desired,
            !new.evidence.is_empty(),
            &policies,
            now,
            tz,
        );
        let (mut agg, events) =
            ReturnAggregate::request(new.clone(), &decision, &self.targets, actor, now);
        if let Some(rule) = variant_rule {
            tracing::info!(return_id = %agg.rma.id, rule, "refund-only allowed");
        }
        let refund = self.refund_only_refund(&mut agg, now)?;
        let changes = Changes {
            refund,
            ..Changes::from(events)
        };
        save(&mut cmd, &agg, changes).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&agg.rma.id))
            .await?;
        self.pay_then_read(agg).await
    }

    /// The return a keyed command produced, as it is now.
    async fn replay(&self, remembered: &Remembered) -> Result<ReturnAggregate, ReturnsError> {
        self.get_return(remembered_id(remembered)?).await
    }

    /// The return as it is: read by a query that starts after this call, batched with
    /// the reads that arrive while the database is busy.
    pub async fn get_return(&self, id: &str) -> Result<ReturnAggregate, ReturnsError> {
        self.returns_by_id
            .get(id.to_owned())
            .await?
            .ok_or_else(|| not_found("return", id))
    }

    /// A page of returns, newest first, with the cursor of the next page if there is one.
    pub async fn list_returns(
        &self,
        filter: &ReturnFilter,
        before: Option<&str>,
        size: u64,
    ) -> Result<(Vec<ReturnAggregate>, Option<String>), ReturnsError> {
        let mut page = store::list_returns(self.db(), filter, before, size + 1).await?;
        let next = (page.len() as u64 > size).then(|| {
            page.truncate(size as usize);
            page.last().map(|r| r.id.clone())
        });
        let ids: Vec<String> = page.iter().map(|r| r.id.clone()).collect();
        let mut deadlines = store::deadlines_of(self.db(), &ids).await?;
        let page = page
            .into_iter()
            .map(|rma| {
                let (mine, rest) = deadlines.drain(..).partition(|d| d.return_id == rma.id);
                deadlines = rest;
                ReturnAggregate {
                    rma,
                    deadlines: mine,
                }
            })
            .collect();
        Ok((page, next.flatten()))
    }

    pub async fn review(
        &self,
        id: &str,
        approve: bool,
        reason: &str,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        let reason = &masked(reason);
        let targets = self.targets;
        let agg = self
            .command("returns.ReviewReturn", id, |agg, now| {
                if approve {
                    let events = agg.approve(reason, &targets, actor, now)?;
                    let refund = self.refund_only_refund(agg, now)?;
                    Ok(Changes {
                        refund,
                        ..Changes::from(events)
                    })
                } else {
                    agg.reject(reason, actor, now).map(Changes::from)
                }
            })
            .await?;
        self.pay_then_read(agg).await
    }

    pub async fn cancel(
        &self,
        id: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        let reason = &masked(reason);
        self.command("returns.CancelReturn", id, |agg, now| {
            agg.cancel(reason, actor, now).map(Changes::from)
        })
        .await
    }

    pub async fn close(&self, id: &str, actor: &Actor) -> Result<ReturnAggregate, ReturnsError> {
        self.command("returns.CloseReturn", id, |agg, now| {
            agg.close(actor, now).map(|()| Changes::default())
        })
        .await
    }
}
