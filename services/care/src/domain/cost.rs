//! The cost of after-sales, free of I/O: the cost entries care folds from dispatch's and
//! returns' events (labour and parts of repairs, logistics, compensation, and the value of
//! returned goods as the only sales value the events carry), grouped by ticket, product
//! line or region and by period, per currency; and parts turnover.
//!
//! Each entry has a natural id (the quote, the job's part at a site, the pickup, the
//! compensation, the return), so however often and in whatever order its events arrive it
//! is counted once and at the same instant. Money stays in integer minor units of its own
//! currency: amounts in different currencies are reported side by side, never converted.
//!
//! **Parts turnover** is dispatch's definition (`domain::parts::turnover` there): units
//! consumed by jobs in the period over the time-weighted average units on hand over it.
//! Care applies it to the stock of a region (or all stock) by summing the on-hand levels
//! of its parts and sites; there is no value of stock to weigh parts by, since parts have
//! prices only in partners' fee schedules.

use std::collections::{BTreeMap, BTreeSet};

use aftersales_platform::{money::Money, text_enum};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};

use super::quality::week_start;

text_enum!(
    /// What an entry counts as; `ReturnedGoods` is no cost but the order value of returned
    /// goods, the cost share's denominator.
    CostKind {
        Labour = "labour",
        Parts = "parts",
        Logistics = "logistics",
        Compensation = "compensation",
        ReturnedGoods = "returned_goods",
    }
);

text_enum!(
    CostDimension {
        All = "all",
        Ticket = "ticket",
        ProductLine = "product_line",
        Region = "region",
    }
);

text_enum!(
    CostPeriod {
        Whole = "whole",
        Day = "day",
        Week = "week",
        Month = "month",
    }
);

/// One cost (or returned-goods value) of a ticket, at its instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostEntry {
    /// Natural id, e.g. `labour:<quote id>`: one entry whatever the deliveries.
    pub id: String,
    pub kind: CostKind,
    /// Empty when the work had no ticket.
    pub ticket_id: String,
    /// What the event itself names; the ticket's own facts win when known.
    pub product_line: Option<String>,
    pub region: Option<String>,
    pub amount: Money,
    pub at: DateTime<Utc>,
}

/// A change of the quantity on hand of a part at a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockChange {
    pub part_id: String,
    pub site_id: String,
    pub region: String,
    pub delta: i64,
    pub consumed: i64,
    pub at: DateTime<Utc>,
}

/// Which costs a report covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CostFilter {
    pub product_line: Option<String>,
    pub region: Option<String>,
    pub ticket_id: Option<String>,
}

impl CostFilter {
    /// Stock belongs to no product line or ticket: filtering by them leaves turnover out.
    pub fn allows_turnover(&self) -> bool {
        self.product_line.is_none() && self.ticket_id.is_none()
    }
}

/// An entry with the dimensions it is grouped by (the ticket's, else its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedEntry {
    pub entry: CostEntry,
    pub product_line: Option<String>,
    pub region: Option<String>,
}

impl PlacedEntry {
    fn key(&self, by: CostDimension) -> String {
        let known = match by {
            CostDimension::All => return "all".into(),
            CostDimension::Ticket => Some(self.entry.ticket_id.clone()).filter(|t| !t.is_empty()),
            CostDimension::ProductLine => self.product_line.clone(),
            CostDimension::Region => self.region.clone(),
        };
        known.unwrap_or_else(|| "unknown".into())
    }

    pub fn passes(&self, filter: &CostFilter) -> bool {
        let matches = |wanted: &Option<String>, have: Option<&String>| {
            wanted.as_ref().is_none_or(|w| have == Some(w))
        };
        matches(&filter.product_line, self.product_line.as_ref())
            && matches(&filter.region, self.region.as_ref())
            && matches(&filter.ticket_id, Some(&self.entry.ticket_id))
    }
}

/// The figures of one group in one currency, in minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CostFigures {
    pub currency: String,
    pub labour: i64,
    pub parts: i64,
    pub logistics: i64,
    pub compensation: i64,
    pub returned_goods: i64,
}

