//! KPI figures from a scripted history of tickets, dispatch and returns events, published
//! out of order and with duplicates, checked to the unit; and the weekly quality report.

use aftersales_platform::codes::timestamp;
use aftersales_protos::{
    care::v1::{self as pb, KpiDimension},
    dispatch::v1 as dispatch,
    events::v1::{self as ev, EventEnvelope, event_envelope::Payload},
    returns::v1 as returns,
    tickets::v1 as tickets,
};
use chrono::{DateTime, Duration, SubsecRound, Utc};

use crate::helpers::*;

struct Ticket<'a> {
    id: &'a str,
    customer: &'a str,
    order: &'a str,
    channel: tickets::Channel,
    severity: tickets::Severity,
    category: tickets::Category,
    at: DateTime<Utc>,
}

fn created(t: &Ticket) -> EventEnvelope {
    envelope(
        t.id,
        t.at,
        Payload::TicketCreated(ev::TicketCreated {
            ticket: Some(tickets::Ticket {
                id: t.id.into(),
                customer_id: t.customer.into(),
                order_id: t.order.into(),
                channel: t.channel as i32,
                category: t.category as i32,
                severity: t.severity as i32,
                created_at: Some(timestamp(t.at)),
                status: tickets::TicketStatus::New as i32,
                ..Default::default()
            }),
        }),
    )
}

fn status(
    id: &str,
    from: tickets::TicketStatus,
    to: tickets::TicketStatus,
    at: DateTime<Utc>,
) -> EventEnvelope {
    envelope(
        id,
        at,
        Payload::TicketStatusChanged(ev::TicketStatusChanged {
            ticket_id: id.into(),
            from: from as i32,
            to: to as i32,
            reason: String::new(),
            ..Default::default()
        }),
    )
}

fn resolved(id: &str, customer: &str, at: DateTime<Utc>) -> EventEnvelope {
    envelope(
        id,
        at,
        Payload::TicketResolved(ev::TicketResolved {
            ticket_id: id.into(),
            customer_id: customer.into(),
            resolved_at: Some(timestamp(at)),
            ..Default::default()
        }),
    )
}

fn breached(id: &str, clock: &str, kind: tickets::ClockKind, at: DateTime<Utc>) -> EventEnvelope {
    envelope(
        id,
        at,
        Payload::SlaBreached(ev::SlaBreached {
            ticket_id: id.into(),
            clock_id: clock.into(),
            kind: kind as i32,
            due_at: Some(timestamp(at)),
            breached_at: Some(timestamp(at)),
            ..Default::default()
        }),
    )
}

fn job_created(
    job: &str,
    ticket: &str,
    customer: &str,
    repeat_of: &str,
    at: DateTime<Utc>,
) -> EventEnvelope {
    envelope(
        job,
        at,
        Payload::JobCreated(ev::JobCreated {
            job_id: job.into(),
            ticket_id: ticket.into(),
            customer_id: customer.into(),
            product_line: "washer".into(),
            region_code: "310104".into(),
            repeat_of_job_id: repeat_of.into(),
            ..Default::default()
        }),
    )
}

fn job_completed(job: &str, ticket: &str, customer: &str, at: DateTime<Utc>) -> EventEnvelope {
    envelope(
        job,
        at,
        Payload::JobCompleted(ev::JobCompleted {
            job_id: job.into(),
            ticket_id: ticket.into(),
            customer_id: customer.into(),
            product_line: "washer".into(),
            outcome: dispatch::CompletionOutcome::Fixed as i32,
            completed_at: Some(timestamp(at)),
            ..Default::default()
        }),
    )
}

fn rate(r: &Option<pb::Rate>) -> (u64, u64) {
    let r = r.as_ref().expect("a rate");
    (r.numerator, r.denominator)
}

