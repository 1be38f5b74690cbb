//! The handbook's milestones (issue 16) on one scripted ticket, on both backends, on a
//! manual clock with the deadlines fired from the real queue: every milestone (record,
//! hand-off, agreement, remedy, feedback, next reply) with fractional targets, warning
//! thresholds at 50 / 75 / 90 % with their actions (notify, escalate, reassign), a pause
//! of 3.24 s, a rejected solution going to a manager, and each clock's "actual − standard"
//! as `SlaClockMet` publishes it. At every expected instant the test first looks 1 ms
//! before it (nothing) and then at it (exactly what is expected).

use aftersales_deadlines::worker::{Deadlines, Due};
use aftersales_platform::clock::ManualClock;
use aftersales_protos::{events::v1::event_envelope::Payload, tickets::v1 as pb};
use aftersales_tickets::usecases::TicketsDeadline;
use chrono::{DateTime, Duration, Utc};

use crate::{
    helpers::{Backend, TestApp, create_request},
    team_support::{advance_to, agent, group, rule, shift, spawn_at, t0, ts, upsert_rule},
};

use pb::{ClockKind as K, WarningAction as A};

/// The script's zero: one hour into `t0`, so shifts and the report can start before it.
pub(crate) fn at(ms: i64) -> DateTime<Utc> {
    t0() + Duration::hours(1) + Duration::milliseconds(ms)
}

pub(crate) fn target(ms: u64) -> Option<pb::SlaTarget> {
    assert_eq!(ms % 1000, 0, "targets are whole seconds");
    Some(pb::SlaTarget {
        seconds: ms / 1000,
        calendar_id: String::new(),
    })
}

/// Every clock warns at 50 % (notify), 75 % (escalate) and 90 % (reassign); a breach does
/// not escalate, so each escalation seen is a threshold's.
pub(crate) async fn set_up(app: &mut TestApp) {
    let warning = |percent, action: A| pb::WarningThreshold {
        percent,
        action: action as i32,
    };
    app.client
        .upsert_sla_policy(pb::UpsertSlaPolicyRequest {
            policy: Some(pb::SlaPolicy {
                id: "milestones".into(),
                priority: -10,
                first_response: target(10_000),
                resolution: target(100_000),
                record: target(4_000),
                hand_off: Some(pb::HandOffTarget {
                    within: target(6_000),
                    role: pb::AgentRole::Supervisor as i32,
                }),
                agreement: target(20_000),
                remedy: target(8_000),
                feedback: target(12_000),
                next_reply: target(4_000),
                warnings: vec![
                    warning(90, A::Reassign),
                    warning(50, A::Notify),
                    warning(75, A::Escalate),
                ],
                escalate_on_breach: false,
                ..Default::default()
            }),
        })
        .await
        .expect("policy stored");
    app.client
        .upsert_support_group(group("complaints", &[], false))
        .await
        .unwrap();
    for id in ["a1", "a2"] {
        app.client
            .upsert_agent(agent(id, &["complaints"], &[], 5))
            .await
            .unwrap();
    }
    let mut supervisor = agent("s1", &["complaints"], &[], 5);
    if let Some(a) = supervisor.agent.as_mut() {
        a.role = pb::AgentRole::Supervisor as i32;
    }
    app.client.upsert_agent(supervisor).await.unwrap();
    // The agents all along; the supervisor from +3 s, after the ticket was routed.
    let end = t0() + Duration::hours(3);
    for (id, start, agents) in [
        ("day", t0(), &["a1", "a2"][..]),
        ("lead", at(3_000), &["s1"]),
    ] {
        app.client
            .upsert_shift(shift(id, "complaints", start, end, agents))
            .await
            .unwrap();
    }
    upsert_rule(app, rule("all", 1, "complaints")).await;
}

/// A warning (percent > 0) or a breach (percent 0) as published.
type Alert = (i32, u32, i32);

fn warn(kind: K, percent: u32, action: A) -> Alert {
    (kind as i32, percent, action as i32)
}

fn breach(kind: K) -> Alert {
    (kind as i32, 0, 0)
}

struct Script {
    app: TestApp,
    manual: ManualClock,
    ticket: String,
    alerts_seen: usize,
}

impl Script {
    async fn payloads(&self) -> Vec<Payload> {
        self.app
            .envelopes(&self.ticket)
            .await
            .into_iter()
            .filter_map(|e| e.payload)
            .collect()
    }

    async fn alerts(&self) -> Vec<Alert> {
        self.payloads()
            .await
            .into_iter()
            .filter_map(|p| match p {
                Payload::SlaWarning(w) => Some((w.kind, w.threshold_percent, w.action)),
                Payload::SlaBreached(b) => Some((b.kind, 0, 0)),
                _ => None,
            })
            .collect()
    }

    /// The clocks met so far with their actual − standard, in order.
    async fn met(&self) -> Vec<(i32, i64)> {
        self.payloads()
            .await
            .into_iter()
            .filter_map(|p| match p {
                Payload::SlaClockMet(m) => Some((m.kind, m.actual_minus_standard_ms)),
                _ => None,
            })
            .collect()
    }

