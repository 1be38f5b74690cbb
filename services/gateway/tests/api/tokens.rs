//! The gateway's own identity towards dispatch and returns: with client credentials every
//! upstream call carries the gateway's service token (never the partner's key); without
//! them calls go out without a token. A stand-in upstream records what it is sent.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use aftersales_gateway::{
    app::{GatewaySettings, settings_from_env},
    carrier::{CarrierSecrets, sign},
};
use aftersales_platform::{
    CancellationToken,
    auth::{DevClient, DevIssuer, TokenSource},
    config::Env,
    server::ServerSettings,
};
use axum::{Router, body::Body};
use http::{HeaderMap, Uri};
use tokio::net::TcpListener;

use crate::helpers::{Gateway, spawn_gateway};

const CARRIER_SECRET: &str = "simulated-carrier-secret-0123";

/// What one call to the stand-in upstream carried: its path and `authorization` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A gRPC upstream that records each call and answers NOT_FOUND; its URL.
async fn recording_upstream(stop: &CancellationToken) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new().fallback({
        let seen = seen.clone();
        move |uri: Uri, headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                let authorization = headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned());
                seen.lock()
                    .unwrap()
                    .push((uri.path().to_owned(), authorization));
                tonic::Status::not_found("recorded").into_http::<Body>()
            }
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    (url, seen)
}

/// One partner call (a key lookup at dispatch) and one carrier event (a call to returns).
async fn call_both_upstreams(gw: &Gateway) {
    let answer = gw.http.get("/v1/offers", Some("pk_partner-key")).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    let body = r#"{"event_id":"e1","tracking_number":"SIM1","kind":"in_transit"}"#;
    let at = chrono::Utc::now().timestamp();
    let request = gw
        .http
        .client
        .post(gw.http.url("/v1/carriers/simulated/tracking"))
        .header("X-Carrier-Timestamp", at.to_string())
        .header(
            "X-Signature",
            sign(CARRIER_SECRET.as_bytes(), at, body.as_bytes()),
        )
        .body(body);
    let answer = gw.http.send(request).await;
    assert_eq!(answer.status, 404, "{answer:?}");
}

fn paths(seen: &Seen) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect()
}

fn with_upstream(settings: &mut GatewaySettings, url: &str) {
    settings.dispatch_url = url.to_owned();
    settings.returns_url = url.to_owned();
    settings.carriers = CarrierSecrets::parse(&format!("simulated={CARRIER_SECRET}")).unwrap();
}

#[tokio::test]
async fn upstream_calls_carry_the_gateways_service_token() {
    let stop = CancellationToken::new();
    let (url, seen) = recording_upstream(&stop).await;
    let issuer = DevIssuer::generate("http://127.0.0.1:1", DevIssuer::DEFAULT_AUDIENCE).unwrap();
    let mut settings = GatewaySettings::for_tests(url.clone(), url.clone());
    with_upstream(&mut settings, &url);
    settings.service_tokens = Some(TokenSource::dev(
        &issuer,
        "svc-gateway",
        &["svc:gateway"],
        Duration::from_secs(60),
    ));
    let (gw, task) = spawn_gateway(settings, stop.clone()).await;
    call_both_upstreams(&gw).await;

    assert_eq!(
        paths(&seen),
        [
            "/aftersales.dispatch.v1.PartnerKeyService/AuthenticatePartnerKey",
            "/aftersales.returns.v1.ReturnService/RecordTrackingEvent",
        ]
    );
    let verifier = issuer.verifier().unwrap();
    let seen = seen.lock().unwrap().clone();
    for (path, authorization) in seen {
        let authorization = authorization.unwrap_or_else(|| panic!("{path}: no token"));
        assert!(!authorization.contains("pk_partner-key"), "{path}");
        let token = authorization
            .strip_prefix("Bearer ")
            .expect("a bearer token");
        let caller = verifier.verify(token).await.expect("a token of the issuer");
        assert_eq!(caller.subject, "svc-gateway", "{path}");
    }
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn client_credentials_from_the_environment_are_exchanged_for_tokens() {
    let stop = CancellationToken::new();
    let (url, seen) = recording_upstream(&stop).await;
    // A development OpenID provider with a token endpoint for the gateway's account.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer_url = format!("http://{}", listener.local_addr().unwrap());
    let issuer = DevIssuer::generate(&issuer_url, DevIssuer::DEFAULT_AUDIENCE).unwrap();
    let provider = issuer.router_with_clients(vec![DevClient {
        id: "gateway".into(),
        secret: "gateway-secret".into(),
        roles: vec!["svc:gateway".into()],
    }]);
    tokio::spawn({
        let stop = stop.clone();
        async move {
            axum::serve(listener, provider)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        }
    });

    let env = Env::from_pairs([
        ("GATEWAY_CLIENT_ID", "gateway"),
        ("GATEWAY_CLIENT_SECRET", "gateway-secret"),
        ("AUTH_ISSUER", issuer_url.as_str()),
        ("GATEWAY_GRPC_ADDR", "127.0.0.1:0"),
        ("GATEWAY_HTTP_ADDR", "127.0.0.1:0"),
    ]);
    let mut settings = settings_from_env(&env).unwrap();
    assert!(settings.service_tokens.is_some());
    with_upstream(&mut settings, &url);
    settings.server = ServerSettings::for_tests();
    let (gw, task) = spawn_gateway(settings, stop.clone()).await;
    call_both_upstreams(&gw).await;

    let verifier = issuer.verifier().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for (path, authorization) in seen {
        let token = authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or_else(|| panic!("{path}: no bearer token"));
        let caller = verifier.verify(token).await.expect("a token of the issuer");
        assert_eq!(caller.subject, "gateway", "{path}");
    }
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn without_client_credentials_calls_carry_no_token() {
    let stop = CancellationToken::new();
    let (url, seen) = recording_upstream(&stop).await;
    let mut settings = GatewaySettings::for_tests(url.clone(), url.clone());
    with_upstream(&mut settings, &url);
    let (gw, task) = spawn_gateway(settings, stop.clone()).await;
    call_both_upstreams(&gw).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|(_, a)| a.is_none()), "{seen:?}");
    stop.cancel();
    task.await.unwrap();
}
