//! A regional emergency across care and tickets, through the real binary on PostgreSQL
//! and Redis and on the embedded backends `make run` uses: declared on care, it holds the
//! SLA clocks of the region's open tickets (and no others); closed, they run again with
//! their due instants moved on by the time held.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use aftersales_protos::{
    care::v1::{self as cpb, care_service_client::CareServiceClient},
    tickets::v1::{self as tpb, ticket_service_client::TicketServiceClient},
};
use tonic::transport::Channel;

const BIN: &str = env!("CARGO_BIN_EXE_aftersales");
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes, tests only

enum Backends {
    PostgresAndRedis,
    Embedded(std::path::PathBuf),
}

async fn serve(backends: &Backends) -> (support::KillOnDrop, u16, u16) {
    let (tickets_port, care_port) = (support::free_port(), support::free_port());
    let mut command = Command::new(BIN);
    command
        .args(["serve", "tickets", "care"])
        .env("AUTH_MODE", "disabled")
        .env("CARE_ENCRYPTION_KEYS", format!("k1:{KEY}"))
        .env("CARE_SEARCH_KEY", KEY)
        .env(
            "CARE_TICKETS_URL",
            format!("http://127.0.0.1:{tickets_port}"),
        )
        .env("TICKETS_GRPC_ADDR", format!("127.0.0.1:{tickets_port}"))
        .env("CARE_GRPC_ADDR", format!("127.0.0.1:{care_port}"))
        .env("METRICS_ADDR", "off")
        .env("SHUTDOWN_HEALTH_GRACE_MS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    match backends {
        Backends::PostgresAndRedis => {
            command
                .env(
                    "TICKETS_DATABASE_URL",
                    aftersales_testkit::fresh_postgres_url().await.unwrap(),
                )
                .env(
                    "CARE_DATABASE_URL",
                    aftersales_testkit::fresh_postgres_url().await.unwrap(),
                )
                .env("REDIS_URL", aftersales_testkit::redis_url())
                .env("REDIS_KEY_PREFIX", aftersales_testkit::unique_prefix());
        }
        Backends::Embedded(dir) => {
            let url = |service: &str| format!("sqlite://{}/{service}.db?mode=rwc", dir.display());
            command
                .env_remove("REDIS_URL")
                .env_remove("DATABASE_URL")
                .env("TICKETS_DATABASE_URL", url("tickets"))
                .env("CARE_DATABASE_URL", url("care"));
        }
    }
    (
        support::KillOnDrop(command.spawn().unwrap()),
        tickets_port,
        care_port,
    )
}

async fn open_in(tickets: &mut TicketServiceClient<Channel>, region: &str) -> tpb::Ticket {
    tickets
        .create_ticket(tpb::CreateTicketRequest {
            customer_id: format!("cust-{region}"),
            channel: tpb::Channel::Hotline as i32,
            category: tpb::Category::Complaint as i32,
            severity: tpb::Severity::General as i32,
            subject: "no delivery".into(),
            description: "roads closed".into(),
            product: Some(tpb::ProductFacts {
                region_code: region.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn resolution(tickets: &mut TicketServiceClient<Channel>, id: &str) -> tpb::SlaClock {
    tickets
        .get_sla_status(tpb::GetSlaStatusRequest {
            ticket_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .clocks
        .into_iter()
        .find(|c| c.kind == tpb::ClockKind::Resolution as i32)
        .unwrap()
}

fn millis(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().unwrap();
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}

/// Polls the ticket's resolution clock until it is in `state`.
async fn wait_for(
    tickets: &mut TicketServiceClient<Channel>,
    id: &str,
    state: tpb::ClockState,
) -> tpb::SlaClock {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let clock = resolution(tickets, id).await;
        if clock.state == state as i32 {
            return clock;
        }
        assert!(Instant::now() < deadline, "never {state:?}: {clock:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn an_emergency_holds_exactly_its_regions_clocks(backends: Backends) {
    let (mut child, tickets_port, care_port) = serve(&backends).await;
    let mut tickets = TicketServiceClient::new(
        support::connect(format!("http://127.0.0.1:{tickets_port}"), &mut child).await,
    );
    let mut care = CareServiceClient::new(
        support::connect(format!("http://127.0.0.1:{care_port}"), &mut child).await,
    );
    let inside = open_in(&mut tickets, "CN-GD").await;
    let outside = open_in(&mut tickets, "CN-BJ").await;
    let due_before = millis(&resolution(&mut tickets, &inside.id).await.due_at);
    let outside_due = millis(&resolution(&mut tickets, &outside.id).await.due_at);

    let emergency = care
        .declare_incident(cpb::DeclareIncidentRequest {
            idempotency_key: "typhoon-1".into(),
            kind: cpb::IncidentKind::RegionalEmergency as i32,
            scope: Some(cpb::IncidentScope {
                region_code: "CN-GD".into(),
                ..Default::default()
            }),
            title: "typhoon: roads closed".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let held = wait_for(&mut tickets, &inside.id, tpb::ClockState::Paused).await;
    let held_at = millis(&held.paused_at);
    let ticket = tickets
        .get_ticket(tpb::GetTicketRequest {
            id: inside.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ticket.held_by, std::slice::from_ref(&emergency.id));
    assert_eq!(
        resolution(&mut tickets, &outside.id).await.state,
        tpb::ClockState::Running as i32,
        "another region runs on"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked_to_close = chrono::Utc::now().timestamp_millis();
    care.close_incident(cpb::CloseIncidentRequest {
        idempotency_key: "typhoon-1-over".into(),
        incident_id: emergency.id.clone(),
    })
    .await
    .unwrap();
    let resumed = wait_for(&mut tickets, &inside.id, tpb::ClockState::Running).await;
    let seen_running = chrono::Utc::now().timestamp_millis();
    let moved = millis(&resumed.due_at) - due_before;
    assert!(
        moved >= asked_to_close - held_at && moved <= seen_running - held_at,
        "due moved by {moved} ms: held from {held_at}, closed between {asked_to_close} and {seen_running}"
    );
    assert_eq!(
        millis(&resolution(&mut tickets, &outside.id).await.due_at),
        outside_due
    );

    let exit = support::terminate(&mut child, Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit}");
}

#[tokio::test]
async fn on_postgres_and_redis_an_emergency_holds_exactly_its_regions_clocks() {
    an_emergency_holds_exactly_its_regions_clocks(Backends::PostgresAndRedis).await;
}

#[tokio::test]
async fn on_the_embedded_backends_an_emergency_holds_exactly_its_regions_clocks() {
    let dir = std::env::temp_dir().join(format!(
        "aftersales-emergency-{}-{}",
        std::process::id(),
        support::free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    an_emergency_holds_exactly_its_regions_clocks(Backends::Embedded(dir.clone())).await;
    let _ = std::fs::remove_dir_all(&dir);
}