    /// Moves to `ms` firing what is due; nothing may warn or breach on the way. Then wakes
    /// every clock of the ticket at `ms` as a worker woken early would: the clock itself
    /// must not fire before its instant either.
    async fn quiet_until(&mut self, ms: i64) {
        advance_to(&self.app, &self.manual, at(ms)).await;
        let ticket = self.ticket.clone();
        let woken: Vec<Due<TicketsDeadline>> = self
            .app
            .sla(&ticket)
            .await
            .clocks
            .into_iter()
            .map(|c| Due {
                member: TicketsDeadline::Clock(c.id),
                due_ms: at(ms).timestamp_millis(),
            })
            .collect();
        self.app.core.fire(&woken).await.expect("fired early");
        let alerts = self.alerts().await;
        assert_eq!(
            &alerts[self.alerts_seen..],
            &[],
            "nothing fires up to +{ms} ms"
        );
    }

    /// Nothing 1 ms before `ms`; exactly `expected` (in any order) at it.
    async fn fires_at(&mut self, ms: i64, expected: &[Alert]) {
        self.quiet_until(ms - 1).await;
        advance_to(&self.app, &self.manual, at(ms)).await;
        let alerts = self.alerts().await;
        let mut fired = alerts[self.alerts_seen..].to_vec();
        let mut expected = expected.to_vec();
        fired.sort_unstable();
        expected.sort_unstable();
        assert_eq!(fired, expected, "what fires at +{ms} ms");
        self.alerts_seen = alerts.len();
    }

    async fn ticket(&mut self) -> pb::Ticket {
        let id = self.ticket.clone();
        self.app.ticket(&id).await
    }

    async fn reply(&mut self, author: pb::ReplyAuthor) {
        self.app
            .client
            .add_reply(pb::AddReplyRequest {
                ticket_id: self.ticket.clone(),
                author: author as i32,
                body: "Thank you, we are on it.".into(),
                ..Default::default()
            })
            .await
            .expect("reply added");
    }

    async fn status(&mut self, status: pb::TicketStatus) {
        self.app
            .client
            .change_status(pb::ChangeStatusRequest {
                ticket_id: self.ticket.clone(),
                status: status as i32,
                reason: "script".into(),
                actor: None,
            })
            .await
            .expect("status changed");
    }

    async fn propose(&mut self, kind: pb::SolutionKind, key: &str) {
        self.app
            .client
            .propose_solution(pb::ProposeSolutionRequest {
                idempotency_key: key.into(),
                ticket_id: self.ticket.clone(),
                kind: kind as i32,
                actor: None,
            })
            .await
            .expect("proposed");
    }

    async fn decide(&mut self, accepted: bool, key: &str) -> pb::Ticket {
        self.app
            .client
            .decide_solution(pb::DecideSolutionRequest {
                idempotency_key: key.into(),
                ticket_id: self.ticket.clone(),
                accepted,
                actor: None,
            })
            .await
            .expect("decided")
            .into_inner()
    }
}

