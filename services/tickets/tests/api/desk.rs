//! The agent's desk on a ticket: its thread (public replies and internal notes with
//! attachments, read back in order a page at a time), its activity log (who changed what,
//! before and after), and its watchers (named by every event of the ticket); bad input
//! named by field. `desk_access` checks the same with real tokens.

use aftersales_platform::status::field_violations;
use aftersales_protos::{events::v1::event_envelope::Payload, tickets::v1 as pb};
use tonic::Code;

use crate::helpers::{Backend, TestApp, spawn};

const DIGEST: &str = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";

pub fn entry(
    ticket_id: &str,
    key: &str,
    author: pb::ReplyAuthor,
    visibility: pb::Visibility,
    body: &str,
) -> pb::AddReplyRequest {
    pb::AddReplyRequest {
        idempotency_key: key.into(),
        ticket_id: ticket_id.into(),
        author: author as i32,
        author_id: String::new(),
        body: body.into(),
        visibility: visibility as i32,
        attachments: Vec::new(),
    }
}

pub fn watcher(kind: pb::WatcherKind, id: &str) -> pb::Watcher {
    pb::Watcher {
        kind: kind as i32,
        id: id.into(),
    }
}

async fn add_watcher(app: &mut TestApp, ticket_id: &str, w: pb::Watcher) -> pb::Ticket {
    app.client
        .add_watcher(pb::AddWatcherRequest {
            ticket_id: ticket_id.into(),
            watcher: Some(w),
            ..Default::default()
        })
        .await
        .expect("watcher added")
        .into_inner()
}

/// Every page of the thread, `page_size` at a time.
async fn thread(
    app: &mut TestApp,
    ticket_id: &str,
    visibility: pb::Visibility,
    page_size: u32,
) -> (Vec<pb::Reply>, usize) {
    let mut request = pb::ListThreadRequest {
        ticket_id: ticket_id.into(),
        visibility: visibility as i32,
        page_size,
        page_token: String::new(),
    };
    let (mut entries, mut pages) = (Vec::new(), 0);
    loop {
        let page = app
            .client
            .list_thread(request.clone())
            .await
            .expect("a page of the thread")
            .into_inner();
        pages += 1;
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            return (entries, pages);
        }
        request.page_token = page.next_page_token;
    }
}

/// Every line of the activity log, `page_size` at a time.
pub async fn activity(
    app: &mut TestApp,
    ticket_id: &str,
    page_size: u32,
) -> Vec<pb::ActivityEntry> {
    let mut request = pb::ListActivityRequest {
        ticket_id: ticket_id.into(),
        page_size,
        page_token: String::new(),
    };
    let mut lines = Vec::new();
    loop {
        let page = app
            .client
            .list_activity(request.clone())
            .await
            .expect("a page of the log")
            .into_inner();
        lines.extend(page.entries);
        if page.next_page_token.is_empty() {
            return lines;
        }
        request.page_token = page.next_page_token;
    }
}

pub fn change(field: &str, before: &str, after: &str) -> pb::FieldChange {
    pb::FieldChange {
        field: field.into(),
        before: before.into(),
        after: after.into(),
    }
}