impl CostFigures {
    pub fn total(&self) -> i64 {
        self.labour
            .saturating_add(self.parts)
            .saturating_add(self.logistics)
            .saturating_add(self.compensation)
    }

    /// Cost over the returned goods' value; `None` without such a value.
    pub fn share(&self) -> Option<f64> {
        (self.returned_goods > 0).then(|| self.total() as f64 / self.returned_goods as f64)
    }

    fn add(&mut self, kind: CostKind, minor: i64) {
        let slot = match kind {
            CostKind::Labour => &mut self.labour,
            CostKind::Parts => &mut self.parts,
            CostKind::Logistics => &mut self.logistics,
            CostKind::Compensation => &mut self.compensation,
            CostKind::ReturnedGoods => &mut self.returned_goods,
        };
        *slot = slot.saturating_add(minor);
    }
}

pub use aftersales_platform::stock::Turnover;
use aftersales_platform::stock::{self, OnHandChange};

#[derive(Debug, Clone, PartialEq)]
pub struct CostGroup {
    pub key: String,
    /// Set when grouped by period.
    pub period_start: Option<DateTime<Utc>>,
    /// One per currency, by currency code.
    pub figures: Vec<CostFigures>,
    pub tickets: u64,
    pub turnover: Option<Turnover>,
}

/// What a report asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostQuery {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub by: CostDimension,
    pub period: CostPeriod,
    pub filter: CostFilter,
}

/// The start of the period `at` falls in (UTC).
fn period_start(period: CostPeriod, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
    match period {
        CostPeriod::Whole => None,
        CostPeriod::Day => Some(midnight(at.date_naive())),
        CostPeriod::Week => Some(week_start(at)),
        CostPeriod::Month => at.date_naive().with_day(1).map(midnight),
    }
}

/// The first instant after the period starting at `start`.
fn period_end(period: CostPeriod, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match period {
        CostPeriod::Whole => None,
        CostPeriod::Day => Some(start + Duration::days(1)),
        CostPeriod::Week => Some(start + Duration::days(7)),
        CostPeriod::Month => {
            let d = start.date_naive();
            let next = if d.month() == 12 {
                NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)
            };
            next.map(|n| n.and_time(NaiveTime::MIN).and_utc())
        }
    }
}

/// A period of a report: its key (the period's start, `None` when ungrouped) and the
/// part `[from, to)` of it within the report's span.
type Span = (Option<DateTime<Utc>>, DateTime<Utc>, DateTime<Utc>);

/// The periods of the query's span, clipped to it.
fn periods(q: &CostQuery) -> Vec<Span> {
    let mut out = Vec::new();
    let mut start = period_start(q.period, q.from);
    let mut from = q.from;
    while from < q.to {
        let end = start
            .and_then(|s| period_end(q.period, s))
            .map_or(q.to, |e| e.min(q.to));
        out.push((start, from, end));
        if start.is_none() || end <= from {
            break;
        }
        from = end;
        start = Some(end);
    }
    out
}

#[derive(Default)]
struct Acc {
    figures: BTreeMap<String, CostFigures>,
    tickets: BTreeSet<String>,
}

