//! The stock rows a command locked, changed through the domain's [`Stock`] and written
//! back with their ledger lines and events (low-stock warnings, changes on hand).

use crate::{
    domain::{
        DomainError,
        parts::{Movement, MovementKind, Stock},
    },
    error::{DispatchError, not_found},
    events, store,
};

use super::InCommand;

/// One stock row locked by a command: as read, as changed, and the changes.
pub(super) struct Entry {
    before: Stock,
    pub(super) stock: Stock,
    pub(super) movements: Vec<Movement>,
}

impl Entry {
    pub(super) fn apply(
        &mut self,
        change: Result<Movement, DomainError>,
    ) -> Result<(), DispatchError> {
        self.movements.push(change?);
        Ok(())
    }
}

/// The stock rows a command locked.
pub(super) struct Locked(Vec<Entry>);

impl Locked {
    pub(super) async fn lock(
        cmd: &impl InCommand,
        keys: &[(String, String)],
    ) -> Result<Self, DispatchError> {
        let rows = store::lock_stock(cmd.txn(), keys, cmd.now()).await?;
        Ok(Self(
            rows.into_iter()
                .map(|stock| Entry {
                    before: stock.clone(),
                    stock,
                    movements: Vec::new(),
                })
                .collect(),
        ))
    }

    pub(super) fn find(&mut self, part_id: &str, site_id: &str) -> Option<&mut Entry> {
        self.0
            .iter_mut()
            .find(|e| e.stock.part_id == part_id && e.stock.site_id == site_id)
    }

    pub(super) fn row(
        &mut self,
        part_id: &str,
        site_id: &str,
    ) -> Result<&mut Entry, DispatchError> {
        self.find(part_id, site_id)
            .ok_or_else(|| not_found("stock", &format!("{part_id}@{site_id}")))
    }

    /// Changes the threshold of a locked row.
    pub(super) fn set_threshold(
        &mut self,
        part_id: &str,
        site_id: &str,
        threshold: i64,
    ) -> Result<(), DispatchError> {
        self.row(part_id, site_id)?.stock.threshold = threshold;
        Ok(())
    }

    /// Counts a locked row: the discrepancy and the figure before.
    pub(super) fn count(
        &mut self,
        part_id: &str,
        site_id: &str,
        counted: i64,
    ) -> Result<(i64, i64), DispatchError> {
        let entry = self.row(part_id, site_id)?;
        let expected = entry.stock.on_hand;
        let (discrepancy, movement) = entry.stock.count(counted)?;
        entry.movements.push(movement);
        Ok((expected, discrepancy))
    }

    /// Writes every changed row (guarded against negative figures), its ledger lines under
    /// `reference`, a `PartLowStock` for each row that just fell below its threshold and a
    /// `StockLevelChanged` for each whose quantity on hand changed (care's parts turnover);
    /// the rows as they are now, and how many warned.
    pub(super) async fn save(
        mut self,
        cmd: &mut impl InCommand,
        reference: &str,
    ) -> Result<(Vec<Stock>, u32), DispatchError> {
        let now = cmd.now();
        let mut warned = Vec::new();
        let mut levels = Vec::new();
        for entry in &mut self.0 {
            if entry.stock.check_low() {
                warned.push(entry.stock.clone());
            }
            if entry.stock == entry.before {
                continue;
            }
            if !store::save_stock(cmd.txn(), &entry.before, &entry.stock, now).await? {
                return Err(DomainError::Precondition(format!(
                    "stock of part {} at site {} would go negative",
                    entry.stock.part_id, entry.stock.site_id
                ))
                .into());
            }
            let moved: Vec<Movement> = entry
                .movements
                .iter()
                .filter(|m| (m.on_hand, m.reserved, m.in_transit) != (0, 0, 0))
                .copied()
                .collect();
            store::record_movements(cmd.txn(), &entry.stock, &moved, reference, now).await?;
            let delta = entry.stock.on_hand - entry.before.on_hand;
            if delta != 0 {
                let consumed = -moved
                    .iter()
                    .filter(|m| m.kind == MovementKind::Consume)
                    .map(|m| m.on_hand)
                    .sum::<i64>();
                let region_code = store::get_site(cmd.txn(), &entry.stock.site_id)
                    .await?
                    .map(|site| site.region_code)
                    .unwrap_or_default();
                levels.push(events::LevelChange {
                    part_id: entry.stock.part_id.clone(),
                    site_id: entry.stock.site_id.clone(),
                    region_code,
                    delta,
                    consumed,
                    on_hand: entry.stock.on_hand,
                });
            }
        }
        cmd.publish(events::encode_low_stock(&warned, now)).await?;
        cmd.publish(events::encode_stock_levels(&levels, now))
            .await?;
        let rows = self.0.into_iter().map(|e| e.stock).collect();
        Ok((rows, warned.len() as u32))
    }
}

/// Counts low-stock warnings once their command committed.
pub(super) fn warned(n: u32) {
    for _ in 0..n {
        aftersales_platform::metrics::part_low_stock();
    }
}
