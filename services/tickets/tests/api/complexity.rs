//! Severity against complexity (issue 16): the default-policy matrix against the
//! handbooks' numbers, SetComplexity (activity line, clocks recomputed exactly, keyed
//! retries, bad input, who may call it). On both backends, with the service's clock set
//! by the test so every instant is exact.

use std::{sync::Arc, time::Duration};

use aftersales_platform::{
    CancellationToken,
    auth::{AuthSettings, DevIssuer, roles},
    clock::ManualClock,
    status::field_violations,
};
use aftersales_protos::{common::v1 as common, tickets::v1 as pb};
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tonic::{Code, Request};

use crate::helpers::{Backend, Options, TestApp, clock, create_request, millis, spawn_with};

pub(crate) const HOUR_MS: i64 = 3_600_000;

/// The clocks' targets and instants, without the lateness, which moves with "now".
pub(crate) fn fixed(mut status: pb::SlaStatus) -> pb::SlaStatus {
    for c in &mut status.clocks {
        c.lateness_seconds = 0;
    }
    status
}

/// Monday 2030-01-07, 10:00 in Shanghai: two hours into the default calendar's day.
pub(crate) fn monday_10am() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-07T02:00:00Z")
        .unwrap()
        .to_utc()
}

/// Three working days (24 working hours, 09:00–12:00 and 13:00–18:00 on weekdays) from
/// Monday 10:00: Monday 7 h, Tuesday 8 h, Wednesday 8 h, Thursday 09:00–10:00.
fn three_working_days_from_monday_10am() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-10T02:00:00Z")
        .unwrap()
        .to_utc()
}

pub(crate) async fn spawn_at(
    backend: Backend,
    auth: Option<AuthSettings>,
) -> (TestApp, ManualClock) {
    let manual = ManualClock::at(monday_10am());
    let app = spawn_with(
        backend,
        Options {
            run_worker: false,
            clock: Some(Arc::new(manual.clone())),
            auth,
            ..Options::default()
        },
    )
    .await;
    (app, manual)
}

pub(crate) async fn open(
    app: &mut TestApp,
    channel: pb::Channel,
    severity: pb::Severity,
    complexity: pb::Complexity,
) -> pb::Ticket {
    let mut request = create_request(channel, "");
    request.severity = severity as i32;
    request.complexity = complexity as i32;
    app.client
        .create_ticket(request)
        .await
        .unwrap()
        .into_inner()
}

/// One cell of the handbook's table: first response and resolution as (seconds, calendar,
/// due instant), and the level the ticket starts at.
#[derive(Debug, PartialEq, Eq)]
struct Targets {
    first_response: (u64, String, i64),
    resolution: (u64, String, i64),
    level: i32,
}

fn observed(status: &pb::SlaStatus, ticket: &pb::Ticket) -> Targets {
    let cell = |kind| {
        let c = clock(status, kind);
        (c.target_seconds, c.calendar_id.clone(), millis(&c.due_at))
    };
    Targets {
        first_response: cell(pb::ClockKind::FirstResponse),
        resolution: cell(pb::ClockKind::Resolution),
        level: ticket.escalation_level,
    }
}

/// The handbooks, written out independently of the service's policies: every ticket is
/// answered within 1 h; negative online sentiment (marketplace review, social) is solved
/// within 24 h; otherwise simple problems within 24 h around the clock and complex ones
/// within 3 working days; urgent tickets start with a supervisor.
fn handbook(channel: pb::Channel, severity: pb::Severity, complexity: pb::Complexity) -> Targets {
    let start = monday_10am().timestamp_millis();
    let online = matches!(
        channel,
        pb::Channel::MarketplaceReview | pb::Channel::Social
    );
    let resolution = if complexity == pb::Complexity::Complex && !online {
        (
            86_400,
            "cn-workdays".to_owned(),
            three_working_days_from_monday_10am().timestamp_millis(),
        )
    } else {
        (86_400, String::new(), start + 24 * HOUR_MS)
    };
    let level = if severity == pb::Severity::Urgent {
        pb::EscalationLevel::Supervisor
    } else {
        pb::EscalationLevel::Agent
    };
    Targets {
        first_response: (3_600, String::new(), start + HOUR_MS),
        resolution,
        level: level as i32,
    }
}

const CHANNELS: [pb::Channel; 7] = [
    pb::Channel::Hotline,
    pb::Channel::Chat,
    pb::Channel::Email,
    pb::Channel::App,
    pb::Channel::MarketplaceReview,
    pb::Channel::Store,
    pb::Channel::Social,
];
pub(crate) const SEVERITIES: [pb::Severity; 3] = [
    pb::Severity::Urgent,
    pb::Severity::Important,
    pb::Severity::General,
];
const COMPLEXITIES: [pb::Complexity; 2] = [pb::Complexity::Simple, pb::Complexity::Complex];

