//! Partners' webhook endpoints through the gateway, against the real webhooks service: a
//! partner creates endpoints on both faces (the secret shown once), lists only its own,
//! rotates a secret, pauses, reads the delivery log and deletes; a second partner's key
//! sees none of them and every attempt on the first partner's endpoint answers NOT_FOUND /
//! 404, also when it reuses the first partner's idempotency key.

use aftersales_protos::{partner::v1 as partner, webhooks::v1 as wh};
use reqwest::Method;
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::{Gateway, REGION_A, REGION_B, Seeded, keyed, suite};

/// Loopback targets are allow-listed in the webhooks service's test configuration;
/// nothing is delivered in these tests, so no one needs to listen.
fn target(name: &str) -> String {
    format!("http://127.0.0.1:9/{name}")
}

async fn create_over_http(gw: &Gateway, who: &Seeded, name: &str, key: &str) -> Value {
    let request = gw
        .http
        .client
        .post(gw.http.url("/v1/webhook-endpoints"))
        .bearer_auth(&who.secret)
        .header("Idempotency-Key", key)
        .json(&json!({
            "url": target(name),
            "event_types": ["dispatch.JobOffered", "dispatch.JobCancelled"],
            "description": name,
        }));
    let created = gw.http.send(request).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    created.body
}

