//! Routing through the API, on both backends: a new ticket routed to the least-loaded agent on duty or
//! round-robin or into the queue, the queue in order of SLA risk, claims, checked
//! assignments, and a shift's end handing work over exactly once and never early — each
//! recorded in the activity log and published as TicketAssigned.

use aftersales_deadlines::worker::{Deadlines, Due};
use aftersales_protos::tickets::v1 as pb;
use aftersales_tickets::usecases::TicketsDeadline;
use chrono::Duration;
use tonic::Code;

use crate::{
    desk::{activity, change},
    helpers::{Backend, create_request},
    team_support::{
        advance_to, agent, assigned_events, desk, field, group, hours, open, rule, shift, spawn_at,
        t0, ts, upsert_rule,
    },
};

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
    let listed = app
        .client
        .list_tickets(pb::ListTicketsRequest {
            group_id: "refunds".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.tickets.len(), 4, "ListTickets filters by group");

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
