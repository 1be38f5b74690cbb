//! Every event an endpoint subscribed to arrives signed and verifies; a partner is pushed
//! only its own events; a rotated secret verifies during its overlap; a replay sends the
//! same id again.

use std::time::Duration;

use aftersales_protos::webhooks::v1 as pb;

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(20);

async fn every_subscribed_event_is_delivered_and_verified(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = WebhookReceiver::start(&[]).await.unwrap();
    let (endpoint, secret) = app
        .endpoint(
            "",
            &receiver.url("/internal"),
            &["tickets.TicketCreated", "dispatch.JobOffered"],
        )
        .await;
    receiver.set_secrets(&[secret]).await.unwrap();
    let mut ids = app
        .publish("tickets", (0..20).map(|_| ticket_created()).collect())
        .await;
    ids.extend(
        app.publish("dispatch", (0..20).map(|n| offered("p1", n)).collect())
            .await,
    );
    // Not subscribed: never sent.
    app.publish(
        "returns",
        vec![
            aftersales_protos::events::v1::event_envelope::Payload::ReturnRequested(
                Default::default(),
            ),
        ],
    )
    .await;
    let received = receiver.wait_for(40, WAIT).await.unwrap();
    let mut got: Vec<_> = received.verified.iter().map(|d| d.id.clone()).collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids, "every event once, verified");
    assert_eq!(received.rejected, 0);
    assert_eq!(received.duplicates, 0);
    assert!(
        received
            .verified
            .iter()
            .all(|d| d.event_type == "tickets.TicketCreated"
                || d.event_type == "dispatch.JobOffered")
    );

    let ok = eventually(WAIT, || async {
        let log = app.deliveries(&endpoint.id, "").await;
        log.len() == 40
            && log.iter().all(|d| {
                d.state == pb::DeliveryState::Delivered as i32
                    && d.attempts.len() == 1
                    && d.attempts[0].status_code == 204
            })
    })
    .await;
    assert!(ok, "the log shows one successful attempt per delivery");
    let metrics = aftersales_platform::metrics::render();
    assert!(
        metrics.contains("webhook_delivery_attempts_total{outcome=\"2xx\"}"),
        "attempts are counted by outcome"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.deliveries().await.unwrap().verified.len(), 40);
    app.stop().await;
}
on_both!(every_subscribed_event_is_delivered_and_verified);

async fn a_partner_receives_only_its_own_events(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = WebhookReceiver::start(&[]).await.unwrap();
    let (one, secret_one) = app
        .endpoint("p1", &receiver.url("/p1"), &["dispatch.JobOffered"])
        .await;
    let (_two, secret_two) = app
        .endpoint("p2", &receiver.url("/p2"), &["dispatch.JobOffered"])
        .await;
    receiver
        .set_secrets(&[secret_one, secret_two])
        .await
        .unwrap();
    let for_one = app
        .publish("dispatch", (0..5).map(|n| offered("p1", n)).collect())
        .await;
    let for_two = app
        .publish("dispatch", (5..8).map(|n| offered("p2", n)).collect())
        .await;
    let received = receiver.wait_for(8, WAIT).await.unwrap();
    for d in &received.verified {
        let expected = if for_one.contains(&d.id) {
            "/p1"
        } else {
            assert!(
                for_two.contains(&d.id),
                "an event nobody published: {}",
                d.id
            );
            "/p2"
        };
        assert_eq!(d.path, expected, "{} went to the wrong partner", d.id);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.deliveries().await.unwrap().verified.len(), 8);
    // Another partner's endpoint and log are not there for it.
    let err = app
        .client
        .clone()
        .get_endpoint(pb::GetEndpointRequest {
            partner_id: "p2".into(),
            endpoint_id: one.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = app
        .client
        .clone()
        .list_deliveries(pb::ListDeliveriesRequest {
            partner_id: "p2".into(),
            endpoint_id: one.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    app.stop().await;
}
on_both!(a_partner_receives_only_its_own_events);

async fn a_rotated_secret_verifies_during_the_overlap(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = WebhookReceiver::start(&[]).await.unwrap();
    let (endpoint, old) = app
        .endpoint("", &receiver.url("/rotating"), &["tickets.TicketCreated"])
        .await;
    let rotated = app
        .client
        .clone()
        .rotate_endpoint_secret(pb::RotateEndpointSecretRequest {
            partner_id: String::new(),
            endpoint_id: endpoint.id.clone(),
            overlap_seconds: 3,
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let new = rotated.secret;
    assert_ne!(new, old);
    assert!(new.starts_with("whsec_"));
    // A receiver that still knows only the old secret verifies; so does one that knows
    // only the new.
    receiver
        .set_secrets(std::slice::from_ref(&old))
        .await
        .unwrap();
    app.publish("tickets", vec![ticket_created()]).await;
    receiver.wait_for(1, WAIT).await.unwrap();
    receiver
        .set_secrets(std::slice::from_ref(&new))
        .await
        .unwrap();
    app.publish("tickets", vec![ticket_created()]).await;
    receiver.wait_for(2, WAIT).await.unwrap();
    // After the overlap the old secret no longer signs.
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    receiver
        .set_secrets(std::slice::from_ref(&old))
        .await
        .unwrap();
    app.publish("tickets", vec![ticket_created()]).await;
    let ok = eventually(WAIT, || async {
        receiver.deliveries().await.unwrap().rejected >= 1
    })
    .await;
    assert!(
        ok,
        "a delivery after the overlap is not signed with the old secret"
    );
    assert_eq!(receiver.deliveries().await.unwrap().verified.len(), 2);
    // The receiver learns the new secret; the retry then verifies.
    receiver.set_secrets(&[new]).await.unwrap();
    receiver.wait_for(3, WAIT).await.unwrap();
    app.stop().await;
}
on_both!(a_rotated_secret_verifies_during_the_overlap);

async fn a_replay_sends_the_same_id_again(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = WebhookReceiver::start(&[]).await.unwrap();
    let (endpoint, secret) = app
        .endpoint("p1", &receiver.url("/replay"), &["dispatch.JobOffered"])
        .await;
    receiver.set_secrets(&[secret]).await.unwrap();
    let ids = app.publish("dispatch", vec![offered("p1", 1)]).await;
    receiver.wait_for(1, WAIT).await.unwrap();
    let replayed = app
        .client
        .clone()
        .replay_delivery(pb::ReplayDeliveryRequest {
            partner_id: "p1".into(),
            endpoint_id: endpoint.id.clone(),
            delivery_id: ids[0].clone(),
            idempotency_key: "replay-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.id, ids[0]);
    let ok = eventually(WAIT, || async {
        receiver.deliveries().await.unwrap().duplicates == 1
    })
    .await;
    assert!(ok, "the replay arrives with the same webhook-id");
    let ok = eventually(WAIT, || async {
        let log = app.deliveries(&endpoint.id, "p1").await;
        log.len() == 1 && log[0].attempts.len() == 2
    })
    .await;
    assert!(ok, "the log holds both attempts");
    // The same key again does nothing new.
    app.client
        .clone()
        .replay_delivery(pb::ReplayDeliveryRequest {
            partner_id: "p1".into(),
            endpoint_id: endpoint.id.clone(),
            delivery_id: ids[0].clone(),
            idempotency_key: "replay-1".into(),
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.deliveries().await.unwrap().duplicates, 1);
    app.stop().await;
}
on_both!(a_replay_sends_the_same_id_again);
