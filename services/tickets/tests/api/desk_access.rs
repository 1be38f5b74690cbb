//! The agent's desk with real tokens (a development OpenID provider on loopback): who
//! may read the thread and the log or copy someone on a ticket, whose name an entry
//! carries (the token's subject, never the body's), and that callers outside the desk
//! never see internal notes.

use std::time::Duration;

use aftersales_platform::{
    CancellationToken,
    auth::{AuthSettings, DevIssuer, roles},
};
use aftersales_protos::tickets::v1 as pb;
use tokio::net::TcpListener;
use tonic::{Code, Request};

use crate::{
    desk::{entry, watcher},
    helpers::{Backend, Options, spawn_with},
};

/// `message` with `token` as its bearer.
fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("a header value"),
    );
    request
}

async fn tokens_decide_who_may_and_who_wrote(backend: Backend) {
    // A development OpenID provider on loopback: the service fetches its keys as it would
    // the company's.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer_url = format!("http://{}", listener.local_addr().unwrap());
    let issuer = DevIssuer::generate(&issuer_url, DevIssuer::DEFAULT_AUDIENCE).unwrap();
    let stop = CancellationToken::new();
    tokio::spawn({
        let (issuer, stop) = (issuer.clone(), stop.clone());
        async move { issuer.serve(listener, stop).await }
    });
    let mut app = spawn_with(
        backend,
        Options {
            auth: Some(AuthSettings::oidc(issuer.settings())),
            ..Options::default()
        },
    )
    .await;
    let ttl = Duration::from_secs(600);
    let agent = issuer.mint("agent-7", &[roles::AGENT], ttl).unwrap();
    let analyst = issuer.mint("analyst-1", &[roles::ANALYST], ttl).unwrap();
    let storefront = issuer
        .mint("storefront", &[roles::STOREFRONT], ttl)
        .unwrap();

    let t = app
        .client
        .create_ticket(bearer(
            crate::helpers::create_request(pb::Channel::App, ""),
            &agent,
        ))
        .await
        .unwrap()
        .into_inner();
    let note = entry(
        &t.id,
        "",
        pb::ReplyAuthor::Agent,
        pb::Visibility::Internal,
        "internal",
    );
    let added = app
        .client
        .add_reply(bearer(note.clone(), &agent))
        .await
        .unwrap()
        .into_inner()
        .reply
        .unwrap();
    assert_eq!(
        (added.author_id.as_str(), added.recorded_by.as_str()),
        ("agent-7", "agent-7"),
        "the token's subject, not the body"
    );
    // Naming someone else as the author is acting for them, which an agent may not.
    let mut as_other = note;
    as_other.author_id = "agent-8".into();
    let err = app
        .client
        .add_reply(bearer(as_other, &agent))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let reply = entry(
        &t.id,
        "",
        pb::ReplyAuthor::Agent,
        pb::Visibility::Public,
        "public",
    );
    app.client.add_reply(bearer(reply, &agent)).await.unwrap();

    // The analyst reads the log but may not copy anyone on the ticket.
    let denied = app
        .client
        .add_watcher(bearer(
            pb::AddWatcherRequest {
                ticket_id: t.id.clone(),
                watcher: Some(watcher(pb::WatcherKind::Team, "legal")),
                ..Default::default()
            },
            &analyst,
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let log = app
        .client
        .list_activity(bearer(
            pb::ListActivityRequest {
                ticket_id: t.id.clone(),
                ..Default::default()
            },
            &analyst,
        ))
        .await
        .unwrap()
        .into_inner();
    let by: Vec<(&str, &str)> = log
        .entries
        .iter()
        .map(|a| (a.action.as_str(), a.actor_id.as_str()))
        .collect();
    assert_eq!(
        by,
        [
            ("create", "agent-7"),
            ("note", "agent-7"),
            ("reply", "agent-7")
        ]
    );
    let denied = app
        .client
        .list_thread(bearer(
            pb::ListThreadRequest {
                ticket_id: t.id.clone(),
                ..Default::default()
            },
            &analyst,
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    // The storefront shows the customer the conversation: never the desk's notes.
    let shown = app
        .client
        .list_thread(bearer(
            pb::ListThreadRequest {
                ticket_id: t.id.clone(),
                visibility: pb::Visibility::Internal as i32,
                ..Default::default()
            },
            &storefront,
        ))
        .await
        .unwrap()
        .into_inner();
    let bodies: Vec<&str> = shown.entries.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(bodies, ["public"]);
    app.stop().await;
    stop.cancel();
}

#[tokio::test]
async fn tokens_decide_who_may_and_who_wrote_on_postgres() {
    tokens_decide_who_may_and_who_wrote(Backend::Postgres).await;
}

#[tokio::test]
async fn tokens_decide_who_may_and_who_wrote_on_sqlite() {
    tokens_decide_who_may_and_who_wrote(Backend::Sqlite).await;
}
