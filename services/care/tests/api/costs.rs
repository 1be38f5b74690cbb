//! The cost of after-sales from a scripted history of dispatch's and returns' events,
//! published through the bus out of order and with duplicates (a redelivered envelope, a
//! quote reported at completion and again after a later review), checked to the minor
//! unit: grouped by ticket, product line, region and month, filtered, per currency, with
//! the cost share where returned goods give a sales value, and parts turnover; and bad
//! input named by its field.

use aftersales_platform::codes::timestamp;
use aftersales_protos::{
    care::v1::{self as pb, CostDimension, CostPeriod},
    common::v1 as common,
    events::v1::{self as ev, EventEnvelope, event_envelope::Payload},
    returns::v1 as returns,
    tickets::v1 as tickets,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use tonic::Code;

use crate::helpers::*;

fn cny(minor: i64) -> Option<common::Money> {
    money(minor, "CNY")
}

fn money(minor: i64, currency: &str) -> Option<common::Money> {
    Some(common::Money {
        minor_units: minor,
        currency: currency.into(),
    })
}

/// 2026-11-01 00:00 UTC plus `days` and `hours`.
fn day(days: i64, hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
        + Duration::days(days)
        + Duration::hours(hours)
}

fn ticket(id: &str, line: &str, region: &str, at: DateTime<Utc>) -> EventEnvelope {
    envelope(
        id,
        at,
        Payload::TicketCreated(ev::TicketCreated {
            ticket: Some(tickets::Ticket {
                id: id.into(),
                customer_id: format!("c-{id}"),
                order_id: format!("o-{id}"),
                category: tickets::Category::Repair as i32,
                created_at: Some(timestamp(at)),
                status: tickets::TicketStatus::New as i32,
                product: Some(tickets::ProductFacts {
                    product_line: line.into(),
                    region_code: region.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
    )
}

fn quote(
    id: &str,
    labour: i64,
    parts: i64,
    company_pays: bool,
    at: DateTime<Utc>,
) -> ev::QuoteCost {
    ev::QuoteCost {
        quote_id: id.into(),
        labour: cny(labour),
        parts: cny(parts),
        company_pays,
        approved_at: Some(timestamp(at)),
    }
}

struct Repair<'a> {
    job: &'a str,
    ticket: &'a str,
    line: &'a str,
    region: &'a str,
    quotes: Vec<ev::QuoteCost>,
    parts: Vec<ev::ConsumedPart>,
    at: DateTime<Utc>,
}

fn repair(r: Repair) -> EventEnvelope {
    envelope(
        r.job,
        r.at,
        Payload::RepairCosted(ev::RepairCosted {
            job_id: r.job.into(),
            ticket_id: r.ticket.into(),
            partner_id: "partner-1".into(),
            product_line: r.line.into(),
            region_code: r.region.into(),
            quotes: r.quotes,
            parts: r.parts,
            completed_at: Some(timestamp(r.at)),
            ..Default::default()
        }),
    )
}

fn consumed(part: &str, site: &str, quantity: u64, unit: Option<i64>) -> ev::ConsumedPart {
    ev::ConsumedPart {
        part_id: part.into(),
        site_id: site.into(),
        quantity,
        unit_value: unit.and_then(cny),
    }
}

fn stock(part: &str, region: &str, delta: i64, used: u64, at: DateTime<Utc>) -> EventEnvelope {
    envelope(
        part,
        at,
        Payload::StockLevelChanged(ev::StockLevelChanged {
            part_id: part.into(),
            site_id: format!("site-{region}"),
            region_code: region.into(),
            on_hand_delta: delta,
            consumed: used,
            on_hand: 0,
            changed_at: Some(timestamp(at)),
        }),
    )
}

/// T1 (tv, SH) repaired by J1: quote Q1 the company pays (labour 150.00, partner's parts
/// 30.00), Q2 the customer pays (no cost), two pumps from stock at 25.00, a belt without
/// a price; Q3 approved after completion (labour 20.00), reported with Q1 again; a coupon
/// of 30.00 on 1 December and a cash compensation of USD 7.00. T2 (washer, BJ): a return
/// of goods worth 2,000.00, its pickup 12.00, cash compensation 50.00. T3 names nothing,
/// its job J3 names fridge / GZ: labour 80.00 in December. Pumps: 10 at SH before the
/// period, 2 consumed on 5 Nov, 4 received on 20 Nov; 6 received at BJ on 10 Nov.
fn history() -> Vec<EventEnvelope> {
    let j1 = repair(Repair {
        job: "J1",
        ticket: "T1",
        line: "tv",
        region: "SH",
        quotes: vec![
            quote("Q1", 15_000, 3_000, true, day(3, 0)),
            quote("Q2", 9_999, 0, false, day(3, 1)),
        ],
        parts: vec![
            consumed("PUMP", "site-SH", 2, Some(2_500)),
            consumed("BELT", "site-SH", 1, None),
        ],
        at: day(4, 0),
    });
    let redelivered = j1.clone();
    vec![
        stock("PUMP", "SH", 4, 0, day(19, 0)),
        redelivered,
        ticket("T1", "tv", "SH", day(1, 0)),
        repair(Repair {
            job: "J1",
            ticket: "T1",
            line: "tv",
            region: "SH",
            quotes: vec![
                quote("Q1", 15_000, 3_000, true, day(3, 0)),
                quote("Q3", 2_000, 0, true, day(19, 0)),
            ],
            parts: vec![],
            at: day(4, 0),
        }),
        ticket("T2", "washer", "BJ", day(2, 0)),
        ticket("T3", "", "", day(2, 0)),
        envelope(
            "R1",
            day(5, 0),
            Payload::PickupBooked(ev::PickupBooked {
                return_id: "R1".into(),
                ticket_id: "T2".into(),
                order_id: "o-T2".into(),
                fee: cny(1_200),
                booked_at: Some(timestamp(day(5, 0))),
            }),
        ),
        envelope(
            "C1",
            day(6, 0),
            Payload::CompensationPaid(ev::CompensationPaid {
                compensation_id: "C1".into(),
                ticket_id: "T2".into(),
                amount: cny(5_000),
                ..Default::default()
            }),
        ),
        envelope(
            "C2",
            day(30, 0),
            Payload::CompensationGranted(ev::CompensationGranted {
                compensation_id: "C2".into(),
                ticket_id: "T1".into(),
                amount: cny(3_000),
                ..Default::default()
            }),
        ),
        envelope(
            "C3",
            day(7, 0),
            Payload::CompensationPaid(ev::CompensationPaid {
                compensation_id: "C3".into(),
                ticket_id: "T1".into(),
                amount: money(700, "USD"),
                ..Default::default()
            }),
        ),
        envelope(
            "R1",
            day(5, 0),
            Payload::ReturnRequested(ev::ReturnRequested {
                r#return: Some(returns::Return {
                    id: "R1".into(),
                    ticket_id: "T2".into(),
                    order_id: "o-T2".into(),
                    lines: vec![returns::ReturnLine {
                        sku: "W-1".into(),
                        product_line: "washer".into(),
                        quantity: 1,
                        unit_price: cny(200_000),
                        delivered_at: None,
                    }],
                    created_at: Some(timestamp(day(5, 0))),
                    ..Default::default()
                }),
            }),
        ),
        repair(Repair {
            job: "J3",
            ticket: "T3",
            line: "fridge",
            region: "GZ",
            quotes: vec![quote("Q4", 8_000, 0, true, day(31, 0))],
            parts: vec![],
            at: day(32, 0),
        }),
        stock("PUMP", "BJ", 6, 0, day(9, 0)),
        stock("PUMP", "SH", -2, 2, day(4, 0)),
        stock("PUMP", "SH", 10, 0, day(-1, 0)),
        j1,
    ]
}

async fn report(app: &mut TestApp, request: pb::GetCostReportRequest) -> pb::CostReport {
    app.client
        .get_cost_report(request)
        .await
        .expect("cost report")
        .into_inner()
}

fn span(by: CostDimension, period: CostPeriod) -> pb::GetCostReportRequest {
    pb::GetCostReportRequest {
        from: Some(timestamp(day(0, 0))),
        to: Some(timestamp(day(61, 0))),
        group_by: by as i32,
        period: period as i32,
        ..Default::default()
    }
}

/// `(currency, labour, parts, logistics, compensation, total, returned goods)`.
type Row = (String, i64, i64, i64, i64, i64, i64);

fn rows(g: &pb::CostGroup) -> Vec<Row> {
    let m = |m: &Option<common::Money>| m.as_ref().map_or(-1, |m| m.minor_units);
    g.figures
        .iter()
        .map(|f| {
            (
                f.currency.clone(),
                m(&f.labour),
                m(&f.parts),
                m(&f.logistics),
                m(&f.compensation),
                m(&f.total),
                m(&f.returned_goods_value),
            )
        })
        .collect()
}

fn row(currency: &str, figures: [i64; 6]) -> Row {
    let [l, p, g, c, t, r] = figures;
    (currency.into(), l, p, g, c, t, r)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

async fn scripted_costs(backend: Backend) {
    let mut app = spawn(backend).await;
    let events = history();
    let mut ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    app.publish(&events).await;
    app.wait_for_events(ids.len() as i64).await;

    let by_line = report(
        &mut app,
        span(CostDimension::ProductLine, CostPeriod::Unspecified),
    )
    .await;
    let keys: Vec<&str> = by_line.groups.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["fridge", "tv", "washer"]);
    let (fridge, tv, washer) = (&by_line.groups[0], &by_line.groups[1], &by_line.groups[2]);
    assert_eq!(rows(fridge), [row("CNY", [8_000, 0, 0, 0, 8_000, 0])]);
    assert_eq!(
        rows(tv),
        [
            row("CNY", [17_000, 8_000, 0, 3_000, 28_000, 0]),
            row("USD", [0, 0, 0, 700, 700, 0]),
        ],
        "Q1 once, Q2 is the customer's, the belt has no price"
    );
    assert_eq!(tv.figures[0].cost_share, None, "no sales value for tv");
    assert_eq!(
        rows(washer),
        [row("CNY", [0, 0, 1_200, 5_000, 6_200, 200_000])]
    );
    assert!(close(
        washer.figures[0].cost_share.unwrap(),
        6_200.0 / 200_000.0
    ));
    assert_eq!((fridge.tickets, tv.tickets, washer.tickets), (1, 1, 1));
    assert!(
        by_line.groups.iter().all(|g| g.parts_turnover.is_none()),
        "stock belongs to no product line"
    );

    let by_ticket = report(
        &mut app,
        span(CostDimension::Ticket, CostPeriod::Unspecified),
    )
    .await;
    let keys: Vec<&str> = by_ticket.groups.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["T1", "T2", "T3"]);

    // By region and month: T1 in SH, T2 in BJ, T3's job in GZ.
    let monthly = report(&mut app, span(CostDimension::Region, CostPeriod::Month)).await;
    let keys: Vec<(u32, &str)> = monthly
        .groups
        .iter()
        .map(|g| {
            let start = g.period_start.as_ref().unwrap().seconds;
            let month = DateTime::from_timestamp(start, 0).unwrap();
            (chrono::Datelike::month(&month), g.key.as_str())
        })
        .collect();
    assert_eq!(
        keys,
        [(11, "BJ"), (11, "SH"), (12, "BJ"), (12, "GZ"), (12, "SH")]
    );
    let g = &monthly.groups;
    assert_eq!(
        rows(&g[0]),
        [row("CNY", [0, 0, 1_200, 5_000, 6_200, 200_000])]
    );
    assert_eq!(
        rows(&g[1]),
        [
            row("CNY", [17_000, 8_000, 0, 0, 25_000, 0]),
            row("USD", [0, 0, 0, 700, 700, 0]),
        ]
    );
    assert!(
        rows(&g[2]).is_empty(),
        "BJ has stock but no cost in December"
    );
    assert_eq!(rows(&g[3]), [row("CNY", [8_000, 0, 0, 0, 8_000, 0])]);
    assert_eq!(rows(&g[4]), [row("CNY", [0, 0, 0, 3_000, 3_000, 0])]);
    // November at SH: 10 for 4 days, 8 for 15, 12 for 11; 2 consumed.
    let sh_nov = g[1].parts_turnover.as_ref().unwrap();
    assert_eq!(sh_nov.consumed_units, 2);
    assert!(close(sh_nov.average_on_hand_units, 292.0 / 30.0));
    assert!(close(sh_nov.turnover, 2.0 * 30.0 / 292.0));
    let bj_nov = g[0].parts_turnover.as_ref().unwrap();
    assert!(close(bj_nov.average_on_hand_units, 6.0 * 21.0 / 30.0));
    assert_eq!((bj_nov.consumed_units, bj_nov.turnover), (0, 0.0));
    let sh_dec = g[4].parts_turnover.as_ref().unwrap();
    assert!(close(sh_dec.average_on_hand_units, 12.0));
    assert!(g[3].parts_turnover.is_none(), "no stock in GZ");

    // Filtered to SH: its costs and its stock only; each part's turnover over the span.
    let sh = report(
        &mut app,
        pb::GetCostReportRequest {
            region_code: "SH".into(),
            ..span(CostDimension::Unspecified, CostPeriod::Unspecified)
        },
    )
    .await;
    assert_eq!(sh.groups.len(), 1);
    assert_eq!(
        rows(&sh.groups[0]),
        [
            row("CNY", [17_000, 8_000, 0, 3_000, 28_000, 0]),
            row("USD", [0, 0, 0, 700, 700, 0]),
        ]
    );
    let all = sh.groups[0].parts_turnover.as_ref().unwrap();
    assert!(close(
        all.average_on_hand_units,
        (40.0 + 120.0 + 12.0 * 42.0) / 61.0
    ));
    assert_eq!(sh.parts.len(), 1);
    assert_eq!(sh.parts[0].part_id, "PUMP");
    assert!(close(
        sh.parts[0].turnover.as_ref().unwrap().turnover,
        2.0 * 61.0 / 664.0
    ));

    // Filtered to a product line: no turnover at all.
    let washer_only = report(
        &mut app,
        pb::GetCostReportRequest {
            product_line: "washer".into(),
            ..span(CostDimension::Unspecified, CostPeriod::Unspecified)
        },
    )
    .await;
    assert_eq!(
        rows(&washer_only.groups[0]),
        [row("CNY", [0, 0, 1_200, 5_000, 6_200, 200_000])]
    );
    assert!(washer_only.groups[0].parts_turnover.is_none());
    assert!(washer_only.parts.is_empty());

    // A second delivery of everything changes no figure.
    app.publish(&history()).await;
    app.wait_for_events(2 * ids.len() as i64).await;
    let again = report(
        &mut app,
        span(CostDimension::ProductLine, CostPeriod::Unspecified),
    )
    .await;
    assert_eq!(again.groups, by_line.groups);
    app.stop().await;
}

#[tokio::test]
async fn costs_are_exact_on_a_scripted_history_on_postgres() {
    scripted_costs(Backend::Postgres).await;
}

#[tokio::test]
async fn costs_are_exact_on_a_scripted_history_on_sqlite() {
    scripted_costs(Backend::Sqlite).await;
}

#[tokio::test]
async fn bad_cost_report_requests_name_the_field() {
    let mut app = spawn(Backend::Sqlite).await;
    let cases = [
        (pb::GetCostReportRequest::default(), "from"),
        (
            pb::GetCostReportRequest {
                to: Some(timestamp(day(-1, 0))),
                ..span(CostDimension::Unspecified, CostPeriod::Unspecified)
            },
            "to",
        ),
        (
            pb::GetCostReportRequest {
                to: Some(timestamp(day(400, 0))),
                ..span(CostDimension::Unspecified, CostPeriod::Unspecified)
            },
            "to",
        ),
        (
            pb::GetCostReportRequest {
                group_by: 42,
                ..span(CostDimension::Unspecified, CostPeriod::Unspecified)
            },
            "group_by",
        ),
        (
            pb::GetCostReportRequest {
                period: 42,
                ..span(CostDimension::Unspecified, CostPeriod::Unspecified)
            },
            "period",
        ),
        (
            pb::GetCostReportRequest {
                ticket_id: "x".repeat(201),
                ..span(CostDimension::Unspecified, CostPeriod::Unspecified)
            },
            "ticket_id",
        ),
    ];
    for (request, field) in cases {
        let bad = app
            .client
            .get_cost_report(request)
            .await
            .expect_err("refused");
        assert_eq!(bad.code(), Code::InvalidArgument, "{field}");
        assert!(bad.message().contains(field), "{field}: {}", bad.message());
    }
    app.stop().await;
}
