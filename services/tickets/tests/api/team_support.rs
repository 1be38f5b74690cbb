//! Shortcuts for the teams and routing tests: a service on a manual clock, time moved on
//! by firing what the real deadline queue holds due (as the worker would, one member at a
//! time in due order), and typed builders of groups, agents, shifts and rules.

use std::{sync::Arc, time::Duration};

use aftersales_deadlines::worker::{Deadlines, Due, Member};
use aftersales_platform::status::field_violations;
use aftersales_platform::{clock::ManualClock, codes::timestamp};
use aftersales_protos::{events::v1::event_envelope::Payload, tickets::v1 as pb};
use aftersales_tickets::usecases::TicketsDeadline;
use chrono::{DateTime, Utc};
use tonic::Code;

use crate::helpers::{Backend, Options, TestApp, create_request, spawn_with};

/// Monday 2030-01-07 00:00 UTC: far ahead of the wall clock, so the queue never holds
/// anything due by the wall clock and only [`advance_to`] fires.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-07T00:00:00Z")
        .unwrap()
        .to_utc()
}

pub fn hours(h: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::hours(h)
}

/// The service on a manual clock at `t0`, without a worker: the test fires deadlines.
pub async fn spawn_at(backend: Backend) -> (TestApp, ManualClock) {
    let manual = ManualClock::at(t0());
    let app = spawn_with(
        backend,
        Options {
            run_worker: false,
            lease: Duration::from_secs(60),
            clock: Some(Arc::new(manual.clone())),
            ..Options::default()
        },
    )
    .await;
    (app, manual)
}

/// Sets the clock to `to` and fires every member the queue holds due at `to`, one at a
/// time, in order of due instant then text; returns the shift ends fired.
pub async fn advance_to(app: &TestApp, manual: &ManualClock, to: DateTime<Utc>) -> Vec<String> {
    manual.set(to);
    let mut fired = Vec::new();
    loop {
        let mut claims = app
            .queue
            .claim(to.timestamp_millis(), 1_000, 60_000)
            .await
            .unwrap();
        if claims.is_empty() {
            return fired;
        }
        claims.sort_by(|a, b| (a.due_ms, &a.id).cmp(&(b.due_ms, &b.id)));
        for claim in &claims {
            let member = TicketsDeadline::from_text(&claim.id).expect("a member of tickets");
            if let TicketsDeadline::ShiftEnd(id) = &member {
                fired.push(id.clone());
            }
            let due = Due {
                member,
                due_ms: claim.due_ms,
            };
            app.core.fire(&[due]).await.unwrap();
            app.queue
                .ack(std::slice::from_ref(&claim.id))
                .await
                .unwrap();
        }
    }
}

pub fn group(id: &str, skills: &[&str], round_robin: bool) -> pb::UpsertSupportGroupRequest {
    pb::UpsertSupportGroupRequest {
        idempotency_key: String::new(),
        group: Some(pb::SupportGroup {
            id: id.into(),
            name: String::new(),
            skills: skills.iter().map(|s| (*s).to_owned()).collect(),
            calendar_id: String::new(),
            round_robin,
        }),
    }
}

pub fn agent(id: &str, groups: &[&str], skills: &[&str], capacity: u32) -> pb::UpsertAgentRequest {
    pb::UpsertAgentRequest {
        idempotency_key: String::new(),
        agent: Some(pb::Agent {
            id: id.into(),
            group_ids: groups.iter().map(|s| (*s).to_owned()).collect(),
            skills: skills.iter().map(|s| (*s).to_owned()).collect(),
            capacity,
            role: pb::AgentRole::Agent as i32,
            open_tickets: 0,
        }),
    }
}

pub fn shift(
    id: &str,
    group: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    agents: &[&str],
) -> pb::UpsertShiftRequest {
    pb::UpsertShiftRequest {
        idempotency_key: String::new(),
        shift: Some(pb::Shift {
            id: id.into(),
            group_id: group.into(),
            start: Some(timestamp(start)),
            end: Some(timestamp(end)),
            agent_ids: agents.iter().map(|s| (*s).to_owned()).collect(),
            ended: false,
        }),
    }
}

