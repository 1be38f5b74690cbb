//! A scripted week of the desk: three groups (orders least-loaded, refunds round-robin,
//! complaints least-loaded), ten agents with capacities (one in two groups, one lacking
//! the orders skill), rosters with deliberate gaps, routing rules (one disabled), and 200
//! tickets of mixed kinds arriving at known instants, with resolutions, claims and every
//! shift end fired through the deadline queue. Each ticket's assignment — when it is
//! created, after each claim, and at the end of the week — must equal what a small
//! reference model (`week_model`) computes on its own from the script (`week_script`); the coverage reports must equal the
//! gaps computed by hand.

use std::collections::BTreeMap;

use aftersales_protos::tickets::v1 as pb;
use chrono::{DateTime, Utc};
use tonic::Code;

use crate::{
    desk::activity,
    helpers::{Backend, TestApp, create_request},
    team_support::{
        advance_to, agent, group, hours, rule, shift, spawn_at, t0, ts, upsert_rule, week_policies,
    },
    week_model::{Model, ModelTicket},
    week_script::{AGENTS, ARRIVALS, GROUPS, RULES, arrival, claimer, resolved_at, rosters},
};

fn seen(t: &pb::Ticket) -> (Option<String>, Option<String>) {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    (some(&t.group_id), some(&t.assignee))
}

fn expected(t: &ModelTicket) -> (Option<String>, Option<String>) {
    (t.group.map(str::to_owned), t.agent.map(str::to_owned))
}

async fn set_up(app: &mut TestApp) {
    week_policies(app).await;
    for (id, skills, rr) in GROUPS {
        app.client
            .upsert_support_group(group(id, skills, *rr))
            .await
            .expect("group");
    }
    for a in AGENTS {
        app.client
            .upsert_agent(agent(a.id, a.groups, a.skills, a.capacity as u32))
            .await
            .expect("agent");
    }
    for s in rosters() {
        app.client
            .upsert_shift(shift(&s.id, s.group, s.start, s.end, &s.agents))
            .await
            .expect("shift");
    }
    for r in RULES {
        upsert_rule(
            app,
            pb::RoutingRule {
                match_categories: r.categories.iter().map(|c| *c as i32).collect(),
                match_severities: r.severities.iter().map(|s| *s as i32).collect(),
                match_channels: r.channels.iter().map(|c| *c as i32).collect(),
                match_product_lines: r.lines.iter().map(|s| (*s).to_owned()).collect(),
                match_region_codes: r.regions.iter().map(|s| (*s).to_owned()).collect(),
                disabled: r.disabled,
                ..rule(r.id, r.priority, r.group)
            },
        )
        .await;
    }
}

async fn coverage(app: &mut TestApp, group: &str, from: DateTime<Utc>) -> (Vec<(i64, i64)>, u64) {
    let report = app
        .client
        .check_coverage(pb::CheckCoverageRequest {
            group_id: group.into(),
            from: ts(from),
        })
        .await
        .expect("coverage")
        .into_inner();
    let secs = |t: &Option<prost_types::Timestamp>| t.as_ref().unwrap().seconds;
    assert_eq!(secs(&report.to) - secs(&report.from), 7 * 86_400);
    let gaps = report
        .gaps
        .iter()
        .map(|g| (secs(&g.from), secs(&g.to)))
        .collect();
    (gaps, report.uncovered_seconds)
}

