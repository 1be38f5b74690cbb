//! The live desk on both backends through the real gRPC API: a ticket's stream carries
//! that ticket's events (no other's) from the moment it opens; a client that reconnects
//! with its last cursor gets exactly what followed, nothing twice; a client that does not
//! read loses nothing; a group's stream carries the tickets routed to that group; bad
//! input is named by field, an unknown ticket or group is not found, and a cursor older
//! than the outbox keeps is refused.

use std::time::Duration;

use aftersales_protos::{
    events::v1::{EventEnvelope, event_envelope::Payload},
    tickets::v1::{self as pb, desk_service_client::DeskServiceClient},
};
use sea_orm::{ConnectionTrait, TransactionTrait};
use tonic::{Code, Streaming, transport::Channel};

use crate::{
    helpers::{Backend, TestApp, spawn},
    team_support::{group, rule, upsert_rule},
};

async fn desk(app: &TestApp) -> DeskServiceClient<Channel> {
    DeskServiceClient::connect(format!("http://{}", app.addr))
        .await
        .expect("the desk service answers")
}

/// The next event of the stream (checkpoints skipped) and its cursor.
async fn next(stream: &mut Streaming<pb::DeskEvent>) -> (String, EventEnvelope) {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an event within 10 s")
            .expect("the stream is healthy")
            .expect("the stream is open");
        if let Some(event) = message.event {
            return (message.cursor, event);
        }
    }
}

/// The status a status change moved the ticket to.
fn moved_to(event: &EventEnvelope) -> i32 {
    match &event.payload {
        Some(Payload::TicketStatusChanged(changed)) => changed.to,
        other => panic!("not a status change: {other:?}"),
    }
}

async fn set_status(app: &mut TestApp, ticket_id: &str, status: pb::TicketStatus) {
    app.client
        .change_status(pb::ChangeStatusRequest {
            ticket_id: ticket_id.into(),
            status: status as i32,
            reason: String::new(),
            actor: None,
        })
        .await
        .expect("status changed");
}

/// The statuses a ticket alternates between after its first move to OPEN.
fn flip(n: usize) -> pb::TicketStatus {
    if n.is_multiple_of(2) {
        pb::TicketStatus::Open
    } else {
        pb::TicketStatus::PendingCustomer
    }
}

async fn a_ticket_stream_resumes_without_gap_or_repeat(backend: Backend) {
    let mut app = spawn(backend).await;
    let mut desk = desk(&app).await;
    // On PostgreSQL, a transaction that began before the tickets exist and is still
    // running when the stream opens: events already committed must not show as new.
    let older = match backend {
        Backend::Postgres => {
            let txn = app.core.db().begin().await.unwrap();
            txn.execute_unprepared("SELECT pg_current_xact_id()")
                .await
                .unwrap();
            Some(txn)
        }
        Backend::Sqlite => None,
    };
    let ticket = app.create(pb::Channel::Hotline, "live-1").await;
    let other = app.create(pb::Channel::Hotline, "live-2").await;
    let watch = |after: &str| pb::WatchTicketRequest {
        ticket_id: ticket.id.clone(),
        after: after.into(),
    };
    let mut stream = desk.watch_ticket(watch("")).await.unwrap().into_inner();
    set_status(&mut app, &ticket.id, flip(0)).await;
    set_status(&mut app, &other.id, flip(0)).await;
    set_status(&mut app, &ticket.id, flip(1)).await;
    if let Some(txn) = older {
        txn.rollback().await.unwrap();
    }
    let (first, event) = next(&mut stream).await;
    assert_eq!(event.subject_id, ticket.id);
    assert_eq!(
        event.r#type, "tickets.TicketStatusChanged",
        "not TicketCreated, from before the watch"
    );
    assert_eq!(moved_to(&event), flip(0) as i32);
    let (_, event) = next(&mut stream).await;
    assert_eq!(
        event.subject_id, ticket.id,
        "the other ticket's change is not here"
    );
    assert_eq!(moved_to(&event), flip(1) as i32);
    drop(stream);

    // While nobody watches: two more changes; resuming after the first event gets the
    // second again and then these two, and nothing else.
    set_status(&mut app, &ticket.id, flip(2)).await;
    set_status(&mut app, &ticket.id, flip(3)).await;
    let mut stream = desk.watch_ticket(watch(&first)).await.unwrap().into_inner();
    let mut cursors = vec![first];
    for n in 1..=3 {
        let (cursor, event) = next(&mut stream).await;
        assert_eq!(moved_to(&event), flip(n) as i32, "event {n}");
        assert!(!cursors.contains(&cursor), "a cursor repeats");
        cursors.push(cursor);
    }
    set_status(&mut app, &ticket.id, flip(4)).await;
    let (last, event) = next(&mut stream).await;
    assert_eq!(
        moved_to(&event),
        flip(4) as i32,
        "live again after the catch-up"
    );
    drop(stream);

    // A client that does not read makes the stream wait; nothing is lost.
    let mut stream = desk.watch_ticket(watch(&last)).await.unwrap().into_inner();
    for n in 5..105 {
        set_status(&mut app, &ticket.id, flip(n)).await;
    }
    for n in 5..105 {
        let (_, event) = next(&mut stream).await;
        assert_eq!(moved_to(&event), flip(n) as i32, "event {n}");
    }
    app.stop().await;
}

