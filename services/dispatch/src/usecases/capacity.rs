//! Whether a ranked partner still has room today, decided under its lock so concurrent
//! dispatches never push it past its capacity; and the partners covering a region, kept
//! parsed between dispatches while their version holds.
//!
//! Two ways to hold the partner (PostgreSQL):
//! - far from full: a shared lock. Every transaction that may still add an offer to the
//!   partner holds one (or the exclusive one below) and a server connection, so fewer than
//!   `max_connections` offers can be uncommitted; when the committed count plus that bound
//!   stays under the capacity, no interleaving can fill the partner, and placements to
//!   one partner no longer wait for each other's commit;
//! - otherwise: the exclusive lock, which waits for every shared holder, and the exact
//!   count.
//!
//! Each try runs in a savepoint, so a lock that did not lead to an offer is let go at
//! once. SQLite has one writer: the exact count, as before.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, TransactionTrait};

use crate::{
    domain::partner::Partner,
    error::DispatchError,
    store::{self, PartnerLock},
};

use super::{DispatchCore, dispatching::start_of_day};

impl DispatchCore {
    /// True when the partner exists and has room for one more offer today; the partner
    /// then stays locked (shared or exclusive) until `txn` ends. `taken_unlocked` is the
    /// count the ranking read without a lock: a partner near its capacity goes straight to
    /// the exact count.
    pub(super) async fn has_room(
        &self,
        txn: &DatabaseTransaction,
        partner_id: &str,
        taken_unlocked: u32,
        now: DateTime<Utc>,
    ) -> Result<bool, DispatchError> {
        if let Some(bound) = self.uncommitted_bound(txn).await? {
            let attempt = txn.begin().await?;
            let room = match self
                .locked_partner(&attempt, partner_id, PartnerLock::Shared)
                .await?
            {
                Some(p) if i64::from(taken_unlocked) + bound < capacity(&p) => {
                    taken(&attempt, &p, now).await? + bound < capacity(&p)
                }
                Some(_) => false,
                None => {
                    attempt.rollback().await?;
                    return Ok(false);
                }
            };
            if room {
                attempt.commit().await?;
                return Ok(true);
            }
            attempt.rollback().await?;
        }
        let attempt = txn.begin().await?;
        let room = match self
            .locked_partner(&attempt, partner_id, PartnerLock::Exclusive)
            .await?
        {
            Some(p) => taken(&attempt, &p, now).await? < capacity(&p),
            None => false,
        };
        if room {
            attempt.commit().await?;
        } else {
            attempt.rollback().await?;
        }
        Ok(room)
    }

    /// How many offers other transactions may hold uncommitted at most: PostgreSQL's
    /// `max_connections`, read once; `None` on SQLite.
    async fn uncommitted_bound<C: ConnectionTrait>(
        &self,
        conn: &C,
    ) -> Result<Option<i64>, DispatchError> {
        if conn.get_database_backend() != DbBackend::Postgres {
            return Ok(None);
        }
        let bound = self
            .max_connections
            .get_or_try_init(|| async {
                let row = conn
                    .query_one_raw(Statement::from_string(
                        DbBackend::Postgres,
                        "SELECT CAST(current_setting('max_connections') AS BIGINT) AS n",
                    ))
                    .await?;
                let n = match row {
                    Some(row) => row.try_get::<i64>("", "n")?,
                    None => return Err(sea_orm::DbErr::RecordNotFound("max_connections".into())),
                };
                Ok::<_, sea_orm::DbErr>(n)
            })
            .await?;
        Ok(Some(*bound))
    }

    /// Locks the partner's row and answers the partner, parsed once per version.
    async fn locked_partner<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: &str,
        how: PartnerLock,
    ) -> Result<Option<Partner>, DispatchError> {
        let Some(version) = store::lock_partner(conn, id, how).await? else {
            return Ok(None);
        };
        if let Some(p) = self.cached_partner(id, version) {
            return Ok(Some(p));
        }
        let found = store::get_partner(conn, id, false).await?;
        if let Some(p) = &found {
            self.remember_partner(p);
        }
        Ok(found)
    }

    /// Every partner covering a region, in id order: their versions in one query, and the
    /// bodies of those not parsed at that version yet.
    pub(super) async fn covering_partners<C: ConnectionTrait>(
        &self,
        conn: &C,
        region_code: &str,
    ) -> Result<Vec<Partner>, DispatchError> {
        let versions = store::partner_versions_covering(conn, region_code).await?;
        let mut partners = Vec::with_capacity(versions.len());
        let mut missing = Vec::new();
        for (id, version) in versions {
            match self.cached_partner(&id, version) {
                Some(p) => partners.push(p),
                None => missing.push(id),
            }
        }
        if !missing.is_empty() {
            for p in store::partners_by_id(conn, &missing).await? {
                self.remember_partner(&p);
                partners.push(p);
            }
            partners.sort_by(|a, b| a.id.cmp(&b.id));
        }
        Ok(partners)
    }

    fn cached_partner(&self, id: &str, version: i64) -> Option<Partner> {
        let cache = self
            .partners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(id)
            .filter(|p| i64::try_from(p.version).is_ok_and(|v| v == version))
            .cloned()
    }

    fn remember_partner(&self, p: &Partner) {
        let mut cache = self
            .partners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.insert(p.id.clone(), p.clone());
    }
}

fn capacity(p: &Partner) -> i64 {
    i64::from(p.spec.daily_capacity)
}

/// Offers the partner has taken today (open or accepted), as `conn` sees them.
async fn taken<C: ConnectionTrait>(
    conn: &C,
    p: &Partner,
    now: DateTime<Utc>,
) -> Result<i64, DispatchError> {
    Ok(
        store::taken_since(conn, std::slice::from_ref(&p.id), start_of_day(p, now))
            .await?
            .first()
            .map_or(0, |(_, n)| *n),
    )
}
