//! Personal data in free text: phone numbers, e-mail addresses and ID numbers written into
//! a ticket, a reply or a reason are masked before anything stores them (every row of the
//! ticket, its replies, history, outbox and idempotency responses, read straight from the
//! database), events carry no free text, and care's `CustomerAnonymised` erases the text
//! of that customer's tickets once, however often it is delivered.

use std::time::Duration;

use aftersales_eventbus::{
    BusMessage,
    entity::{outbox, processed_event},
    envelope::{self, new_event},
};
use aftersales_platform::{
    idempotency::entity as idempotency,
    pii::{ANONYMISED_TEXT, contains_personal_data},
};
use aftersales_protos::{
    events::v1::{self as ev, event_envelope::Payload},
    tickets::v1 as pb,
};
use aftersales_tickets::store::entity::{activity, reply, ticket};
use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::helpers::{Backend, TestApp, create_request, spawn};

/// What a customer typed, in clear; none of it may be stored.
const CLEAR: [&str; 6] = [
    "13812345678",
    "1234-5678",
    "7946 0958",
    "wang.li@example.com",
    "11010519491231002X",
    "19491231",
];
const TEXT: &str = "call 138-1234-5678 or +44 20 7946 0958, mail wang.li@example.com, \
                    ID 11010519491231002X";
const MASKED: &str = "call 138****5678 or +** ** **** **58, mail w***@***, ID [ID number]";

fn assert_clean(what: &str, stored: &str) {
    for clear in CLEAR {
        assert!(
            !stored.contains(clear),
            "{what} holds {clear} in clear: {stored}"
        );
    }
}

/// Every row the database keeps about the ticket, every column, as text.
async fn stored_rows(app: &TestApp, ticket_id: &str) -> Vec<(&'static str, String)> {
    let db = app.core.db();
    let mut rows = Vec::new();
    for t in ticket::Entity::find_by_id(ticket_id).all(db).await.unwrap() {
        rows.push(("tickets", format!("{t:?}")));
    }
    let replies = reply::Entity::find()
        .filter(reply::Column::TicketId.eq(ticket_id))
        .all(db)
        .await
        .unwrap();
    for r in replies {
        rows.push(("ticket_replies", format!("{r:?}")));
    }
    let history = activity::Entity::find()
        .filter(activity::Column::TicketId.eq(ticket_id))
        .all(db)
        .await
        .unwrap();
    for a in history {
        rows.push(("ticket_activity", format!("{a:?}")));
    }
    let events = outbox::Entity::find()
        .filter(outbox::Column::SubjectId.eq(ticket_id))
        .all(db)
        .await
        .unwrap();
    for e in events {
        let decoded = envelope::decode(&e.payload).unwrap();
        rows.push((
            "outbox",
            format!("{e:?} {}", String::from_utf8_lossy(&e.payload)),
        ));
        rows.push(("outbox (decoded)", format!("{decoded:?}")));
    }
    for k in idempotency::Entity::find().all(db).await.unwrap() {
        let response = String::from_utf8_lossy(&k.response).into_owned();
        rows.push(("idempotency_keys", format!("{k:?} {response}")));
    }
    rows
}