pub fn rule(id: &str, priority: i32, group: &str) -> pb::RoutingRule {
    pb::RoutingRule {
        id: id.into(),
        priority,
        group_id: group.into(),
        ..Default::default()
    }
}

pub async fn upsert_rule(app: &mut TestApp, rule: pb::RoutingRule) {
    app.client
        .upsert_routing_rule(pb::UpsertRoutingRuleRequest {
            idempotency_key: String::new(),
            rule: Some(rule),
        })
        .await
        .expect("rule stored");
}

/// One 24x7 policy per severity with first-response targets of 1 h (urgent), 2 h
/// (important) and 8 h (general), so a ticket's risk is its creation plus that target.
pub async fn week_policies(app: &mut TestApp) {
    for (id, severity, first, priority) in [
        ("week-urgent", pb::Severity::Urgent, 3_600, -3),
        ("week-important", pb::Severity::Important, 7_200, -2),
        ("week-general", pb::Severity::General, 28_800, -1),
    ] {
        app.client
            .upsert_sla_policy(pb::UpsertSlaPolicyRequest {
                policy: Some(pb::SlaPolicy {
                    id: id.into(),
                    priority,
                    match_severities: vec![severity as i32],
                    first_response: Some(pb::SlaTarget {
                        seconds: first,
                        calendar_id: String::new(),
                    }),
                    resolution: Some(pb::SlaTarget {
                        seconds: 3 * 86_400,
                        calendar_id: String::new(),
                    }),
                    ..Default::default()
                }),
            })
            .await
            .expect("policy stored");
    }
}

pub fn ts(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(timestamp(t))
}

/// The field a refused request names.
pub fn field(status: &tonic::Status) -> String {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    field_violations(status)
        .first()
        .map(|v| v.field.clone())
        .unwrap_or_default()
}

/// The week's SLA policies (first response 1 h urgent, 8 h general); groups `orders` (least loaded, skill `orders`) and `refunds` (round-robin); agents a1
/// (capacity 2), a2 (capacity 1), a3 (lacks the skill), r1..r3; a shift per group from
/// t0 to t0 + 8 h; rules: return/exchange → refunds, anything else → orders.
pub async fn desk(app: &mut TestApp) {
    week_policies(app).await;
    app.client
        .upsert_support_group(group("orders", &["orders"], false))
        .await
        .unwrap();
    app.client
        .upsert_support_group(group("refunds", &[], true))
        .await
        .unwrap();
    for (id, groups, skills, capacity) in [
        ("a1", &["orders"][..], &["orders"][..], 2),
        ("a2", &["orders"], &["orders"], 1),
        ("a3", &["orders"], &[], 5),
        ("r1", &["refunds"], &[], 9),
        ("r2", &["refunds"], &[], 9),
        ("r3", &["refunds"], &[], 9),
    ] {
        app.client
            .upsert_agent(agent(id, groups, skills, capacity))
            .await
            .unwrap();
    }
    app.client
        .upsert_shift(shift(
            "orders-day",
            "orders",
            t0(),
            hours(8),
            &["a1", "a2", "a3"],
        ))
        .await
        .unwrap();
    app.client
        .upsert_shift(shift(
            "refunds-day",
            "refunds",
            t0(),
            hours(8),
            &["r1", "r2", "r3"],
        ))
        .await
        .unwrap();
    upsert_rule(
        app,
        pb::RoutingRule {
            match_categories: vec![pb::Category::ReturnExchange as i32],
            ..rule("refunds", 1, "refunds")
        },
    )
    .await;
    upsert_rule(app, rule("orders", 2, "orders")).await;
}

pub async fn open(app: &mut TestApp, category: pb::Category, severity: pb::Severity) -> pb::Ticket {
    let mut request = create_request(pb::Channel::Chat, "");
    request.category = category as i32;
    request.severity = severity as i32;
    app.client
        .create_ticket(request)
        .await
        .unwrap()
        .into_inner()
}

pub async fn assigned_events(
    app: &TestApp,
    ticket_id: &str,
) -> Vec<(String, String, String, String)> {
    app.envelopes(ticket_id)
        .await
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(Payload::TicketAssigned(a)) => {
                Some((a.group_id, a.agent_id, a.previous_agent_id, a.reason))
            }
            _ => None,
        })
        .collect()
}
