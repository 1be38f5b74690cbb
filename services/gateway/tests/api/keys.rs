//! Keys at the door: missing and bad keys, revocation, rotation with overlap, and how
//! long a resolved key is trusted.

use std::time::Duration;

use aftersales_protos::{dispatch::v1 as pb, partner::v1 as partner};
use tonic::{Code, Request};

use crate::helpers::{Gateway, REGION_A, Seeded, agent, keyed, suite};

async fn grpc_offers(gw: &mut Gateway, request: Request<partner::ListOffersRequest>) -> Code {
    match gw.grpc.list_offers(request).await {
        Ok(_) => Code::Ok,
        Err(status) => {
            if status.code() == Code::Unauthenticated {
                assert_eq!(
                    status
                        .metadata()
                        .get("www-authenticate")
                        .map(|v| v.to_str().unwrap()),
                    Some("Bearer")
                );
            }
            status.code()
        }
    }
}

async fn works_on_both_faces(gw: &mut Gateway, secret: &str) -> bool {
    let grpc = grpc_offers(gw, keyed(partner::ListOffersRequest {}, secret)).await;
    let http = gw.http.get("/v1/offers", Some(secret)).await.status;
    assert_eq!(
        grpc == Code::Ok,
        http == 200,
        "the faces disagree: {grpc:?} vs {http}"
    );
    if grpc != Code::Ok {
        assert_eq!(grpc, Code::Unauthenticated);
        assert_eq!(http, 401);
    }
    grpc == Code::Ok
}

async fn revoke(s: &mut crate::helpers::Suite, key_id: &str) {
    s.keys
        .revoke_partner_key(pb::RevokePartnerKeyRequest {
            key_id: key_id.into(),
            actor: Some(agent()),
        })
        .await
        .expect("revoked");
}

#[tokio::test]
async fn missing_and_bad_keys_are_refused_on_both_faces() {
    let mut s = suite(false).await;
    let mut gw = s.gateway(|_| {}).await;
    let a: Seeded = s.partner("A", REGION_A).await;

    assert_eq!(
        grpc_offers(&mut gw, Request::new(partner::ListOffersRequest {})).await,
        Code::Unauthenticated
    );
    assert!(!works_on_both_faces(&mut gw, "pk_not-a-real-key").await);
    let mut basic = Request::new(partner::ListOffersRequest {});
    basic
        .metadata_mut()
        .insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    assert_eq!(grpc_offers(&mut gw, basic).await, Code::Unauthenticated);
    let mut x_api_key = Request::new(partner::ListOffersRequest {});
    x_api_key
        .metadata_mut()
        .insert("x-api-key", a.secret.parse().unwrap());
    assert_eq!(grpc_offers(&mut gw, x_api_key).await, Code::Ok);

    let none = gw.http.get("/v1/jobs", None).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    assert_eq!(none.body["code"], "unauthenticated");
    let header = gw
        .http
        .send(
            gw.http
                .client
                .get(gw.http.url("/v1/jobs"))
                .header("X-API-Key", &a.secret),
        )
        .await;
    assert_eq!(header.status, 200, "{header:?}");
    // A missing key is refused before the body is read.
    let unread = gw
        .http
        .post(
            "/v1/jobs/x/schedule",
            None,
            serde_json::json!({"scheduled_for": 5}),
        )
        .await;
    assert_eq!(unread.status, 401);

    assert_eq!(gw.http.get("/healthz", None).await.status, 200);
    assert_eq!(gw.http.get("/openapi.json", None).await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn a_revoked_key_is_refused_on_the_next_call_without_a_cache() {
    let mut s = suite(false).await;
    let mut gw = s.gateway(|g| g.key_cache_ttl = Duration::ZERO).await;
    let a = s.partner("A", REGION_A).await;
    assert!(works_on_both_faces(&mut gw, &a.secret).await);
    revoke(&mut s, &a.key_id).await;
    assert!(!works_on_both_faces(&mut gw, &a.secret).await);
    s.stop().await;
}

#[tokio::test]
async fn rotated_keys_both_work_during_the_overlap() {
    let mut s = suite(false).await;
    let mut gw = s.gateway(|_| {}).await;
    let a = s.partner("A", REGION_A).await;
    let rotated = s
        .keys
        .rotate_partner_key(pb::RotatePartnerKeyRequest {
            key_id: a.key_id.clone(),
            overlap_seconds: 3_600,
            actor: Some(agent()),
        })
        .await
        .expect("rotated")
        .into_inner();
    assert_ne!(rotated.secret, a.secret);
    assert!(
        works_on_both_faces(&mut gw, &a.secret).await,
        "the old key during the overlap"
    );
    assert!(
        works_on_both_faces(&mut gw, &rotated.secret).await,
        "the new key"
    );
    revoke(&mut s, &a.key_id).await;
    assert!(
        !works_on_both_faces(&mut gw, &a.secret).await,
        "the old key, revoked early"
    );
    assert!(works_on_both_faces(&mut gw, &rotated.secret).await);
    s.stop().await;
}

#[tokio::test]
async fn a_resolved_key_is_trusted_only_for_the_cache_window() {
    let window = Duration::from_millis(400);
    let mut s = suite(false).await;
    let mut gw = s.gateway(|g| g.key_cache_ttl = window).await;
    let a = s.partner("A", REGION_A).await;
    assert!(works_on_both_faces(&mut gw, &a.secret).await);
    revoke(&mut s, &a.key_id).await;
    // Within the window the gateway has not asked dispatch again.
    assert!(works_on_both_faces(&mut gw, &a.secret).await);
    tokio::time::sleep(window + Duration::from_millis(100)).await;
    assert!(!works_on_both_faces(&mut gw, &a.secret).await);
    s.stop().await;
}
