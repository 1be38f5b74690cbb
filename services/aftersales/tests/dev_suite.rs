//! `make run` end to end: the real `aftersales dev` binary serves the tickets service on
//! the port README gives, health says SERVING, reflection lists the service, a call needs
//! a token and one from `admin token` is accepted, and SIGTERM stops it cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

/// The tickets port README.md documents for `make run`.
const TICKETS: &str = "http://127.0.0.1:50051";
const SERVICE: &str = "aftersales.tickets.v1.TicketService";
const DESK_SERVICE: &str = "aftersales.tickets.v1.DeskService";
const AUDIT_SERVICE: &str = "aftersales.audit.v1.AuditService";
/// The other services' ports README.md documents, with their health names.
const OTHERS: &[(&str, &str)] = &[
    (
        "http://127.0.0.1:50052",
        "aftersales.returns.v1.ReturnService",
    ),
    (
        "http://127.0.0.1:50053",
        "aftersales.dispatch.v1.DispatchService",
    ),
    (
        "http://127.0.0.1:50053",
        "aftersales.dispatch.v1.PartnerKeyService",
    ),
];

#[tokio::test]
async fn the_dev_suite_serves_tickets_with_health_and_reflection() {
    let data_dir = std::env::temp_dir().join(format!("aftersales-dev-{}", std::process::id()));
    let mut child = support::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_aftersales"))
            .args(["dev", "--data-dir"])
            .arg(&data_dir)
            .env("SHUTDOWN_HEALTH_GRACE_MS", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts"),
    );

    let channel = support::connect(TICKETS, &mut child).await;

    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: SERVICE.into(),
        })
        .await
        .expect("health answers")
        .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);
    for (address, service) in OTHERS {
        let channel = support::connect(address, &mut child).await;
        let health = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: (*service).into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{service} health answers: {e}"))
            .into_inner();
        assert_eq!(health.status, ServingStatus::Serving as i32, "{service}");
    }

    // The gateway's HTTP face serves its OpenAPI document on the README's port.
    let openapi = http_get("127.0.0.1:8080", "/openapi.json").await;
    assert!(
        openapi.starts_with("HTTP/1.0 200") && openapi.contains("\"openapi\": \"3.1"),
        "{openapi}"
    );

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("a reflection response")
        .expect("not empty");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.iter().any(|n| n == SERVICE),
        "reflection lists {names:?}"
    );
    assert!(
        names.iter().any(|n| n == "grpc.health.v1.Health"),
        "reflection lists {names:?}"
    );
    // A port lists only what it serves: its own contracts (tickets serves the live desk
    // beside its API) and the audit trail's listing, no other service's contract, no
    // bench harness.
    for served in [AUDIT_SERVICE, DESK_SERVICE] {
        assert!(
            names.iter().any(|n| n == served),
            "reflection lists {names:?}"
        );
    }
    assert!(
        names.iter().all(|n| !n.starts_with("aftersales.")
            || [SERVICE, DESK_SERVICE, AUDIT_SERVICE].contains(&n.as_str())),
        "reflection lists {names:?}"
    );

    drop(responses);

    // Calls need a token; `admin token` mints one from the development issuer.
    use aftersales_protos::tickets::v1::{
        ListTicketsRequest, ticket_service_client::TicketServiceClient,
    };
    let mut tickets = TicketServiceClient::new(channel.clone());
    let refused = tickets
        .list_tickets(ListTicketsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let minted = Command::new(env!("CARGO_BIN_EXE_aftersales"))
        .args(["admin", "token", "--roles", "agent", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(minted.status.success(), "{minted:?}");
    let token = String::from_utf8(minted.stdout).unwrap();
    let mut request = tonic::Request::new(ListTicketsRequest::default());
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", token.trim()).parse().unwrap(),
    );
    tickets
        .list_tickets(request)
        .await
        .expect("a token from the development issuer is accepted");
    let exit = support::terminate(&mut child, Duration::from_secs(20)).await;
    assert!(exit.success(), "clean exit on SIGTERM, got {exit}");
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// A plain HTTP/1.0 GET: the whole response. The gateway starts last, so its port may
/// need a moment.
async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut stream = loop {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(stream) => break stream,
            Err(err) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "HTTP port {addr} never answered: {err}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}
