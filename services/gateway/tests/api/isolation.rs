//! The isolation matrix: partner B tries every gateway operation on partner A's job, on
//! both faces, while the job is offered to A, once A accepted it, and once A completed
//! it. Every attempt answers NOT_FOUND / 404 and carries none of A's data; A's own view
//! shows the customer's contact only while the job is accepted and open.

use aftersales_protos::{
    dispatch::v1::{self as pb, CompletionOutcome},
    partner::v1 as partner,
};
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::{
    Gateway, REGION_A, REGION_B, Seeded, contact_name, keyed, scheduled_lines,
    scheduled_lines_json, suite,
};

/// What must never reach partner B.
struct Secrets(Vec<String>);

impl Secrets {
    fn assert_absent(&self, what: &str, text: &str) {
        for secret in &self.0 {
            assert!(
                !text.contains(secret.as_str()),
                "{what} leaked {secret:?}: {text}"
            );
        }
    }
}

/// B tries every gRPC operation on A's job `job_id`.
async fn grpc_attacks(gateway: &mut Gateway, b: &Seeded, job_id: &str, secrets: &Secrets) {
    let key = b.secret.as_str();
    let id = || job_id.to_owned();
    let grpc = &mut gateway.grpc;
    let attempts = vec![
        (
            "AcceptOffer",
            grpc.accept_offer(keyed(partner::AcceptOfferRequest { job_id: id() }, key))
                .await
                .map(|r| format!("{:?}", r.into_inner())),
        ),
        (
            "DeclineOffer",
            grpc.decline_offer(keyed(
                partner::DeclineOfferRequest {
                    job_id: id(),
                    reason: "busy".into(),
                },
                key,
            ))
            .await
            .map(|r| format!("{:?}", r.into_inner())),
        ),
        (
            "GetJob",
            grpc.get_job(keyed(partner::GetJobRequest { job_id: id() }, key))
                .await
                .map(|r| format!("{:?}", r.into_inner())),
        ),
        (
            "ScheduleVisit",
            grpc.schedule_visit(keyed(
                partner::ScheduleVisitRequest {
                    job_id: id(),
                    scheduled_for: Some(prost_types::Timestamp {
                        seconds: chrono::Utc::now().timestamp() + 3_600,
                        nanos: 0,
                    }),
                },
                key,
            ))
            .await
            .map(|r| format!("{:?}", r.into_inner())),
        ),
        (
            "RecordVisit",
            grpc.record_visit(keyed(
                partner::RecordVisitRequest {
                    job_id: id(),
                    arrived_at: None,
                    notes: String::new(),
                },
                key,
            ))
            .await
            .map(|r| format!("{:?}", r.into_inner())),
        ),
        (
            "SubmitQuote",
            grpc.submit_quote(keyed(
                partner::SubmitQuoteRequest {
                    idempotency_key: "b-quote".into(),
                    job_id: id(),
                    lines: scheduled_lines(),
                },
                key,
            ))
            .await
            .map(|r| format!("{:?}", r.into_inner())),
        ),
        (
            "CompleteJob",
            grpc.complete_job(keyed(
                partner::CompleteJobRequest {
                    idempotency_key: "b-complete".into(),
                    job_id: id(),
                    outcome: CompletionOutcome::Fixed as i32,
                    photos: vec![],
                    notes: String::new(),
                },
                key,
            ))
            .await
            .map(|r| format!("{:?}", r.into_inner())),
        ),
    ];
    for (operation, result) in attempts {
        match result {
            Ok(answer) => panic!("{operation} by B on A's job succeeded: {answer}"),
            Err(status) => {
                assert_eq!(status.code(), Code::NotFound, "{operation}: {status:?}");
                secrets.assert_absent(operation, status.message());
            }
        }
    }

    let offers = grpc
        .list_offers(keyed(partner::ListOffersRequest {}, key))
        .await
        .expect("B lists its offers")
        .into_inner();
    assert!(offers.offers.iter().all(|j| j.id != job_id));
    secrets.assert_absent("ListOffers", &format!("{offers:?}"));
    let jobs = grpc
        .list_jobs(keyed(partner::ListJobsRequest::default(), key))
        .await
        .expect("B lists its jobs")
        .into_inner();
    assert!(jobs.jobs.iter().all(|j| j.id != job_id));
    secrets.assert_absent("ListJobs", &format!("{jobs:?}"));
    let settlements = grpc
        .list_settlements(keyed(partner::ListSettlementsRequest::default(), key))
        .await
        .expect("B lists its settlements")
        .into_inner();
    secrets.assert_absent("ListSettlements", &format!("{settlements:?}"));
}

