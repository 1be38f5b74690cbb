//! Clock lateness in the KPIs (`milestones`): a scripted history of `SlaClockMet` events
//! published through the bus — early, on time and late, several kinds, two agents, a
//! redelivery under the same event id and a republication under a new one, met clocks
//! before their ticket's creation and assignment — checked to the unit per agent, per
//! group and per kind.

use aftersales_platform::codes::timestamp;
use aftersales_protos::{
    care::v1::{self as pb, KpiDimension},
    events::v1::{self as ev, EventEnvelope, event_envelope::Payload},
    tickets::v1::ClockKind,
};
use chrono::{DateTime, Duration, Utc};

use crate::{
    helpers::*,
    ticket_events::{assigned, created, resolved, seed_busy_week, week},
};

/// One met clock: `late_ms` is actual minus standard (negative: early); the event names
/// `agent`, who had the ticket when it was met.
struct Met<'a> {
    ticket: &'a str,
    clock: &'a str,
    cycle: u32,
    kind: ClockKind,
    late_ms: i64,
    at: DateTime<Utc>,
    agent: &'a str,
}

fn met(m: &Met) -> EventEnvelope {
    envelope(
        m.ticket,
        m.at,
        Payload::SlaClockMet(ev::SlaClockMet {
            ticket_id: m.ticket.into(),
            clock_id: m.clock.into(),
            kind: m.kind as i32,
            due_at: Some(timestamp(m.at - Duration::milliseconds(m.late_ms))),
            met_at: Some(timestamp(m.at)),
            actual_minus_standard_ms: m.late_ms,
            group_id: "g-event".into(),
            agent_id: m.agent.into(),
            cycle: m.cycle,
            ..Default::default()
        }),
    )
}

/// (kind, met, met late, mean seconds, max seconds) of each entry, in order.
type Lateness = (ClockKind, u64, u64, f64, f64);

fn lateness(g: &pb::KpiGroup) -> Vec<Lateness> {
    g.milestones
        .iter()
        .map(|l| {
            (
                ClockKind::try_from(l.kind).expect("a known kind"),
                l.met,
                l.met_late,
                l.mean_actual_minus_standard_seconds,
                l.max_actual_minus_standard_seconds,
            )
        })
        .collect()
}

fn of<'a>(groups: &'a [pb::KpiGroup], key: &str) -> &'a pb::KpiGroup {
    groups
        .iter()
        .find(|g| g.key == key)
        .unwrap_or_else(|| panic!("a group {key}"))
}