/// The report's groups, by period then key. `entries` are those in `[from, to)` that
/// pass the filter; `stock` the stock changes of the span, each level at its start as
/// a change before it (none when turnover is not wanted), narrowed to the region filter.
pub fn report(q: &CostQuery, entries: &[PlacedEntry], stock: &[StockChange]) -> Vec<CostGroup> {
    let mut groups: BTreeMap<(Option<DateTime<Utc>>, String), Acc> = BTreeMap::new();
    for placed in entries {
        let e = &placed.entry;
        let acc = groups
            .entry((period_start(q.period, e.at), placed.key(q.by)))
            .or_default();
        acc.figures
            .entry(e.amount.currency.clone())
            .or_insert_with(|| CostFigures {
                currency: e.amount.currency.clone(),
                ..CostFigures::default()
            })
            .add(e.kind, e.amount.minor);
        if e.kind != CostKind::ReturnedGoods && !e.ticket_id.is_empty() {
            acc.tickets.insert(e.ticket_id.clone());
        }
    }
    let stock_keyed =
        matches!(q.by, CostDimension::All | CostDimension::Region) && q.filter.allows_turnover();
    let mut turnovers = BTreeMap::new();
    if stock_keyed {
        // The stock of each key, split once (in time order, as the store reads it).
        let mut by_key: BTreeMap<String, Vec<&StockChange>> = groups
            .keys()
            .map(|(_, k)| (k.clone(), Vec::new()))
            .collect();
        for c in stock {
            let key = match q.by {
                CostDimension::Region => c.region.clone(),
                _ => "all".to_owned(),
            };
            by_key.entry(key).or_default().push(c);
        }
        for (start, from, to) in periods(q) {
            for (key, changes) in &by_key {
                // A region without stock yet has no turnover (rather than a made-up 0);
                // one with stock but no costs appears for its turnover.
                let stocked = changes.iter().any(|c| c.at < to);
                if stocked || q.by == CostDimension::All {
                    groups.entry((start, key.clone())).or_default();
                    turnovers.insert((start, key.clone()), turnover(changes, from, to));
                }
            }
        }
    }
    groups
        .into_iter()
        .map(|((period_start, key), acc)| CostGroup {
            turnover: turnovers.get(&(period_start, key.clone())).copied(),
            key,
            period_start,
            figures: acc.figures.into_values().collect(),
            tickets: acc.tickets.len() as u64,
        })
        .collect()
}