async fn grpc_get(gateway: &mut Gateway, who: &Seeded, job_id: &str) -> partner::PartnerJob {
    gateway
        .grpc
        .get_job(keyed(
            partner::GetJobRequest {
                job_id: job_id.into(),
            },
            &who.secret,
        ))
        .await
        .expect("the partner reads its job")
        .into_inner()
}

#[tokio::test]
async fn grpc_every_operation_is_isolated_and_contact_shows_only_while_accepted_and_open() {
    let mut s = suite(false).await;
    let mut gw = s.gateway(|_| {}).await;
    let a = s.partner("A", REGION_A).await;
    let b = s.partner("B", REGION_B).await;
    let ja = s.job(REGION_A, "ticket-a").await;
    let jb = s.job(REGION_B, "ticket-b").await;
    assert_eq!(ja.partner_id, a.id, "the job in A's region is offered to A");
    assert_eq!(jb.partner_id, b.id);
    let secrets = Secrets(vec![a.id.clone(), contact_name("ticket-a")]);
    let key_a = a.secret.as_str();

    // Offered to A.
    grpc_attacks(&mut gw, &b, &ja.id, &secrets).await;
    let offers = gw
        .grpc
        .list_offers(keyed(partner::ListOffersRequest {}, key_a))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(offers.offers.len(), 1);
    assert_eq!(offers.offers[0].id, ja.id);
    assert!(offers.offers[0].offer.is_some());
    assert!(
        offers.offers[0].contact.is_none(),
        "no contact before acceptance"
    );
    let seen = grpc_get(&mut gw, &a, &ja.id).await;
    assert!(seen.offer.is_some() && seen.contact.is_none());

    // Accepted by A.
    let accepted = gw
        .grpc
        .accept_offer(keyed(
            partner::AcceptOfferRequest {
                job_id: ja.id.clone(),
            },
            key_a,
        ))
        .await
        .expect("A accepts")
        .into_inner();
    assert_eq!(accepted.status, pb::JobStatus::Accepted as i32);
    assert_eq!(accepted.contact.unwrap().name, contact_name("ticket-a"));
    assert!(accepted.offer.is_none(), "the offer is no longer open");
    let again = gw
        .grpc
        .accept_offer(keyed(
            partner::AcceptOfferRequest {
                job_id: ja.id.clone(),
            },
            key_a,
        ))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    grpc_attacks(&mut gw, &b, &ja.id, &secrets).await;

    // Scheduled, on site: still open, contact shown.
    let scheduled = gw
        .grpc
        .schedule_visit(keyed(
            partner::ScheduleVisitRequest {
                job_id: ja.id.clone(),
                scheduled_for: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() + 3_600,
                    nanos: 0,
                }),
            },
            key_a,
        ))
        .await
        .expect("A schedules")
        .into_inner();
    assert_eq!(scheduled.status, pb::JobStatus::Scheduled as i32);
    assert!(scheduled.contact.is_some());
    let on_site = gw
        .grpc
        .record_visit(keyed(
            partner::RecordVisitRequest {
                job_id: ja.id.clone(),
                arrived_at: None,
                notes: "on site".into(),
            },
            key_a,
        ))
        .await
        .expect("A visits")
        .into_inner();
    assert_eq!(on_site.status, pb::JobStatus::OnSite as i32);
    assert!(on_site.contact.is_some());
    let quote = gw
        .grpc
        .submit_quote(keyed(
            partner::SubmitQuoteRequest {
                idempotency_key: "quote-1".into(),
                job_id: ja.id.clone(),
                lines: scheduled_lines(),
            },
            key_a,
        ))
        .await
        .expect("A quotes")
        .into_inner();
    assert!(quote.auto_approved, "{quote:?}");
    assert_eq!(quote.partner_id, a.id);

    // Completed: closed, contact gone.
    let done = gw
        .grpc
        .complete_job(keyed(
            partner::CompleteJobRequest {
                idempotency_key: "complete-1".into(),
                job_id: ja.id.clone(),
                outcome: CompletionOutcome::Fixed as i32,
                photos: vec![pb::Photo {
                    url: "https://photos.example.com/a.jpg".into(),
                    sha256: "a".repeat(64),
                }],
                notes: "pump replaced".into(),
            },
            key_a,
        ))
        .await
        .expect("A completes")
        .into_inner();
    assert_eq!(done.status, pb::JobStatus::Completed as i32);
    assert!(done.contact.is_none(), "no contact once the job is closed");
    assert_eq!(done.quotes.len(), 1);

    let settlement = s.settle(&a.id).await;
    assert_eq!(settlement.lines.len(), 1);
    let mut with_settlement = secrets.0.clone();
    with_settlement.push(settlement.id.clone());
    let secrets = Secrets(with_settlement);
    grpc_attacks(&mut gw, &b, &ja.id, &secrets).await;
    let mine = gw
        .grpc
        .list_settlements(keyed(partner::ListSettlementsRequest::default(), key_a))
        .await
        .expect("A lists its settlements")
        .into_inner();
    assert_eq!(mine.settlements.len(), 1);
    assert_eq!(mine.settlements[0].id, settlement.id);
    let jobs = gw
        .grpc
        .list_jobs(keyed(
            partner::ListJobsRequest {
                statuses: vec![pb::JobStatus::Completed as i32],
                ..Default::default()
            },
            key_a,
        ))
        .await
        .expect("A lists its jobs")
        .into_inner();
    assert_eq!(jobs.jobs.len(), 1);
    assert_eq!(jobs.jobs[0].id, ja.id);

    // Nothing B tried changed A's job; B's own work is untouched by A's.
    let ja_now = s.admin_job(&ja.id).await;
    assert_eq!(ja_now.status, pb::JobStatus::Completed as i32);
    assert_eq!(ja_now.quotes.len(), 1);
    let declined = gw
        .grpc
        .decline_offer(keyed(
            partner::DeclineOfferRequest {
                job_id: jb.id.clone(),
                reason: "no technician free".into(),
            },
            &b.secret,
        ))
        .await
        .expect("B declines its own offer")
        .into_inner();
    assert!(declined.offer.is_none());
    s.stop().await;
}

