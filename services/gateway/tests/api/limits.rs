//! Quotas and bounds: one rate limit per key shared by every gateway through Redis, body
//! and message size limits, upstream timeouts, and bad input answered with the field.

use std::time::{Duration, Instant};

use aftersales_gateway::app::{GatewaySettings, RedisSettings};
use aftersales_platform::{CancellationToken, redis_conn::RedisTarget, status::field_violations};
use aftersales_protos::{dispatch::v1 as pb, partner::v1 as partner};
use serde_json::json;
use tokio::net::TcpListener;
use tonic::Code;

use crate::helpers::{Gateway, REGION_A, REGION_B, keyed, spawn_gateway, suite};

async fn grpc_list_jobs(gw: &mut Gateway, secret: &str) -> Result<(), tonic::Status> {
    gw.grpc
        .list_jobs(keyed(partner::ListJobsRequest::default(), secret))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn two_gateways_share_one_rate_limit_per_key_through_redis() {
    share_one_rate_limit(RedisTarget::Single(aftersales_testkit::redis_url())).await;
}

#[tokio::test]
async fn two_gateways_share_one_rate_limit_per_key_through_a_redis_cluster() {
    let nodes = aftersales_testkit::redis_cluster_nodes();
    share_one_rate_limit(RedisTarget::Cluster(
        nodes.split(',').map(str::to_owned).collect(),
    ))
    .await;
}

async fn share_one_rate_limit(target: RedisTarget) {
    let mut s = suite(false).await;
    let redis = RedisSettings {
        target,
        key_prefix: aftersales_testkit::unique_prefix(),
    };
    let limited = |g: &mut GatewaySettings| {
        g.redis = Some(redis.clone());
        g.quota.per_second = 1.try_into().unwrap();
        g.quota.burst = 3.try_into().unwrap();
    };
    let mut one = s.gateway(limited).await;
    let mut two = s.gateway(limited).await;
    let a = s.partner("A", REGION_A).await;
    let b = s.partner("B", REGION_B).await;

    // A burst of three across both replicas, then the fourth is refused by either face.
    grpc_list_jobs(&mut one, &a.secret).await.expect("1st");
    assert_eq!(
        one.http.get("/v1/jobs", Some(&a.secret)).await.status,
        200,
        "2nd"
    );
    grpc_list_jobs(&mut two, &a.secret).await.expect("3rd");
    let refused = grpc_list_jobs(&mut two, &a.secret).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let wait: u64 = refused
        .metadata()
        .get("retry-after")
        .expect("retry-after metadata")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    let http = one.http.get("/v1/jobs", Some(&a.secret)).await;
    assert_eq!(http.status, 429, "{http:?}");
    assert_eq!(http.header("retry-after"), Some("1"));
    assert_eq!(http.body["code"], "resource_exhausted");

    // B's key has a budget of its own.
    grpc_list_jobs(&mut one, &b.secret)
        .await
        .expect("B is not limited by A");
    // The budget refills at the sustained rate.
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    grpc_list_jobs(&mut two, &a.secret).await.expect("refilled");
    s.stop().await;
}

#[tokio::test]
async fn oversized_bodies_and_messages_are_refused() {
    let mut s = suite(false).await;
    let mut gw = s.gateway(|g| g.max_body_bytes = 4_096).await;
    let a = s.partner("A", REGION_A).await;
    let notes = "x".repeat(8_000);

    let http = gw
        .http
        .post(
            "/v1/jobs/some-job/visit",
            Some(&a.secret),
            json!({"notes": notes}),
        )
        .await;
    assert_eq!(http.status, 413, "{http:?}");
    assert_eq!(http.body["code"], "payload_too_large");

    let grpc = gw
        .grpc
        .record_visit(keyed(
            partner::RecordVisitRequest {
                job_id: "some-job".into(),
                arrived_at: None,
                notes,
            },
            &a.secret,
        ))
        .await
        .unwrap_err();
    assert_eq!(grpc.code(), Code::OutOfRange, "{grpc:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_silent_upstream_answers_deadline_exceeded_not_a_hang() {
    // Accepts TCP connections (the kernel does) but never speaks HTTP/2.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let mut settings = GatewaySettings::for_tests(url.clone(), url);
    settings.upstream_timeout = Duration::from_millis(300);
    let shutdown = CancellationToken::new();
    let (mut gw, task) = spawn_gateway(settings, shutdown.clone()).await;

    let started = Instant::now();
    let err = grpc_list_jobs(&mut gw, "pk_any").await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    let http = gw.http.get("/v1/jobs", Some("pk_any")).await;
    assert_eq!(http.status, 504, "{http:?}");
    assert_eq!(http.body["code"], "deadline_exceeded");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    shutdown.cancel();
    task.await.unwrap();
    drop(silent);
}

#[tokio::test]
async fn bad_input_answers_400_naming_the_field_on_both_faces() {
    let mut s = suite(false).await;
    let mut gw = s.gateway(|_| {}).await;
    let a = s.partner("A", REGION_A).await;
    let job = s.job(REGION_A, "ticket-bad").await;
    let key = Some(a.secret.as_str());
    let http = &gw.http;

    let cases = [
        (
            http.post(&format!("/v1/jobs/{}/schedule", job.id), key, json!({}))
                .await,
            "scheduled_for",
        ),
        (
            http.post(
                &format!("/v1/jobs/{}/schedule", job.id),
                key,
                json!({"scheduled_for": "next tuesday"}),
            )
            .await,
            "scheduled_for",
        ),
        (
            http.post(
                &format!("/v1/jobs/{}/complete", job.id),
                key,
                json!({"outcome": "meh"}),
            )
            .await,
            "outcome",
        ),
        (
            http.post(
                &format!("/v1/jobs/{}/quotes", job.id),
                key,
                json!({"lines": [{"kind": "labour", "quantity": -1,
                                  "unit_price": {"minor_units": 1, "currency": "CNY"}}]}),
            )
            .await,
            "lines[0].quantity",
        ),
        (http.get("/v1/jobs?status=lost", key).await, "status"),
        (http.get("/v1/jobs?page_size=many", key).await, "page_size"),
        (
            http.get("/v1/settlements?page_size=-1", key).await,
            "page_size",
        ),
    ];
    for (answer, field) in cases {
        assert_eq!(answer.status, 400, "{field}: {answer:?}");
        assert_eq!(answer.body["code"], "invalid_argument");
        assert_eq!(answer.violated_field(), field, "{answer:?}");
    }

    // Dispatch's own field violations pass through the gateway.
    let accepted = http
        .post(&format!("/v1/jobs/{}/accept", job.id), key, json!(null))
        .await;
    assert_eq!(accepted.status, 200, "{accepted:?}");
    let upstream = http
        .post(
            &format!("/v1/jobs/{}/quotes", job.id),
            key,
            json!({"lines": [{"kind": "labour", "quantity": 0,
                              "unit_price": {"minor_units": 10000, "currency": "CNY"}}]}),
        )
        .await;
    assert_eq!(upstream.status, 400, "{upstream:?}");
    assert!(
        upstream.violated_field().starts_with("lines"),
        "{upstream:?}"
    );
    let grpc = gw
        .grpc
        .submit_quote(keyed(
            partner::SubmitQuoteRequest {
                idempotency_key: String::new(),
                job_id: job.id.clone(),
                lines: vec![pb::QuoteLine {
                    kind: pb::QuoteLineKind::Labour as i32,
                    quantity: 0,
                    ..Default::default()
                }],
            },
            &a.secret,
        ))
        .await
        .unwrap_err();
    assert_eq!(grpc.code(), Code::InvalidArgument);
    assert!(
        field_violations(&grpc)[0].field.starts_with("lines"),
        "{grpc:?}"
    );

    let empty = gw
        .grpc
        .get_job(keyed(
            partner::GetJobRequest {
                job_id: String::new(),
            },
            &a.secret,
        ))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&empty)[0].field, "job_id");
    let scheduled = gw
        .grpc
        .schedule_visit(keyed(
            partner::ScheduleVisitRequest {
                job_id: job.id.clone(),
                scheduled_for: None,
            },
            &a.secret,
        ))
        .await
        .unwrap_err();
    assert_eq!(field_violations(&scheduled)[0].field, "scheduled_for");

    let nowhere = gw.http.get("/v2/nothing", key).await;
    assert_eq!(nowhere.status, 404);
    assert_eq!(nowhere.body["code"], "not_found");
    let wrong = gw
        .http
        .send(gw.http.client.delete(gw.http.url("/v1/jobs")))
        .await;
    assert_eq!(wrong.status, 405);
    s.stop().await;
}
