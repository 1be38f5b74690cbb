//! Teams and routing through the API, on both backends: the admin RPCs (keyed, listed),
//! bad input named by its field, a new ticket routed to the least-loaded agent on duty or
//! round-robin or into the queue, the queue in order of SLA risk, claims, checked
//! assignments, and a shift's end handing work over exactly once and never early — each
//! recorded in the activity log and published as TicketAssigned.

use aftersales_deadlines::worker::{Deadlines, Due};
use aftersales_platform::status::field_violations;
use aftersales_protos::{events::v1::event_envelope::Payload, tickets::v1 as pb};
use aftersales_tickets::usecases::TicketsDeadline;
use chrono::Duration;
use tonic::Code;

use crate::{
    desk::{activity, change},
    helpers::{Backend, TestApp, create_request},
    team_support::{
        advance_to, agent, group, hours, rule, shift, spawn_at, t0, ts, upsert_rule, week_policies,
    },
};

/// The field a refused request names.
fn field(status: &tonic::Status) -> String {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    field_violations(status)
        .first()
        .map(|v| v.field.clone())
        .unwrap_or_default()
}

/// The week's SLA policies (first response 1 h urgent, 8 h general); groups `orders` (least loaded, skill `orders`) and `refunds` (round-robin); agents a1
/// (capacity 2), a2 (capacity 1), a3 (lacks the skill), r1..r3; a shift per group from
/// t0 to t0 + 8 h; rules: return/exchange → refunds, anything else → orders.
async fn desk(app: &mut TestApp) {
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

async fn open(app: &mut TestApp, category: pb::Category, severity: pb::Severity) -> pb::Ticket {
    let mut request = create_request(pb::Channel::Chat, "");
    request.category = category as i32;
    request.severity = severity as i32;
    app.client
        .create_ticket(request)
        .await
        .unwrap()
        .into_inner()
}

async fn assigned_events(app: &TestApp, ticket_id: &str) -> Vec<(String, String, String, String)> {
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

async fn routes_claims_and_hands_over(backend: Backend) {
    let (mut app, manual) = spawn_at(backend).await;
    desk(&mut app).await;
    use pb::{Category::*, Severity::*};

    // Least loaded with the group's skill, ties to the lowest id; a3 lacks the skill.
    let t1 = open(&mut app, Inquiry, General).await;
    let t2 = open(&mut app, Inquiry, General).await;
    let t3 = open(&mut app, Inquiry, General).await;
    let t4 = open(&mut app, Inquiry, General).await;
    let who = |t: &pb::Ticket| (t.group_id.clone(), t.assignee.clone());
    assert_eq!(who(&t1), ("orders".into(), "a1".into()));
    assert_eq!(who(&t2), ("orders".into(), "a2".into()));
    assert_eq!(who(&t3), ("orders".into(), "a1".into()));
    assert_eq!(
        who(&t4),
        ("orders".into(), String::new()),
        "everyone at capacity: queued"
    );
    // Round-robin in refunds.
    let mut rr = Vec::new();
    for _ in 0..4 {
        rr.push(open(&mut app, ReturnExchange, General).await.assignee);
    }
    assert_eq!(rr, ["r1", "r2", "r3", "r1"]);

    // The log says what routing chose; the event says it too.
    let log = activity(&mut app, &t1.id, 10).await;
    let route = log
        .iter()
        .find(|l| l.action == "route")
        .expect("a route line");
    assert_eq!(route.actor_id, "tickets");
    assert_eq!(route.detail, "rule orders: group orders, agent a1");
    assert_eq!(
        route.changes,
        [change("group", "", "orders"), change("assignee", "", "a1")]
    );
    assert_eq!(
        assigned_events(&app, &t1.id).await,
        [("orders".into(), "a1".into(), String::new(), "route".into())]
    );
    let queued = activity(&mut app, &t4.id, 10).await;
    assert_eq!(
        queued.iter().find(|l| l.action == "route").unwrap().detail,
        "rule orders: group orders, queued: nobody on duty is available"
    );

    // The queue, most at risk first: an urgent ticket opened later comes before a
    // general one; a ticket waiting on the customer (clocks paused) comes last.
    manual.set(t0() + Duration::minutes(10));
    let t5 = open(&mut app, Inquiry, Urgent).await;
    let t6 = open(&mut app, TechnicalSupport, General).await;
    app.client
        .change_status(pb::ChangeStatusRequest {
            ticket_id: t4.id.clone(),
            status: pb::TicketStatus::PendingCustomer as i32,
            reason: "photos".into(),
            actor: None,
        })
        .await
        .unwrap();
    let queue = app
        .client
        .list_queue(pb::ListQueueRequest {
            group_id: "orders".into(),
            page_size: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let order: Vec<&str> = queue
        .entries
        .iter()
        .map(|e| e.ticket.as_ref().unwrap().id.as_str())
        .collect();
    assert_eq!(order, [t5.id.as_str(), t6.id.as_str(), t4.id.as_str()]);
    assert_eq!(queue.total, 3);
    let first = &queue.entries[0];
    let (sla, _) = app.core.sla_status(&t5.id).await.unwrap();
    assert_eq!(first.clock_kind, pb::ClockKind::FirstResponse as i32);
    assert_eq!(
        first.due_at.as_ref().unwrap().seconds,
        sla.created_at.timestamp() + 3_600
    );
    assert!(
        queue.entries[2].due_at.is_none(),
        "paused clocks carry no risk"
    );

    // Claims: nobody under capacity on duty can claim; a resolution frees a1.
    let claim = |agent: &str, key: &str| pb::ClaimNextRequest {
        idempotency_key: key.into(),
        group_id: "orders".into(),
        agent_id: agent.into(),
    };
    let full = app.client.claim_next(claim("a1", "")).await.unwrap_err();
    assert_eq!(full.code(), Code::FailedPrecondition, "{full:?}");
    let unskilled = app.client.claim_next(claim("a3", "")).await.unwrap_err();
    assert_eq!(unskilled.code(), Code::FailedPrecondition);
    let off_duty = app
        .client
        .claim_next(pb::ClaimNextRequest {
            group_id: "refunds".into(),
            ..claim("a1", "")
        })
        .await
        .unwrap_err();
    assert_eq!(off_duty.code(), Code::FailedPrecondition);
    app.client
        .change_status(pb::ChangeStatusRequest {
            ticket_id: t1.id.clone(),
            status: pb::TicketStatus::Resolved as i32,
            reason: "done".into(),
            actor: None,
        })
        .await
        .unwrap();
    let claimed = app
        .client
        .claim_next(claim("a1", "c-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        claimed.ticket.as_ref().unwrap().id,
        t5.id,
        "the most at risk"
    );
    let again = app
        .client
        .claim_next(claim("a1", "c-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.ticket.unwrap().id,
        t5.id,
        "a keyed retry answers the first claim"
    );
    let claim_line = activity(&mut app, &t5.id, 10)
        .await
        .into_iter()
        .find(|l| l.action == "claim")
        .unwrap();
    assert_eq!(
        (claim_line.actor_id.as_str(), claim_line.changes.clone()),
        ("a1", vec![change("assignee", "", "a1")])
    );

    // An explicit reassignment: checked, recorded before and after, published.
    let refused = app
        .client
        .assign(pb::AssignRequest {
            ticket_id: t2.id.clone(),
            assignee: "r1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field(&refused), "assignee", "r1 is not in orders");
    let moved = app
        .client
        .assign(pb::AssignRequest {
            ticket_id: t2.id.clone(),
            assignee: "a3".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(who(&moved), ("orders".into(), "a3".into()));
    let line = activity(&mut app, &t2.id, 10)
        .await
        .into_iter()
        .find(|l| l.action == "assign")
        .unwrap();
    assert_eq!(line.changes, [change("assignee", "a2", "a3")]);
    assert_eq!(
        assigned_events(&app, &t2.id).await.last().unwrap(),
        &("orders".into(), "a3".into(), "a2".into(), "manual".into())
    );

    // The next shift: a2 alone from 8 h. The day shift's end hands a1's and a3's open
    // work over (most at risk first) and fires once, never early.
    app.client
        .upsert_shift(shift("orders-late", "orders", hours(8), hours(16), &["a2"]))
        .await
        .unwrap();
    assert!(
        advance_to(&app, &manual, hours(8) - Duration::milliseconds(1))
            .await
            .is_empty(),
        "not before its end"
    );
    let early = Due {
        member: TicketsDeadline::ShiftEnd("orders-day".into()),
        due_ms: 0,
    };
    app.core.fire(&[early]).await.unwrap();
    assert_eq!(
        app.ticket(&t3.id).await.assignee,
        "a1",
        "a shift end fired early changes nothing"
    );
    let fired = advance_to(&app, &manual, hours(8)).await;
    assert!(fired.contains(&"orders-day".to_owned()), "{fired:?}");
    // a2 (capacity 1) had t2 taken away: it gets the most at risk of a1's and a3's work.
    let (t2_now, t3_now, t5_now) = (
        app.ticket(&t2.id).await,
        app.ticket(&t3.id).await,
        app.ticket(&t5.id).await,
    );
    assert_eq!(t5_now.assignee, "a2", "urgent t5 first");
    assert_eq!(
        (t2_now.assignee.as_str(), t3_now.assignee.as_str()),
        ("", ""),
        "the rest back to the queue"
    );
    let handover = activity(&mut app, &t3.id, 20)
        .await
        .into_iter()
        .filter(|l| l.action == "handover")
        .collect::<Vec<_>>();
    assert_eq!(handover.len(), 1);
    assert_eq!(
        handover[0].detail,
        "shift orders-day ended: queued: nobody on duty is available"
    );
    assert_eq!(handover[0].changes, [change("assignee", "a1", "")]);
    // Fired again (a redelivery): nothing more.
    let again = Due {
        member: TicketsDeadline::ShiftEnd("orders-day".into()),
        due_ms: 0,
    };
    app.core.fire(&[again]).await.unwrap();
    let handovers = activity(&mut app, &t3.id, 20)
        .await
        .into_iter()
        .filter(|l| l.action == "handover")
        .count();
    assert_eq!(handovers, 1, "once");
    let ended = app
        .client
        .upsert_shift(shift("orders-day", "orders", t0(), hours(9), &["a1"]))
        .await
        .unwrap_err();
    assert_eq!(
        ended.code(),
        Code::FailedPrecondition,
        "an ended shift no longer changes"
    );
    // Rebuilt from the database (a Redis that lost its data): the late shift's end is
    // scheduled again at its instant, the ended one is not.
    let fresh =
        aftersales_deadlines::DeadlineQueue::Memory(aftersales_deadlines::MemoryQueue::new());
    app.core.reconcile(&fresh).await.unwrap();
    let due: Vec<(String, i64)> = fresh
        .claim(hours(100).timestamp_millis(), 10_000, 1_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.id.starts_with("shift-end:"))
        .map(|c| (c.id, c.due_ms))
        .collect();
    assert_eq!(
        due,
        [(
            "shift-end:orders-late".to_owned(),
            hours(16).timestamp_millis()
        )]
    );
    let listed = app
        .client
        .list_shifts(pb::ListShiftsRequest {
            group_id: "orders".into(),
            from: ts(hours(8)),
            to: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed
            .shifts
            .iter()
            .map(|s| (s.id.as_str(), s.ended))
            .collect::<Vec<_>>(),
        [("orders-late", false)]
    );
    app.stop().await;
}

#[tokio::test]
async fn routes_claims_and_hands_over_on_sqlite() {
    routes_claims_and_hands_over(Backend::Sqlite).await;
}

#[tokio::test]
async fn routes_claims_and_hands_over_on_postgres() {
    routes_claims_and_hands_over(Backend::Postgres).await;
}

async fn admin_and_bad_input(backend: Backend) {
    let (mut app, _) = spawn_at(backend).await;
    desk(&mut app).await;
    let c = &mut app.client;

    // Keyed: a retry answers the first result; the key with another request is refused.
    let mut keyed = agent("a9", &["orders"], &["orders"], 3);
    keyed.idempotency_key = "agent-a9".into();
    let first = c.upsert_agent(keyed.clone()).await.unwrap().into_inner();
    assert_eq!(
        c.upsert_agent(keyed.clone()).await.unwrap().into_inner(),
        first
    );
    keyed.agent.as_mut().unwrap().capacity = 4;
    assert_eq!(
        field(&c.upsert_agent(keyed).await.unwrap_err()),
        "idempotency_key"
    );
    let groups = c
        .list_support_groups(pb::ListSupportGroupsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        groups
            .groups
            .iter()
            .map(|g| g.id.as_str())
            .collect::<Vec<_>>(),
        ["orders", "refunds"]
    );
    let agents = c
        .list_agents(pb::ListAgentsRequest {
            group_id: "refunds".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        agents
            .agents
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>(),
        ["r1", "r2", "r3"]
    );
    let rules = c
        .list_routing_rules(pb::ListRoutingRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        rules
            .rules
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ["refunds", "orders"]
    );

    // Bad input, each named by its field.
    let mut g = group("Li Lei", &[], false);
    assert_eq!(
        field(&c.upsert_support_group(g.clone()).await.unwrap_err()),
        "group.id"
    );
    g = group("billing", &[], false);
    g.group.as_mut().unwrap().calendar_id = "no-such-calendar".into();
    assert_eq!(
        field(&c.upsert_support_group(g).await.unwrap_err()),
        "group.calendar_id"
    );
    assert_eq!(
        field(
            &c.upsert_agent(agent("a8", &["orders"], &[], 0))
                .await
                .unwrap_err()
        ),
        "agent.capacity"
    );
    assert_eq!(
        field(
            &c.upsert_agent(agent("a8", &["nowhere"], &[], 1))
                .await
                .unwrap_err()
        ),
        "agent.group_ids[0]"
    );
    let backwards = shift("s1", "orders", hours(8), hours(4), &["a1"]);
    assert_eq!(
        field(&c.upsert_shift(backwards).await.unwrap_err()),
        "shift.end"
    );
    let fraction = shift(
        "s1",
        "orders",
        t0() + Duration::milliseconds(500),
        hours(4),
        &["a1"],
    );
    assert_eq!(
        field(&c.upsert_shift(fraction).await.unwrap_err()),
        "shift.start"
    );
    let outsider = shift("s1", "orders", t0(), hours(4), &["a1", "r1"]);
    assert_eq!(
        field(&c.upsert_shift(outsider).await.unwrap_err()),
        "shift.agent_ids[1]"
    );
    let twice = shift("s1", "orders", t0(), hours(4), &["a1", "a1"]);
    assert_eq!(
        field(&c.upsert_shift(twice).await.unwrap_err()),
        "shift.agent_ids[1]"
    );
    let long = shift("s1", "orders", t0(), hours(24 * 8), &["a1"]);
    assert_eq!(field(&c.upsert_shift(long).await.unwrap_err()), "shift.end");
    let bad_region = pb::UpsertRoutingRuleRequest {
        idempotency_key: String::new(),
        rule: Some(pb::RoutingRule {
            match_region_codes: vec!["CN SH".into()],
            ..rule("r", 1, "orders")
        }),
    };
    assert_eq!(
        field(&c.upsert_routing_rule(bad_region).await.unwrap_err()),
        "rule.match_region_codes[0]"
    );
    let no_group = pb::UpsertRoutingRuleRequest {
        idempotency_key: String::new(),
        rule: Some(rule("r", 1, "nowhere")),
    };
    assert_eq!(
        field(&c.upsert_routing_rule(no_group).await.unwrap_err()),
        "rule.group_id"
    );
    let claim = pb::ClaimNextRequest {
        group_id: String::new(),
        agent_id: "a1".into(),
        ..Default::default()
    };
    assert_eq!(field(&c.claim_next(claim).await.unwrap_err()), "group_id");
    let unknown = pb::ClaimNextRequest {
        group_id: "orders".into(),
        agent_id: "ghost".into(),
        ..Default::default()
    };
    assert_eq!(field(&c.claim_next(unknown).await.unwrap_err()), "agent_id");
    let coverage = pb::CheckCoverageRequest {
        group_id: "orders".into(),
        from: ts(t0() + Duration::milliseconds(1)),
    };
    assert_eq!(
        field(&c.check_coverage(coverage).await.unwrap_err()),
        "from"
    );
    let missing = c
        .check_coverage(pb::CheckCoverageRequest {
            group_id: "nowhere".into(),
            from: None,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // Assign checks its input: the ticket, the agent, the group.
    let mut request = create_request(pb::Channel::Chat, "");
    request.category = pb::Category::Repair as i32;
    app.execute("DELETE FROM routing_rules").await;
    let unrouted = app
        .client
        .create_ticket(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unrouted.group_id, "", "no rule: no group");
    let c = &mut app.client;
    let assign = |assignee: &str, group_id: &str| pb::AssignRequest {
        ticket_id: unrouted.id.clone(),
        assignee: assignee.into(),
        group_id: group_id.into(),
        ..Default::default()
    };
    assert_eq!(
        field(&c.assign(assign("a1", "")).await.unwrap_err()),
        "group_id"
    );
    assert_eq!(
        field(&c.assign(assign("", "orders")).await.unwrap_err()),
        "assignee"
    );
    assert_eq!(
        field(&c.assign(assign("agent 1", "orders")).await.unwrap_err()),
        "assignee"
    );
    assert_eq!(
        field(&c.assign(assign("ghost", "orders")).await.unwrap_err()),
        "assignee"
    );
    assert_eq!(
        field(&c.assign(assign("a1", "nowhere")).await.unwrap_err()),
        "group_id"
    );
    let gone = c
        .assign(pb::AssignRequest {
            ticket_id: "no-such-ticket".into(),
            ..assign("a1", "orders")
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let done = c.assign(assign("a1", "orders")).await.unwrap().into_inner();
    assert_eq!(
        (done.group_id.as_str(), done.assignee.as_str()),
        ("orders", "a1")
    );
    app.stop().await;
}

#[tokio::test]
async fn admin_rpcs_are_keyed_and_bad_input_is_named_on_sqlite() {
    admin_and_bad_input(Backend::Sqlite).await;
}

#[tokio::test]
async fn admin_rpcs_are_keyed_and_bad_input_is_named_on_postgres() {
    admin_and_bad_input(Backend::Postgres).await;
}

/// Twenty tickets opened at once into a group whose agents can take six: exactly six are
/// assigned, nobody over capacity, the rest queued.
async fn capacity_holds_under_concurrent_routing(backend: Backend) {
    let (mut app, _) = spawn_at(backend).await;
    app.client
        .upsert_support_group(group("burst", &[], false))
        .await
        .unwrap();
    for id in ["b1", "b2", "b3"] {
        app.client
            .upsert_agent(agent(id, &["burst"], &[], 2))
            .await
            .unwrap();
    }
    app.client
        .upsert_shift(shift(
            "burst-day",
            "burst",
            t0(),
            hours(8),
            &["b1", "b2", "b3"],
        ))
        .await
        .unwrap();
    upsert_rule(&mut app, rule("burst", 1, "burst")).await;
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let mut client = app.client.clone();
            tokio::spawn(async move {
                client
                    .create_ticket(create_request(pb::Channel::Store, &format!("burst-{i}")))
                    .await
                    .map(|r| r.into_inner().assignee)
            })
        })
        .collect();
    let mut per_agent = std::collections::BTreeMap::new();
    for call in calls {
        let assignee = call.await.unwrap().expect("created");
        *per_agent.entry(assignee).or_insert(0) += 1;
    }
    let expected: std::collections::BTreeMap<String, i32> =
        [("", 14), ("b1", 2), ("b2", 2), ("b3", 2)]
            .map(|(a, n)| (a.to_owned(), n))
            .into();
    assert_eq!(per_agent, expected);
    let queue = app
        .client
        .list_queue(pb::ListQueueRequest {
            group_id: "burst".into(),
            page_size: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((queue.entries.len(), queue.total), (5, 14));
    app.stop().await;
}

#[tokio::test]
async fn capacity_holds_under_concurrent_routing_on_postgres() {
    capacity_holds_under_concurrent_routing(Backend::Postgres).await;
}

#[tokio::test]
async fn capacity_holds_under_concurrent_routing_on_sqlite() {
    capacity_holds_under_concurrent_routing(Backend::Sqlite).await;
}

/// The real worker on the system clock fires a shift's end from the deadline queue: the
/// work moves to the next shift once, never before the end.
async fn the_worker_hands_work_over_at_a_shifts_end(backend: Backend) {
    let mut app = crate::helpers::spawn(backend).await;
    let now = chrono::Utc::now();
    let end = chrono::DateTime::from_timestamp(now.timestamp() + 3, 0).unwrap();
    app.client
        .upsert_support_group(group("night", &[], false))
        .await
        .unwrap();
    for id in ["n1", "n2"] {
        app.client
            .upsert_agent(agent(id, &["night"], &[], 5))
            .await
            .unwrap();
    }
    let hour = Duration::hours(1);
    app.client
        .upsert_shift(shift("early", "night", end - hour, end, &["n1"]))
        .await
        .unwrap();
    app.client
        .upsert_shift(shift("late", "night", end, end + hour, &["n2"]))
        .await
        .unwrap();
    upsert_rule(&mut app, rule("night", 1, "night")).await;
    let t = open(&mut app, pb::Category::Inquiry, pb::Severity::General).await;
    assert_eq!(t.assignee, "n1");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while app.ticket(&t.id).await.assignee != "n2" {
        assert!(tokio::time::Instant::now() < deadline, "never handed over");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let lines: Vec<_> = activity(&mut app, &t.id, 20)
        .await
        .into_iter()
        .filter(|l| l.action == "handover")
        .collect();
    assert_eq!(lines.len(), 1, "once");
    let at = lines[0].at.as_ref().unwrap();
    let late_ms = (at.seconds - end.timestamp()) * 1_000 + i64::from(at.nanos) / 1_000_000;
    println!("shift end handed over {late_ms} ms after its end");
    assert!(late_ms >= 0, "{late_ms} ms early");
    assert_eq!(
        assigned_events(&app, &t.id).await.last().unwrap(),
        &("night".into(), "n2".into(), "n1".into(), "handover".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn the_worker_hands_work_over_at_a_shifts_end_on_postgres() {
    the_worker_hands_work_over_at_a_shifts_end(Backend::Postgres).await;
}

#[tokio::test]
async fn the_worker_hands_work_over_at_a_shifts_end_on_sqlite() {
    the_worker_hands_work_over_at_a_shifts_end(Backend::Sqlite).await;
}

/// `message` with `token` as its bearer.
fn bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// With real tokens: an agent claims for themself only, an agent may not set up teams, and
/// an admin may (the permission table, deny by default).
async fn tokens_decide_who_claims_and_who_sets_up(backend: Backend) {
    use aftersales_platform::{
        CancellationToken,
        auth::{AuthSettings, DevIssuer, roles},
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer_url = format!("http://{}", listener.local_addr().unwrap());
    let issuer = DevIssuer::generate(&issuer_url, DevIssuer::DEFAULT_AUDIENCE).unwrap();
    let stop = CancellationToken::new();
    tokio::spawn({
        let (issuer, stop) = (issuer.clone(), stop.clone());
        async move { issuer.serve(listener, stop).await }
    });
    let mut app = crate::helpers::spawn_with(
        backend,
        crate::helpers::Options {
            auth: Some(AuthSettings::oidc(issuer.settings())),
            ..crate::helpers::Options::default()
        },
    )
    .await;
    let ttl = std::time::Duration::from_secs(600);
    let admin = issuer.mint("admin-1", &[roles::ADMIN], ttl).unwrap();
    let a1 = issuer.mint("a1", &[roles::AGENT], ttl).unwrap();
    let refused = app
        .client
        .upsert_support_group(bearer(group("orders", &[], false), &a1))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    app.client
        .upsert_support_group(bearer(group("orders", &[], false), &admin))
        .await
        .unwrap();
    for id in ["a1", "a2"] {
        app.client
            .upsert_agent(bearer(agent(id, &["orders"], &[], 3), &admin))
            .await
            .unwrap();
    }
    let now = chrono::Utc::now();
    let start = chrono::DateTime::from_timestamp(now.timestamp() - 60, 0).unwrap();
    let on = shift(
        "now",
        "orders",
        start,
        start + Duration::hours(2),
        &["a1", "a2"],
    );
    app.client.upsert_shift(bearer(on, &admin)).await.unwrap();
    let claim = |agent_id: &str| pb::ClaimNextRequest {
        idempotency_key: String::new(),
        group_id: "orders".into(),
        agent_id: agent_id.into(),
    };
    let for_another = app
        .client
        .claim_next(bearer(claim("a2"), &a1))
        .await
        .unwrap_err();
    assert_eq!(
        for_another.code(),
        Code::PermissionDenied,
        "{for_another:?}"
    );
    let own = app
        .client
        .claim_next(bearer(claim("a1"), &a1))
        .await
        .unwrap()
        .into_inner();
    assert!(
        own.ticket.is_none(),
        "an empty queue answers without a ticket"
    );
    stop.cancel();
    app.stop().await;
}

#[tokio::test]
async fn tokens_decide_who_claims_and_who_sets_up_on_sqlite() {
    tokens_decide_who_claims_and_who_sets_up(Backend::Sqlite).await;
}

#[tokio::test]
async fn tokens_decide_who_claims_and_who_sets_up_on_postgres() {
    tokens_decide_who_claims_and_who_sets_up(Backend::Postgres).await;
}
