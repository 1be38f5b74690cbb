//! A scripted week of the desk: three groups (orders least-loaded, refunds round-robin,
//! complaints least-loaded), ten agents with capacities (one in two groups, one lacking
//! the orders skill), rosters with deliberate gaps, routing rules (one disabled), and 200
//! tickets of mixed kinds arriving at known instants, with resolutions, claims and every
//! shift end fired through the deadline queue. Each ticket's assignment — when it is
//! created, after each claim, and at the end of the week — must equal what a small
//! reference model in this file computes on its own; the coverage reports must equal the
//! gaps computed by hand.

use std::collections::BTreeMap;

use aftersales_protos::tickets::v1 as pb;
use chrono::{DateTime, Duration, Utc};
use tonic::Code;

use crate::{
    desk::activity,
    helpers::{Backend, TestApp, create_request},
    team_support::{
        advance_to, agent, group, hours, rule, shift, spawn_at, t0, ts, upsert_rule, week_policies,
    },
};

const ARRIVALS: usize = 200;

/// An agent as the model knows it.
struct ModelAgent {
    id: &'static str,
    groups: &'static [&'static str],
    skills: &'static [&'static str],
    capacity: usize,
}

const AGENTS: &[ModelAgent] = &[
    ModelAgent {
        id: "c1",
        groups: &["complaints"],
        skills: &["complaints"],
        capacity: 2,
    },
    ModelAgent {
        id: "c2",
        groups: &["complaints"],
        skills: &["complaints"],
        capacity: 3,
    },
    ModelAgent {
        id: "c3",
        groups: &["complaints"],
        skills: &["complaints"],
        capacity: 1,
    },
    ModelAgent {
        id: "o1",
        groups: &["orders"],
        skills: &["orders"],
        capacity: 3,
    },
    ModelAgent {
        id: "o2",
        groups: &["orders"],
        skills: &["orders"],
        capacity: 2,
    },
    ModelAgent {
        id: "o3",
        groups: &["complaints", "orders"],
        skills: &["complaints", "orders"],
        capacity: 4,
    },
    ModelAgent {
        id: "o4",
        groups: &["orders"],
        skills: &["returns"],
        capacity: 5,
    },
    ModelAgent {
        id: "r1",
        groups: &["refunds"],
        skills: &[],
        capacity: 2,
    },
    ModelAgent {
        id: "r2",
        groups: &["refunds"],
        skills: &[],
        capacity: 2,
    },
    ModelAgent {
        id: "r3",
        groups: &["refunds"],
        skills: &[],
        capacity: 3,
    },
];

/// (group, skills, round-robin)
const GROUPS: &[(&str, &[&str], bool)] = &[
    ("complaints", &["complaints"], false),
    ("orders", &["orders"], false),
    ("refunds", &[], true),
];

struct ModelShift {
    id: String,
    group: &'static str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    agents: Vec<&'static str>,
}

/// The rosters, with the gaps the coverage test expects: orders' Friday day shift ends at
/// 14:00 (not 16:00), refunds' Saturday night shift has nobody, complaints has no
/// Wednesday evening shift.
fn rosters() -> Vec<ModelShift> {
    let mut shifts = Vec::new();
    let mut add = |id: String, group, start: i64, end: i64, agents: &[&'static str]| {
        shifts.push(ModelShift {
            id,
            group,
            start: hours(start),
            end: hours(end),
            agents: agents.to_vec(),
        });
    };
    for d in 0..7 {
        let h = 24 * d;
        add(format!("orders-{d}-night"), "orders", h, h + 8, &["o2"]);
        let day_end = if d == 4 { h + 14 } else { h + 16 };
        add(
            format!("orders-{d}-day"),
            "orders",
            h + 8,
            day_end,
            &["o3", "o4", "o2"],
        );
        add(
            format!("orders-{d}-evening"),
            "orders",
            h + 16,
            h + 24,
            &["o1"],
        );
        add(
            format!("complaints-{d}-night"),
            "complaints",
            h,
            h + 8,
            &["c3"],
        );
        add(
            format!("complaints-{d}-day"),
            "complaints",
            h + 8,
            h + 16,
            &["c1", "c2", "o3"],
        );
        if d != 2 {
            add(
                format!("complaints-{d}-evening"),
                "complaints",
                h + 16,
                h + 24,
                &["c2"],
            );
        }
        add(
            format!("refunds-{d}-day"),
            "refunds",
            h + 8,
            h + 20,
            &["r1", "r2", "r3"],
        );
    }
    for d in -1..7 {
        let h = 24 * d;
        let agents: &[&str] = if d == 5 { &[] } else { &["r1"] };
        add(
            format!("refunds-{d}-night"),
            "refunds",
            h + 20,
            h + 32,
            agents,
        );
    }
    shifts
}

