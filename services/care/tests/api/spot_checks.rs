//! Spot checks and per-agent / per-group KPIs from a scripted history published through
//! the bus, out of order and redelivered: who had each ticket when it was resolved (from
//! TicketAssigned), the weekly sample at exactly the configured rate and the same under
//! redelivery and in another replica fed in another order, keyed scoring, and the KPIs
//! by agent and by group checked to the unit.

use std::collections::BTreeMap;

use aftersales_care::domain::spot_check::{Candidate, draw, quota};
use aftersales_platform::{codes::timestamp, status::field_violations};
use aftersales_protos::{
    care::v1::{self as pb, KpiDimension},
    events::v1::{self as ev, EventEnvelope, event_envelope::Payload},
    tickets::v1 as tickets,
};
use chrono::{DateTime, Duration, Utc};
use tonic::Code;

use crate::{
    helpers::*,
    ticket_events::{assigned, created, resolved, seed_busy_week, week},
};

const RATE: u32 = 25;

fn responded(id: &str, at: DateTime<Utc>) -> EventEnvelope {
    envelope(
        id,
        at,
        Payload::TicketStatusChanged(ev::TicketStatusChanged {
            ticket_id: id.into(),
            from: tickets::TicketStatus::New as i32,
            to: tickets::TicketStatus::Open as i32,
            ..Default::default()
        }),
    )
}

fn reopened(id: &str, at: DateTime<Utc>) -> EventEnvelope {
    envelope(
        id,
        at,
        Payload::TicketReopened(ev::TicketReopened {
            ticket_id: id.into(),
            customer_id: format!("c-{id}"),
            reopen_count: 1,
            ..Default::default()
        }),
    )
}

/// The scripted week (Tuesday 09:00 onwards), and who should be charged with what:
/// - T1: routed to a1 (g1), answered after 10 min, resolved after 2 h.
/// - T2: a1, handed over to a2 (g1) before it was resolved (5 h), reopened, resolved
///   again: a2's, with a2's reopen.
/// - T3: a3 (g2), resolved after 1 h, reassigned to a1 afterwards: still a3's.
/// - T4: waits in g1's queue, claimed by a1, answered, not resolved: a1's by now.
/// - T5: never assigned: "unassigned".
/// - B00..B39: a4 (g3) resolves forty tickets, the rate's exact case (25 % of 40 = 10).
fn script() -> (Vec<EventEnvelope>, Vec<Candidate>) {
    let t0 = week() + Duration::hours(24 + 9);
    let m = |minutes: i64| t0 + Duration::minutes(minutes);
    let mut events = vec![
        created("T1", m(0)),
        assigned("T1", "g1", "a1", "route", m(1)),
        responded("T1", m(10)),
        resolved("T1", m(120)),
        created("T2", m(60)),
        assigned("T2", "g1", "a1", "route", m(60)),
        responded("T2", m(90)),
        assigned("T2", "g1", "a2", "handover", m(120)),
        resolved("T2", m(360)),
        reopened("T2", m(420)),
        resolved("T2", m(540)),
        created("T3", m(120)),
        assigned("T3", "g2", "a3", "assign", m(120)),
        responded("T3", m(140)),
        resolved("T3", m(180)),
        assigned("T3", "g1", "a1", "handover", m(240)),
        created("T4", m(180)),
        assigned("T4", "g1", "", "route", m(180)),
        assigned("T4", "g1", "a1", "claim", m(185)),
        responded("T4", m(195)),
        created("T5", m(240)),
    ];
    let mut resolved_in_week = vec![
        candidate("T1", "a1", "g1", m(120)),
        candidate("T2", "a2", "g1", m(360)),
        candidate("T3", "a3", "g2", m(180)),
    ];
    for i in 0..40 {
        let id = format!("B{i:02}");
        let at = m(600 + i);
        events.push(created(&id, at));
        events.push(assigned(&id, "g3", "a4", "route", at));
        events.push(resolved(&id, at + Duration::minutes(30)));
        resolved_in_week.push(candidate(&id, "a4", "g3", at + Duration::minutes(30)));
    }
    (events, resolved_in_week)
}

fn candidate(id: &str, agent: &str, group: &str, at: DateTime<Utc>) -> Candidate {
    Candidate {
        ticket_id: id.into(),
        agent_id: agent.into(),
        group_id: group.into(),
        resolved_at: at,
    }
}

async fn spawn_at_rate(backend: Backend) -> TestApp {
    let mut setup = Setup::new(backend);
    setup.config.rules.spot_check_rate_percent = RATE;
    spawn_with(setup).await
}