async fn a_ticket_through_every_milestone(backend: Backend) {
    let (mut app, manual) = spawn_at(backend).await;
    set_up(&mut app).await;
    advance_to(&app, &manual, at(0)).await;
    // Reported 1.5 s before it was logged: record, hand-off and agreement run from then.
    let mut request = create_request(pb::Channel::Hotline, "");
    request.reported_at = ts(at(-1_500));
    let created = app
        .client
        .create_ticket(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        created.assignee, "a1",
        "no supervisor on duty yet: an agent"
    );
    assert_eq!(
        crate::helpers::millis(&created.reported_at),
        at(-1_500).timestamp_millis()
    );
    let mut s = Script {
        app,
        manual,
        ticket: created.id.clone(),
        alerts_seen: 0,
    };
    let level = |t: &pb::Ticket| pb::EscalationLevel::try_from(t.escalation_level).unwrap();

    // Record (−1.5 s + 4 s): warned at 50 %, recorded at +1 s.
    s.fires_at(500, &[warn(K::Record, 50, A::Notify)]).await;
    s.quiet_until(1_000).await;
    let recorded = s
        .app
        .client
        .record_complaint(pb::RecordComplaintRequest {
            idempotency_key: "record".into(),
            ticket_id: created.id.clone(),
            quality: pb::QualityJudgement::ThirdPartyTest as i32,
            actor: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        recorded.quality,
        pb::QualityJudgement::ThirdPartyTest as i32
    );

    // Hand-off to a supervisor (−1.5 s + 6 s): notify, escalate, then reassign — to the
    // supervisor on duty since +3 s, which meets it.
    s.fires_at(1_500, &[warn(K::HandOff, 50, A::Notify)]).await;
    s.fires_at(3_000, &[warn(K::HandOff, 75, A::Escalate)])
        .await;
    assert_eq!(level(&s.ticket().await), pb::EscalationLevel::Supervisor);
    s.fires_at(3_900, &[warn(K::HandOff, 90, A::Reassign)])
        .await;
    assert_eq!(s.ticket().await.assignee, "s1");

    // First response (10 s) warned at 5 s, met at 6 s.
    s.fires_at(5_000, &[warn(K::FirstResponse, 50, A::Notify)])
        .await;
    s.quiet_until(6_000).await;
    s.reply(pb::ReplyAuthor::Agent).await;

    // A repair proposed and rejected: the manager negotiates.
    s.quiet_until(6_400).await;
    s.propose(pb::SolutionKind::Repair, "propose-1").await;
    // Waiting on the customer from +6.5 s to +9.74 s: 3.24 s paused.
    s.quiet_until(6_500).await;
    s.status(pb::TicketStatus::PendingCustomer).await;
    s.quiet_until(7_000).await;
    let rejected = s.decide(false, "decide-1").await;
    assert_eq!(level(&rejected), pb::EscalationLevel::Manager);
    let again = s.decide(false, "decide-1").await;
    assert_eq!(
        again.solution, rejected.solution,
        "a keyed retry decides nothing more"
    );
    s.quiet_until(9_740).await;
    // The customer writes back: the ticket opens and the next reply runs (4 s).
    s.reply(pb::ReplyAuthor::Customer).await;

    // Agreement (−1.5 s + 20 s + 3.24 s paused) and next reply (+9.74 s + 4 s) both warn
    // at +11.74 s; the next reply escalates (at the top already: nothing more) and is
    // taken from the supervisor at 90 %.
    s.fires_at(
        11_740,
        &[
            warn(K::Agreement, 50, A::Notify),
            warn(K::NextReply, 50, A::Notify),
        ],
    )
    .await;
    s.fires_at(12_740, &[warn(K::NextReply, 75, A::Escalate)])
        .await;
    s.fires_at(13_340, &[warn(K::NextReply, 90, A::Reassign)])
        .await;
    assert_eq!(s.ticket().await.assignee, "a1", "least loaded, lowest id");
    s.quiet_until(13_500).await;
    s.reply(pb::ReplyAuthor::Agent).await;

    // An exchange is accepted at +16 s; the remedy (8 s) is scheduled at +21 s.
    s.quiet_until(15_000).await;
    s.propose(pb::SolutionKind::Exchange, "propose-2").await;
    s.quiet_until(16_000).await;
    let agreed = s.decide(true, "decide-2").await;
    let solution = agreed.solution.expect("a solution");
    assert_eq!(
        (solution.state, solution.proposals, solution.rejections),
        (pb::SolutionState::Accepted as i32, 2, 1)
    );
    s.fires_at(20_000, &[warn(K::Remedy, 50, A::Notify)]).await;
    s.quiet_until(21_000).await;
    s.app
        .client
        .schedule_remedy(pb::ScheduleRemedyRequest {
            idempotency_key: "remedy".into(),
            ticket_id: created.id.clone(),
            reference: "JOB-1".into(),
            planned_for: ts(at(86_400_000)),
            actor: None,
        })
        .await
        .unwrap();

    // Resolved at +30 s: feedback (12 s) is owed; nobody gives it in time.
    s.quiet_until(30_000).await;
    s.status(pb::TicketStatus::Resolved).await;
    s.fires_at(36_000, &[warn(K::Feedback, 50, A::Notify)])
        .await;
    s.fires_at(39_000, &[warn(K::Feedback, 75, A::Escalate)])
        .await;
    s.fires_at(40_800, &[warn(K::Feedback, 90, A::Reassign)])
        .await;
    assert_eq!(s.ticket().await.assignee, "a2", "taken from a1");
    s.fires_at(42_000, &[breach(K::Feedback)]).await;
    s.quiet_until(43_000).await;
    s.reply(pb::ReplyAuthor::Agent).await;
    s.quiet_until(200_000).await;

    // Each clock met once, with actual − standard exact to the millisecond.
    assert_eq!(
        s.met().await,
        vec![
            (K::Record as i32, 1_000 - 2_500),
            (K::HandOff as i32, 3_900 - 4_500),
            (K::FirstResponse as i32, 6_000 - 10_000),
            (K::NextReply as i32, 13_500 - 13_740),
            (K::Agreement as i32, 16_000 - 21_740),
            (K::Remedy as i32, 21_000 - 24_000),
            (K::Resolution as i32, 30_000 - 103_240),
            (K::Feedback as i32, 43_000 - 42_000),
        ]
    );
    let ticket = s.ticket().await;
    assert_eq!(ticket.remedy_reference, "JOB-1");
    assert_eq!(
        crate::helpers::millis(&ticket.remedy_scheduled_at),
        at(21_000).timestamp_millis()
    );
    let status = s.app.sla(&created.id).await;
    let agreement = crate::helpers::clock(&status, K::Agreement);
    assert_eq!(
        (agreement.warning_percents.clone(), agreement.warnings_fired),
        (vec![50, 75, 90], 1)
    );
    s.app.stop().await;
}

#[tokio::test]
async fn a_ticket_goes_through_every_milestone_on_sqlite() {
    a_ticket_through_every_milestone(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_ticket_goes_through_every_milestone_on_postgres() {
    a_ticket_through_every_milestone(Backend::Postgres).await;
}