/// Ticket A (hotline complaint, fixed by job J1), B (hotline complaint about the same
/// washer a day later: breached, escalated, reopened, repaired again by J2 which repeats
/// J1), C (chat inquiry, still open), D (chat complaint with a return, resolved an hour
/// ago), E (before the period).
async fn scripted_history(backend: Backend) {
    let mut app = spawn(backend).await;
    let now = Utc::now().trunc_subsecs(0);
    let t0 = now - Duration::days(4);
    let h = |hours: i64| t0 + Duration::hours(hours);
    let m = |minutes: i64| t0 + Duration::minutes(minutes);
    use tickets::{Category::*, Channel::*, ClockKind, Severity::*, TicketStatus::*};
    let a = Ticket {
        id: "A",
        customer: "c1",
        order: "o1",
        channel: Hotline,
        severity: General,
        category: Complaint,
        at: h(0),
    };
    let b = Ticket {
        id: "B",
        customer: "c1",
        order: "o1",
        channel: Hotline,
        severity: Urgent,
        category: Complaint,
        at: h(24),
    };
    let c = Ticket {
        id: "C",
        customer: "c2",
        order: "o2",
        channel: Chat,
        severity: General,
        category: Inquiry,
        at: h(48),
    };
    let d = Ticket {
        id: "D",
        customer: "c3",
        order: "o3",
        channel: Chat,
        severity: Important,
        category: Complaint,
        at: h(72),
    };
    let e = Ticket {
        id: "E",
        customer: "c1",
        order: "o9",
        channel: Hotline,
        severity: General,
        category: Complaint,
        at: h(-24),
    };

    let a_events = [
        created(&a),
        status("A", New, Open, m(30)),
        job_created("J1", "A", "c1", "", h(1)),
        job_completed("J1", "A", "c1", m(90)),
        status("A", Open, Resolved, h(2)),
        resolved("A", "c1", h(2)),
    ];
    let b_breach = breached("B", "clk-B", ClockKind::Resolution, h(28));
    let b_events = vec![
        created(&b),
        status("B", New, Open, h(25)),
        job_created("J2", "B", "c1", "J1", h(26)),
        job_completed("J2", "B", "c1", h(28)),
        b_breach.clone(),
        // The same clock reported by a second (distinct) event: still one breach.
        breached("B", "clk-B", ClockKind::Resolution, h(28)),
        envelope(
            "B",
            h(28),
            Payload::TicketEscalated(ev::TicketEscalated {
                ticket_id: "B".into(),
                from: tickets::EscalationLevel::Agent as i32,
                to: tickets::EscalationLevel::Supervisor as i32,
                ..Default::default()
            }),
        ),
        resolved("B", "c1", h(29)),
        envelope(
            "B",
            h(30),
            Payload::TicketReopened(ev::TicketReopened {
                ticket_id: "B".into(),
                customer_id: "c1".into(),
                reopen_count: 1,
                reason: "still broken".into(),
                ..Default::default()
            }),
        ),
        status("B", Reopened, Open, m(30 * 60 + 30)),
        resolved("B", "c1", h(32)),
    ];
    let c_events = [
        created(&c),
        status("C", New, Open, m(48 * 60 + 10)),
        breached("C", "clk-C", ClockKind::Resolution, h(60)),
    ];
    let d_resolved_at = now - Duration::hours(1);
    let d_events = [
        created(&d),
        envelope(
            "R1",
            h(73),
            Payload::ReturnRequested(ev::ReturnRequested {
                r#return: Some(returns::Return {
                    id: "R1".into(),
                    order_id: "o3".into(),
                    customer_id: "c3".into(),
                    ticket_id: "D".into(),
                    lines: vec![returns::ReturnLine {
                        sku: "TV-55".into(),
                        product_line: "tv".into(),
                        quantity: 1,
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
        ),
        resolved("D", "c3", d_resolved_at),
    ];
    let e_events = [created(&e)];

    // Out of order: each ticket's events backwards, jobs before their tickets, and
    // duplicates of several deliveries.
    let mut script: Vec<EventEnvelope> = Vec::new();
    script.extend(b_events.iter().rev().cloned());
    script.extend(a_events.iter().rev().cloned());
    script.extend(d_events.iter().rev().cloned());
    script.extend(c_events.iter().cloned());
    script.extend(e_events.iter().cloned());
    script.push(b_breach);
    script.push(a_events[0].clone());
    script.push(d_events[2].clone());
    let distinct =
        a_events.len() + b_events.len() + c_events.len() + d_events.len() + e_events.len();
    app.publish(&script).await;
    app.wait_for_events(distinct as i64).await;
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM processed_events")
            .await,
        distinct as i64,
        "duplicates are applied once"
    );

    // Four resolutions → four follow-ups. D's is recorded within its window, A's late.
    let mut follow_ups = Vec::new();
    for ticket in ["A", "B", "D"] {
        follow_ups.extend(app.follow_ups(ticket).await);
    }
    assert_eq!(follow_ups.len(), 4);
    for (ticket, csat) in [("A", 3), ("D", 5)] {
        let f = follow_ups
            .iter()
            .find(|f| f.ticket_id == ticket)
            .expect("a follow-up");
        app.client
            .record_follow_up(pb::RecordFollowUpRequest {
                follow_up_id: f.id.clone(),
                reached: true,
                solved: true,
                satisfied: true,
                csat,
                actor: Some(agent()),
                ..Default::default()
            })
            .await
            .expect("recorded");
    }
    for (subject, id, csat) in [
        (pb::SurveySubject::Ticket, "A", 4),
        (pb::SurveySubject::RepairJob, "J2", 2),
    ] {
        app.client
            .record_survey(pb::RecordSurveyRequest {
                customer_id: "c1".into(),
                subject: subject as i32,
                subject_id: id.into(),
                csat,
                ..Default::default()
            })
            .await
            .expect("survey");
    }

    let from = t0;
    let to = now + Duration::hours(1);
    let all = app.kpis(from, to, KpiDimension::Unspecified).await;
    assert_eq!(all.len(), 1);
    let g = &all[0];
    assert_eq!(g.key, "all");
    assert_eq!(g.tickets, 4);
    let fr = g.first_response.as_ref().unwrap();
    assert_eq!(
        (fr.count, fr.mean_seconds, fr.p50_seconds, fr.p90_seconds),
        (3, 2_000.0, 1_800, 3_600)
    );
    let res = g.resolution.as_ref().unwrap();
    assert_eq!(
        (
            res.count,
            res.mean_seconds,
            res.p50_seconds,
            res.p90_seconds
        ),
        (3, 36_000.0, 18_000, 82_800)
    );
    assert_eq!(rate(&g.closure), (3, 4));
    assert_eq!(rate(&g.resolved_within_sla), (2, 3));
    assert_eq!(g.sla_breaches, 2);
    assert_eq!(rate(&g.escalation), (1, 4));
    assert_eq!(rate(&g.reopen), (1, 3));
    assert_eq!(rate(&g.repeat_complaint), (1, 3));
    assert_eq!(rate(&g.csat), (2, 4));
    assert_eq!(rate(&g.follow_up_within_window), (1, 4));
    assert_eq!(rate(&g.return_rate), (1, 4));
    assert_eq!(rate(&g.first_time_fix), (1, 2));
    assert!((g.closure.as_ref().unwrap().value - 0.75).abs() < 1e-12);

    let by_channel = app.kpis(from, to, KpiDimension::Channel).await;
    let keys: Vec<&str> = by_channel.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["chat", "hotline"]);
    let (chat, hotline) = (&by_channel[0], &by_channel[1]);
    assert_eq!((chat.tickets, hotline.tickets), (2, 2));
    assert_eq!(rate(&chat.closure), (1, 2));
    assert_eq!(rate(&hotline.closure), (2, 2));
    assert_eq!(rate(&chat.return_rate), (1, 2));
    assert_eq!(rate(&hotline.first_time_fix), (1, 2));
    assert_eq!(
        rate(&hotline.csat),
        (1, 3),
        "A's survey 4 and follow-up 3, J2's survey 2"
    );
    assert_eq!(rate(&chat.csat), (1, 1));

    let by_line = app.kpis(from, to, KpiDimension::ProductLine).await;
    let keys: Vec<&str> = by_line.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["tv", "unknown", "washer"]);
    app.stop().await;
}

#[tokio::test]
async fn kpis_are_exact_on_a_scripted_history_with_duplicates_and_disorder() {
    scripted_history(Backend::Postgres).await;
}

#[tokio::test]
async fn kpis_are_exact_on_sqlite_too() {
    scripted_history(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_quality_report_compares_the_week_with_the_one_before() {
    let mut app = spawn(Backend::Sqlite).await;
    let week = chrono::DateTime::parse_from_rfc3339("2026-11-16T00:00:00Z")
        .unwrap()
        .to_utc();
    use tickets::{Category::*, Channel::*, Severity::*};
    let ticket = |id: &'static str, category, days: i64| {
        created(&Ticket {
            id,
            customer: "c",
            order: id,
            channel: Hotline,
            severity: General,
            category,
            at: week + Duration::days(days),
        })
    };
    let script = vec![
        ticket("w1", Repair, 1),
        ticket("w2", Repair, 2),
        ticket("w3", Complaint, 3),
        ticket("p1", Complaint, -3),
        ticket("p2", Complaint, -2),
        ticket("q1", Inquiry, 1),
    ];
    app.publish(&script).await;
    app.wait_for_events(script.len() as i64).await;
    let report = app
        .client
        .get_quality_report(pb::GetQualityReportRequest {
            week_of: Some(timestamp(week + Duration::days(3))),
            top_movers: 2,
        })
        .await
        .expect("report")
        .into_inner();
    assert_eq!(report.week_start, Some(timestamp(week)));
    let faults: Vec<(String, u64, u64)> = report
        .by_fault_type
        .iter()
        .map(|q| (q.key.clone(), q.this_week, q.last_week))
        .collect();
    assert_eq!(
        faults,
        [("repair".into(), 2, 0), ("complaint".into(), 1, 2)]
    );
    assert_eq!(report.top_movers[0].key, "fault_type:repair");
    assert_eq!(report.top_movers[0].change, 2);
    app.stop().await;
}

/// Product facts named on the ticket group the KPIs and the quality report by batch,
/// SKU and region; a region the ticket names wins over its repair job's, and a job's
/// fills in where the ticket names none, whichever event comes first.
async fn product_facts_group_kpis_and_the_quality_report(backend: Backend) {
    let mut app = spawn(backend).await;
    let week = chrono::DateTime::parse_from_rfc3339("2026-11-16T00:00:00Z")
        .unwrap()
        .to_utc();
    use tickets::{Category::*, Channel::*, Severity::*};
    let ticket = |id: &'static str, days: i64, facts: [&str; 3]| {
        let mut e = created(&Ticket {
            id,
            customer: "c",
            order: id,
            channel: Hotline,
            severity: General,
            category: Complaint,
            at: week + Duration::days(days),
        });
        if let Some(Payload::TicketCreated(c)) = &mut e.payload
            && let Some(t) = &mut c.ticket
        {
            t.product = Some(tickets::ProductFacts {
                sku: facts[0].into(),
                batch: facts[1].into(),
                region_code: facts[2].into(),
                ..Default::default()
            });
        }
        e
    };
    let at = week + Duration::days(1);
    let script = vec![
        // The job's region comes first for t1 and loses to the ticket's.
        job_created("j1", "t1", "c", "", at),
        ticket("t1", 1, ["S1", "B1", "CN-SH"]),
        ticket("t2", 2, ["S2", "B1", "CN-BJ"]),
        ticket("t3", 3, ["S1", "B2", ""]),
        // t3 names no region: its job's fills it in.
        job_created("j3", "t3", "c", "", at),
        // Closed by remote diagnosis; j1 stays open.
        {
            let mut done = job_completed("j3", "t3", "c", at + Duration::hours(1));
            if let Some(Payload::JobCompleted(c)) = &mut done.payload {
                c.mode = dispatch::CompletionMode::Remote as i32;
            }
            done
        },
        ticket("p1", -3, ["S1", "B2", "CN-SH"]),
        ticket("p2", -2, ["", "", ""]),
    ];
    app.publish(&script).await;
    app.wait_for_events(script.len() as i64).await;

    let from = week - Duration::days(7);
    let to = week + Duration::days(7);
    let counts = |groups: Vec<pb::KpiGroup>| -> Vec<(String, u64)> {
        groups.into_iter().map(|g| (g.key, g.tickets)).collect()
    };
    let s = |v: &str| v.to_owned();
    assert_eq!(
        counts(app.kpis(from, to, KpiDimension::Batch).await),
        [(s("B1"), 2), (s("B2"), 2), (s("unknown"), 1)]
    );
    assert_eq!(
        counts(app.kpis(from, to, KpiDimension::Sku).await),
        [(s("S1"), 3), (s("S2"), 1), (s("unknown"), 1)]
    );
    assert_eq!(
        counts(app.kpis(from, to, KpiDimension::Region).await),
        [
            (s("310104"), 1),
            (s("CN-BJ"), 1),
            (s("CN-SH"), 2),
            (s("unknown"), 1)
        ]
    );

    let all = app.kpis(from, to, KpiDimension::Unspecified).await;
    let remote = all[0].remote_resolution.as_ref().expect("a rate");
    assert_eq!(
        (remote.numerator, remote.denominator),
        (1, 1),
        "the one completed job was remote"
    );

    let report = app
        .client
        .get_quality_report(pb::GetQualityReportRequest {
            week_of: Some(timestamp(week)),
            top_movers: 1,
        })
        .await
        .expect("report")
        .into_inner();
    let rows = |rows: &[pb::QualityCount]| -> Vec<(String, u64, u64)> {
        rows.iter()
            .map(|q| (q.key.clone(), q.this_week, q.last_week))
            .collect()
    };
    assert_eq!(
        rows(&report.by_batch),
        [(s("B1"), 2, 0), (s("B2"), 1, 1), (s("unknown"), 0, 1)]
    );
    assert_eq!(
        rows(&report.by_sku),
        [(s("S1"), 2, 1), (s("S2"), 1, 0), (s("unknown"), 0, 1)]
    );
    // B1 went from none to two: the largest move of any dimension.
    assert_eq!(report.top_movers[0].key, "batch:B1");
    assert_eq!(report.top_movers[0].change, 2);
    app.stop().await;
}

#[tokio::test]
async fn product_facts_group_kpis_and_the_quality_report_on_postgres() {
    product_facts_group_kpis_and_the_quality_report(Backend::Postgres).await;
}

#[tokio::test]
async fn product_facts_group_kpis_and_the_quality_report_on_sqlite() {
    product_facts_group_kpis_and_the_quality_report(Backend::Sqlite).await;
}