async fn thread_in_order_with_notes(backend: Backend) {
    let mut app = spawn(backend).await;
    let t = app.create(pb::Channel::Email, "").await;
    use pb::ReplyAuthor::{Agent, Customer};
    use pb::Visibility::{Internal, Public, Unspecified};

    // A note first: it answers no one, so the ticket stays new and its clock runs.
    let mut note = entry(&t.id, "n1", Agent, Internal, "Looks like batch B7; ask QA");
    note.author_id = "agent-7".into();
    note.attachments = vec![pb::Attachment {
        url: "s3://evidence/qa-report.pdf".into(),
        sha256: DIGEST.into(),
    }];
    let added = app
        .client
        .add_reply(note.clone())
        .await
        .unwrap()
        .into_inner();
    let ticket = added.ticket.unwrap();
    assert_eq!(ticket.status, pb::TicketStatus::New as i32);
    let sla = app.sla(&t.id).await;
    let first = crate::helpers::clock(&sla, pb::ClockKind::FirstResponse);
    assert_eq!(
        first.state,
        pb::ClockState::Running as i32,
        "a note is no response"
    );
    let stored_note = added.reply.unwrap();
    assert_eq!(
        (stored_note.visibility, stored_note.author_id.as_str()),
        (Internal as i32, "agent-7")
    );
    assert_eq!(stored_note.attachments[0].sha256, DIGEST.to_lowercase());
    // A retry answers with the same note and adds none.
    let again = app.client.add_reply(note).await.unwrap().into_inner();
    assert_eq!(again.reply.unwrap().id, stored_note.id);

    let mut reply = entry(&t.id, "r1", Agent, Public, "We are sending a new kettle");
    reply.author_id = "agent-7".into();
    let replied = app.client.add_reply(reply).await.unwrap().into_inner();
    assert_eq!(
        replied.ticket.unwrap().status,
        pb::TicketStatus::Open as i32,
        "a public reply answers"
    );
    // A customer's reply is the ticket's customer's, whoever types it in.
    let customer = entry(&t.id, "", Customer, Unspecified, "Thanks, call 13812345678");
    let from_customer = app.client.add_reply(customer).await.unwrap().into_inner();
    let from_customer = from_customer.reply.unwrap();
    assert_eq!(
        (from_customer.author_id.as_str(), from_customer.visibility),
        ("cust-1", Public as i32)
    );
    assert_eq!(from_customer.body, "Thanks, call 138****5678", "masked");
    let mut last = entry(&t.id, "", Agent, Internal, "Replacement shipped");
    last.author_id = "agent-8".into();
    app.client.add_reply(last).await.unwrap();

    let (all, pages) = thread(&mut app, &t.id, Unspecified, 3).await;
    let bodies: Vec<(&str, i32)> = all
        .iter()
        .map(|r| (r.body.as_str(), r.visibility))
        .collect();
    assert_eq!(
        bodies,
        [
            ("Looks like batch B7; ask QA", Internal as i32),
            ("We are sending a new kettle", Public as i32),
            ("Thanks, call 138****5678", Public as i32),
            ("Replacement shipped", Internal as i32),
        ]
    );
    assert_eq!(pages, 2);
    let (one_by_one, pages) = thread(&mut app, &t.id, Unspecified, 1).await;
    assert_eq!(one_by_one, all);
    assert_eq!(pages, 4);
    let (public, _) = thread(&mut app, &t.id, Public, 0).await;
    assert_eq!(public, all[1..3].to_vec());
    let (notes, _) = thread(&mut app, &t.id, Internal, 0).await;
    assert_eq!(notes, [all[0].clone(), all[3].clone()]);
    app.stop().await;
}

#[tokio::test]
async fn thread_in_order_with_notes_on_postgres() {
    thread_in_order_with_notes(Backend::Postgres).await;
}

#[tokio::test]
async fn thread_in_order_with_notes_on_sqlite() {
    thread_in_order_with_notes(Backend::Sqlite).await;
}

