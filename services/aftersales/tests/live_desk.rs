//! The live desk across replicas, through the real binary on PostgreSQL and Redis: two
//! tickets processes on one database; a stream opened on one carries what the other
//! commits, SLA warnings and breaches included, each no earlier than its instant; the
//! first is stopped (its stream ends with UNAVAILABLE and does not hold up the shutdown),
//! and the client resumes on the second with its last cursor: nothing missed, nothing
//! twice; then on the first again once it is back.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::time::Duration;

use aftersales_platform::codes::instant;
use aftersales_protos::{
    events::v1::{EventEnvelope, event_envelope::Payload},
    tickets::v1::{
        self as tpb, desk_service_client::DeskServiceClient,
        ticket_service_client::TicketServiceClient,
    },
};
use support::suite::{Launch, Suite};
use tonic::{Code, Streaming, transport::Channel};

async fn next(stream: &mut Streaming<tpb::DeskEvent>) -> (String, EventEnvelope) {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(15), stream.message())
            .await
            .expect("an event within 15 s")
            .expect("the stream is healthy")
            .expect("the stream is open");
        if let Some(event) = message.event {
            return (message.cursor, event);
        }
    }
}

async fn set_status(
    tickets: &mut TicketServiceClient<Channel>,
    id: &str,
    status: tpb::TicketStatus,
) {
    tickets
        .change_status(tpb::ChangeStatusRequest {
            ticket_id: id.into(),
            status: status as i32,
            ..Default::default()
        })
        .await
        .unwrap();
}

fn moved_to(event: &EventEnvelope) -> i32 {
    match &event.payload {
        Some(Payload::TicketStatusChanged(changed)) => changed.to,
        other => panic!("not a status change: {other:?}"),
    }
}

async fn watch(suite: &mut Suite, ticket_id: &str, after: &str) -> Streaming<tpb::DeskEvent> {
    DeskServiceClient::new(suite.channel("tickets").await)
        .watch_ticket(tpb::WatchTicketRequest {
            ticket_id: ticket_id.into(),
            after: after.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn a_desk_stream_follows_another_replica_and_resumes_on_any() {
    let mut first = Launch::postgres(&["tickets"]).await.spawn();
    // Migrated before the second starts on the same database.
    first.channel("tickets").await;
    let (database, prefix) = (
        first.database_url("tickets"),
        first.redis_prefix().unwrap().to_owned(),
    );
    let mut second = Launch::postgres(&["tickets"])
        .await
        .database("tickets", &database)
        .redis_prefix(&prefix)
        .spawn();
    let mut tickets = TicketServiceClient::new(second.channel("tickets").await);
    // Clocks of SOCIAL tickets run in seconds: first response 2 s, warned at 50 %.
    let mut fast = support::fast_social_policy(2, 3600);
    if let Some(policy) = fast.policy.as_mut() {
        policy.warning_percent = 50;
    }
    tickets.upsert_sla_policy(fast).await.unwrap();
    let ticket = tickets
        .create_ticket(tpb::CreateTicketRequest {
            customer_id: "cust-live".into(),
            channel: tpb::Channel::Social as i32,
            category: tpb::Category::Complaint as i32,
            severity: tpb::Severity::General as i32,
            subject: "late parcel".into(),
            description: "a week late".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    // Opened on the first replica; the warning and the breach of the first-response
    // clock arrive as they happen, fired by whichever replica's worker claims them.
    let mut stream = watch(&mut first, &ticket.id, "").await;
    let mut kinds = Vec::new();
    let mut cursor = String::new();
    while kinds.len() < 3 {
        let (at, event) = next(&mut stream).await;
        let occurred = instant(event.occurred_at.as_ref().unwrap()).unwrap();
        let created = instant(ticket.created_at.as_ref().unwrap()).unwrap();
        let not_before = match &event.payload {
            // 50 % of the 2 s target.
            Some(Payload::SlaWarning(_)) => created + chrono::Duration::seconds(1),
            Some(Payload::SlaBreached(b)) => instant(b.due_at.as_ref().unwrap()).unwrap(),
            _ => created,
        };
        assert!(
            occurred >= not_before,
            "{} before its instant",
            event.r#type
        );
        kinds.push(event.r#type.clone());
        cursor = at;
    }
    assert_eq!(
        kinds,
        [
            "tickets.SlaWarning",
            "tickets.SlaBreached",
            "tickets.TicketEscalated"
        ]
    );
    set_status(&mut tickets, &ticket.id, tpb::TicketStatus::Open).await;
    let (after_open, event) = next(&mut stream).await;
    assert_eq!(moved_to(&event), tpb::TicketStatus::Open as i32);
    assert!(after_open != cursor);

    // The first replica stops: its stream ends, and the shutdown is not held up by it.
    let exit = support::terminate(&mut first.child, Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit}");
    match tokio::time::timeout(Duration::from_secs(5), stream.message()).await {
        Ok(Err(status)) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        Ok(Ok(None)) => {}
        other => panic!("the stream did not end with its replica: {other:?}"),
    }

    // Two changes while nobody watches; the client resumes on the second replica.
    set_status(&mut tickets, &ticket.id, tpb::TicketStatus::PendingCustomer).await;
    set_status(&mut tickets, &ticket.id, tpb::TicketStatus::Open).await;
    let mut stream = watch(&mut second, &ticket.id, &after_open).await;
    let (_, event) = next(&mut stream).await;
    assert_eq!(moved_to(&event), tpb::TicketStatus::PendingCustomer as i32);
    let (last, event) = next(&mut stream).await;
    assert_eq!(moved_to(&event), tpb::TicketStatus::Open as i32);
    drop(stream);

    // The first replica is back: the client resumes there too.
    first.kill_and_start_again();
    set_status(&mut tickets, &ticket.id, tpb::TicketStatus::PendingCustomer).await;
    let mut stream = watch(&mut first, &ticket.id, &last).await;
    let (_, event) = next(&mut stream).await;
    assert_eq!(
        moved_to(&event),
        tpb::TicketStatus::PendingCustomer as i32,
        "exactly the one change after the cursor"
    );
    drop(stream);
    for suite in [&mut first, &mut second] {
        let exit = support::terminate(&mut suite.child, Duration::from_secs(20)).await;
        assert!(exit.success(), "{exit}");
    }
}
