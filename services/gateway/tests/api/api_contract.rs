//! The HTTP face against its own OpenAPI document: the served document validates
//! (openapi-spec-validator) and describes the webhook routes and the events partners'
//! endpoints receive (`webhooks`), and a bounded property-based run of schemathesis against the
//! live API, authorised with a real key over seeded data, finds no server error and no
//! answer outside the document. Both tools come from `tests/setup/tools-api.sh` (`make
//! tools`); without them these tests fail and say so.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use aftersales_gateway::app::GatewaySettings;
use aftersales_platform::CancellationToken;
use aftersales_protos::{dispatch::v1 as pb, partner::v1 as partner};
use tokio::process::Command;

use crate::helpers::{REGION_A, REGION_B, keyed, scheduled_lines, spawn_gateway, suite};

/// The venv `tests/setup/tools-api.sh` installs.
fn tools() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/api/bin")
}

fn tool(name: &str) -> PathBuf {
    let path = tools().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `make tools` (or `bash tests/setup/tools-api.sh`) to install \
         the HTTP API checkers into target/tools/api",
        path.display()
    );
    path
}

/// Runs `command` for at most `limit`; its exit status and combined output.
async fn run(mut command: Command, limit: Duration) -> (bool, String) {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("the tool starts");
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the tool ran longer than {limit:?}"))
        .expect("the tool's output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn the_served_openapi_document_validates() {
    let validator = tool("openapi-spec-validator");
    // Upstreams are never called: the document needs no key and no dispatch.
    let settings =
        GatewaySettings::for_tests("http://127.0.0.1:9".into(), "http://127.0.0.1:9".into());
    let shutdown = CancellationToken::new();
    let (gw, task) = spawn_gateway(settings, shutdown.clone()).await;
    let doc = gw.http.get("/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.header("content-type"), Some("application/json"));
    assert_eq!(doc.body["openapi"], "3.1.0");
    assert_webhooks_are_described(&doc.body);
    let file = std::env::temp_dir().join(format!("gateway-openapi-{}.json", std::process::id()));
    std::fs::write(&file, doc.body.to_string()).unwrap();
    let mut command = Command::new(validator);
    command.arg(&file);
    let (ok, output) = run(command, Duration::from_secs(60)).await;
    let _ = std::fs::remove_file(&file);
    assert!(ok, "openapi-spec-validator refused the document:\n{output}");
    shutdown.cancel();
    task.await.unwrap();
}

/// The partner's webhook routes and, under `webhooks`, each event type of the partner
/// catalogue as a signed POST of its envelope.
fn assert_webhooks_are_described(doc: &serde_json::Value) {
    for (path, methods) in [
        ("/v1/webhook-endpoints", &["get", "post"][..]),
        (
            "/v1/webhook-endpoints/{endpoint_id}",
            &["get", "patch", "delete"],
        ),
        (
            "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
            &["post"],
        ),
        ("/v1/webhook-endpoints/{endpoint_id}/deliveries", &["get"]),
        (
            "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/replay",
            &["post"],
        ),
        ("/v1/webhook-event-types", &["get"]),
    ] {
        for method in methods {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} missing"
            );
        }
    }
    let webhooks = doc["webhooks"].as_object().expect("a webhooks section");
    let mut names: Vec<&str> = webhooks.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "dispatch.JobCancelled",
            "dispatch.JobOffered",
            "dispatch.JobPartsReady",
            "dispatch.OfferWithdrawn",
            "dispatch.QuoteReviewed",
            "dispatch.SettlementIssued",
        ]
    );
    for (name, item) in webhooks {
        let post = &item["post"];
        let headers: Vec<&str> = post["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no parameters"))
            .iter()
            .filter(|p| p["in"] == "header" && p["required"] == true)
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(
            headers,
            ["webhook-id", "webhook-timestamp", "webhook-signature"],
            "{name}"
        );
        let body = &post["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(body["properties"]["type"]["const"], name.as_str());
        assert_eq!(body["properties"]["timestamp"]["format"], "date-time");
        let data = body["properties"]["data"]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name}: no data fields"));
        assert!(data.contains_key("partnerId"), "{name}: {data:?}");
    }
    let offered = &webhooks["dispatch.JobOffered"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["properties"]["data"]["properties"];
    let fields: Vec<&str> = offered
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for field in ["jobId", "offerId", "partnerId", "expiresAt", "attempt"] {
        assert!(
            fields.contains(&field),
            "JobOffered lacks {field}: {fields:?}"
        );
    }
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let schemathesis = tool("schemathesis");
    let mut s = suite(false).await;
    s.with_webhooks().await;
    let gw = s.gateway(|_| {}).await;
    let a = s.partner("A", REGION_A).await;
    let _b = s.partner("B", REGION_B).await;

    // Data for the lists: an open offer, a completed job with a quote, a settlement, a
    // webhook endpoint.
    let _offered = s.job(REGION_A, "ticket-open").await;
    let done = s.job(REGION_A, "ticket-done").await;
    let mut grpc = gw.grpc.clone();
    let key = a.secret.as_str();
    grpc.accept_offer(keyed(
        partner::AcceptOfferRequest {
            job_id: done.id.clone(),
        },
        key,
    ))
    .await
    .expect("accepted");
    grpc.record_visit(keyed(
        partner::RecordVisitRequest {
            job_id: done.id.clone(),
            arrived_at: None,
            notes: String::new(),
        },
        key,
    ))
    .await
    .expect("visited");
    grpc.submit_quote(keyed(
        partner::SubmitQuoteRequest {
            idempotency_key: "q".into(),
            job_id: done.id.clone(),
            lines: scheduled_lines(),
        },
        key,
    ))
    .await
    .expect("quoted");
    grpc.complete_job(keyed(
        partner::CompleteJobRequest {
            idempotency_key: "c".into(),
            job_id: done.id.clone(),
            outcome: pb::CompletionOutcome::Fixed as i32,
            photos: vec![],
            notes: String::new(),
        },
        key,
    ))
    .await
    .expect("completed");
    s.settle(&a.id).await;
    grpc.create_webhook_endpoint(keyed(
        partner::CreateWebhookEndpointRequest {
            url: "http://127.0.0.1:9/hooks".into(),
            event_types: vec!["dispatch.JobOffered".into()],
            description: String::new(),
            idempotency_key: String::new(),
        },
        key,
    ))
    .await
    .expect("an endpoint");

    let report = std::env::temp_dir().join(format!("gateway-schemathesis-{}", std::process::id()));
    let mut command = Command::new(schemathesis);
    command
        .arg("run")
        .arg(gw.http.url("/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {}", a.secret)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        // A fixed seed keeps runs comparable; one worker because the parser of CPython
        // 3.11.7 is not thread-safe under hypothesis ("AST constructor recursion depth
        // mismatch"); 25 examples per operation keep the run near 15 s.
        .args([
            "--max-examples",
            "25",
            "--seed",
            "20261123",
            "--workers",
            "1",
        ])
        .args(["--request-timeout", "10", "--no-shrink"])
        .args(["--generation-database", "none"])
        .arg("--report-dir")
        .arg(&report)
        .env("NO_COLOR", "1")
        // Whatever else it writes stays out of the work tree.
        .current_dir(std::env::temp_dir());
    let started = Instant::now();
    let (ok, output) = run(command, Duration::from_secs(120)).await;
    let elapsed = started.elapsed();
    let _ = std::fs::remove_dir_all(&report);
    assert!(ok, "schemathesis found problems ({elapsed:?}):\n{output}");
    let summary = output.find("SUMMARY").map_or("", |at| &output[at..]);
    eprintln!("schemathesis passed in {elapsed:?}:\n{summary}");
    s.stop().await;
}