/// B tries every HTTP operation on A's job.
async fn http_attacks(gateway: &Gateway, b: &Seeded, job_id: &str, secrets: &Secrets) {
    let key = Some(b.secret.as_str());
    let http = &gateway.http;
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let attempts = [
        (
            "accept",
            http.post(&format!("/v1/jobs/{job_id}/accept"), key, json!({}))
                .await,
        ),
        (
            "decline",
            http.post(
                &format!("/v1/jobs/{job_id}/decline"),
                key,
                json!({"reason": "busy"}),
            )
            .await,
        ),
        ("get", http.get(&format!("/v1/jobs/{job_id}"), key).await),
        (
            "schedule",
            http.post(
                &format!("/v1/jobs/{job_id}/schedule"),
                key,
                json!({"scheduled_for": later}),
            )
            .await,
        ),
        (
            "visit",
            http.post(&format!("/v1/jobs/{job_id}/visit"), key, json!({}))
                .await,
        ),
        (
            "quotes",
            http.post(
                &format!("/v1/jobs/{job_id}/quotes"),
                key,
                json!({"lines": scheduled_lines_json()}),
            )
            .await,
        ),
        (
            "complete",
            http.post(
                &format!("/v1/jobs/{job_id}/complete"),
                key,
                json!({"outcome": "fixed"}),
            )
            .await,
        ),
    ];
    for (operation, answer) in attempts {
        assert_eq!(answer.status, 404, "{operation}: {answer:?}");
        assert_eq!(answer.body["code"], "not_found", "{operation}");
        secrets.assert_absent(operation, &answer.body.to_string());
    }
    for path in ["/v1/offers", "/v1/jobs", "/v1/settlements"] {
        let answer = http.get(path, key).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        assert!(
            !answer.body.to_string().contains(job_id),
            "{path} shows A's job"
        );
        secrets.assert_absent(path, &answer.body.to_string());
    }
}