/// Each part's turnover over `[from, to)`, by part id.
pub fn turnover_by_part(
    stock: &[StockChange],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(String, Turnover)> {
    let mut parts: BTreeMap<&str, Vec<&StockChange>> = BTreeMap::new();
    for c in stock {
        parts.entry(&c.part_id).or_default().push(c);
    }
    parts
        .into_iter()
        .map(|(part, changes)| (part.to_owned(), turnover(&changes, from, to)))
        .collect()
}

/// The turnover (dispatch's definition, `aftersales_platform::stock`) of the summed stock
/// of `changes` over `[from, to)`: the opening level is every change before `from`;
/// within, each level counts for as long as it lasted. Changes at one instant apply
/// together, so their order does not matter.
pub fn turnover(changes: &[&StockChange], from: DateTime<Utc>, to: DateTime<Utc>) -> Turnover {
    let opening: i64 = changes
        .iter()
        .filter(|c| c.at < from)
        .map(|c| c.delta)
        .sum();
    let mut within: Vec<OnHandChange> = changes
        .iter()
        .filter(|c| c.at >= from && c.at < to)
        .map(|c| OnHandChange {
            at: c.at,
            delta: c.delta,
            consumed: c.consumed,
        })
        .collect();
    within.sort_by_key(|c| c.at);
    stock::turnover(opening, &within, from, to)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(days: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + Duration::days(days)
    }

    fn entry(id: &str, kind: CostKind, ticket: &str, minor: i64, at: DateTime<Utc>) -> CostEntry {
        CostEntry {
            id: id.into(),
            kind,
            ticket_id: ticket.into(),
            product_line: None,
            region: None,
            amount: Money::new(minor, "CNY"),
            at,
        }
    }

    fn placed(e: CostEntry, line: &str, region: &str) -> PlacedEntry {
        PlacedEntry {
            entry: e,
            product_line: Some(line.into()),
            region: Some(region.into()),
        }
    }

    fn change(
        part: &str,
        region: &str,
        delta: i64,
        consumed: i64,
        at: DateTime<Utc>,
    ) -> StockChange {
        StockChange {
            part_id: part.into(),
            site_id: format!("site-{region}"),
            region: region.into(),
            delta,
            consumed,
            at,
        }
    }

    fn query(by: CostDimension, period: CostPeriod) -> CostQuery {
        CostQuery {
            from: t(0),
            to: t(30),
            by,
            period,
            filter: CostFilter::default(),
        }
    }

    #[test]
    fn costs_add_up_per_group_and_currency_with_the_share_only_when_known() {
        let entries = vec![
            placed(entry("a", CostKind::Labour, "T1", 100, t(1)), "tv", "SH"),
            placed(entry("b", CostKind::Parts, "T1", 50, t(2)), "tv", "SH"),
            placed(
                entry("c", CostKind::ReturnedGoods, "T1", 1000, t(2)),
                "tv",
                "SH",
            ),
            placed(
                entry("d", CostKind::Compensation, "T2", 30, t(3)),
                "washer",
                "BJ",
            ),
        ];
        let groups = report(
            &query(CostDimension::ProductLine, CostPeriod::Whole),
            &entries,
            &[],
        );
        assert_eq!(groups.len(), 2);
        let tv = &groups[0].figures[0];
        assert_eq!((tv.total(), tv.returned_goods), (150, 1000));
        assert_eq!(tv.share(), Some(0.15));
        assert_eq!(groups[1].figures[0].share(), None, "no sales value known");
        assert_eq!(groups[0].tickets, 1);
        assert!(groups[0].turnover.is_none(), "stock has no product line");
    }

    #[test]
    fn months_split_costs_and_turnover() {
        let q = CostQuery {
            from: t(0),
            to: t(61),
            ..query(CostDimension::Region, CostPeriod::Month)
        };
        let entries = vec![
            placed(entry("a", CostKind::Labour, "T1", 100, t(1)), "tv", "SH"),
            placed(entry("b", CostKind::Labour, "T1", 70, t(31)), "tv", "SH"),
        ];
        let stock = vec![
            change("P", "SH", 10, 0, t(-5)),
            change("P", "SH", -2, 2, t(15)),
            change("P", "BJ", 4, 0, t(40)),
        ];
        let groups = report(&q, &entries, &stock);
        let keys: Vec<(u32, &str)> = groups
            .iter()
            .map(|g| (g.period_start.unwrap().month(), g.key.as_str()))
            .collect();
        assert_eq!(keys, [(11, "SH"), (12, "BJ"), (12, "SH")]);
        let nov = groups[0].turnover.unwrap();
        assert_eq!(nov.consumed, 2);
        // 10 for 15 days, 8 for 15 days over 30 days.
        assert!((nov.average_on_hand - (150.0 + 120.0) / 30.0).abs() < 1e-9);
        let dec_sh = groups[2].turnover.unwrap();
        assert_eq!((dec_sh.consumed, dec_sh.average_on_hand), (0, 8.0));
        assert_eq!(groups[2].figures[0].labour, 70);
    }

    #[test]
    fn turnover_matches_dispatchs_definition() {
        // Dispatch's own example: 10 for 10 days, 20 for 10, 16 for 10 (4 consumed).
        let changes = [
            change("P", "SH", 10, 0, t(-1)),
            change("P", "SH", 10, 0, t(10)),
            change("P", "SH", -4, 4, t(20)),
            change("P", "SH", -16, 16, t(40)),
        ];
        let refs: Vec<&StockChange> = changes.iter().collect();
        let figure = turnover(&refs, t(0), t(30));
        assert_eq!(figure.consumed, 4);
        assert!((figure.turnover - 4.0 * 30.0 / 460.0).abs() < 1e-9);
        assert_eq!(turnover(&[], t(0), t(30)).turnover, 0.0);
    }

    #[test]
    fn weeks_start_on_monday_and_clip_to_the_span() {
        let q = query(CostDimension::All, CostPeriod::Week);
        let spans = periods(&q);
        assert_eq!(spans[0].1, t(0));
        assert_eq!(spans[0].2, t(1), "2026-11-01 is a Sunday");
        assert_eq!(spans.last().unwrap().2, t(30));
        assert!(spans.windows(2).all(|w| w[0].2 == w[1].1));
    }
}
