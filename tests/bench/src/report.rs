//! The bench's table: one row per figure, beside the limit it is compared with and
//! whether it met it; and the JSON form of the load statistics.

use serde_json::json;

use crate::load::Stats;

/// One line of the table.
pub struct Row {
    pub name: String,
    pub value: String,
    pub limit: String,
    /// `Some(met)` for a target; `None` for a figure reported only.
    pub met: Option<bool>,
}

pub fn row(name: &str, value: String, limit: &str, met: Option<bool>) -> Row {
    Row {
        name: name.into(),
        value,
        limit: limit.into(),
        met,
    }
}

/// Throughput and latency rows; with a reference and a minimum ratio, the ratio row too
/// (judged only when `judged`).
pub fn rpc_rows(
    name: &str,
    s: &Stats,
    floor: Option<&Stats>,
    min_ratio: Option<f64>,
    judged: bool,
) -> Vec<Row> {
    let mut rows = vec![row(
        &format!("{name} throughput"),
        format!("{:.0}/s ({} errors)", s.per_sec(), s.errors),
        "",
        None,
    )];
    rows.push(row(
        &format!("{name} latency p50/p99/p999"),
        format!(
            "{:.2} / {:.2} / {:.2} ms",
            s.pct_ms(50.0),
            s.pct_ms(99.0),
            s.pct_ms(99.9)
        ),
        "",
        None,
    ));
    if let Some(floor) = floor {
        let ratio = s.per_sec() / floor.per_sec();
        let limit = min_ratio
            .map(|min| format!(">= {min:.2}"))
            .unwrap_or_default();
        let met = min_ratio.filter(|_| judged).map(|min| ratio >= min);
        rows.push(row(
            &format!("{name} / reference"),
            format!("{ratio:.3}"),
            &limit,
            met,
        ));
    }
    rows
}

pub fn stats_json(s: &Stats) -> serde_json::Value {
    json!({
        "per_sec": s.per_sec(), "ok": s.ok, "errors": s.errors,
        "p50_ms": s.pct_ms(50.0), "p99_ms": s.pct_ms(99.0), "p999_ms": s.pct_ms(99.9),
    })
}

/// Prints the table under a heading.
pub fn print(heading: &str, rows: &[Row]) {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(10);
    println!("{heading}");
    println!(
        "{:width$}  {:>28}  {:>12}  result",
        "measure", "value", "target"
    );
    for r in rows {
        let result = match r.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        println!(
            "{:width$}  {:>28}  {:>12}  {result}",
            r.name, r.value, r.limit
        );
    }
}

pub fn rows_json(rows: &[Row]) -> serde_json::Value {
    rows.iter()
        .map(|r| json!({"name": r.name, "value": r.value, "target": r.limit, "met": r.met}))
        .collect()
}