async fn a_scripted_week(backend: Backend) {
    let (mut app, manual) = spawn_at(backend).await;
    set_up(&mut app).await;

    // Coverage, computed by hand from the rosters above.
    let s = |h: i64| hours(h).timestamp();
    assert_eq!(
        coverage(&mut app, "orders", t0()).await,
        (vec![(s(4 * 24 + 14), s(4 * 24 + 16))], 7_200)
    );
    assert_eq!(
        coverage(&mut app, "refunds", t0()).await,
        (vec![(s(5 * 24 + 20), s(6 * 24 + 8))], 43_200)
    );
    let wednesday_10 = hours(2 * 24 + 10);
    assert_eq!(
        coverage(&mut app, "complaints", wednesday_10).await,
        (
            vec![(s(2 * 24 + 16), s(3 * 24)), (s(7 * 24), s(9 * 24 + 10))],
            8 * 3_600 + 58 * 3_600
        ),
    );

    let mut model = Model {
        handed: (0, 0),
        tickets: Vec::new(),
        last: BTreeMap::new(),
        shifts: rosters(),
    };
    let mut ids: Vec<String> = Vec::new();
    let mut create_times = Vec::with_capacity(ARRIVALS);
    let (mut claims_made, mut claims_refused, mut handovers) = (0, 0, 0);
    let mut last_instant = t0();
    for i in 0..ARRIVALS {
        let a = arrival(i);
        // Every shift end up to the arrival, at its own instant, before the arrival.
        let mut ends: Vec<DateTime<Utc>> = model
            .shifts
            .iter()
            .map(|s| s.end)
            .filter(|e| *e > last_instant && *e <= a.at)
            .collect();
        ends.sort();
        ends.dedup();
        for end in ends {
            for shift_id in advance_to(&app, &manual, end).await {
                model.end_shift(&shift_id);
                handovers += 1;
            }
        }
        let fired = advance_to(&app, &manual, a.at).await;
        assert!(fired.is_empty(), "no shift ends at an arrival: {fired:?}");
        last_instant = a.at;

        if let Some(j) = resolved_at(i) {
            app.client
                .change_status(pb::ChangeStatusRequest {
                    ticket_id: ids[j].clone(),
                    status: pb::TicketStatus::Resolved as i32,
                    reason: "solved".into(),
                    actor: None,
                })
                .await
                .expect("resolved");
            model.tickets[j].open = false;
        }
        if let Some((agent_id, group_id)) = claimer(i) {
            let answer = app
                .client
                .claim_next(pb::ClaimNextRequest {
                    idempotency_key: format!("claim-{i}"),
                    group_id: group_id.into(),
                    agent_id: agent_id.into(),
                })
                .await;
            match model.claim(agent_id, group_id, a.at) {
                Err(()) => {
                    let status = answer.expect_err("the model refuses this claim");
                    assert_eq!(
                        status.code(),
                        Code::FailedPrecondition,
                        "claim {i} by {agent_id}: {status:?}"
                    );
                    claims_refused += 1;
                }
                Ok(next) => {
                    let got = answer
                        .unwrap_or_else(|e| panic!("claim {i} by {agent_id}: {e:?}"))
                        .into_inner();
                    let got_id = got.ticket.as_ref().map(|t| t.id.clone());
                    assert_eq!(
                        got_id,
                        next.map(|j| ids[j].clone()),
                        "claim {i} by {agent_id} in {group_id}"
                    );
                    if let Some(t) = got.ticket {
                        assert_eq!(t.assignee, agent_id);
                        claims_made += 1;
                    }
                }
            }
        }

        let mut request = create_request(a.channel, &format!("week-{i}"));
        request.category = a.category as i32;
        request.severity = a.severity as i32;
        request.product = Some(pb::ProductFacts {
            product_line: a.line.into(),
            region_code: a.region.into(),
            ..Default::default()
        });
        let began = std::time::Instant::now();
        let created = app
            .client
            .create_ticket(request)
            .await
            .expect("created")
            .into_inner();
        create_times.push(began.elapsed());
        model.arrive(i);
        assert_eq!(
            seen(&created),
            expected(&model.tickets[i]),
            "ticket {i} as routed on arrival"
        );
        ids.push(created.id);
    }
    // The rest of the week: every remaining shift end.
    let mut ends: Vec<DateTime<Utc>> = model
        .shifts
        .iter()
        .map(|s| s.end)
        .filter(|e| *e > last_instant)
        .collect();
    ends.sort();
    ends.dedup();
    for end in ends {
        for shift_id in advance_to(&app, &manual, end).await {
            model.end_shift(&shift_id);
            handovers += 1;
        }
    }
    assert_eq!(handovers, model.shifts.len(), "every shift ended once");

    for (i, id) in ids.iter().enumerate() {
        let t = app.ticket(id).await;
        assert_eq!(
            seen(&t),
            expected(&model.tickets[i]),
            "ticket {i} at the end of the week"
        );
        // Every assignment of the week, as the activity log recorded it.
        let log = activity(&mut app, id, 100).await;
        let history: Vec<String> = log
            .iter()
            .filter(|l| ["route", "claim", "handover"].contains(&l.action.as_str()))
            .map(|l| {
                let assignee = l.changes.iter().find(|c| c.field == "assignee");
                // Routed into the queue: only the group changed.
                assignee.map(|c| c.after.clone()).unwrap_or_default()
            })
            .collect();
        assert_eq!(
            history, model.tickets[i].history,
            "ticket {i}'s assignments over the week"
        );
    }
    // The script exercises every path, so a broken one cannot hide.
    let routed = model.tickets.iter().filter(|t| t.group.is_some()).count();
    let queued_now = model
        .tickets
        .iter()
        .filter(|t| t.open && t.group.is_some() && t.agent.is_none())
        .count();
    let assigned_on_arrival = model.tickets.iter().filter(|t| t.agent.is_some()).count();
    create_times.sort();
    println!(
        "week: {routed} routed of {ARRIVALS}, {claims_made} claims, {claims_refused} refused, \
         handed over {:?} (to an agent, to the queue), {queued_now} queued at the end, \
         {assigned_on_arrival} with an agent at the end; CreateTicket with routing: median \
         {:?}, slowest {:?}",
        model.handed,
        create_times[create_times.len() / 2],
        create_times[create_times.len() - 1],
    );
    assert!(routed < ARRIVALS && routed > ARRIVALS / 2);
    assert!(model.handed.0 > 5 && model.handed.1 > 5);
    assert!(claims_made > 5 && claims_refused > 5);
    assert!(queued_now > 0);
    // Each group's queue lists exactly the model's, in its order.
    for (g, _, _) in GROUPS {
        let queue = app
            .client
            .list_queue(pb::ListQueueRequest {
                group_id: (*g).into(),
                page_size: 500,
            })
            .await
            .unwrap()
            .into_inner();
        let got: Vec<String> = queue
            .entries
            .iter()
            .map(|e| e.ticket.as_ref().unwrap().id.clone())
            .collect();
        let want: Vec<String> = model.queue(g).into_iter().map(|i| ids[i].clone()).collect();
        assert_eq!(got, want, "the queue of {g}");
        assert_eq!(queue.total as usize, want.len());
    }
    app.stop().await;
}

#[tokio::test]
async fn a_scripted_week_assigns_every_ticket_as_the_reference_model_on_sqlite() {
    a_scripted_week(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_scripted_week_assigns_every_ticket_as_the_reference_model_on_postgres() {
    a_scripted_week(Backend::Postgres).await;
}
