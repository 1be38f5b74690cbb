//! The suite's one replay rule on tickets: a keyed command remembers the ids it produced,
//! and a retry with the same key answers with those records as they are now, also for
//! responses stored by versions that kept snapshots.

use aftersales_protos::tickets::v1 as pb;

use crate::helpers::{Backend, spawn};

fn reply(ticket_id: &str, key: &str) -> pb::AddReplyRequest {
    pb::AddReplyRequest {
        idempotency_key: key.into(),
        ticket_id: ticket_id.into(),
        author: pb::ReplyAuthor::Agent as i32,
        author_id: "agent-7".into(),
        body: "Please send a photo".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_retried_reply_adds_nothing_and_answers_with_the_reply_and_ticket_as_they_are_now() {
    let mut app = spawn(Backend::Postgres).await;
    let t = app.create(pb::Channel::Hotline, "").await;
    let first = app
        .client
        .add_reply(reply(&t.id, "reply-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        first.ticket.as_ref().unwrap().status,
        pb::TicketStatus::Open as i32
    );
    app.client
        .change_status(pb::ChangeStatusRequest {
            ticket_id: t.id.clone(),
            status: pb::TicketStatus::PendingCustomer as i32,
            reason: "waiting for the photo".into(),
            actor: None,
        })
        .await
        .unwrap();

    let again = app
        .client
        .add_reply(reply(&t.id, "reply-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.reply, first.reply, "the same reply");
    assert_eq!(
        again.ticket.unwrap().status,
        pb::TicketStatus::PendingCustomer as i32,
        "the ticket as it is now, not as it was"
    );
    assert_eq!(app.replies(&t.id).await, 1, "nothing added");
    app.stop().await;
}

#[tokio::test]
async fn responses_stored_as_snapshots_by_earlier_versions_still_replay() {
    let mut app = spawn(Backend::Postgres).await;
    let t = app.create(pb::Channel::Email, "legacy-create").await;
    let first = app
        .client
        .add_reply(reply(&t.id, "legacy-reply"))
        .await
        .unwrap()
        .into_inner();
    let reply_id = first.reply.as_ref().unwrap().id.clone();
    // What earlier versions stored: the ticket, and the pair `[reply, ticket]`.
    let stored = [
        (
            "tickets.CreateTicket",
            "legacy-create",
            format!(
                r#"{{"id":"{}","status":"new","subject":"Kettle leaks"}}"#,
                t.id
            ),
        ),
        (
            "tickets.AddReply",
            "legacy-reply",
            format!(
                r#"[{{"id":"{reply_id}","ticket_id":"{}","body":"x"}},{{"id":"{}","status":"open"}}]"#,
                t.id, t.id
            ),
        ),
    ];
    for (scope, key, json) in stored {
        let changed = app
            .execute(&format!(
                "UPDATE idempotency_keys SET response = convert_to('{json}', 'UTF8') \
                 WHERE scope = '{scope}' AND key = '{key}'"
            ))
            .await;
        assert_eq!(changed, 1, "{scope} {key}");
    }

    let again = app.create(pb::Channel::Email, "legacy-create").await;
    assert_eq!(again, app.ticket(&t.id).await);
    let replayed = app
        .client
        .add_reply(reply(&t.id, "legacy-reply"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.reply, first.reply);
    assert_eq!(replayed.ticket.unwrap().id, t.id);
    assert_eq!(app.replies(&t.id).await, 1);
    app.stop().await;
}
