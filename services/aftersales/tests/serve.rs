//! The production shape: `aftersales migrate` and `aftersales serve tickets dispatch`
//! against real PostgreSQL and Redis with the metrics endpoint scraped, and a bad
//! variable stopping start-up with its name.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const BIN: &str = env!("CARGO_BIN_EXE_aftersales");

/// A production server without authentication settings does not start: it names what
/// to set, and `AUTH_MODE=disabled` has to be said out loud.
#[test]
fn serve_refuses_to_start_without_auth_settings() {
    let output = Command::new(BIN)
        .args(["serve", "tickets"])
        .env("DATABASE_URL", "sqlite::memory:")
        .env("TICKETS_GRPC_ADDR", "127.0.0.1:0")
        .env_remove("AUTH_MODE")
        .env_remove("AUTH_ISSUER")
        .env_remove("AUTH_AUDIENCE")
        .env_remove("AUTH_JWKS_URL")
        .env_remove("REDIS_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("AUTH_ISSUER") && stderr.contains("AUTH_MODE=disabled"),
        "stderr: {stderr}"
    );
}

#[test]
fn a_bad_variable_stops_start_up_and_is_named() {
    let output = Command::new(BIN)
        .args(["serve", "tickets"])
        .env("AUTH_MODE", "disabled")
        .env("DATABASE_URL", "sqlite::memory:")
        .env("SLA_BATCH", "lots")
        .env_remove("REDIS_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SLA_BATCH=\"lots\""), "stderr: {stderr}");

    let output = Command::new(BIN)
        .args(["serve", "tickets"])
        .env("AUTH_MODE", "disabled")
        .env("DATABASE_URL", "mysql://somewhere")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("DATABASE_URL"));

    let output = Command::new(BIN)
        .args(["serve", "tickets", "returns"])
        .env("AUTH_MODE", "disabled")
        .env("DATABASE_URL", "sqlite::memory:")
        .env_remove("TICKETS_DATABASE_URL")
        .env_remove("RETURNS_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("RETURNS_DATABASE_URL"));
}

#[tokio::test]
async fn migrate_then_serve_tickets_and_dispatch_on_postgres_and_redis() {
    let database_url = aftersales_testkit::fresh_postgres_url().await.unwrap();
    let dispatch_url = aftersales_testkit::fresh_postgres_url().await.unwrap();
    let migrated = Command::new(BIN)
        .args(["migrate", "tickets", "dispatch"])
        .env("TICKETS_DATABASE_URL", &database_url)
        .env("DISPATCH_DATABASE_URL", &dispatch_url)
        .env(
            "DISPATCH_ENCRYPTION_KEYS",
            "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .output()
        .unwrap();
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );

    let port = support::free_port();
    let metrics_port = support::free_port();
    let mut child = support::KillOnDrop(
        Command::new(BIN)
            .args(["serve", "tickets", "dispatch"])
            .env("AUTH_MODE", "disabled")
            .env("TICKETS_DATABASE_URL", &database_url)
            .env("DISPATCH_DATABASE_URL", &dispatch_url)
            .env(
                "DISPATCH_ENCRYPTION_KEYS",
                "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            )
            .env("DISPATCH_GRPC_ADDR", "127.0.0.1:0")
            .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .env("REDIS_URL", aftersales_testkit::redis_url())
            .env("REDIS_KEY_PREFIX", aftersales_testkit::unique_prefix())
            .env("TICKETS_GRPC_ADDR", format!("127.0.0.1:{port}"))
            .env("SHUTDOWN_HEALTH_GRACE_MS", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut health = loop {
        let endpoint =
            tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}")).unwrap();
        match endpoint.connect().await {
            Ok(channel) => break HealthClient::new(channel),
            Err(err) => {
                assert!(tokio::time::Instant::now() < deadline, "not serving: {err}");
                assert!(child.0.try_wait().unwrap().is_none(), "serve exited early");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let status = health
        .check(HealthCheckRequest {
            service: "aftersales.tickets.v1.TicketService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status, ServingStatus::Serving as i32);
    drop(health);

    let expected = [
        r#"grpc_server_requests_total{service="grpc.health.v1.Health",method="Check",code="OK"} 1"#,
        r#"sla_clocks_pending{queue="tickets"} 0"#,
        r#"sla_clocks_pending{queue="dispatch"} 0"#,
        r#"outbox_backlog{service="dispatch"} 0"#,
        r#"db_pool_max_connections{service="tickets"} 16"#,
    ];
    // Dispatch may still be migrating when tickets answers: its gauges come a little later.
    let mut page = String::new();
    for _ in 0..50 {
        page = support::scrape(metrics_port).await;
        if expected.iter().all(|line| page.contains(line)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for line in expected {
        assert!(page.contains(line), "{line} missing from\n{page}");
    }
    let exit = support::terminate(&mut child, Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit}");
}
