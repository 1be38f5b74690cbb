//! At least once, with care: a receiver down for 30 s gets everything afterwards, each id
//! once; an endpoint failing for longer than allowed is disabled with one event; a paused
//! endpoint's deliveries wait for it.

use std::time::Duration;

use aftersales_protos::{
    events::v1::event_envelope::Payload,
    webhooks::v1::{self as pb},
};

use crate::helpers::*;

async fn a_receiver_down_for_30_s_gets_everything_afterwards_once(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = WebhookReceiver::start(&[]).await.unwrap();
    let (endpoint, secret) = app
        .endpoint("", &receiver.url("/down"), &["tickets.TicketCreated"])
        .await;
    receiver.set_secrets(&[secret]).await.unwrap();
    receiver.down().await.unwrap();
    let ids = app
        .publish("tickets", (0..30).map(|_| ticket_created()).collect())
        .await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let log = app.deliveries(&endpoint.id, "").await;
    assert_eq!(log.len(), 30);
    assert!(log.iter().all(|d| {
        d.state == pb::DeliveryState::Pending as i32
            && !d.attempts.is_empty()
            && d.attempts
                .iter()
                .all(|a| a.status_code == 0 && !a.error.is_empty())
    }));
    receiver.up().await.unwrap();
    let received = receiver
        .wait_for(30, Duration::from_secs(20))
        .await
        .unwrap();
    let mut got: Vec<_> = received.verified.iter().map(|d| d.id.clone()).collect();
    got.sort();
    let mut ids = ids;
    ids.sort();
    assert_eq!(got, ids);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = receiver.deliveries().await.unwrap();
    assert_eq!(after.duplicates, 0, "each id processed once");
    assert_eq!(after.verified.len(), 30);
    let ok = eventually(Duration::from_secs(10), || async {
        app.deliveries(&endpoint.id, "")
            .await
            .iter()
            .all(|d| d.state == pb::DeliveryState::Delivered as i32)
    })
    .await;
    assert!(ok);
    // The endpoint no longer counts as failing.
    let current = app
        .client
        .clone()
        .get_endpoint(pb::GetEndpointRequest {
            partner_id: String::new(),
            endpoint_id: endpoint.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(current.failing_since.is_none());
    app.stop().await;
}
on_both!(a_receiver_down_for_30_s_gets_everything_afterwards_once);

async fn an_endpoint_failing_too_long_is_disabled_once(backend: Backend) {
    let app = spawn_with(backend, |config| {
        quick_retries(config);
        config.policy.disable_after = chrono::Duration::seconds(2);
    })
    .await;
    let receiver = WebhookReceiver::start(&[]).await.unwrap();
    let (endpoint, secret) = app
        .endpoint("p9", &receiver.url("/failing"), &["dispatch.JobOffered"])
        .await;
    receiver.set_secrets(&[secret]).await.unwrap();
    receiver.set_status(500).await.unwrap();
    app.publish("dispatch", (0..5).map(|n| offered("p9", n)).collect())
        .await;
    let ok = eventually(Duration::from_secs(20), || async {
        app.client
            .clone()
            .get_endpoint(pb::GetEndpointRequest {
                partner_id: "p9".into(),
                endpoint_id: endpoint.id.clone(),
            })
            .await
            .is_ok_and(|e| e.into_inner().state == pb::EndpointState::Disabled as i32)
    })
    .await;
    assert!(ok, "the endpoint is disabled");
    let ok = eventually(Duration::from_secs(10), || async {
        app.deliveries(&endpoint.id, "p9")
            .await
            .iter()
            .all(|d| d.state == pb::DeliveryState::Failed as i32)
    })
    .await;
    assert!(ok, "its pending deliveries are given up");
    // Exactly one EndpointDisabled, published through the outbox.
    let ok = eventually(Duration::from_secs(10), || async {
        count_disabled(&app, &endpoint.id).await == 1
    })
    .await;
    assert!(ok, "EndpointDisabled is published");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(count_disabled(&app, &endpoint.id).await, 1);
    // Enabling it again clears the failure record.
    let enabled = app
        .client
        .clone()
        .update_endpoint(pb::UpdateEndpointRequest {
            partner_id: "p9".into(),
            endpoint_id: endpoint.id.clone(),
            state: pb::EndpointState::Enabled as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(enabled.state, pb::EndpointState::Enabled as i32);
    assert!(enabled.failing_since.is_none() && enabled.disabled_reason.is_empty());
    app.stop().await;
}
on_both!(an_endpoint_failing_too_long_is_disabled_once);

/// `EndpointDisabled` events about `endpoint_id` in the service's outbox.
async fn count_disabled(app: &TestApp, endpoint_id: &str) -> usize {
    use sea_orm::{ConnectionTrait, Statement};
    let db = app.core.db();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT payload FROM outbox WHERE event_type = 'webhooks.EndpointDisabled'",
        ))
        .await
        .unwrap();
    rows.iter()
        .filter_map(|row| row.try_get::<Vec<u8>>("", "payload").ok())
        .filter_map(|bytes| aftersales_eventbus::envelope::decode(&bytes).ok())
        .filter(|e| {
            matches!(&e.payload, Some(Payload::EndpointDisabled(d)) if d.endpoint_id == endpoint_id)
        })
        .count()
}

async fn a_paused_endpoints_deliveries_wait_for_it(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = WebhookReceiver::start(&[]).await.unwrap();
    let (endpoint, secret) = app
        .endpoint("", &receiver.url("/paused"), &["tickets.TicketCreated"])
        .await;
    receiver.set_secrets(&[secret]).await.unwrap();
    receiver.down().await.unwrap();
    app.publish("tickets", (0..3).map(|_| ticket_created()).collect())
        .await;
    let ok = eventually(Duration::from_secs(10), || async {
        app.deliveries(&endpoint.id, "")
            .await
            .iter()
            .filter(|d| !d.attempts.is_empty())
            .count()
            == 3
    })
    .await;
    assert!(ok, "first attempts failed");
    let pause = |state: pb::EndpointState| pb::UpdateEndpointRequest {
        partner_id: String::new(),
        endpoint_id: endpoint.id.clone(),
        state: state as i32,
        ..Default::default()
    };
    app.client
        .clone()
        .update_endpoint(pause(pb::EndpointState::Paused))
        .await
        .unwrap();
    receiver.up().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        receiver.deliveries().await.unwrap().verified.len(),
        0,
        "paused"
    );
    app.client
        .clone()
        .update_endpoint(pause(pb::EndpointState::Enabled))
        .await
        .unwrap();
    receiver.wait_for(3, Duration::from_secs(10)).await.unwrap();
    app.stop().await;
}
on_both!(a_paused_endpoints_deliveries_wait_for_it);

/// The process that committed a delivery died before its first attempt: the schedule's
/// rebuild makes it, once the first attempt's grace has passed and not before.
async fn a_first_attempt_its_process_never_made_is_made_by_the_schedule(backend: Backend) {
    use sea_orm::TransactionTrait;
    let app = spawn_with_settings(
        backend,
        |config| {
            quick_retries(config);
            config.policy.first_attempt_grace = chrono::Duration::seconds(2);
        },
        |settings| settings.worker.reconcile_every = Duration::from_millis(300),
    )
    .await;
    let receiver = WebhookReceiver::start(&[]).await.unwrap();
    let (_endpoint, secret) = app
        .endpoint("", &receiver.url("/orphan"), &["tickets.TicketCreated"])
        .await;
    receiver.set_secrets(&[secret]).await.unwrap();
    let event = aftersales_eventbus::envelope::new_event(
        "tickets",
        "tickets",
        "subject",
        ticket_created(),
        chrono::Utc::now(),
    );
    let envelope = aftersales_eventbus::envelope::decode(&event.payload).unwrap();
    // The intake's transaction, committed; its first attempts never handed on.
    let txn = app.core.db().begin().await.unwrap();
    let subscribers = app.core.subscribers(&txn).await.unwrap();
    let intaken = app.core.intake(&envelope, &subscribers).unwrap();
    assert_eq!(intaken.first_attempts.len(), 1);
    app.core
        .insert_intaken(&txn, intaken.deliveries)
        .await
        .unwrap();
    txn.commit().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(
        receiver.deliveries().await.unwrap().verified.is_empty(),
        "left to its process for the grace"
    );
    let received = receiver.wait_for(1, Duration::from_secs(10)).await.unwrap();
    assert_eq!(received.verified[0].id, envelope.id);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.deliveries().await.unwrap().duplicates, 0);
    app.stop().await;
}
on_both!(a_first_attempt_its_process_never_made_is_made_by_the_schedule);