async fn default_policy_matrix(backend: Backend) {
    let (mut app, _clock) = spawn_at(backend, None).await;
    let mut seen = Vec::new();
    for channel in CHANNELS {
        for complexity in COMPLEXITIES {
            for severity in SEVERITIES {
                let t = open(&mut app, channel, severity, complexity).await;
                assert_eq!(t.complexity, complexity as i32);
                let status = app.sla(&t.id).await;
                let got = observed(&status, &t);
                assert_eq!(
                    got,
                    handbook(channel, severity, complexity),
                    "{channel:?} {severity:?} {complexity:?} under {}@{}",
                    status.policy_id,
                    status.policy_version
                );
                seen.push((channel, complexity, severity, got));
            }
        }
    }
    // Read back: no urgent ticket is due later than a general one of the same cell.
    for (channel, complexity, severity, urgent) in &seen {
        if *severity != pb::Severity::Urgent {
            continue;
        }
        let general = seen
            .iter()
            .find(|(ch, cx, s, _)| ch == channel && cx == complexity && *s == pb::Severity::General)
            .map(|(.., t)| t)
            .unwrap();
        assert!(urgent.first_response.2 <= general.first_response.2);
        assert!(urgent.resolution.2 <= general.resolution.2);
    }
    // A ticket created without a complexity is simple.
    let mut request = create_request(pb::Channel::Email, "");
    request.complexity = pb::Complexity::Unspecified as i32;
    let t = app
        .client
        .create_ticket(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.complexity, pb::Complexity::Simple as i32);
    app.stop().await;
}

#[tokio::test]
async fn the_default_policies_follow_the_handbooks_on_postgres() {
    default_policy_matrix(Backend::Postgres).await;
}

#[tokio::test]
async fn the_default_policies_follow_the_handbooks_on_sqlite() {
    default_policy_matrix(Backend::Sqlite).await;
}

fn set(ticket_id: &str, key: &str, complexity: pb::Complexity) -> pb::SetComplexityRequest {
    pb::SetComplexityRequest {
        idempotency_key: key.into(),
        ticket_id: ticket_id.into(),
        complexity: complexity as i32,
        reason: "needs a lab test".into(),
        actor: Some(common::Actor {
            id: "sup-1".into(),
            role: common::ActorRole::Supervisor as i32,
        }),
    }
}

async fn activity(app: &mut TestApp, ticket_id: &str) -> Vec<pb::ActivityEntry> {
    app.client
        .list_activity(pb::ListActivityRequest {
            ticket_id: ticket_id.into(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries
}

fn change(field: &str, before: &str, after: &str) -> pb::FieldChange {
    pb::FieldChange {
        field: field.into(),
        before: before.into(),
        after: after.into(),
    }
}

async fn set_complexity(backend: Backend) {
    let (mut app, manual) = spawn_at(backend, None).await;
    let start = monday_10am().timestamp_millis();
    let t = open(
        &mut app,
        pb::Channel::Hotline,
        pb::Severity::General,
        pb::Complexity::Unspecified,
    )
    .await;
    assert_eq!(
        (t.sla_policy_id.as_str(), t.complexity),
        ("default", pb::Complexity::Simple as i32)
    );
    let first_before = clock(&fixed(app.sla(&t.id).await), pb::ClockKind::FirstResponse);

    // Two hours in, the agent finds the problem complex.
    manual.advance(chrono::Duration::hours(2));
    let complex = app
        .client
        .set_complexity(set(&t.id, "cx-1", pb::Complexity::Complex))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(complex.complexity, pb::Complexity::Complex as i32);
    assert_eq!(
        (complex.sla_policy_id.as_str(), complex.sla_policy_version),
        ("complex", 1)
    );
    assert_eq!(
        complex.escalation_level,
        pb::EscalationLevel::Agent as i32,
        "complexity does not decide hand-off"
    );
    // The desk can list by complexity.
    for (complexity, listed) in [(pb::Complexity::Complex, 1), (pb::Complexity::Simple, 0)] {
        let page = app
            .client
            .list_tickets(pb::ListTicketsRequest {
                complexity: complexity as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.tickets.len(), listed, "{complexity:?}");
    }
    let status = fixed(app.sla(&t.id).await);
    let resolution = clock(&status, pb::ClockKind::Resolution);
    assert_eq!(resolution.state, pb::ClockState::Running as i32);
    assert_eq!(
        (resolution.target_seconds, resolution.calendar_id.as_str()),
        (86_400, "cn-workdays")
    );
    // Counted from the ticket's start on the working-day calendar: due Thursday 10:00;
    // the 75 % warning after 18 working hours, Wednesday 12:00 (04:00 UTC).
    assert_eq!(
        millis(&resolution.due_at),
        three_working_days_from_monday_10am().timestamp_millis()
    );
    assert_eq!(
        millis(&resolution.warning_at),
        DateTime::parse_from_rfc3339("2030-01-09T04:00:00Z")
            .unwrap()
            .timestamp_millis()
    );
    assert_eq!(millis(&resolution.started_at), start);
    let first = clock(&status, pb::ClockKind::FirstResponse);
    assert_eq!(first, first_before, "the first-response target is the same");

    let log = activity(&mut app, &t.id).await;
    let last = log.last().unwrap();
    assert_eq!(
        (
            last.action.as_str(),
            last.actor_id.as_str(),
            last.actor_role.as_str(),
            last.detail.as_str()
        ),
        (
            "set_complexity",
            "sup-1",
            "supervisor",
            "complex: needs a lab test"
        )
    );
    assert_eq!(
        last.changes,
        [
            change("complexity", "simple", "complex"),
            change("sla_policy", "default@1", "complex@1"),
        ]
    );
    assert_eq!(millis(&last.at), start + 2 * HOUR_MS);

    // A retry with the key answers with the ticket and changes nothing, even later.
    manual.advance(chrono::Duration::minutes(1));
    let again = app
        .client
        .set_complexity(set(&t.id, "cx-1", pb::Complexity::Complex))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, complex);
    assert_eq!(activity(&mut app, &t.id).await.len(), log.len());
    assert_eq!(fixed(app.sla(&t.id).await), status);
    // The key with another request is refused, naming the key.
    let err = app
        .client
        .set_complexity(set(&t.id, "cx-1", pb::Complexity::Simple))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(field_violations(&err)[0].field, "idempotency_key");

    // The same complexity again changes nothing.
    let same = app
        .client
        .set_complexity(set(&t.id, "cx-2", pb::Complexity::Complex))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same, complex);
    assert_eq!(fixed(app.sla(&t.id).await), status);

    // Back to simple: 24 hours around the clock from the start again.
    let simple = app
        .client
        .set_complexity(set(&t.id, "cx-3", pb::Complexity::Simple))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(simple.sla_policy_id, "default");
    let resolution = clock(&app.sla(&t.id).await, pb::ClockKind::Resolution);
    assert_eq!(
        (
            resolution.calendar_id.as_str(),
            millis(&resolution.due_at),
            millis(&resolution.warning_at)
        ),
        ("", start + 24 * HOUR_MS, start + 18 * HOUR_MS)
    );

    // An urgent ticket made complex keeps its supervisor and gets 3 working days.
    let urgent = open(
        &mut app,
        pb::Channel::Email,
        pb::Severity::Urgent,
        pb::Complexity::Simple,
    )
    .await;
    let urgent = app
        .client
        .set_complexity(set(&urgent.id, "cx-4", pb::Complexity::Complex))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(urgent.sla_policy_id, "urgent-complex");
    assert_eq!(
        urgent.escalation_level,
        pb::EscalationLevel::Supervisor as i32
    );

    // Bad input is named by its field; an unknown ticket is not found.
    let mut unspecified = set(&t.id, "", pb::Complexity::Complex);
    unspecified.complexity = pb::Complexity::Unspecified as i32;
    let err = app.client.set_complexity(unspecified).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&err)[0].field, "complexity");
    let err = app
        .client
        .set_complexity(set("", "", pb::Complexity::Complex))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&err)[0].field, "ticket_id");
    let err = app
        .client
        .set_complexity(set("no-such-ticket", "", pb::Complexity::Complex))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn set_complexity_rematches_and_recomputes_the_clocks_on_postgres() {
    set_complexity(Backend::Postgres).await;
}