impl TestApp {
    async fn spot_checks(&mut self, filter: pb::ListSpotChecksRequest) -> Vec<pb::SpotCheck> {
        let mut all = Vec::new();
        let mut request = pb::ListSpotChecksRequest {
            week_of: Some(timestamp(week() + Duration::days(3))),
            page: Some(aftersales_protos::common::v1::PageRequest {
                page_size: 4,
                page_token: String::new(),
            }),
            ..filter
        };
        loop {
            let page = self
                .client
                .list_spot_checks(request.clone())
                .await
                .expect("spot checks")
                .into_inner();
            assert_eq!(page.rate_percent, RATE);
            all.extend(page.spot_checks);
            let next = page.page.unwrap_or_default().next_page_token;
            if next.is_empty() {
                return all;
            }
            request.page = Some(aftersales_protos::common::v1::PageRequest {
                page_size: 4,
                page_token: next,
            });
        }
    }

    async fn sample(&mut self) -> Vec<(String, String, String)> {
        self.spot_checks(Default::default())
            .await
            .into_iter()
            .map(|c| (c.ticket_id, c.agent_id, c.group_id))
            .collect()
    }

    async fn score(
        &mut self,
        id: &str,
        score: u32,
        key: &str,
    ) -> Result<pb::SpotCheck, tonic::Status> {
        self.client
            .record_spot_check_score(pb::RecordSpotCheckScoreRequest {
                idempotency_key: key.into(),
                spot_check_id: id.into(),
                score,
                note: "greeting fine; promised a callback it did not make".into(),
            })
            .await
            .map(|r| r.into_inner())
    }
}

fn rows(sample: &[Candidate]) -> Vec<(String, String, String)> {
    sample
        .iter()
        .map(|c| (c.ticket_id.clone(), c.agent_id.clone(), c.group_id.clone()))
        .collect()
}

