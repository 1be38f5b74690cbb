//! Carrier tracking webhooks: events signed with their sending time reach returns, anything
//! else is refused before it is read, a captured request stops working five minutes after
//! it was signed, and a replay within that window is recorded once.

use aftersales_gateway::carrier::{CarrierSecrets, sign};
use aftersales_protos::returns::v1::{self as rpb, return_service_client::ReturnServiceClient};
use tonic::transport::Channel;

use crate::helpers::{Answer, Gateway, booked_return, suite};

const SECRET: &str = "simulated-carrier-secret-0123";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A POST to the carrier's webhook with the headers given (`None` leaves one out).
async fn post(
    gw: &Gateway,
    carrier: &str,
    timestamp: Option<String>,
    signature: Option<String>,
    body: String,
) -> Answer {
    let mut request = gw
        .http
        .client
        .post(gw.http.url(&format!("/v1/carriers/{carrier}/tracking")))
        .header("content-type", "application/json")
        .body(body);
    if let Some(timestamp) = timestamp {
        request = request.header("X-Carrier-Timestamp", timestamp);
    }
    if let Some(signature) = signature {
        request = request.header("X-Signature", signature);
    }
    gw.http.send(request).await
}

/// `body` signed now (or at `at`) with the simulated carrier's secret.
async fn signed(gw: &Gateway, body: &str, at: i64) -> Answer {
    post(
        gw,
        "simulated",
        Some(at.to_string()),
        Some(sign(SECRET.as_bytes(), at, body.as_bytes())),
        body.to_owned(),
    )
    .await
}

async fn the_return(returns: &mut ReturnServiceClient<Channel>, id: &str) -> rpb::Return {
    returns
        .get_return(rpb::GetReturnRequest { id: id.into() })
        .await
        .expect("the return")
        .into_inner()
}

fn event(tracking: &str, n: u32, kind: &str, detail: &str) -> String {
    serde_json::json!({
        "event_id": format!("{tracking}-{n}"),
        "tracking_number": tracking,
        "kind": kind,
        "detail": detail,
    })
    .to_string()
}

#[tokio::test]
async fn signed_events_reach_returns_and_unsigned_ones_are_refused() {
    let mut s = suite(true).await;
    let gw = s
        .gateway(|g| {
            g.carriers = CarrierSecrets::parse(&format!("simulated={SECRET}")).unwrap();
        })
        .await;
    let mut returns = s.returns.clone().expect("returns runs");
    let (return_id, tracking) = booked_return(&mut returns).await;
    let body = event(&tracking, 1, "picked_up", "collected from the customer");

    let at = now();
    let ts = Some(at.to_string());
    let good = sign(SECRET.as_bytes(), at, body.as_bytes());
    let refused = [
        post(&gw, "simulated", ts.clone(), None, body.clone()).await,
        post(
            &gw,
            "simulated",
            ts.clone(),
            Some("sha256=00".into()),
            body.clone(),
        )
        .await,
        post(
            &gw,
            "simulated",
            ts.clone(),
            Some(sign(b"another-secret-0123456", at, body.as_bytes())),
            body.clone(),
        )
        .await,
        post(&gw, "pigeon", ts.clone(), Some(good.clone()), body.clone()).await,
        post(
            &gw,
            "simulated",
            ts.clone(),
            Some(good.clone()),
            body.replace("picked_up", "in_transit"),
        )
        .await,
        // The signature is right, the timestamp missing or another than the signed one.
        post(&gw, "simulated", None, Some(good.clone()), body.clone()).await,
        post(
            &gw,
            "simulated",
            Some((at - 1).to_string()),
            Some(good.clone()),
            body.clone(),
        )
        .await,
    ];
    for answer in refused {
        assert_eq!(answer.status, 401, "{answer:?}");
        assert_eq!(answer.body["code"], "unauthenticated");
    }
    assert_eq!(
        the_return(&mut returns, &return_id).await.status,
        rpb::ReturnStatus::PickupBooked as i32
    );

    let accepted = post(&gw, "simulated", ts, Some(good), body).await;
    assert_eq!(accepted.status, 200, "{accepted:?}");
    assert_eq!(accepted.body["carrier"], "simulated");
    assert_eq!(
        the_return(&mut returns, &return_id).await.status,
        rpb::ReturnStatus::InTransit as i32
    );

    // Signed but unreadable: 400 naming the field; signed but unknown shipment: 404.
    let bad = r#"{"event_id":"e9","tracking_number":"SIM1","kind":"teleported"}"#;
    let answer = signed(&gw, bad, now()).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.violated_field(), "kind");
    let unknown = r#"{"event_id":"e9","tracking_number":"SIM-NOPE","kind":"in_transit"}"#;
    let answer = signed(&gw, unknown, now()).await;
    assert_eq!(answer.status, 404, "{answer:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_captured_webhook_stops_working_after_five_minutes_and_a_replay_is_recorded_once() {
    let mut s = suite(true).await;
    let gw = s
        .gateway(|g| {
            g.carriers = CarrierSecrets::parse(&format!("simulated={SECRET}")).unwrap();
        })
        .await;
    let mut returns = s.returns.clone().expect("returns runs");
    let (return_id, tracking) = booked_return(&mut returns).await;

    // Correctly signed, but signed too long ago or too far ahead: refused either way.
    let picked_up = event(&tracking, 1, "picked_up", "collected from the customer");
    for at in [now() - 301, now() + 301, 0] {
        let answer = signed(&gw, &picked_up, at).await;
        assert_eq!(answer.status, 401, "signed at {at}: {answer:?}");
        assert_eq!(answer.body["code"], "unauthenticated");
        assert!(
            answer.body["message"]
                .as_str()
                .unwrap()
                .contains("X-Carrier-Timestamp"),
            "{answer:?}"
        );
    }
    for timestamp in ["", "soon", "-1", "1e9", "17000000000000"] {
        let answer = post(
            &gw,
            "simulated",
            Some(timestamp.into()),
            Some(sign(SECRET.as_bytes(), 0, picked_up.as_bytes())),
            picked_up.clone(),
        )
        .await;
        assert_eq!(answer.status, 401, "{timestamp:?}: {answer:?}");
    }
    assert_eq!(
        the_return(&mut returns, &return_id).await.status,
        rpb::ReturnStatus::PickupBooked as i32,
        "nothing refused reached returns"
    );

    // Within the window, from either side of the gateway's clock.
    let first_sent = now() - 290;
    let first = signed(&gw, &picked_up, first_sent).await;
    assert_eq!(first.status, 200, "{first:?}");
    let in_transit = event(&tracking, 2, "in_transit", "left the Shanghai hub");
    let second = signed(&gw, &in_transit, now() + 60).await;
    assert_eq!(second.status, 200, "{second:?}");
    let before = the_return(&mut returns, &return_id).await;
    assert_eq!(before.status, rpb::ReturnStatus::InTransit as i32);
    let last_event = before.shipment.as_ref().unwrap().last_event.clone();
    assert!(last_event.contains("Shanghai hub"), "{last_event}");

    // The first request, captured and replayed byte for byte within its window: accepted
    // (the carrier may redeliver), and returns records the event id once.
    let replay = signed(&gw, &picked_up, first_sent).await;
    assert_eq!(replay.status, 200, "{replay:?}");
    let after = the_return(&mut returns, &return_id).await;
    assert_eq!(
        after.shipment.as_ref().unwrap().last_event,
        last_event,
        "the replayed pickup was applied again"
    );
    assert_eq!(after.history.len(), before.history.len(), "{after:?}");
    assert_eq!(after.updated_at, before.updated_at);
    s.stop().await;
}