#[tokio::test]
async fn set_complexity_rematches_and_recomputes_the_clocks_on_sqlite() {
    set_complexity(Backend::Sqlite).await;
}

fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn who_may_set_complexity(backend: Backend) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer_url = format!("http://{}", listener.local_addr().unwrap());
    let issuer = DevIssuer::generate(&issuer_url, DevIssuer::DEFAULT_AUDIENCE).unwrap();
    let stop = CancellationToken::new();
    tokio::spawn({
        let (issuer, stop) = (issuer.clone(), stop.clone());
        async move { issuer.serve(listener, stop).await }
    });
    let (mut app, _clock) = spawn_at(backend, Some(AuthSettings::oidc(issuer.settings()))).await;
    let ttl = Duration::from_secs(600);
    let agent = issuer.mint("agent-7", &[roles::AGENT], ttl).unwrap();
    let analyst = issuer.mint("analyst-1", &[roles::ANALYST], ttl).unwrap();
    let t = app
        .client
        .create_ticket(bearer(create_request(pb::Channel::App, ""), &agent))
        .await
        .unwrap()
        .into_inner();
    let mut request = set(&t.id, "perm-1", pb::Complexity::Complex);
    request.actor = None;
    let err = app
        .client
        .set_complexity(bearer(request.clone(), &analyst))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let changed = app
        .client
        .set_complexity(bearer(request, &agent))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changed.complexity, pb::Complexity::Complex as i32);
    let log = app
        .client
        .list_activity(bearer(
            pb::ListActivityRequest {
                ticket_id: t.id.clone(),
                page_size: 100,
                page_token: String::new(),
            },
            &agent,
        ))
        .await
        .unwrap()
        .into_inner()
        .entries;
    let last = log.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.actor_id.as_str()),
        ("set_complexity", "agent-7"),
        "the token's subject, not a body"
    );
    stop.cancel();
    app.stop().await;
}

#[tokio::test]
async fn agents_may_set_complexity_and_analysts_may_not_on_postgres() {
    who_may_set_complexity(Backend::Postgres).await;
}

#[tokio::test]
async fn agents_may_set_complexity_and_analysts_may_not_on_sqlite() {
    who_may_set_complexity(Backend::Sqlite).await;
}
