//! A partner's record and pay: scorecards over a period, and the monthly settlement of
//! its approved quotes (generated again until issued, then issued, disputed, paid; an
//! issue is published for the partner).

use aftersales_platform::pii::masked;
use aftersales_runtime::command::Remembered;
use chrono::{DateTime, Utc};

use crate::{
    domain::{
        Actor, DomainError, QuoteStatus, SettlementAction,
        partner::Partner,
        scorecard::{self, JobFact, OfferFact, Scorecard},
        settlement::{Settlement, SettlementLine, month_bounds},
    },
    error::{DispatchError, not_found},
    events, store,
};

use super::{DispatchCore, forbid_partner, paged};

const GENERATE_SCOPE: &str = "dispatch.GenerateSettlement";
const UPDATE_SCOPE: &str = "dispatch.UpdateSettlementStatus";

impl DispatchCore {
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
        let offers = store::offer_facts(self.db(), &ids, from, to).await?;
        let jobs = store::job_facts(self.db(), &ids, from, to).await?;
        Ok(card_of(&partner, from, to, &offers, &jobs))
    }

    /// Builds (or builds again, while a draft) the partner's settlement of a month from
    /// the approved quotes of the work it finished in that month.
    pub async fn generate_settlement(
        &self,
        partner_id: &str,
        month: &str,
        actor: &Actor,
    ) -> Result<Settlement, DispatchError> {
        forbid_partner(actor, "generate settlements")?;
        let partner = self.get_partner(partner_id).await?;
        let (from, to) = month_bounds(month, partner.spec.tz()?)?;
        let cmd = self.pipeline.begin_unkeyed(GENERATE_SCOPE).await?;
        let now = cmd.now();
        if from > now {
            cmd.abandon().await?;
            return Err(DomainError::invalid("month", "lies in the future").into());
        }
        let existing = match store::settlement_of(cmd.txn(), partner_id, month).await? {
            Some(s) => store::get_settlement(cmd.txn(), &s.id, true).await?,
            None => None,
        };
        let lines = store::settled_work(cmd.txn(), partner_id, from, to)
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
        store::save_settlement(cmd.txn(), &settlement).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&settlement.id))
            .await?;
        Ok(settlement)
    }

    /// A settlement; a partner sees only its own.
    pub async fn get_settlement(
        &self,
        id: &str,
        actor: &Actor,
    ) -> Result<Settlement, DispatchError> {
        store::get_settlement(self.db(), id, false)
            .await?
            .filter(|s| actor.partner().is_none_or(|p| p == s.partner_id))
            .ok_or_else(|| not_found("settlement", id))
    }

    /// A page of settlements, newest first; a partner sees only its own.
    pub async fn list_settlements(
        &self,
        partner_id: Option<&str>,
        before: Option<&str>,
        size: u64,
        actor: &Actor,
    ) -> Result<(Vec<Settlement>, Option<String>), DispatchError> {
        let partner_id = actor.partner().or(partner_id);
        let page = store::list_settlements(self.db(), partner_id, before, size + 1).await?;
        Ok(paged(page, size, |s| s.id.clone()))
    }

    /// Issues, disputes or pays a settlement.
    pub async fn update_settlement(
        &self,
        id: &str,
        action: SettlementAction,
        reason: &str,
        actor: &Actor,
    ) -> Result<Settlement, DispatchError> {
        forbid_partner(actor, "change settlements")?;
        let mut cmd = self.pipeline.begin_unkeyed(UPDATE_SCOPE).await?;
        let now = cmd.now();
        let mut settlement = store::get_settlement(cmd.txn(), id, true)
            .await?
            .ok_or_else(|| not_found("settlement", id))?;
        let changes = settlement.apply(action, &masked(reason), now)?;
        store::save_settlement(cmd.txn(), &settlement).await?;
        cmd.publish(events::encode_settlement(&settlement, &changes, now))
            .await?;
        cmd.commit(&self.pipeline, &Remembered::id(&settlement.id))
            .await?;
        Ok(settlement)
    }
}

/// One partner's scorecard from facts fetched for several.
pub(super) fn card_of(
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
