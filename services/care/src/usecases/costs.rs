//! The cost report over care's read model: the period's cost entries placed in the
//! product line and region of their ticket (else what their event named), filtered,
//! grouped and summed in `domain::cost`; and parts turnover from the stock changes.

use std::collections::HashMap;

use crate::{
    domain::{
        cost::{self, CostGroup, CostQuery, PlacedEntry, Turnover},
        facts::Dims,
    },
    error::CareError,
    store,
};

use super::CareCore;

#[derive(Debug, Clone)]
pub struct CostReport {
    pub groups: Vec<CostGroup>,
    /// Each part's turnover over the whole span, by part id.
    pub parts: Vec<(String, Turnover)>,
}

impl CareCore {
    pub async fn cost_report(&self, q: &CostQuery) -> Result<CostReport, CareError> {
        let db = self.db();
        let entries = store::cost_entries(db, q.from, q.to).await?;
        let mut tickets: Vec<String> = entries
            .iter()
            .filter(|e| !e.ticket_id.is_empty())
            .map(|e| e.ticket_id.clone())
            .collect();
        tickets.sort();
        tickets.dedup();
        let dims: HashMap<String, Dims> = store::tickets_by_id(db, &tickets)
            .await?
            .into_iter()
            .map(|t| (t.ticket_id, t.dims))
            .collect();
        // Every cost of a ticket lands where the ticket does; what the event named fills
        // in for a ticket care knows nothing of (or no ticket at all).
        let placed: Vec<PlacedEntry> = entries
            .into_iter()
            .map(|entry| {
                let known = dims.get(&entry.ticket_id);
                PlacedEntry {
                    product_line: known
                        .and_then(|d| d.product_line.clone())
                        .or_else(|| entry.product_line.clone()),
                    region: known
                        .and_then(|d| d.region.clone())
                        .or_else(|| entry.region.clone()),
                    entry,
                }
            })
            .filter(|p| p.passes(&q.filter))
            .collect();
        let stock = if q.filter.allows_turnover() {
            store::stock_changes(db, q.filter.region.as_deref(), q.from, q.to).await?
        } else {
            Vec::new()
        };
        Ok(CostReport {
            groups: cost::report(q, &placed, &stock),
            parts: cost::turnover_by_part(&stock, q.from, q.to),
        })
    }
}