async fn list_over_http(gw: &Gateway, who: &Seeded) -> Vec<String> {
    let listed = gw
        .http
        .get("/v1/webhook-endpoints", Some(&who.secret))
        .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let mut ids: Vec<String> = listed.body["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn list_over_grpc(gw: &Gateway, who: &Seeded) -> Vec<wh::Endpoint> {
    gw.grpc
        .clone()
        .list_webhook_endpoints(keyed(
            partner::ListWebhookEndpointsRequest::default(),
            &who.secret,
        ))
        .await
        .expect("listed")
        .into_inner()
        .endpoints
}

#[tokio::test]
async fn partners_manage_only_their_own_webhook_endpoints_on_both_faces() {
    let mut s = suite(false).await;
    s.with_webhooks().await;
    let gw = s.gateway(|_| {}).await;
    let a = s.partner("A", REGION_A).await;
    let b = s.partner("B", REGION_B).await;

    // HTTP: created with its secret, once per idempotency key.
    let created = create_over_http(&gw, &a, "a-http", "hook-1").await;
    let http_id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    let first_secret = created["secret"].as_str().unwrap().to_owned();
    assert!(first_secret.starts_with("whsec_"), "{created}");
    assert_eq!(created["endpoint"]["state"], "enabled");
    assert_eq!(created["endpoint"]["url"], target("a-http"));
    assert!(created["endpoint"].get("partner_id").is_none());
    let again = create_over_http(&gw, &a, "a-http", "hook-1").await;
    assert_eq!(again["endpoint"]["id"], http_id.as_str());

    // gRPC: the endpoint is the key's partner's, whatever the request says.
    let grpc_created = gw
        .grpc
        .clone()
        .create_webhook_endpoint(keyed(
            partner::CreateWebhookEndpointRequest {
                url: target("a-grpc"),
                event_types: vec!["dispatch.SettlementIssued".into()],
                description: "grpc".into(),
                idempotency_key: "hook-2".into(),
            },
            &a.secret,
        ))
        .await
        .expect("created")
        .into_inner();
    let grpc_endpoint = grpc_created.endpoint.expect("the endpoint");
    assert_eq!(grpc_endpoint.partner_id, a.id);
    assert!(grpc_created.secret.starts_with("whsec_"));
    let grpc_id = grpc_endpoint.id.clone();

    // A sees both on both faces; B sees none.
    let mut both = vec![http_id.clone(), grpc_id.clone()];
    both.sort();
    assert_eq!(list_over_http(&gw, &a).await, both);
    assert_eq!(list_over_grpc(&gw, &a).await.len(), 2);
    assert!(list_over_http(&gw, &b).await.is_empty());
    assert!(list_over_grpc(&gw, &b).await.is_empty());

    // B's key reusing A's idempotency key makes B's own endpoint, not a replay of A's.
    let b_created = create_over_http(&gw, &b, "b-http", "hook-1").await;
    assert_ne!(b_created["endpoint"]["id"], http_id.as_str());
    assert_eq!(list_over_http(&gw, &a).await, both);

    b_cannot_reach(&gw, &b, &http_id).await;
    b_cannot_reach(&gw, &b, &grpc_id).await;

    // A rotates on both faces: a new secret, the previous one kept for the overlap.
    let rotated = gw
        .http
        .call(
            Method::POST,
            &format!("/v1/webhook-endpoints/{http_id}/rotate-secret"),
            &a.secret,
            json!({"overlap_seconds": 3600}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let second_secret = rotated.body["secret"].as_str().unwrap();
    assert!(second_secret.starts_with("whsec_"));
    assert_ne!(second_secret, first_secret);
    assert!(
        rotated.body["endpoint"]["previous_secret_expires_at"].is_string(),
        "{:?}",
        rotated.body
    );
    let grpc_rotated = gw
        .grpc
        .clone()
        .rotate_webhook_secret(keyed(
            partner::RotateWebhookSecretRequest {
                endpoint_id: grpc_id.clone(),
                overlap_seconds: 0,
                idempotency_key: String::new(),
            },
            &a.secret,
        ))
        .await
        .expect("rotated")
        .into_inner();
    assert_ne!(grpc_rotated.secret, grpc_created.secret);

    // Read, pause, the (empty) delivery log, the catalogue.
    let read = gw
        .http
        .get(&format!("/v1/webhook-endpoints/{http_id}"), Some(&a.secret))
        .await;
    assert_eq!(read.status, 200);
    assert!(read.body.get("secret").is_none());
    let paused = gw
        .http
        .call(
            Method::PATCH,
            &format!("/v1/webhook-endpoints/{http_id}"),
            &a.secret,
            json!({"state": "paused", "description": "on hold"}),
        )
        .await;
    assert_eq!(paused.status, 200, "{:?}", paused.body);
    assert_eq!(paused.body["state"], "paused");
    assert_eq!(paused.body["description"], "on hold");
    assert_eq!(paused.body["url"], target("a-http"));
    let log = gw
        .http
        .get(
            &format!("/v1/webhook-endpoints/{http_id}/deliveries?state=failed"),
            Some(&a.secret),
        )
        .await;
    assert_eq!(log.status, 200, "{:?}", log.body);
    assert_eq!(log.body["deliveries"], json!([]));
    let types = gw
        .http
        .get("/v1/webhook-event-types", Some(&a.secret))
        .await;
    assert_eq!(types.status, 200);
    let types: Vec<&str> = types.body["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(types.contains(&"dispatch.JobOffered"), "{types:?}");

    // A deletes; it is gone for A too.
    let deleted = gw
        .http
        .call(
            Method::DELETE,
            &format!("/v1/webhook-endpoints/{http_id}"),
            &a.secret,
            Value::Null,
        )
        .await;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    let gone = gw
        .http
        .get(&format!("/v1/webhook-endpoints/{http_id}"), Some(&a.secret))
        .await;
    assert_eq!(gone.status, 404, "{:?}", gone.body);
    assert_eq!(list_over_http(&gw, &a).await, [grpc_id]);

    s.stop().await;
}

/// Every operation of B's key on A's endpoint `id` answers NOT_FOUND / 404.
async fn b_cannot_reach(gw: &Gateway, b: &Seeded, id: &str) {
    let key = b.secret.as_str();
    for (method, path, body) in [
        (
            Method::GET,
            format!("/v1/webhook-endpoints/{id}"),
            Value::Null,
        ),
        (
            Method::PATCH,
            format!("/v1/webhook-endpoints/{id}"),
            json!({"state": "paused"}),
        ),
        (
            Method::POST,
            format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            Value::Null,
        ),
        (
            Method::GET,
            format!("/v1/webhook-endpoints/{id}/deliveries"),
            Value::Null,
        ),
        (
            Method::POST,
            format!("/v1/webhook-endpoints/{id}/deliveries/evt-1/replay"),
            Value::Null,
        ),
        (
            Method::DELETE,
            format!("/v1/webhook-endpoints/{id}"),
            Value::Null,
        ),
    ] {
        let answer = gw.http.call(method.clone(), &path, key, body).await;
        assert_eq!(answer.status, 404, "{method} {path}: {:?}", answer.body);
        assert!(!answer.body.to_string().contains("whsec_"));
    }

    let mut grpc = gw.grpc.clone();
    let codes = [
        grpc.get_webhook_endpoint(keyed(
            partner::GetWebhookEndpointRequest {
                endpoint_id: id.into(),
            },
            key,
        ))
        .await
        .map(drop),
        grpc.update_webhook_endpoint(keyed(
            partner::UpdateWebhookEndpointRequest {
                endpoint_id: id.into(),
                state: wh::EndpointState::Paused as i32,
                ..Default::default()
            },
            key,
        ))
        .await
        .map(drop),
        grpc.rotate_webhook_secret(keyed(
            partner::RotateWebhookSecretRequest {
                endpoint_id: id.into(),
                ..Default::default()
            },
            key,
        ))
        .await
        .map(drop),
        grpc.list_webhook_deliveries(keyed(
            partner::ListWebhookDeliveriesRequest {
                endpoint_id: id.into(),
                ..Default::default()
            },
            key,
        ))
        .await
        .map(drop),
        grpc.delete_webhook_endpoint(keyed(
            partner::DeleteWebhookEndpointRequest {
                endpoint_id: id.into(),
                idempotency_key: String::new(),
            },
            key,
        ))
        .await
        .map(drop),
    ];
    for (i, answer) in codes.into_iter().enumerate() {
        let status = answer.expect_err("B reached A's endpoint");
        assert_eq!(status.code(), Code::NotFound, "operation {i}: {status:?}");
    }
}

#[tokio::test]
async fn bad_webhook_input_answers_400_naming_the_field() {
    let mut s = suite(false).await;
    s.with_webhooks().await;
    let gw = s.gateway(|_| {}).await;
    let a = s.partner("A", REGION_A).await;
    for (body, field) in [
        (json!({"url": 5, "event_types": []}), "url"),
        (json!({"event_types": ["dispatch.JobOffered"]}), "url"),
        (
            json!({"url": target("x"), "event_types": ["dispatch.JobOffered"], "description": "d".repeat(501)}),
            "description",
        ),
        // Judged by the webhooks service, named all the same.
        (
            json!({"url": "ftp://example.com/hook", "event_types": ["dispatch.JobOffered"]}),
            "url",
        ),
    ] {
        let answer = gw
            .http
            .post("/v1/webhook-endpoints", Some(&a.secret), body.clone())
            .await;
        assert_eq!(answer.status, 400, "{body}: {:?}", answer.body);
        assert_eq!(answer.violated_field(), field, "{body}: {:?}", answer.body);
    }
    let answer = gw
        .http
        .call(
            Method::PATCH,
            "/v1/webhook-endpoints/ep-1",
            &a.secret,
            json!({"state": "disabled"}),
        )
        .await;
    assert_eq!(answer.status, 400, "{:?}", answer.body);
    assert_eq!(answer.violated_field(), "state");
    let answer = gw
        .http
        .get(
            "/v1/webhook-endpoints/ep-1/deliveries?state=lost",
            Some(&a.secret),
        )
        .await;
    assert_eq!(answer.status, 400, "{:?}", answer.body);
    assert_eq!(answer.violated_field(), "state");
    s.stop().await;
}
