//! The milestones' edges: bad input named by its field, the complaint flow's steps out
//! of order refused, keyed retries, and a threshold's reassignment kept through a lost
//! schedule.

use aftersales_deadlines::worker::{Deadlines, Due, Member};
use aftersales_protos::{events::v1::event_envelope::Payload, tickets::v1 as pb};
use aftersales_tickets::usecases::TicketsDeadline;
use chrono::Duration;

use crate::{
    helpers::{Backend, create_request},
    milestones::{at, set_up, target},
    team_support::{advance_to, spawn_at, ts},
};

/// The field a refused request names, or the code when it is not INVALID_ARGUMENT.
fn refusal(status: tonic::Status) -> String {
    match status.code() {
        tonic::Code::InvalidArgument => crate::team_support::field(&status),
        code => format!("{code:?}"),
    }
}

#[tokio::test]
async fn bad_flow_input_is_named_and_steps_out_of_order_are_refused() {
    let (mut app, manual) = spawn_at(Backend::Sqlite).await;
    set_up(&mut app).await;
    advance_to(&app, &manual, at(0)).await;
    let mut request = create_request(pb::Channel::Hotline, "");
    for (reported, why) in [
        (at(1), "in the future"),
        (at(0) - Duration::days(31), "too old"),
    ] {
        request.reported_at = ts(reported);
        let refused = app.client.create_ticket(request.clone()).await.unwrap_err();
        assert_eq!(refusal(refused), "reported_at", "{why}");
    }
    request.reported_at = None;
    let t = app
        .client
        .create_ticket(request)
        .await
        .unwrap()
        .into_inner();
    let c = &mut app.client;

    let record = |ticket_id: &str, quality: pb::QualityJudgement| pb::RecordComplaintRequest {
        idempotency_key: String::new(),
        ticket_id: ticket_id.into(),
        quality: quality as i32,
        actor: None,
    };
    let bad = c
        .record_complaint(record(&t.id, pb::QualityJudgement::Unspecified))
        .await
        .unwrap_err();
    assert_eq!(refusal(bad), "quality");
    let bad = c
        .record_complaint(record("", pb::QualityJudgement::QualityProblem))
        .await
        .unwrap_err();
    assert_eq!(refusal(bad), "ticket_id");
    let missing = c
        .record_complaint(record(
            "no-such-ticket",
            pb::QualityJudgement::QualityProblem,
        ))
        .await
        .unwrap_err();
    assert_eq!(refusal(missing), "NotFound");

    let propose = |key: &str, kind: pb::SolutionKind| pb::ProposeSolutionRequest {
        idempotency_key: key.into(),
        ticket_id: t.id.clone(),
        kind: kind as i32,
        actor: None,
    };
    let bad = c
        .propose_solution(propose("", pb::SolutionKind::Unspecified))
        .await
        .unwrap_err();
    assert_eq!(refusal(bad), "kind");
    let decide = |key: &str, accepted: bool| pb::DecideSolutionRequest {
        idempotency_key: key.into(),
        ticket_id: t.id.clone(),
        accepted,
        actor: None,
    };
    let early = c.decide_solution(decide("", true)).await.unwrap_err();
    assert_eq!(refusal(early), "FailedPrecondition", "nothing proposed yet");
    let remedy = |reference: &str| pb::ScheduleRemedyRequest {
        idempotency_key: String::new(),
        ticket_id: t.id.clone(),
        reference: reference.into(),
        planned_for: None,
        actor: None,
    };
    let bad = c.schedule_remedy(remedy("JOB 1; drop")).await.unwrap_err();
    assert_eq!(refusal(bad), "reference");
    let early = c.schedule_remedy(remedy("JOB-1")).await.unwrap_err();
    assert_eq!(refusal(early), "FailedPrecondition", "nothing agreed yet");

    // A keyed proposal retried proposes once.
    for _ in 0..2 {
        let t = c
            .propose_solution(propose("p-1", pb::SolutionKind::Repair))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(t.solution.map(|s| s.proposals), Some(1));
    }
    c.decide_solution(decide("d-1", true)).await.unwrap();
    let late = c
        .propose_solution(propose("p-2", pb::SolutionKind::Return))
        .await
        .unwrap_err();
    assert_eq!(refusal(late), "FailedPrecondition", "a solution is agreed");

    // A policy's milestones and thresholds, each problem by its field.
    let policy = |edit: fn(&mut pb::SlaPolicy)| {
        let mut p = pb::SlaPolicy {
            id: "bad".into(),
            first_response: target(60_000),
            resolution: target(600_000),
            ..Default::default()
        };
        edit(&mut p);
        pb::UpsertSlaPolicyRequest { policy: Some(p) }
    };
    type Edit = fn(&mut pb::SlaPolicy);
    let cases: [(Edit, &str); 5] = [
        (
            |p| {
                p.warnings = vec![pb::WarningThreshold {
                    percent: 0,
                    action: 0,
                }]
            },
            "policy.warnings[0].percent",
        ),
        (
            |p| {
                let w = pb::WarningThreshold {
                    percent: 50,
                    action: 0,
                };
                p.warnings = vec![w, w];
            },
            "policy.warnings.percent",
        ),
        (
            |p| {
                p.hand_off = Some(pb::HandOffTarget {
                    within: target(60_000),
                    role: pb::AgentRole::Agent as i32,
                })
            },
            "policy.hand_off.role",
        ),
        (
            |p| {
                p.hand_off = Some(pb::HandOffTarget {
                    within: None,
                    role: pb::AgentRole::Specialist as i32,
                })
            },
            "policy.hand_off.within",
        ),
        (
            |p| {
                p.next_reply = Some(pb::SlaTarget {
                    seconds: 0,
                    calendar_id: String::new(),
                })
            },
            "policy.next_reply.seconds",
        ),
    ];
    for (edit, field) in cases {
        let refused = c.upsert_sla_policy(policy(edit)).await.unwrap_err();
        assert_eq!(refusal(refused), field);
    }
    app.stop().await;
}