/// The week (Monday 00:00 to the next): T1 is a1's (g1) throughout; T2 is routed to a1
/// and handed to a2 (g2) before it is resolved, so all its clocks are a2's, even the
/// first response the event says a1 met; T3 was created the week before and resolved by
/// a2 in this one, so its clocks met in the week count, the one met before does not.
async fn clock_lateness_per_agent_and_kind(backend: Backend) {
    let mut app = spawn(backend).await;
    let t0 = week() + Duration::hours(24 + 9);
    let m = |minutes: i64| t0 + Duration::minutes(minutes);
    use ClockKind::*;
    let clock = |ticket, clock, cycle, kind, late_ms, at, agent| {
        met(&Met {
            ticket,
            clock,
            cycle,
            kind,
            late_ms,
            at,
            agent,
        })
    };

    let t1 = [
        created("T1", m(0)),
        assigned("T1", "g1", "a1", "route", m(1)),
        clock("T1", "k1-fr", 0, FirstResponse, -600_000, m(20), "a1"),
        clock("T1", "k1-rec", 0, Record, 1_800_000, m(40), "a1"),
        // Exactly on time: met, not late.
        clock("T1", "k1-rem", 0, Remedy, 0, m(100), "a1"),
        clock("T1", "k1-res", 0, Resolution, -3_600_000, m(120), "a1"),
        resolved("T1", m(120)),
        // Met at the end of the period, which is not in it.
        clock(
            "T1",
            "k1-fb",
            0,
            Feedback,
            500,
            week() + Duration::days(7),
            "a1",
        ),
    ];
    let t2_first_response = clock("T2", "k2-fr", 0, FirstResponse, 120_000, m(70), "a1");
    let t2 = [
        created("T2", m(60)),
        assigned("T2", "g1", "a1", "route", m(60)),
        t2_first_response.clone(),
        assigned("T2", "g2", "a2", "route", m(100)),
        clock("T2", "k2-rec", 0, Record, 600_000, m(110), "a2"),
        // One next-reply clock, two cycles: each is a met clock of its own.
        clock("T2", "k2-nr", 1, NextReply, 300_000, m(200), "a2"),
        clock("T2", "k2-nr", 2, NextReply, -60_000, m(300), "a2"),
        resolved("T2", m(360)),
    ];
    let before = week() - Duration::days(2);
    let t3 = [
        created("T3", before),
        assigned("T3", "g2", "a2", "route", before),
        clock(
            "T3",
            "k3-fr",
            0,
            FirstResponse,
            -1_000,
            before + Duration::hours(1),
            "a2",
        ),
        clock("T3", "k3-res", 0, Resolution, 7_200_000, m(400), "a2"),
        resolved("T3", m(400)),
    ];

    // T2's met clocks come before its creation and assignments; T1's events backwards.
    let mut script: Vec<EventEnvelope> = Vec::new();
    script.extend(t2[2..].iter().cloned());
    script.extend(t2[..2].iter().cloned());
    script.extend(t1.iter().rev().cloned());
    script.extend(t3.iter().cloned());
    // The bus delivers T1's record clock again (the same event id), and tickets publishes
    // T2's first response once more under a new event id (the same clock and cycle).
    script.push(t1[3].clone());
    let mut republished = t2_first_response.clone();
    republished.id = uuid::Uuid::now_v7().to_string();
    script.push(republished);
    let distinct = t1.len() + t2.len() + t3.len() + 1;
    app.publish(&script).await;
    app.wait_for_events(distinct as i64).await;
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM processed_events")
            .await,
        distinct as i64,
        "the same event id is applied once"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM met_clocks").await,
        11,
        "one row per clock and cycle, the republished one included once"
    );

    let (from, to) = (week(), week() + Duration::days(7));
    let by_agent = app.kpis(from, to, KpiDimension::Agent).await;
    let keys: Vec<&str> = by_agent.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["a1", "a2"]);
    assert_eq!(
        lateness(of(&by_agent, "a1")),
        [
            (FirstResponse, 1, 0, -600.0, -600.0),
            (Resolution, 1, 0, -3_600.0, -3_600.0),
            (Record, 1, 1, 1_800.0, 1_800.0),
            (Remedy, 1, 0, 0.0, 0.0),
        ],
        "a1: T1's clocks met in the week, in kind order; the feedback at the end is out"
    );
    let a2 = [
        (FirstResponse, 1, 1, 120.0, 120.0),
        (Resolution, 1, 1, 7_200.0, 7_200.0),
        (Record, 1, 1, 600.0, 600.0),
        (NextReply, 2, 1, 120.0, 300.0),
    ];
    assert_eq!(
        lateness(of(&by_agent, "a2")),
        a2,
        "a2: all of T2's (its first response once) and T3's resolution, not T3's \
         first response met the week before"
    );
    assert_eq!(
        of(&by_agent, "a2").tickets,
        1,
        "T2 only: T3, created the week before, counts for its clocks alone"
    );

    let by_group = app.kpis(from, to, KpiDimension::Group).await;
    let keys: Vec<&str> = by_group.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["g1", "g2"], "the ticket's groups, not the event's");
    assert_eq!(lateness(of(&by_group, "g2")), a2);

    let all = app.kpis(from, to, KpiDimension::Unspecified).await;
    assert_eq!(
        lateness(&all[0]),
        [
            (FirstResponse, 2, 1, -240.0, 120.0),
            (Resolution, 2, 1, 1_800.0, 7_200.0),
            (Record, 2, 2, 1_200.0, 1_800.0),
            (Remedy, 1, 0, 0.0, 0.0),
            (NextReply, 2, 1, 120.0, 300.0),
        ]
    );

    // A week with no met clock has no entries.
    let earlier = app
        .kpis(
            from - Duration::days(14),
            from - Duration::days(7),
            KpiDimension::Unspecified,
        )
        .await;
    assert!(earlier.iter().all(|g| g.milestones.is_empty()));
    app.stop().await;
}

#[tokio::test]
async fn clock_lateness_per_agent_and_kind_on_postgres() {
    clock_lateness_per_agent_and_kind(Backend::Postgres).await;
}

#[tokio::test]
async fn clock_lateness_per_agent_and_kind_on_sqlite() {
    clock_lateness_per_agent_and_kind(Backend::Sqlite).await;
}

/// Not a check: how long `GetKpis` by agent takes over a busy week, 20,000 tickets of 50
/// agents, first without met clocks and then with three met clocks each (60,000). Run
/// with `--ignored --nocapture`.
async fn measure_a_busy_week(backend: Backend) {
    use aftersales_care::domain::clock_lateness::MetClock;
    use sea_orm::TransactionTrait;
    let mut app = spawn(backend).await;
    let (from, to) = (week(), week() + Duration::days(7));
    seed_busy_week(app.core.db(), true).await;
    let started = std::time::Instant::now();
    app.kpis(from, to, KpiDimension::Agent).await;
    let without = started.elapsed();

    let txn = app.core.db().begin().await.unwrap();
    for i in 0..20_000 {
        let at = week() + Duration::seconds(i * 25);
        for (n, kind) in [
            ClockKind::FirstResponse,
            ClockKind::Record,
            ClockKind::Resolution,
        ]
        .into_iter()
        .enumerate()
        {
            let clock = MetClock {
                ticket_id: format!("busy-{i:05}"),
                clock_id: format!("k-{i}-{n}"),
                cycle: 0,
                kind: kind as i32,
                due_at: Some(at),
                met_at: at + Duration::minutes(n as i64),
                actual_minus_standard_ms: (i % 7 - 3) * 60_000,
            };
            aftersales_care::store::insert_met_clock(&txn, &clock)
                .await
                .unwrap();
        }
    }
    txn.commit().await.unwrap();
    let started = std::time::Instant::now();
    let groups = app.kpis(from, to, KpiDimension::Agent).await;
    let with = started.elapsed();
    assert_eq!(groups.len(), 50);
    println!(
        "{backend:?}: GetKpis by agent over 20000 tickets in {without:?}; with 60000 met \
         clocks in {with:?}"
    );
    app.stop().await;
}

#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn measure_a_busy_week_on_postgres() {
    measure_a_busy_week(Backend::Postgres).await;
}

#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn measure_a_busy_week_on_sqlite() {
    measure_a_busy_week(Backend::Sqlite).await;
}