struct Rule {
    id: &'static str,
    priority: i32,
    group: &'static str,
    categories: &'static [pb::Category],
    severities: &'static [pb::Severity],
    channels: &'static [pb::Channel],
    lines: &'static [&'static str],
    regions: &'static [&'static str],
    disabled: bool,
}

const RULES: &[Rule] = &[
    Rule {
        id: "everything",
        priority: 1,
        group: "refunds",
        categories: &[],
        severities: &[],
        channels: &[],
        lines: &[],
        regions: &[],
        disabled: true,
    },
    Rule {
        id: "urgent",
        priority: 10,
        group: "complaints",
        categories: &[],
        severities: &[pb::Severity::Urgent],
        channels: &[],
        lines: &[],
        regions: &[],
        disabled: false,
    },
    Rule {
        id: "refunds",
        priority: 20,
        group: "refunds",
        categories: &[pb::Category::ReturnExchange],
        severities: &[],
        channels: &[],
        lines: &[],
        regions: &[],
        disabled: false,
    },
    Rule {
        id: "sh-kettles",
        priority: 30,
        group: "complaints",
        categories: &[],
        severities: &[],
        channels: &[],
        lines: &["kettle"],
        regions: &["CN-SH"],
        disabled: false,
    },
    Rule {
        id: "orders",
        priority: 40,
        group: "orders",
        categories: &[pb::Category::Inquiry, pb::Category::TechnicalSupport],
        severities: &[],
        channels: &[],
        lines: &[],
        regions: &[],
        disabled: false,
    },
    Rule {
        id: "complaints",
        priority: 50,
        group: "complaints",
        categories: &[pb::Category::Complaint],
        severities: &[],
        channels: &[],
        lines: &[],
        regions: &[],
        disabled: false,
    },
    Rule {
        id: "social",
        priority: 60,
        group: "orders",
        categories: &[],
        severities: &[],
        channels: &[pb::Channel::Social],
        lines: &[],
        regions: &[],
        disabled: false,
    },
];

/// What arrives as ticket `i`, and when.
struct Arrival {
    at: DateTime<Utc>,
    category: pb::Category,
    severity: pb::Severity,
    channel: pb::Channel,
    line: &'static str,
    region: &'static str,
}

fn arrival(i: usize) -> Arrival {
    use pb::{Category as C, Channel as Ch, Severity as S};
    let categories = [
        C::Inquiry,
        C::Complaint,
        C::ReturnExchange,
        C::Repair,
        C::TechnicalSupport,
    ];
    let channels = [
        Ch::Hotline,
        Ch::Chat,
        Ch::Email,
        Ch::App,
        Ch::MarketplaceReview,
        Ch::Store,
        Ch::Social,
    ];
    let severity = if i.is_multiple_of(11) {
        S::Urgent
    } else if i % 4 == 1 {
        S::Important
    } else {
        S::General
    };
    Arrival {
        // Five past, then every 50 minutes: never on an hour, so never at a shift's end.
        at: t0() + Duration::minutes(5 + 50 * i as i64),
        category: categories[i % 5],
        severity,
        channel: channels[i % 7],
        line: ["kettle", "fridge", "phone"][i % 3],
        region: ["CN-SH", "CN-BJ"][(i / 2) % 2],
    }
}

fn first_response(severity: pb::Severity) -> Duration {
    match severity {
        pb::Severity::Urgent => Duration::hours(1),
        pb::Severity::Important => Duration::hours(2),
        _ => Duration::hours(8),
    }
}

/// The claims of the week: at arrival `i` with `i % 3 == 0`, before the ticket arrives.
fn claimer(i: usize) -> Option<(&'static str, &'static str)> {
    const ROTA: [(&str, &str); 9] = [
        ("c1", "complaints"),
        ("o1", "orders"),
        ("r2", "refunds"),
        ("c3", "complaints"),
        ("o2", "orders"),
        ("c2", "complaints"),
        ("o4", "orders"),
        ("o3", "complaints"),
        ("r1", "refunds"),
    ];
    (i.is_multiple_of(3)).then(|| ROTA[(i / 3) % ROTA.len()])
}

