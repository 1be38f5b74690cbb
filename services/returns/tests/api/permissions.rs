//! The permission rows of the third-party inspection and refund-variant RPCs, checked
//! with real tokens: the wrong role is refused, the right one gets through and is audited.

use std::time::Duration as StdDuration;

use aftersales_platform::{
    CancellationToken,
    auth::{AuthSettings, DevIssuer, roles},
};
use aftersales_protos::returns::v1 as pb;
use tokio::net::TcpListener;
use tonic::Code;

use crate::{
    helpers::{Backend, bearer, spawn_authenticated},
    variants::{partial, price_claim},
};

#[tokio::test]
async fn the_new_rpcs_refuse_the_wrong_role() {
    let stop = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let issuer = DevIssuer::generate(&url, DevIssuer::DEFAULT_AUDIENCE).unwrap();
    let serving = issuer.clone();
    let token_stop = stop.clone();
    tokio::spawn(async move { serving.serve(listener, token_stop).await });
    let auth = AuthSettings::oidc(issuer.settings());
    let mut app = spawn_authenticated(Backend::Postgres, |_| {}, Some(auth)).await;
    let token = |subject: &str, role: &str| {
        issuer
            .mint(subject, &[role], StdDuration::from_secs(600))
            .unwrap()
    };
    let agent = token("agent-1", roles::AGENT);
    let refunds = token("refunds-1", roles::REFUNDS);

    let by_agent = app
        .client
        .agree_partial_refund(bearer(partial("r-1", 1_000), &agent))
        .await
        .unwrap_err();
    assert_eq!(by_agent.code(), Code::PermissionDenied);
    let by_agent = app
        .client
        .request_price_difference_refund(bearer(price_claim("", 19_900, 17_900, 3), &agent))
        .await
        .unwrap_err();
    assert_eq!(by_agent.code(), Code::PermissionDenied);
    let by_refunds = app
        .client
        .record_third_party_result(bearer(
            pb::RecordThirdPartyResultRequest {
                return_id: "r-1".into(),
                lab_reference: "L-1".into(),
                verdict: pb::ThirdPartyVerdict::NoDefect as i32,
                ..Default::default()
            },
            &refunds,
        ))
        .await
        .unwrap_err();
    assert_eq!(by_refunds.code(), Code::PermissionDenied);
    let by_refunds = app
        .client
        .request_third_party_inspection(bearer(
            pb::RequestThirdPartyInspectionRequest {
                return_id: "r-1".into(),
                lab: "lab".into(),
                reason: "unclear".into(),
                actor: None,
            },
            &refunds,
        ))
        .await
        .unwrap_err();
    assert_eq!(by_refunds.code(), Code::PermissionDenied);

    // The right role gets through (and is audited).
    let paid = app
        .client
        .request_price_difference_refund(bearer(price_claim("", 19_900, 17_900, 3), &refunds))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paid.state, pb::RefundState::Succeeded as i32);
    let not_found = app
        .client
        .record_third_party_result(bearer(
            pb::RecordThirdPartyResultRequest {
                return_id: "r-1".into(),
                lab_reference: "L-1".into(),
                verdict: pb::ThirdPartyVerdict::NoDefect as i32,
                ..Default::default()
            },
            &agent,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        not_found.code(),
        Code::NotFound,
        "allowed, and no such return"
    );
    assert!(
        app.count("SELECT COUNT(*) AS n FROM audit_records").await >= 1,
        "the price difference is audited"
    );
    app.stop().await;
    stop.cancel();
}