#[tokio::test]
async fn http_every_operation_is_isolated_and_contact_shows_only_while_accepted_and_open() {
    let mut s = suite(false).await;
    let gw = s.gateway(|_| {}).await;
    let a = s.partner("A", REGION_A).await;
    let b = s.partner("B", REGION_B).await;
    let ja = s.job(REGION_A, "ticket-a").await;
    let jb = s.job(REGION_B, "ticket-b").await;
    assert_eq!(ja.partner_id, a.id);
    let secrets = Secrets(vec![a.id.clone(), contact_name("ticket-a")]);
    let key_a = Some(a.secret.as_str());
    let http = &gw.http;
    let job_path = format!("/v1/jobs/{}", ja.id);

    http_attacks(&gw, &b, &ja.id, &secrets).await;
    let offers = http.get("/v1/offers", key_a).await;
    assert_eq!(offers.status, 200);
    assert_eq!(offers.body["offers"][0]["id"], ja.id.as_str());
    assert_eq!(offers.body["offers"][0]["status"], "offered");
    assert_eq!(offers.body["offers"][0]["offer"]["status"], "open");
    assert!(offers.body["offers"][0].get("contact").is_none());

    let accepted = http
        .post(&format!("{job_path}/accept"), key_a, Value::Null)
        .await;
    assert_eq!(accepted.status, 200, "{accepted:?}");
    assert_eq!(accepted.body["status"], "accepted");
    assert_eq!(
        accepted.body["contact"]["name"],
        contact_name("ticket-a").as_str()
    );
    assert_eq!(accepted.body["area"], "urban");
    let again = http
        .post(&format!("{job_path}/accept"), key_a, Value::Null)
        .await;
    assert_eq!(again.status, 409, "{again:?}");
    assert_eq!(again.body["code"], "failed_precondition");
    http_attacks(&gw, &b, &ja.id, &secrets).await;

    let later = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let scheduled = http
        .post(
            &format!("{job_path}/schedule"),
            key_a,
            json!({"scheduled_for": later}),
        )
        .await;
    assert_eq!(scheduled.status, 200, "{scheduled:?}");
    assert_eq!(scheduled.body["status"], "scheduled");
    assert!(scheduled.body["contact"].is_object());
    let visited = http
        .post(
            &format!("{job_path}/visit"),
            key_a,
            json!({"notes": "arrived"}),
        )
        .await;
    assert_eq!(visited.status, 200, "{visited:?}");
    assert_eq!(visited.body["status"], "on_site");
    assert!(visited.body["contact"].is_object());

    // A retried quote with the same Idempotency-Key is the same quote.
    let quote = |key: &'static str| {
        http.client
            .post(http.url(&format!("{job_path}/quotes")))
            .bearer_auth(&a.secret)
            .header("Idempotency-Key", key)
            .json(&json!({"lines": scheduled_lines_json()}))
    };
    let first = http.send(quote("q-1")).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.body["status"], "approved");
    assert_eq!(
        first.body["total"],
        json!({"minor_units": 13000, "currency": "CNY"})
    );
    assert_eq!(first.body["payer"], "company");
    let retried = http.send(quote("q-1")).await;
    assert_eq!(retried.body["id"], first.body["id"]);

    let done = http
        .post(
            &format!("{job_path}/complete"),
            key_a,
            json!({"outcome": "fixed", "notes": "pump replaced",
                   "photos": [{"url": "https://photos.example.com/a.jpg", "sha256": "a".repeat(64)}]}),
        )
        .await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(done.body["status"], "completed");
    assert!(done.body.get("contact").is_none());
    assert_eq!(done.body["completion"]["outcome"], "fixed");

    let settlement = s.settle(&a.id).await;
    let mut with_settlement = secrets.0.clone();
    with_settlement.push(settlement.id.clone());
    http_attacks(&gw, &b, &ja.id, &Secrets(with_settlement)).await;
    let mine = http.get("/v1/settlements", key_a).await;
    assert_eq!(mine.body["settlements"][0]["id"], settlement.id.as_str());
    assert_eq!(mine.body["settlements"][0]["status"], "draft");
    let completed = http
        .get("/v1/jobs?status=completed,cannot_complete", key_a)
        .await;
    assert_eq!(completed.body["jobs"][0]["id"], ja.id.as_str());
    let open = http.get("/v1/jobs?status=offered&page_size=5", key_a).await;
    assert_eq!(open.body["jobs"], json!([]));

    assert_eq!(
        s.admin_job(&ja.id).await.status,
        pb::JobStatus::Completed as i32
    );
    let declined = http
        .post(
            &format!("/v1/jobs/{}/decline", jb.id),
            Some(&b.secret),
            Value::Null,
        )
        .await;
    assert_eq!(declined.status, 200, "{declined:?}");
    s.stop().await;
}

/// A NUL (or any control character) in a job id is a 400 naming `job_id` on every job
/// operation, never a 500.
#[tokio::test]
async fn a_control_character_in_a_job_id_is_a_bad_request_on_every_operation() {
    let mut s = suite(false).await;
    let gw = s.gateway(|_| {}).await;
    let a = s.partner("A", REGION_A).await;
    let key = Some(a.secret.as_str());
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    for job_id in ["a%00b", "a%07b"] {
        let http = &gw.http;
        let attempts = [
            http.post(&format!("/v1/jobs/{job_id}/accept"), key, json!({}))
                .await,
            http.post(
                &format!("/v1/jobs/{job_id}/decline"),
                key,
                json!({"reason": "busy"}),
            )
            .await,
            http.get(&format!("/v1/jobs/{job_id}"), key).await,
            http.post(
                &format!("/v1/jobs/{job_id}/schedule"),
                key,
                json!({"scheduled_for": later}),
            )
            .await,
            http.post(&format!("/v1/jobs/{job_id}/visit"), key, json!({}))
                .await,
            http.post(
                &format!("/v1/jobs/{job_id}/quotes"),
                key,
                json!({"lines": scheduled_lines_json()}),
            )
            .await,
            http.post(
                &format!("/v1/jobs/{job_id}/complete"),
                key,
                json!({"outcome": "fixed"}),
            )
            .await,
        ];
        for answer in attempts {
            assert_eq!(answer.status, 400, "{job_id}: {answer:?}");
            assert_eq!(answer.violated_field(), "job_id", "{answer:?}");
        }
    }
    s.stop().await;
}