/// A reassignment a threshold asked for is kept on the ticket until routing carries it
/// out: lost from the schedule (Redis flushed between the warning and its firing), the
/// rebuild from the database puts it back, and it happens once.
async fn a_reassignment_survives_a_lost_schedule(backend: Backend) {
    let (mut app, manual) = spawn_at(backend).await;
    set_up(&mut app).await;
    advance_to(&app, &manual, at(0)).await;
    let mut request = create_request(pb::Channel::Hotline, "");
    request.reported_at = ts(at(-1_500));
    let t = app
        .client
        .create_ticket(request)
        .await
        .unwrap()
        .into_inner();
    // As in the script: recorded at +1 s, the hand-off's first two thresholds fired.
    advance_to(&app, &manual, at(1_000)).await;
    app.client
        .record_complaint(pb::RecordComplaintRequest {
            idempotency_key: String::new(),
            ticket_id: t.id.clone(),
            quality: pb::QualityJudgement::QualityProblem as i32,
            actor: None,
        })
        .await
        .unwrap();
    advance_to(&app, &manual, at(3_899)).await;
    // The worker fires the hand-off's 90 % threshold and acknowledges it; the
    // reassignment it asked for is scheduled after the commit, then the schedule is lost.
    manual.set(at(3_900));
    let claims = app
        .queue
        .claim(at(3_900).timestamp_millis(), 1_000, 60_000)
        .await
        .unwrap();
    let ids: Vec<String> = claims.iter().map(|c| c.id.clone()).collect();
    let due: Vec<Due<TicketsDeadline>> = claims
        .iter()
        .map(|c| Due {
            member: TicketsDeadline::from_text(&c.id).expect("a member of tickets"),
            due_ms: c.due_ms,
        })
        .collect();
    assert_eq!(due.len(), 1, "the hand-off clock alone");
    app.core.fire(&due).await.unwrap();
    app.queue.ack(&ids).await.unwrap();
    assert_eq!(app.ticket(&t.id).await.assignee, "a1", "not routed yet");
    let member = TicketsDeadline::Reassign(t.id.clone()).to_text();
    app.queue.cancel(&[member]).await.unwrap();
    advance_to(&app, &manual, at(3_950)).await;
    assert_eq!(
        app.ticket(&t.id).await.assignee,
        "a1",
        "nothing scheduled any more"
    );
    // The rebuild finds the request on the ticket.
    app.core.reconcile(&app.queue).await.unwrap();
    advance_to(&app, &manual, at(4_000)).await;
    assert_eq!(app.ticket(&t.id).await.assignee, "s1");
    let reassigned = app
        .envelopes(&t.id)
        .await
        .into_iter()
        .filter(|e| {
            matches!(&e.payload, Some(Payload::TicketAssigned(a)) if a.reason == "sla_reassign")
        })
        .count();
    assert_eq!(reassigned, 1);
    // Fired again (a redelivery), it does nothing more.
    let again = Due {
        member: TicketsDeadline::Reassign(t.id.clone()),
        due_ms: at(3_900).timestamp_millis(),
    };
    app.core.fire(&[again]).await.unwrap();
    assert_eq!(app.ticket(&t.id).await.assignee, "s1");
    app.stop().await;
}

#[tokio::test]
async fn a_reassignment_survives_a_lost_schedule_on_sqlite() {
    a_reassignment_survives_a_lost_schedule(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_reassignment_survives_a_lost_schedule_on_postgres() {
    a_reassignment_survives_a_lost_schedule(Backend::Postgres).await;
}
