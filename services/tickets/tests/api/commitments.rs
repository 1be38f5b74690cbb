//! Forbidden commitments through the real gRPC API on both backends: an agent's public
//! reply promising 终身免费维修 or "lifetime free repair" is refused naming `body` and the
//! rule, leaves nothing in the thread and meets no clock; the same words in a customer's
//! reply or an agent's internal note pass. Configured to hold instead, the reply becomes
//! an internal note for a supervisor (logged as `reply_held`) that the customer never
//! sees and that meets no clock, until a supervisor releases it (then it is the agent's
//! public reply, meeting the first-response clock) or discards it.

use aftersales_protos::tickets::v1 as pb;
use aftersales_tickets::domain::commitments::{Commitments, OnForbidden};
use tonic::Code;

use crate::helpers::{Backend, Options, TestApp, clock, spawn_with};

fn reply(
    ticket_id: &str,
    author: pb::ReplyAuthor,
    visibility: pb::Visibility,
    body: &str,
) -> pb::AddReplyRequest {
    pb::AddReplyRequest {
        ticket_id: ticket_id.into(),
        author: author as i32,
        body: body.into(),
        visibility: visibility as i32,
        ..Default::default()
    }
}

/// Sends one entry: the entry as stored, or the refusal.
async fn add(
    app: &mut TestApp,
    ticket_id: &str,
    author: pb::ReplyAuthor,
    visibility: pb::Visibility,
    body: &str,
) -> Result<pb::Reply, tonic::Status> {
    app.client
        .add_reply(reply(ticket_id, author, visibility, body))
        .await
        .map(|answer| answer.into_inner().reply.expect("the entry"))
}

async fn thread(app: &mut TestApp, ticket_id: &str, visibility: pb::Visibility) -> Vec<pb::Reply> {
    app.client
        .list_thread(pb::ListThreadRequest {
            ticket_id: ticket_id.into(),
            visibility: visibility as i32,
            ..Default::default()
        })
        .await
        .expect("the thread")
        .into_inner()
        .entries
}

async fn activity(app: &mut TestApp, ticket_id: &str) -> Vec<pb::ActivityEntry> {
    app.client
        .list_activity(pb::ListActivityRequest {
            ticket_id: ticket_id.into(),
            ..Default::default()
        })
        .await
        .expect("the log")
        .into_inner()
        .entries
}

async fn first_response_met(app: &mut TestApp, ticket_id: &str) -> bool {
    let status = app.sla(ticket_id).await;
    clock(&status, pb::ClockKind::FirstResponse).state == pb::ClockState::Met as i32
}

async fn promises_are_refused(backend: Backend) {
    let mut app = spawn_with(backend, Options::default()).await;
    let ticket = app.create(pb::Channel::Hotline, "promise-1").await;
    for (body, rule) in [
        ("放心，我们承诺终身 免费维修！", "终身免费维修"),
        (
            "You get LIFETIME free-repair on this kettle",
            "lifetime free repair",
        ),
    ] {
        let refused = add(
            &mut app,
            &ticket.id,
            pb::ReplyAuthor::Agent,
            pb::Visibility::Public,
            body,
        )
        .await
        .expect_err("a forbidden commitment is refused");
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(refused.message().contains("body"), "{refused:?}");
        assert!(refused.message().contains(rule), "{refused:?}");
    }
    assert!(
        thread(&mut app, &ticket.id, pb::Visibility::Unspecified)
            .await
            .is_empty()
    );
    assert!(!first_response_met(&mut app, &ticket.id).await);

    // The customer may say anything; an internal note quoting the customer is the desk's.
    let words = "你们说过终身免费维修";
    add(
        &mut app,
        &ticket.id,
        pb::ReplyAuthor::Customer,
        pb::Visibility::Public,
        words,
    )
    .await
    .expect("a customer's words pass");
    add(
        &mut app,
        &ticket.id,
        pb::ReplyAuthor::Agent,
        pb::Visibility::Internal,
        words,
    )
    .await
    .expect("a note passes");
    let fine = "我们会在24小时内安排上门维修";
    add(
        &mut app,
        &ticket.id,
        pb::ReplyAuthor::Agent,
        pb::Visibility::Public,
        fine,
    )
    .await
    .expect("a plain answer passes");
    assert_eq!(
        thread(&mut app, &ticket.id, pb::Visibility::Unspecified)
            .await
            .len(),
        3
    );
    assert!(first_response_met(&mut app, &ticket.id).await);
    app.stop().await;
}

