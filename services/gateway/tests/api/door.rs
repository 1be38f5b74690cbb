//! Bad keys at the door: each client address has a budget of failed key attempts (checked
//! before any lookup, 429 / RESOURCE_EXHAUSTED once spent), a refused key is remembered
//! for a while so repeating it costs dispatch nothing, and the budget is per address: the
//! connection's, or what a trusted proxy forwards.

use std::time::Duration;

use aftersales_gateway::{app::GatewaySettings, limiter::AttemptQuota, peer::TrustedProxies};
use aftersales_protos::{dispatch::v1 as pb, partner::v1 as partner};
use tonic::Code;

use crate::helpers::{Gateway, REGION_A, Suite, agent, keyed, suite};

const OTHER_CLIENT: &str = "127.0.0.2";

fn attempts(per_minute: u32, burst: u32) -> AttemptQuota {
    AttemptQuota {
        per_minute: per_minute.try_into().unwrap(),
        burst: burst.try_into().unwrap(),
    }
}

async fn grpc_offers(gw: &mut Gateway, secret: &str) -> Result<(), tonic::Status> {
    gw.grpc
        .list_offers(keyed(partner::ListOffersRequest {}, secret))
        .await
        .map(|_| ())
}

async fn set_active(s: &mut Suite, partner_id: &str, active: bool) {
    let current = s
        .dispatch
        .get_partner(pb::GetPartnerRequest {
            partner_id: partner_id.into(),
        })
        .await
        .expect("the partner")
        .into_inner();
    let mut spec = current.spec.expect("a spec");
    spec.active = active;
    s.dispatch
        .update_partner(pb::UpdatePartnerRequest {
            partner_id: partner_id.into(),
            spec: Some(spec),
            expected_version: 0,
            actor: Some(agent()),
        })
        .await
        .expect("updated");
}

#[tokio::test]
async fn bad_keys_cost_at_most_the_failed_attempt_budget_then_429_on_both_faces() {
    const BURST: u32 = 5;
    let mut s = suite(false).await;
    let mut gw = s
        .gateway(|g: &mut GatewaySettings| {
            g.failed_attempts = attempts(10, BURST);
            // A partner's key, once accepted, is trusted for a minute.
            g.key_cache_ttl = Duration::from_secs(60);
        })
        .await;
    let a = s.partner("A", REGION_A).await;
    // A's key was accepted from this address before the attack began.
    assert_eq!(gw.http.get("/v1/offers", Some(&a.secret)).await.status, 200);
    assert_eq!(gw.lookups.get(), 1);

    // 40 different bad keys from one address: the first BURST are looked up and refused,
    // every later one is refused before any lookup.
    let mut answers = Vec::new();
    for n in 0..40 {
        answers.push(
            gw.http
                .get("/v1/jobs", Some(&format!("pk_guess-{n}")))
                .await,
        );
    }
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert!(
        statuses[..BURST as usize].iter().all(|s| *s == 401),
        "{statuses:?}"
    );
    assert!(
        statuses[BURST as usize..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
    assert_eq!(gw.lookups.get(), 1 + u64::from(BURST), "dispatch lookups");
    let limited = &answers[BURST as usize];
    assert_eq!(limited.body["code"], "resource_exhausted");
    // At 10 a minute the next attempt is allowed within 6 s.
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=6).contains(&wait), "{wait}");

    // The gRPC face shares the budget of the address and says the same.
    let refused = grpc_offers(&mut gw, "pk_guess-grpc").await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.metadata().get("retry-after").is_some());
    assert_eq!(gw.lookups.get(), 1 + u64::from(BURST));

    // A key accepted before still works from the limited address: it needs no lookup.
    assert_eq!(gw.http.get("/v1/offers", Some(&a.secret)).await.status, 200);
    grpc_offers(&mut gw, &a.secret).await.expect("A over gRPC");

    // Another address has a budget of its own: a good key works at once, and its own bad
    // keys are looked up.
    let b = s.partner("B", REGION_A).await;
    let mut other = gw.reached_from(OTHER_CLIENT.parse().unwrap()).await;
    assert_eq!(
        other.http.get("/v1/offers", Some(&b.secret)).await.status,
        200
    );
    grpc_offers(&mut other, &b.secret)
        .await
        .expect("B over gRPC");
    assert_eq!(
        other.http.get("/v1/offers", Some("pk_other")).await.status,
        401
    );
    s.stop().await;
}

#[tokio::test]
async fn a_refused_key_is_remembered_and_works_once_good_again_after_the_window() {
    let window = Duration::from_millis(800);
    let mut s = suite(false).await;
    let mut gw = s.gateway(|g| g.negative_key_cache_ttl = window).await;
    let a = s.partner("A", REGION_A).await;
    set_active(&mut s, &a.id, false).await;

    // The key of an inactive partner is refused; asking again costs no lookup.
    for _ in 0..10 {
        assert_eq!(gw.http.get("/v1/offers", Some(&a.secret)).await.status, 401);
        let err = grpc_offers(&mut gw, &a.secret).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    assert_eq!(gw.lookups.get(), 1, "one lookup for twenty attempts");

    // Reactivated: still refused from memory within the window, accepted after it.
    set_active(&mut s, &a.id, true).await;
    assert_eq!(gw.http.get("/v1/offers", Some(&a.secret)).await.status, 401);
    tokio::time::sleep(window + Duration::from_millis(200)).await;
    assert_eq!(gw.http.get("/v1/offers", Some(&a.secret)).await.status, 200);
    grpc_offers(&mut gw, &a.secret).await.expect("good again");
    assert_eq!(gw.lookups.get(), 3);
    s.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let mut s = suite(false).await;
    let gw = s
        .gateway(|g| {
            g.failed_attempts = attempts(10, 2);
            g.trusted_proxies = TrustedProxies::parse("127.0.0.1/32").unwrap();
        })
        .await;
    let via_proxy = |client: &str, key: &str| {
        let request = gw
            .http
            .client
            .get(gw.http.url("/v1/offers"))
            .bearer_auth(key)
            .header("X-Forwarded-For", client);
        gw.http.send(request)
    };
    for n in 0..2 {
        assert_eq!(
            via_proxy("203.0.113.7", &format!("pk_{n}")).await.status,
            401
        );
    }
    assert_eq!(via_proxy("203.0.113.7", "pk_2").await.status, 429);
    // Another client behind the same proxy is not limited by the first.
    assert_eq!(via_proxy("203.0.113.8", "pk_3").await.status, 401);
    assert_eq!(gw.lookups.get(), 3);

    // Without trust in the proxy, the header is the caller's own claim and is ignored:
    // one budget for the connection's address, whatever it claims.
    let direct = s.gateway(|g| g.failed_attempts = attempts(10, 2)).await;
    let claim = |client: &str, key: &str| {
        let request = direct
            .http
            .client
            .get(direct.http.url("/v1/offers"))
            .bearer_auth(key)
            .header("X-Forwarded-For", client);
        direct.http.send(request)
    };
    assert_eq!(claim("198.51.100.1", "pk_a").await.status, 401);
    assert_eq!(claim("198.51.100.2", "pk_b").await.status, 401);
    assert_eq!(claim("198.51.100.3", "pk_c").await.status, 429);
    s.stop().await;
}
