//! The parts catalogue and stock administration: registering parts and the sites that
//! hold them, low-stock thresholds, stocktakes (counted quantities, discrepancies, stock
//! set to the count), stock levels and the turnover figure. Movements caused by jobs and
//! goods are in `stock`; why parts live in dispatch at all is said in `domain::parts`.

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::{Begun, Remembered};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;

use crate::{
    domain::{
        Actor, DomainError, new_id,
        parts::{self, CountLine, Part, Site, SiteKind, Stock, Stocktake, Turnover},
    },
    error::{DispatchError, not_found},
    store,
};

use super::{
    DispatchCore, forbid_partner, replayed,
    stock_rows::{Locked, warned},
};

const PART_SCOPE: &str = "dispatch.RegisterPart";
const SITE_SCOPE: &str = "dispatch.RegisterPartSite";
const THRESHOLD_SCOPE: &str = "dispatch.SetStockThreshold";
const STOCKTAKE_SCOPE: &str = "dispatch.RecordStocktake";

/// A site as registered: name, kind, region and, for an outlet, its partner.
pub struct NewSite {
    pub name: String,
    pub kind: SiteKind,
    pub region_code: String,
    pub partner_id: Option<String>,
}

impl DispatchCore {
    /// Registers a part. A retry with the same key answers with the first part.
    pub async fn register_part(
        &self,
        name: &str,
        fee_code: Option<String>,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<Part, DispatchError> {
        forbid_partner(actor, "register parts")?;
        self.pipeline
            .keyed(idem, || async {
                let cmd = match self.pipeline.begin(PART_SCOPE, idem).await? {
                    Begun::Replay(remembered) => {
                        let id = replayed(&remembered)?;
                        return store::get_part(self.db(), id)
                            .await?
                            .ok_or_else(|| not_found("part", id));
                    }
                    Begun::Fresh(cmd) => cmd,
                };
                let part = Part {
                    id: new_id(),
                    name: name.to_owned(),
                    fee_code: fee_code.clone(),
                    created_at: cmd.now(),
                };
                store::insert_part(cmd.txn(), &part).await?;
                cmd.commit(&self.pipeline, &Remembered::id(&part.id))
                    .await?;
                Ok(part)
            })
            .await
    }

    /// Registers a site; a partner outlet names an existing partner, other sites none. A
    /// retry with the same key answers with the first site.
    pub async fn register_site(
        &self,
        new: NewSite,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<Site, DispatchError> {
        forbid_partner(actor, "register sites")?;
        match (new.kind, &new.partner_id) {
            (SiteKind::PartnerOutlet, None) => {
                return Err(
                    DomainError::invalid("partner_id", "an outlet names its partner").into(),
                );
            }
            (SiteKind::CentralWarehouse | SiteKind::RegionalCentre, Some(_)) => {
                return Err(
                    DomainError::invalid("partner_id", "only a partner outlet has one").into(),
                );
            }
            _ => {}
        }
        self.pipeline
            .keyed(idem, || async {
                let cmd = match self.pipeline.begin(SITE_SCOPE, idem).await? {
                    Begun::Replay(remembered) => {
                        let id = replayed(&remembered)?;
                        return self.site(self.db(), id).await;
                    }
                    Begun::Fresh(cmd) => cmd,
                };
                if let Some(partner_id) = &new.partner_id
                    && store::get_partner(cmd.txn(), partner_id, false)
                        .await?
                        .is_none()
                {
                    return Err(not_found("partner", partner_id));
                }
                let site = Site {
                    id: new_id(),
                    name: new.name.clone(),
                    kind: new.kind,
                    region_code: new.region_code.clone(),
                    partner_id: new.partner_id.clone(),
                    created_at: cmd.now(),
                };
                store::insert_site(cmd.txn(), &site).await?;
                cmd.commit(&self.pipeline, &Remembered::id(&site.id))
                    .await?;
                Ok(site)
            })
            .await
    }

    async fn site<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        id: &str,
    ) -> Result<Site, DispatchError> {
        store::get_site(conn, id)
            .await?
            .ok_or_else(|| not_found("site", id))
    }

    pub(super) async fn require_site(
        &self,
        txn: &DatabaseTransaction,
        id: &str,
    ) -> Result<Site, DispatchError> {
        self.site(txn, id).await
    }

    pub(super) async fn require_parts(
        &self,
        txn: &DatabaseTransaction,
        ids: &[String],
    ) -> Result<(), DispatchError> {
        match store::unknown_parts(txn, ids).await?.first() {
            Some(unknown) => Err(not_found("part", unknown)),
            None => Ok(()),
        }
    }

    /// Sets the low-stock threshold of a part at a site (0: no warning); the stock is
    /// judged against it at once.
    pub async fn set_threshold(
        &self,
        part_id: &str,
        site_id: &str,
        threshold: i64,
        actor: &Actor,
    ) -> Result<Stock, DispatchError> {
        forbid_partner(actor, "set thresholds")?;
        let mut cmd = self.pipeline.begin_unkeyed(THRESHOLD_SCOPE).await?;
        self.require_site(cmd.txn(), site_id).await?;
        self.require_parts(cmd.txn(), &[part_id.to_owned()]).await?;
        let key = (part_id.to_owned(), site_id.to_owned());
        let mut stock = Locked::lock(&cmd, std::slice::from_ref(&key)).await?;
        stock.set_threshold(part_id, site_id, threshold)?;
        let (mut rows, n) = stock.save(&mut cmd, "threshold").await?;
        cmd.commit(&self.pipeline, &Remembered::id(part_id)).await?;
        warned(n);
        rows.pop().ok_or_else(|| not_found("stock", part_id))
    }

    /// Records a stocktake of a site: each counted line's discrepancy is reported and
    /// on hand set to the count. A retry with the same key answers with the first.
    pub async fn record_stocktake(
        &self,
        site_id: &str,
        counts: Vec<(String, i64)>,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<Stocktake, DispatchError> {
        forbid_partner(actor, "record stocktakes")?;
        self.pipeline
            .keyed(idem, || async {
                let mut cmd = match self.pipeline.begin(STOCKTAKE_SCOPE, idem).await? {
                    Begun::Replay(remembered) => {
                        let id = replayed(&remembered)?;
                        return store::get_stocktake(self.db(), id)
                            .await?
                            .ok_or_else(|| not_found("stocktake", id));
                    }
                    Begun::Fresh(cmd) => cmd,
                };
                self.require_site(cmd.txn(), site_id).await?;
                let part_ids: Vec<String> = counts.iter().map(|(p, _)| p.clone()).collect();
                self.require_parts(cmd.txn(), &part_ids).await?;
                let keys: Vec<(String, String)> = part_ids
                    .iter()
                    .map(|p| (p.clone(), site_id.to_owned()))
                    .collect();
                let mut stock = Locked::lock(&cmd, &keys).await?;
                let mut lines = Vec::new();
                for (i, (part_id, counted)) in counts.iter().enumerate() {
                    let (expected, discrepancy) =
                        stock
                            .count(part_id, site_id, *counted)
                            .map_err(|err| match err {
                                DispatchError::Domain(DomainError::Precondition(why)) => {
                                    DomainError::Precondition(format!("counts[{i}]: {why}")).into()
                                }
                                other => other,
                            })?;
                    lines.push(CountLine {
                        part_id: part_id.clone(),
                        expected,
                        counted: *counted,
                        discrepancy,
                    });
                }
                let take = Stocktake {
                    id: new_id(),
                    site_id: site_id.to_owned(),
                    lines,
                    counted_by: actor.id.clone(),
                    counted_at: cmd.now(),
                };
                store::insert_stocktake(cmd.txn(), &take).await?;
                let (_, n) = stock
                    .save(&mut cmd, &format!("stocktake:{}", take.id))
                    .await?;
                cmd.commit(&self.pipeline, &Remembered::id(&take.id))
                    .await?;
                warned(n);
                Ok(take)
            })
            .await
    }

    pub async fn list_stock(
        &self,
        site_id: Option<&str>,
        part_id: Option<&str>,
    ) -> Result<Vec<Stock>, DispatchError> {
        Ok(store::list_stock(self.db(), site_id, part_id).await?)
    }

    /// Parts turnover of `[from, to)` (see [`parts::turnover`]), at one site or all.
    pub async fn turnover(
        &self,
        part_id: &str,
        site_id: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Turnover, DispatchError> {
        if to <= from {
            return Err(DomainError::invalid("to", "must be after from").into());
        }
        if store::get_part(self.db(), part_id).await?.is_none() {
            return Err(not_found("part", part_id));
        }
        let (opening, changes) =
            store::on_hand_history(self.db(), part_id, site_id, from, to).await?;
        Ok(parts::turnover(opening, &changes, from, to))
    }
}