async fn activity_log_and_watchers(backend: Backend) {
    let mut app = spawn(backend).await;
    let t = app.create(pb::Channel::Hotline, "").await;
    let actor = |id: &str, role| {
        Some(aftersales_protos::common::v1::Actor {
            id: id.into(),
            role: role as i32,
        })
    };
    use aftersales_protos::common::v1::ActorRole;
    app.client
        .upsert_support_group(crate::team_support::group("orders", &[], false))
        .await
        .unwrap();
    app.client
        .upsert_agent(crate::team_support::agent("agent-7", &["orders"], &[], 5))
        .await
        .unwrap();
    app.client
        .assign(pb::AssignRequest {
            ticket_id: t.id.clone(),
            assignee: "agent-7".into(),
            actor: actor("sup-1", ActorRole::Supervisor),
            group_id: "orders".into(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap();
    let legal = watcher(pb::WatcherKind::Team, "legal");
    let product = watcher(pb::WatcherKind::Team, "product");
    let agent = watcher(pb::WatcherKind::User, "agent-9");
    add_watcher(&mut app, &t.id, legal.clone()).await;
    add_watcher(&mut app, &t.id, agent.clone()).await;
    add_watcher(&mut app, &t.id, product.clone()).await;
    let twice = add_watcher(&mut app, &t.id, legal.clone()).await;
    assert_eq!(
        twice.watchers,
        [agent.clone(), legal.clone(), product.clone()],
        "users before teams, each once"
    );
    let removed = app
        .client
        .remove_watcher(pb::RemoveWatcherRequest {
            idempotency_key: "rm-agent-9".into(),
            ticket_id: t.id.clone(),
            watcher: Some(agent.clone()),
            actor: actor("sup-1", ActorRole::Supervisor),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.watchers, [legal.clone(), product.clone()]);
    assert_eq!(app.ticket(&t.id).await.watchers, removed.watchers);

    app.client
        .set_severity(pb::SetSeverityRequest {
            ticket_id: t.id.clone(),
            severity: pb::Severity::Urgent as i32,
            reason: "smoke from the base".into(),
            actor: actor("sup-1", ActorRole::Supervisor),
        })
        .await
        .unwrap();

    // Every event from now on names the watchers.
    let envelopes = app.envelopes(&t.id).await;
    let escalated = envelopes
        .iter()
        .find_map(|e| match &e.payload {
            Some(Payload::TicketEscalated(x)) => Some(x.clone()),
            _ => None,
        })
        .expect("the urgent policy escalates");
    assert_eq!(escalated.watchers, [legal.clone(), product.clone()]);
    let Some(Payload::TicketCreated(created)) = &envelopes[0].payload else {
        panic!("TicketCreated first");
    };
    assert!(created.ticket.as_ref().unwrap().watchers.is_empty());

    let log = activity(&mut app, &t.id, 2).await;
    let lines: Vec<(&str, &str, &str, Vec<pb::FieldChange>)> = log
        .iter()
        .map(|a| {
            (
                a.action.as_str(),
                a.actor_id.as_str(),
                a.detail.as_str(),
                a.changes.clone(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("create", "anonymous", "", vec![]),
            (
                "assign",
                "sup-1",
                "group orders, agent agent-7",
                vec![
                    change("group", "", "orders"),
                    change("assignee", "", "agent-7")
                ]
            ),
            (
                "add_watcher",
                "anonymous",
                "team:legal",
                vec![change("watchers", "", "team:legal")]
            ),
            (
                "add_watcher",
                "anonymous",
                "user:agent-9",
                vec![change("watchers", "team:legal", "user:agent-9,team:legal")]
            ),
            (
                "add_watcher",
                "anonymous",
                "team:product",
                vec![change(
                    "watchers",
                    "user:agent-9,team:legal",
                    "user:agent-9,team:legal,team:product"
                )]
            ),
            ("add_watcher", "anonymous", "team:legal", vec![]),
            (
                "remove_watcher",
                "sup-1",
                "user:agent-9",
                vec![change(
                    "watchers",
                    "user:agent-9,team:legal,team:product",
                    "team:legal,team:product"
                )]
            ),
            (
                "set_severity",
                "sup-1",
                "urgent: smoke from the base",
                vec![
                    change("severity", "general", "urgent"),
                    change("escalation_level", "agent", "supervisor"),
                    change("sla_policy", "default@1", "urgent@3"),
                ]
            ),
        ]
    );
    assert_eq!(log[1].actor_role, "supervisor");
    let at = |a: &pb::ActivityEntry| a.at.map(|t| (t.seconds, t.nanos));
    assert!(
        log.windows(2)
            .all(|w| w[0].seq < w[1].seq && at(&w[0]) <= at(&w[1]))
    );
    assert_eq!(activity(&mut app, &t.id, 0).await, log, "one page or many");
    app.stop().await;
}

#[tokio::test]
async fn activity_log_and_watchers_on_postgres() {
    activity_log_and_watchers(Backend::Postgres).await;
}

#[tokio::test]
async fn activity_log_and_watchers_on_sqlite() {
    activity_log_and_watchers(Backend::Sqlite).await;
}

async fn bad_input_is_named(backend: Backend) {
    let mut app = spawn(backend).await;
    let t = app.create(pb::Channel::App, "").await;
    let fields = |err: tonic::Status| -> Vec<String> {
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        field_violations(&err)
            .into_iter()
            .map(|v| v.field)
            .collect()
    };
    let mut bad = entry(
        &t.id,
        "",
        pb::ReplyAuthor::Customer,
        pb::Visibility::Internal,
        "note",
    );
    bad.attachments = vec![
        pb::Attachment {
            url: "s3://ok/1.jpg".into(),
            sha256: DIGEST.into(),
        },
        pb::Attachment {
            url: "file:///etc/passwd".into(),
            sha256: "abc".into(),
        },
    ];
    let err = app.client.add_reply(bad).await.unwrap_err();
    assert_eq!(
        fields(err),
        ["visibility", "attachments[1].url", "attachments[1].sha256"]
    );
    let mut not_theirs = entry(
        &t.id,
        "",
        pb::ReplyAuthor::Customer,
        pb::Visibility::Public,
        "hi",
    );
    not_theirs.author_id = "cust-2".into();
    let err = app.client.add_reply(not_theirs).await.unwrap_err();
    assert_eq!(fields(err), ["author_id"]);

    let err = app
        .client
        .add_watcher(pb::AddWatcherRequest {
            ticket_id: t.id.clone(),
            watcher: Some(pb::Watcher {
                kind: 0,
                id: "li.wang@example.com".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["watcher.kind", "watcher.id"]);
    let err = app
        .client
        .remove_watcher(pb::RemoveWatcherRequest {
            ticket_id: t.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["watcher"]);
    let err = app
        .client
        .list_thread(pb::ListThreadRequest {
            ticket_id: t.id.clone(),
            page_token: "garbage!".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["page_token"]);
    let err = app
        .client
        .list_activity(pb::ListActivityRequest {
            ticket_id: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["ticket_id"]);
    let err = app
        .client
        .list_thread(pb::ListThreadRequest {
            ticket_id: "no-such-ticket".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let (entries, _) = thread(&mut app, &t.id, pb::Visibility::Unspecified, 0).await;
    assert!(entries.is_empty(), "nothing refused was stored");
    app.stop().await;
}

#[tokio::test]
async fn bad_desk_input_is_named_on_postgres() {
    bad_input_is_named(Backend::Postgres).await;
}

#[tokio::test]
async fn bad_desk_input_is_named_on_sqlite() {
    bad_input_is_named(Backend::Sqlite).await;
}