#[tokio::test]
async fn on_postgres_a_ticket_stream_resumes_without_gap_or_repeat() {
    a_ticket_stream_resumes_without_gap_or_repeat(Backend::Postgres).await;
}

#[tokio::test]
async fn on_sqlite_a_ticket_stream_resumes_without_gap_or_repeat() {
    a_ticket_stream_resumes_without_gap_or_repeat(Backend::Sqlite).await;
}

async fn a_group_stream_carries_its_tickets_and_bad_input_is_named(backend: Backend) {
    let mut app = spawn(backend).await;
    let mut desk = desk(&app).await;
    for id in ["complaints", "social"] {
        app.client
            .upsert_support_group(group(id, &[], false))
            .await
            .expect("group stored");
    }
    let mut social = rule("social-first", 1, "social");
    social.match_channels = vec![pb::Channel::Social as i32];
    upsert_rule(&mut app, social).await;
    upsert_rule(&mut app, rule("the-rest", 2, "complaints")).await;

    let mut stream = desk
        .watch_group(pb::WatchGroupRequest {
            group_id: "complaints".into(),
            after: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let elsewhere = app.create(pb::Channel::Social, "group-1").await;
    let mine = app.create(pb::Channel::Hotline, "group-2").await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let (_, event) = next(&mut stream).await;
        assert_eq!(
            event.subject_id, mine.id,
            "{elsewhere:?} went to another group"
        );
        seen.push(event.r#type.clone());
    }
    assert_eq!(seen, ["tickets.TicketCreated", "tickets.TicketAssigned"]);
    drop(stream);

    let refused = |request: pb::WatchTicketRequest| {
        let mut desk = desk.clone();
        async move { desk.watch_ticket(request).await.expect_err("refused") }
    };
    let status = refused(pb::WatchTicketRequest::default()).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("ticket_id"), "{status:?}");
    let status = refused(pb::WatchTicketRequest {
        ticket_id: mine.id.clone(),
        after: "not-a-cursor".into(),
    })
    .await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("after"), "{status:?}");
    let status = refused(pb::WatchTicketRequest {
        ticket_id: "no-such-ticket".into(),
        after: String::new(),
    })
    .await;
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    // Handed out at the epoch: older than any retention.
    let status = refused(pb::WatchTicketRequest {
        ticket_id: mine.id.clone(),
        after: "0-0-0".into(),
    })
    .await;
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let status = desk
        .watch_group(pb::WatchGroupRequest {
            group_id: "no-such-group".into(),
            after: String::new(),
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    app.stop().await;
}

#[tokio::test]
async fn on_postgres_a_group_stream_carries_its_tickets_and_bad_input_is_named() {
    a_group_stream_carries_its_tickets_and_bad_input_is_named(Backend::Postgres).await;
}

#[tokio::test]
async fn on_sqlite_a_group_stream_carries_its_tickets_and_bad_input_is_named() {
    a_group_stream_carries_its_tickets_and_bad_input_is_named(Backend::Sqlite).await;
}
