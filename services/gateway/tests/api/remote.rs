//! Remote diagnosis through both faces: a partner closes an accepted job without a visit
//! over gRPC and over HTTP (the completion says `remote`); another partner's job answers
//! not found; a retry with the same key answers the first result; bad input names the
//! field.

use aftersales_protos::{dispatch::v1 as pb, partner::v1 as partner};
use serde_json::json;
use tonic::Code;

use crate::helpers::{keyed, suite, two_accepted_jobs};

#[tokio::test]
async fn a_partner_resolves_its_accepted_jobs_remotely_on_both_faces() {
    let mut s = suite(false).await;
    let mut gw = s.gateway(|_| {}).await;
    let (a, b, by_grpc, by_http) = two_accepted_jobs(&mut s, &mut gw, "ticket-remote").await;

    let resolve = |job_id: &str, key: &str| partner::ResolveJobRemotelyRequest {
        idempotency_key: key.into(),
        job_id: job_id.into(),
        outcome: pb::CompletionOutcome::Fixed as i32,
        notes: "reset guided by phone".into(),
    };
    let stolen = gw
        .grpc
        .resolve_job_remotely(keyed(resolve(&by_grpc.id, "r-b"), &b.secret))
        .await
        .expect_err("B may not close A's job");
    assert_eq!(stolen.code(), Code::NotFound, "{stolen:?}");
    let done = gw
        .grpc
        .resolve_job_remotely(keyed(resolve(&by_grpc.id, "r-1"), &a.secret))
        .await
        .expect("A resolves remotely")
        .into_inner();
    assert_eq!(done.status, pb::JobStatus::Completed as i32);
    let completion = done.completion.expect("a completion");
    assert_eq!(completion.mode, pb::CompletionMode::Remote as i32);
    let again = gw
        .grpc
        .resolve_job_remotely(keyed(resolve(&by_grpc.id, "r-1"), &a.secret))
        .await
        .expect("the retry answers")
        .into_inner();
    assert_eq!(again.status, pb::JobStatus::Completed as i32);

    let http = &gw.http;
    let path = format!("/v1/jobs/{}/resolve-remotely", by_http.id);
    let bad = http
        .post(&path, Some(&a.secret), json!({"outcome": "teleported"}))
        .await;
    assert_eq!(bad.status, 400, "{bad:?}");
    assert_eq!(bad.violated_field(), "outcome");
    let other = http
        .post(&path, Some(&b.secret), json!({"outcome": "fixed"}))
        .await;
    assert_eq!(other.status, 404, "{other:?}");
    let closed = http
        .post(
            &path,
            Some(&a.secret),
            json!({"outcome": "replaced", "notes": "a new kettle was sent"}),
        )
        .await;
    assert_eq!(closed.status, 200, "{closed:?}");
    assert_eq!(closed.body["status"], "completed");
    assert_eq!(closed.body["completion"]["mode"], "remote");
    assert_eq!(closed.body["completion"]["outcome"], "replaced");
    s.stop().await;
}
