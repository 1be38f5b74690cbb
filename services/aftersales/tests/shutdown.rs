//! Graceful shutdown of `serve tickets` on PostgreSQL and Redis under a steady stream of
//! CreateTicket calls: on SIGTERM health turns NOT_SERVING first, every call already
//! started (and every call made before the callers saw NOT_SERVING) succeeds, the process
//! exits cleanly within the drain bound, and no deadline stays leased.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::{
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use aftersales_protos::tickets::v1::{self as tpb, ticket_service_client::TicketServiceClient};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const BIN: &str = env!("CARGO_BIN_EXE_aftersales");
const SERVICE: &str = "aftersales.tickets.v1.TicketService";

#[tokio::test]
async fn sigterm_drains_in_flight_calls_and_releases_leases() {
    let port = support::free_port();
    let prefix = aftersales_testkit::unique_prefix();
    let database_url = aftersales_testkit::fresh_postgres_url().await.unwrap();
    let mut child = support::KillOnDrop(
        Command::new(BIN)
            .args(["serve", "tickets"])
            .env("AUTH_MODE", "disabled")
            .env("TICKETS_DATABASE_URL", &database_url)
            .env("REDIS_URL", aftersales_testkit::redis_url())
            .env("REDIS_KEY_PREFIX", &prefix)
            .env("TICKETS_GRPC_ADDR", format!("127.0.0.1:{port}"))
            .env("METRICS_ADDR", "off")
            .env("SHUTDOWN_HEALTH_GRACE_MS", "1000")
            .env("SHUTDOWN_DRAIN_TIMEOUT_MS", "5000")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let channel = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match Channel::from_shared(url.clone()).unwrap().connect().await {
                Ok(channel) => break channel,
                Err(err) => {
                    assert!(tokio::time::Instant::now() < deadline, "not serving: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    };

    // The callers behave like a load balancer: they stop sending once health says so.
    let not_serving = Arc::new(AtomicBool::new(false));
    let mut watch = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: SERVICE.into(),
        })
        .await
        .expect("health watch")
        .into_inner();
    let watcher = {
        let not_serving = not_serving.clone();
        tokio::spawn(async move {
            while let Ok(Some(update)) = watch.message().await {
                if update.status == ServingStatus::NotServing as i32 {
                    not_serving.store(true, Ordering::SeqCst);
                    return Instant::now();
                }
            }
            Instant::now()
        })
    };

    let ok = Arc::new(AtomicU64::new(0));
    let callers: Vec<_> = (0..8)
        .map(|i| {
            let mut client = TicketServiceClient::new(channel.clone());
            let (not_serving, ok) = (not_serving.clone(), ok.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !not_serving.load(Ordering::SeqCst) {
                    n += 1;
                    let created = client
                        .create_ticket(tpb::CreateTicketRequest {
                            idempotency_key: format!("c{i}-{n}"),
                            customer_id: format!("cust-{i}"),
                            channel: tpb::Channel::Chat as i32,
                            category: tpb::Category::Complaint as i32,
                            severity: tpb::Severity::General as i32,
                            subject: "late parcel".into(),
                            description: "still not here".into(),
                            ..Default::default()
                        })
                        .await;
                    if let Err(status) = created {
                        panic!("call {n} of caller {i} failed during shutdown: {status:?}");
                    }
                    ok.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before = ok.load(Ordering::SeqCst);
    assert!(before > 0, "calls flow before the signal");
    let signalled = Instant::now();
    let exit = support::terminate(&mut child, Duration::from_secs(15)).await;
    let stopped_after = signalled.elapsed();
    for caller in callers {
        caller.await.expect("no call failed");
    }
    let not_serving_at = watcher.await.unwrap();
    assert!(exit.success(), "clean exit: {exit}");
    assert!(
        not_serving.load(Ordering::SeqCst),
        "health said NOT_SERVING first"
    );
    assert!(
        not_serving_at < signalled + stopped_after,
        "NOT_SERVING before the exit"
    );
    assert!(
        stopped_after < Duration::from_millis(1_000 + 5_000 + 2_000),
        "stopped within grace + drain: {stopped_after:?}"
    );
    assert!(
        ok.load(Ordering::SeqCst) > before,
        "calls kept succeeding after the signal"
    );

    // Nothing stays leased: the worker finished and acknowledged its claims.
    let stats = Command::new(BIN)
        .args(["admin", "sla", "stats", "--service", "tickets"])
        .env("TICKETS_DATABASE_URL", &database_url)
        .env("REDIS_URL", aftersales_testkit::redis_url())
        .env("REDIS_KEY_PREFIX", &prefix)
        .output()
        .unwrap();
    let stats = String::from_utf8_lossy(&stats.stdout);
    assert!(stats.contains(" 0 in flight"), "{stats}");
}
