//! A regional emergency across care and tickets, through the real binary on PostgreSQL
//! and Redis and on the embedded backends `make run` uses: declared on care, it holds the
//! SLA clocks of the region's open tickets (and no others); closed, they run again with
//! their due instants moved on by the time held.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::time::{Duration, Instant};

use aftersales_protos::{
    care::v1::{self as cpb, care_service_client::CareServiceClient},
    tickets::v1::{self as tpb, ticket_service_client::TicketServiceClient},
};
use support::suite::{Backends, DataDir, Launch};
use tonic::transport::Channel;

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
    let mut suite = Launch::on(&["tickets", "care"], &backends).await.spawn();
    let mut tickets = TicketServiceClient::new(suite.channel("tickets").await);
    let mut care = CareServiceClient::new(suite.channel("care").await);
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

    let exit = support::terminate(&mut suite.child, Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit}");
}

#[tokio::test]
async fn on_postgres_and_redis_an_emergency_holds_exactly_its_regions_clocks() {
    an_emergency_holds_exactly_its_regions_clocks(Backends::PostgresAndRedis).await;
}

#[tokio::test]
async fn on_the_embedded_backends_an_emergency_holds_exactly_its_regions_clocks() {
    let dir = DataDir::new("emergency");
    an_emergency_holds_exactly_its_regions_clocks(dir.backends()).await;
}
