//! Teams and routing set up through the API, on both backends: the admin RPCs keyed and
//! listed, bad input named by its field, an assignment that checks its input, and the
//! permission table with real tokens.

use aftersales_protos::tickets::v1 as pb;
use chrono::Duration;
use tonic::Code;

use crate::{
    helpers::{Backend, create_request},
    team_support::{agent, desk, field, group, hours, rule, shift, spawn_at, t0, ts},
};

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