/// The resolutions of the week: at arrival `i`, ticket `i - 4` is resolved, except for
/// every fourth one, which stays open for good.
fn resolved_at(i: usize) -> Option<usize> {
    (i >= 4 && i % 4 != 3).then(|| i - 4)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelTicket {
    group: Option<&'static str>,
    agent: Option<&'static str>,
    /// Every agent the ticket had, in order ("" for the queue), from its first routing.
    history: Vec<&'static str>,
    open: bool,
    due: DateTime<Utc>,
}

/// The reference model: the rules of the contract, written out plainly.
struct Model {
    /// Handed over to an agent / back to the queue at shift ends.
    handed: (usize, usize),
    tickets: Vec<ModelTicket>,
    last: BTreeMap<&'static str, &'static str>,
    shifts: Vec<ModelShift>,
}

impl Model {
    fn agent(id: &str) -> &'static ModelAgent {
        AGENTS.iter().find(|a| a.id == id).unwrap()
    }

    fn load(&self, agent: &str) -> usize {
        self.tickets
            .iter()
            .filter(|t| t.open && t.agent == Some(agent))
            .count()
    }

    fn on_duty(&self, group: &str, at: DateTime<Utc>) -> Vec<&'static str> {
        let mut ids: Vec<&'static str> = self
            .shifts
            .iter()
            .filter(|s| s.group == group && s.start <= at && at < s.end)
            .flat_map(|s| s.agents.iter().copied())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    fn qualifies(agent: &str, group: &str) -> bool {
        let a = Self::agent(agent);
        let skills = GROUPS.iter().find(|g| g.0 == group).unwrap().1;
        a.groups.contains(&group) && skills.iter().all(|s| a.skills.contains(s))
    }

    fn choose(&mut self, group: &'static str, at: DateTime<Utc>) -> Option<&'static str> {
        let available: Vec<&'static str> = self
            .on_duty(group, at)
            .into_iter()
            .filter(|a| Self::qualifies(a, group) && self.load(a) < Self::agent(a).capacity)
            .collect();
        let round_robin = GROUPS.iter().find(|g| g.0 == group).unwrap().2;
        let chosen = if round_robin {
            let last = self.last.get(group).copied();
            available
                .iter()
                .find(|a| last.is_none_or(|l| **a > l))
                .or(available.first())
                .copied()
        } else {
            available
                .iter()
                .min_by_key(|a| (self.load(a), **a))
                .copied()
        };
        if let Some(a) = chosen {
            self.last.insert(group, a);
        }
        chosen
    }

    fn arrive(&mut self, i: usize) {
        let a = arrival(i);
        let matched = RULES.iter().find(|r| {
            !r.disabled
                && (r.categories.is_empty() || r.categories.contains(&a.category))
                && (r.severities.is_empty() || r.severities.contains(&a.severity))
                && (r.channels.is_empty() || r.channels.contains(&a.channel))
                && (r.lines.is_empty() || r.lines.contains(&a.line))
                && (r.regions.is_empty() || r.regions.contains(&a.region))
        });
        let group = matched.map(|r| r.group);
        let agent = group.and_then(|g| self.choose(g, a.at));
        let history = group.map(|_| agent.unwrap_or("")).into_iter().collect();
        self.tickets.push(ModelTicket {
            group,
            agent,
            history,
            open: true,
            due: a.at + first_response(a.severity),
        });
    }

    /// The queue of a group: open, unassigned, by due instant then arrival.
    fn queue(&self, group: &str) -> Vec<usize> {
        let mut queue: Vec<usize> = (0..self.tickets.len())
            .filter(|&i| {
                let t = &self.tickets[i];
                t.open && t.group == Some(group) && t.agent.is_none()
            })
            .collect();
        queue.sort_by_key(|&i| (self.tickets[i].due, i));
        queue
    }

    /// `Err(())`: refused (not on duty, not qualified, at capacity).
    fn claim(
        &mut self,
        agent: &'static str,
        group: &'static str,
        at: DateTime<Utc>,
    ) -> Result<Option<usize>, ()> {
        if !Self::qualifies(agent, group)
            || !self.on_duty(group, at).contains(&agent)
            || self.load(agent) >= Self::agent(agent).capacity
        {
            return Err(());
        }
        let next = self.queue(group).first().copied();
        if let Some(i) = next {
            self.tickets[i].agent = Some(agent);
            self.tickets[i].history.push(agent);
        }
        Ok(next)
    }

    fn end_shift(&mut self, shift_id: &str) {
        let s = self.shifts.iter().find(|s| s.id == shift_id).unwrap();
        let (group, at, agents) = (s.group, s.end, s.agents.clone());
        let on_duty = self.on_duty(group, at);
        let leaving: Vec<&str> = agents
            .into_iter()
            .filter(|a| !on_duty.contains(a))
            .collect();
        let mut work: Vec<usize> = (0..self.tickets.len())
            .filter(|&i| {
                let t = &self.tickets[i];
                t.open && t.group == Some(group) && t.agent.is_some_and(|a| leaving.contains(&a))
            })
            .collect();
        work.sort_by_key(|&i| (self.tickets[i].due, i));
        for i in work {
            let agent = self.choose(group, at);
            if agent.is_some() {
                self.handed.0 += 1;
            } else {
                self.handed.1 += 1;
            }
            self.tickets[i].agent = agent;
            self.tickets[i].history.push(agent.unwrap_or(""));
        }
    }
}

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
        let created = app
            .client
            .create_ticket(request)
            .await
            .expect("created")
            .into_inner();
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
    println!(
        "week: {routed} routed of {ARRIVALS}, {claims_made} claims, {claims_refused} refused, \
         handed over {:?} (to an agent, to the queue), {queued_now} queued at the end, \
         {assigned_on_arrival} with an agent at the end",
        model.handed
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