async fn free_text_is_masked_before_it_is_stored(backend: Backend) {
    let mut app = spawn(backend).await;
    let mut request = create_request(pb::Channel::Hotline, "create-pii");
    request.subject = format!("Kettle leaks, {TEXT}");
    request.description = format!("Customer says: {TEXT}");
    request.evidence = vec!["s3://evidence/1.jpg".into(), format!("note {TEXT}")];
    let created = app
        .client
        .create_ticket(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.subject, format!("Kettle leaks, {MASKED}"));
    assert_eq!(created.description, format!("Customer says: {MASKED}"));
    assert_eq!(
        created.evidence,
        ["s3://evidence/1.jpg".to_owned(), format!("note {MASKED}")]
    );

    let replied = app
        .client
        .add_reply(pb::AddReplyRequest {
            idempotency_key: "reply-pii".into(),
            ticket_id: created.id.clone(),
            author: pb::ReplyAuthor::Customer as i32,
            author_id: "cust-1".into(),
            body: format!("again: {TEXT}"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replied.reply.unwrap().body, format!("again: {MASKED}"));
    app.client
        .escalate(pb::EscalateRequest {
            ticket_id: created.id.clone(),
            reason: format!("customer rang from {TEXT}"),
            ..Default::default()
        })
        .await
        .unwrap();
    app.client
        .change_status(pb::ChangeStatusRequest {
            ticket_id: created.id.clone(),
            status: pb::TicketStatus::Resolved as i32,
            reason: format!("called back on {TEXT}"),
            actor: None,
        })
        .await
        .unwrap();

    // A replay answers from what was stored.
    let replayed = app
        .client
        .create_ticket(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.id, created.id);
    assert_clean("the replayed answer", &format!("{replayed:?}"));
    assert_clean("GetTicket", &format!("{:?}", app.ticket(&created.id).await));

    let rows = stored_rows(&app, &created.id).await;
    for table in ["tickets", "ticket_replies", "ticket_activity", "outbox"] {
        assert!(rows.iter().any(|(t, _)| *t == table), "no {table} row");
    }
    for (table, row) in &rows {
        assert_clean(table, row);
    }
    // The masked forms are stored, so agents still read what was asked.
    let ticket_row = &rows.iter().find(|(t, _)| *t == "tickets").unwrap().1;
    assert!(ticket_row.contains("138****5678"), "{ticket_row}");

    // Events carry ids, not free text.
    let db = app.core.db();
    for e in outbox::Entity::find().all(db).await.unwrap() {
        match envelope::decode(&e.payload).unwrap().payload.unwrap() {
            Payload::TicketCreated(created) => {
                let t = created.ticket.unwrap();
                assert_eq!(t.id, e.subject_id);
                assert_eq!((t.subject, t.description), (String::new(), String::new()));
                assert!(t.evidence.is_empty());
            }
            Payload::TicketStatusChanged(c) => assert_eq!(c.reason, ""),
            Payload::TicketEscalated(c) => assert_eq!(c.reason, ""),
            _ => {}
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn free_text_is_masked_before_it_is_stored_on_postgres() {
    free_text_is_masked_before_it_is_stored(Backend::Postgres).await;
}

#[tokio::test]
async fn free_text_is_masked_before_it_is_stored_on_sqlite() {
    free_text_is_masked_before_it_is_stored(Backend::Sqlite).await;
}

fn customer_anonymised(customer_id: &str) -> BusMessage {
    let payload = Payload::CustomerAnonymised(ev::CustomerAnonymised {
        customer_id: customer_id.into(),
    });
    let event = new_event("care", "care", customer_id, payload, Utc::now());
    BusMessage {
        event_id: event.event_id,
        event_type: event.event_type,
        subject_id: event.subject_id,
        payload: event.payload,
        headers: Default::default(),
    }
}

async fn open(app: &mut TestApp, customer_id: &str, key: &str) -> pb::Ticket {
    let mut request = create_request(pb::Channel::Hotline, key);
    request.customer_id = customer_id.into();
    request.subject = "Mr Wang's kettle leaks".into();
    let t = app
        .client
        .create_ticket(request)
        .await
        .unwrap()
        .into_inner();
    app.client
        .add_reply(pb::AddReplyRequest {
            idempotency_key: format!("{key}-reply"),
            ticket_id: t.id.clone(),
            author: pb::ReplyAuthor::Customer as i32,
            author_id: customer_id.into(),
            body: "I live at 5 Garden Road".into(),
            // The reference names the customer too: erased with the text.
            attachments: vec![pb::Attachment {
                url: "s3://evidence/Wang-kitchen.jpg".into(),
                sha256: "ab".repeat(32),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    app.client
        .change_status(pb::ChangeStatusRequest {
            ticket_id: t.id.clone(),
            status: pb::TicketStatus::Resolved as i32,
            reason: "fixed for Mr Wang".into(),
            actor: None,
        })
        .await
        .unwrap();
    app.client
        .reopen_ticket(pb::ReopenTicketRequest {
            ticket_id: t.id.clone(),
            reason: "Mr Wang rang again".into(),
            actor: None,
        })
        .await
        .unwrap();
    t
}

async fn processed(app: &TestApp) -> usize {
    processed_event::Entity::find()
        .all(app.core.db())
        .await
        .unwrap()
        .len()
}

async fn anonymisation_erases_the_customers_ticket_text_once(backend: Backend) {
    let mut app = spawn(backend).await;
    let first = open(&mut app, "cust-gone", "gone-1").await;
    let second = open(&mut app, "cust-gone", "gone-2").await;
    let other = open(&mut app, "cust-stays", "stays-1").await;

    let event = customer_anonymised("cust-gone");
    app.bus
        .publish("care", &[event.clone(), event.clone()])
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.ticket(&second.id).await.subject != ANONYMISED_TEXT {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tickets were never anonymised"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give the duplicate delivery every chance to be applied.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(processed(&app).await, 1, "the event is applied once");

    for t in [&first, &second] {
        let got = app.ticket(&t.id).await;
        assert_eq!(got.subject, ANONYMISED_TEXT);
        assert_eq!(got.description, ANONYMISED_TEXT);
        assert!(got.evidence.is_empty());
        assert_eq!(got.customer_id, "cust-gone", "the ids stay");
        assert_eq!(got.status, pb::TicketStatus::Reopened as i32);
        for (table, row) in stored_rows(&app, &t.id).await {
            for said in ["Wang", "Garden Road", "Kettle", "kettle", "Water under"] {
                assert!(!row.contains(said), "{table} keeps {said:?}: {row}");
            }
        }
        let db = app.core.db();
        let replies = reply::Entity::find()
            .filter(reply::Column::TicketId.eq(t.id.as_str()))
            .all(db)
            .await
            .unwrap();
        assert!(!replies.is_empty());
        assert!(replies.iter().all(|r| r.body == ANONYMISED_TEXT));
        assert!(replies.iter().all(|r| r.attachments == "[]"));
    }
    let kept = app.ticket(&other.id).await;
    assert_eq!(
        kept.subject, "Mr Wang's kettle leaks",
        "another customer's text stays"
    );

    // The customer comes back: a new ticket keeps its text when the old event is
    // delivered again.
    let back = open(&mut app, "cust-gone", "back-1").await;
    app.bus.publish("care", &[event]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.ticket(&back.id).await.subject, "Mr Wang's kettle leaks");
    assert_eq!(processed(&app).await, 1);
    assert!(!contains_personal_data(ANONYMISED_TEXT));
    app.stop().await;
}

#[tokio::test]
async fn anonymisation_erases_the_customers_ticket_text_once_on_postgres() {
    anonymisation_erases_the_customers_ticket_text_once(Backend::Postgres).await;
}

#[tokio::test]
async fn anonymisation_erases_the_customers_ticket_text_once_on_sqlite() {
    anonymisation_erases_the_customers_ticket_text_once(Backend::Sqlite).await;
}