async fn spot_checks_and_agent_kpis(backend: Backend) {
    let (events, resolved_in_week) = script();
    let mut app = spawn_at_rate(backend).await;
    // Backwards, then a second delivery of every fifth event.
    let mut disorder: Vec<EventEnvelope> = events.iter().rev().cloned().collect();
    disorder.extend(events.iter().step_by(5).cloned());
    app.publish(&disorder).await;
    app.wait_for_events(events.len() as i64).await;

    // The sample: per agent, exactly ceil(25 % of n), at least one.
    let sample = app.sample().await;
    let expected = rows(&draw(&resolved_in_week, week(), RATE));
    assert_eq!(sample, expected, "the agent at resolution, the ranked draw");
    let mut per_agent: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, agent, _) in &sample {
        *per_agent.entry(agent.as_str()).or_default() += 1;
    }
    assert_eq!(
        per_agent.into_iter().collect::<Vec<_>>(),
        [("a1", 1), ("a2", 1), ("a3", 1), ("a4", 10)]
    );
    assert_eq!(quota(40, RATE), 10);

    // Every event delivered once more: the same sample, nothing applied twice.
    app.publish(&events).await;
    let marker = created("Z-marker", week() - Duration::days(30));
    app.publish(std::slice::from_ref(&marker)).await;
    app.wait_for_events(events.len() as i64 + 1).await;
    assert_eq!(app.sample().await, expected, "the same under redelivery");

    // Another replica fed in order draws the same tickets.
    let mut replica = spawn_at_rate(backend).await;
    replica.publish(&events).await;
    replica.wait_for_events(events.len() as i64).await;
    assert_eq!(replica.sample().await, expected, "the same in any order");
    replica.stop().await;

    // Filters.
    let a4 = app
        .spot_checks(pb::ListSpotChecksRequest {
            agent_id: "a4".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(a4.len(), 10);
    let g1: Vec<String> = app
        .spot_checks(pb::ListSpotChecksRequest {
            group_id: "g1".into(),
            ..Default::default()
        })
        .await
        .into_iter()
        .map(|c| c.ticket_id)
        .collect();
    assert_eq!(g1, ["T1", "T2"]);

    // Scoring: keyed, once per spot check, named by field when wrong.
    let t1 = format!("{}/T1", week().date_naive());
    let t2 = format!("{}/T2", week().date_naive());
    let first = app.score(&t1, 80, "score-t1").await.expect("scored");
    assert_eq!(first.state, pb::SpotCheckState::Scored as i32);
    assert_eq!((first.agent_id.as_str(), first.score), ("a1", 80));
    let again = app.score(&t1, 80, "score-t1").await.expect("a retry");
    assert_eq!(again, first, "a retry returns the first result");
    let twice = app.score(&t1, 30, "another-key").await.unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    let reused = app.score(&t2, 10, "score-t1").await.unwrap_err();
    assert_eq!(field_violations(&reused)[0].field, "idempotency_key");
    app.score(&t2, 60, "score-t2").await.expect("scored");
    let outside = format!("{}/T4", week().date_naive());
    assert_eq!(
        app.score(&outside, 50, "k-out").await.unwrap_err().code(),
        Code::NotFound,
        "an unresolved ticket is in no sample"
    );
    for (id, score, field) in [
        (t2.as_str(), 101, "score"),
        ("2026-11-17/T2", 50, "spot_check_id"),
        ("", 50, "spot_check_id"),
    ] {
        let err = app.score(id, score, "").await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(field_violations(&err)[0].field, field, "{id} {score}");
    }
    let no_note = app
        .client
        .record_spot_check_score(pb::RecordSpotCheckScoreRequest {
            spot_check_id: t2.clone(),
            score: 50,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_violations(&no_note)[0].field, "note");
    let no_week = app
        .client
        .list_spot_checks(pb::ListSpotChecksRequest::default())
        .await
        .unwrap_err();
    assert_eq!(field_violations(&no_week)[0].field, "week_of");
    let scored: Vec<String> = app
        .spot_checks(pb::ListSpotChecksRequest {
            state: pb::SpotCheckState::Scored as i32,
            ..Default::default()
        })
        .await
        .into_iter()
        .map(|c| c.ticket_id)
        .collect();
    assert_eq!(scored, ["T1", "T2"]);

    // CSAT of two resolutions.
    for (ticket, csat) in [("T1", 5), ("T2", 2)] {
        app.client
            .record_survey(pb::RecordSurveyRequest {
                customer_id: format!("c-{ticket}"),
                subject: pb::SurveySubject::Ticket as i32,
                subject_id: ticket.into(),
                csat,
                ..Default::default()
            })
            .await
            .expect("survey");
    }

    let from = week();
    let to = Utc::now() + Duration::hours(1);
    let by_agent = app.kpis(from, to, KpiDimension::Agent).await;
    let keys: Vec<&str> = by_agent.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["a1", "a2", "a3", "a4", "unassigned"]);
    let figures = |g: &pb::KpiGroup| {
        let fr = g.first_response.unwrap_or_default();
        let res = g.resolution.unwrap_or_default();
        let reopen = g.reopen.unwrap_or_default();
        let csat = g.csat.unwrap_or_default();
        let spot = g.spot_check_score.unwrap_or_default();
        (
            g.tickets,
            (fr.count, fr.mean_seconds),
            (res.count, res.mean_seconds),
            (reopen.numerator, reopen.denominator),
            (csat.numerator, csat.denominator),
            (spot.count, spot.mean),
        )
    };
    assert_eq!(
        figures(&by_agent[0]),
        (2, (2, 750.0), (1, 7_200.0), (0, 1), (1, 1), (1, 80.0)),
        "a1: T1 and T4 (claimed)"
    );
    assert_eq!(
        figures(&by_agent[1]),
        (1, (1, 1_800.0), (1, 18_000.0), (1, 1), (0, 1), (1, 60.0)),
        "a2: T2, handed over before its resolution, and its reopen"
    );
    assert_eq!(
        figures(&by_agent[2]),
        (1, (1, 1_200.0), (1, 3_600.0), (0, 1), (0, 0), (0, 0.0)),
        "a3: T3, reassigned only after its resolution"
    );
    assert_eq!(by_agent[3].tickets, 40);
    assert_eq!(
        by_agent[4].tickets, 1,
        "T5 (the marker is older than the period)"
    );

    let by_group = app.kpis(from, to, KpiDimension::Group).await;
    let keys: Vec<(&str, u64)> = by_group
        .iter()
        .map(|g| (g.key.as_str(), g.tickets))
        .collect();
    assert_eq!(keys, [("g1", 3), ("g2", 1), ("g3", 40), ("unassigned", 1)]);
    assert_eq!(
        figures(&by_group[0]),
        (3, (3, 1_100.0), (2, 12_600.0), (1, 2), (1, 2), (2, 70.0)),
        "g1: T1, T2, T4"
    );

    // The customer's export holds the spot check of their ticket, with the note.
    app.upsert(customer("c-T1")).await;
    let export = |app: &mut TestApp| {
        let mut client = app.client.clone();
        async move {
            client
                .export_customer_data(pb::ExportCustomerDataRequest {
                    customer_id: "c-T1".into(),
                    reader: Some(reader(true)),
                })
                .await
                .expect("exported")
                .into_inner()
                .spot_checks
                .into_iter()
                .map(|c| (c.ticket_id, c.score, c.note))
                .collect::<Vec<_>>()
        }
    };
    let note = "greeting fine; promised a callback it did not make".to_owned();
    assert_eq!(export(&mut app).await, [("T1".into(), 80, note.clone())]);
    // Erasing T1's customer blanks the reviewer's note (it may quote them); the score
    // stays.
    app.client
        .erase_customer(pb::EraseCustomerRequest {
            customer_id: "c-T1".into(),
            ..Default::default()
        })
        .await
        .expect("erased");
    let after: Vec<(String, u32, String)> = app
        .spot_checks(pb::ListSpotChecksRequest {
            state: pb::SpotCheckState::Scored as i32,
            ..Default::default()
        })
        .await
        .into_iter()
        .map(|c| (c.ticket_id, c.score, c.note))
        .collect();
    assert_eq!(
        after,
        [("T1".into(), 80, String::new()), ("T2".into(), 60, note)]
    );
    app.stop().await;
}

#[tokio::test]
async fn spot_checks_and_per_agent_kpis_on_postgres() {
    spot_checks_and_agent_kpis(Backend::Postgres).await;
}

#[tokio::test]
async fn spot_checks_and_per_agent_kpis_on_sqlite() {
    spot_checks_and_agent_kpis(Backend::Sqlite).await;
}

/// Facts folded before the spot-check migration get their resolution instant from their
/// stored body, so the week they were resolved in still samples them.
async fn facts_from_before_the_upgrade_are_sampled(backend: Backend) {
    let mut app = spawn_at_rate(backend).await;
    let at = week() + Duration::days(1);
    let script = [
        created("OLD-1", at),
        assigned("OLD-1", "g1", "a1", "route", at),
        resolved("OLD-1", at + Duration::hours(1)),
    ];
    app.publish(&script).await;
    app.wait_for_events(script.len() as i64).await;
    assert_eq!(app.sample().await.len(), 1);
    // As an older version left it: no column value, and the migration not yet run.
    app.rows("UPDATE ticket_facts SET resolved_at = NULL, agent_id = NULL, group_id = NULL")
        .await;
    app.rows("DELETE FROM seaql_migrations WHERE version = 'm20261202_000071_add_spot_checks'")
        .await;
    assert!(app.sample().await.is_empty());
    let url = app.url.clone();
    app.stop().await;

    let mut setup = Setup::new(backend);
    setup.url = Some(url);
    setup.config.rules.spot_check_rate_percent = RATE;
    let mut app = spawn_with(setup).await;
    assert_eq!(
        app.sample().await,
        [("OLD-1".to_owned(), "a1".to_owned(), "g1".to_owned())]
    );
    app.stop().await;
}

#[tokio::test]
async fn facts_from_before_the_upgrade_are_sampled_on_postgres() {
    facts_from_before_the_upgrade_are_sampled(Backend::Postgres).await;
}

#[tokio::test]
async fn facts_from_before_the_upgrade_are_sampled_on_sqlite() {
    facts_from_before_the_upgrade_are_sampled(Backend::Sqlite).await;
}

#[test]
fn the_sampling_rate_is_a_percentage_named_when_wrong() {
    use aftersales_care::app::settings_from_env;
    use aftersales_platform::config::Env;
    let env = |rate: Option<&str>| {
        let mut pairs = vec![
            ("DATABASE_URL", "sqlite://care.db?mode=rwc"),
            ("AUTH_MODE", "disabled"),
        ];
        if let Some(rate) = rate {
            pairs.push(("CARE_SPOT_CHECK_RATE_PERCENT", rate));
        }
        Env::from_pairs(pairs)
    };
    let (_, config) = settings_from_env(&env(None), None).expect("defaults");
    assert_eq!(config.rules.spot_check_rate_percent, 10);
    let (_, config) = settings_from_env(&env(Some("100")), None).expect("all");
    assert_eq!(config.rules.spot_check_rate_percent, 100);
    for bad in ["0", "101", "ten"] {
        let err = settings_from_env(&env(Some(bad)), None).unwrap_err();
        assert_eq!(err.name, "CARE_SPOT_CHECK_RATE_PERCENT", "{bad}");
    }
}

/// Not a check: how long the sample of a busy week takes to list and to score on, with
/// 20,000 tickets resolved by 50 agents. Run with `--ignored --nocapture`.
async fn measure_a_busy_week(backend: Backend) {
    let mut app = spawn_at_rate(backend).await;
    seed_busy_week(app.core.db(), false).await;
    let started = std::time::Instant::now();
    let page = app
        .client
        .list_spot_checks(pb::ListSpotChecksRequest {
            week_of: Some(timestamp(week())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let listed = started.elapsed();
    let started = std::time::Instant::now();
    let first = page.spot_checks[0].id.clone();
    app.score(&first, 90, "busy").await.unwrap();
    let scored = started.elapsed();
    println!(
        "{backend:?}: 20000 resolved, first page of {} listed in {listed:?}, scored in {scored:?}",
        page.spot_checks.len()
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