#[tokio::test]
async fn on_postgres_an_agents_forbidden_promise_is_refused_naming_the_rule() {
    promises_are_refused(Backend::Postgres).await;
}

#[tokio::test]
async fn on_sqlite_an_agents_forbidden_promise_is_refused_naming_the_rule() {
    promises_are_refused(Backend::Sqlite).await;
}

async fn promises_are_held(backend: Backend) {
    let mut app = spawn_with(
        backend,
        Options {
            commitments: Some(Commitments::new(["保证退款"], OnForbidden::Hold)),
            ..Options::default()
        },
    )
    .await;
    let ticket = app.create(pb::Channel::Hotline, "promise-2").await;
    let held = add(
        &mut app,
        &ticket.id,
        pb::ReplyAuthor::Agent,
        pb::Visibility::Public,
        "我们保证退款",
    )
    .await
    .expect("held, not refused");
    assert_eq!(held.visibility, pb::Visibility::Internal as i32);
    assert!(held.held);
    assert!(
        thread(&mut app, &ticket.id, pb::Visibility::Public)
            .await
            .is_empty()
    );
    assert!(!first_response_met(&mut app, &ticket.id).await);
    let log = activity(&mut app, &ticket.id).await;
    let line = log.last().expect("a line");
    assert_eq!(
        (line.action.as_str(), line.detail.as_str()),
        ("reply_held", held.id.as_str())
    );
    // A second held entry is discarded: it stays a note, the clock still runs.
    let second = add(
        &mut app,
        &ticket.id,
        pb::ReplyAuthor::Agent,
        pb::Visibility::Public,
        "保证退款哦",
    )
    .await
    .expect("held");
    let decide = |reply_id: &str, release: bool, key: &str| pb::ReleaseHeldReplyRequest {
        idempotency_key: key.into(),
        ticket_id: ticket.id.clone(),
        reply_id: reply_id.into(),
        release,
    };
    let discarded = app
        .client
        .release_held_reply(decide(&second.id, false, "d-1"))
        .await
        .expect("discarded")
        .into_inner()
        .reply
        .expect("the entry");
    assert_eq!(
        (discarded.visibility, discarded.held),
        (pb::Visibility::Internal as i32, false)
    );
    assert!(!first_response_met(&mut app, &ticket.id).await);

    // The first is released: now it is the agent's public reply and meets the clock.
    let entry = app
        .client
        .release_held_reply(decide(&held.id, true, "r-1"))
        .await
        .expect("released")
        .into_inner()
        .reply
        .expect("the entry");
    assert_eq!(
        (entry.visibility, entry.held),
        (pb::Visibility::Public as i32, false)
    );
    let public = thread(&mut app, &ticket.id, pb::Visibility::Public).await;
    let ids: Vec<&str> = public.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [held.id.as_str()]);
    assert!(first_response_met(&mut app, &ticket.id).await);
    let again = app
        .client
        .release_held_reply(decide(&held.id, true, "r-1"))
        .await
        .expect("a keyed retry answers")
        .into_inner()
        .reply
        .expect("the entry");
    assert_eq!(again.id, held.id);
    let twice = app
        .client
        .release_held_reply(decide(&held.id, true, "r-2"))
        .await
        .expect_err("held no more");
    assert_eq!(twice.code(), Code::FailedPrecondition, "{twice:?}");
    let bad = app
        .client
        .release_held_reply(decide("", true, "r-3"))
        .await
        .expect_err("no reply id");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("reply_id"), "{bad:?}");
    let log = activity(&mut app, &ticket.id).await;
    let actions: Vec<&str> = log.iter().map(|l| l.action.as_str()).collect();
    assert!(
        actions.ends_with(&[
            "reply_held",
            "reply_held",
            "reply_discarded",
            "reply_released"
        ]),
        "{actions:?}"
    );

    // The handbook's list is replaced by the configured one.
    add(
        &mut app,
        &ticket.id,
        pb::ReplyAuthor::Agent,
        pb::Visibility::Public,
        "绝对没问题",
    )
    .await
    .expect("not on this list");
    app.stop().await;
}

#[tokio::test]
async fn on_postgres_a_forbidden_promise_can_be_held_for_a_supervisor() {
    promises_are_held(Backend::Postgres).await;
}

#[tokio::test]
async fn on_sqlite_a_forbidden_promise_can_be_held_for_a_supervisor() {
    promises_are_held(Backend::Sqlite).await;
}
