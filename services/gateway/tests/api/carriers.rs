//! Carrier tracking webhooks: signed bodies reach returns, anything else is refused
//! before it is read.

use aftersales_gateway::carrier::{CarrierSecrets, sign};
use aftersales_protos::returns::v1 as rpb;

use crate::helpers::{booked_return, suite};

const SECRET: &str = "simulated-carrier-secret-0123";

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
    let body = serde_json::json!({
        "event_id": format!("{tracking}-1"),
        "tracking_number": tracking,
        "kind": "picked_up",
        "detail": "collected from the customer",
    })
    .to_string();
    let post = |carrier: &str, signature: Option<String>, body: String| {
        let mut request = gw
            .http
            .client
            .post(gw.http.url(&format!("/v1/carriers/{carrier}/tracking")))
            .header("content-type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("X-Signature", signature);
        }
        gw.http.send(request)
    };
    let status = |returns: &mut rpb::return_service_client::ReturnServiceClient<_>| {
        let mut returns = returns.clone();
        let id = return_id.clone();
        async move {
            returns
                .get_return(rpb::GetReturnRequest { id })
                .await
                .expect("the return")
                .into_inner()
                .status
        }
    };

    let good = sign(SECRET.as_bytes(), body.as_bytes());
    let refused = [
        post("simulated", None, body.clone()).await,
        post("simulated", Some("sha256=00".into()), body.clone()).await,
        post(
            "simulated",
            Some(sign(b"another-secret-0123456", body.as_bytes())),
            body.clone(),
        )
        .await,
        post("pigeon", Some(good.clone()), body.clone()).await,
        post(
            "simulated",
            Some(good.clone()),
            body.replace("picked_up", "in_transit"),
        )
        .await,
    ];
    for answer in refused {
        assert_eq!(answer.status, 401, "{answer:?}");
        assert_eq!(answer.body["code"], "unauthenticated");
    }
    assert_eq!(
        status(&mut returns).await,
        rpb::ReturnStatus::PickupBooked as i32
    );

    let accepted = post("simulated", Some(good.clone()), body.clone()).await;
    assert_eq!(accepted.status, 200, "{accepted:?}");
    assert_eq!(accepted.body["carrier"], "simulated");
    assert_eq!(
        status(&mut returns).await,
        rpb::ReturnStatus::InTransit as i32
    );
    // A redelivery of the same event changes nothing.
    let again = post("simulated", Some(good), body).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(
        status(&mut returns).await,
        rpb::ReturnStatus::InTransit as i32
    );

    // Signed but unreadable: 400 naming the field; signed but unknown shipment: 404.
    let bad = r#"{"event_id":"e9","tracking_number":"SIM1","kind":"teleported"}"#.to_owned();
    let answer = post(
        "simulated",
        Some(sign(SECRET.as_bytes(), bad.as_bytes())),
        bad,
    )
    .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.violated_field(), "kind");
    let unknown =
        r#"{"event_id":"e9","tracking_number":"SIM-NOPE","kind":"in_transit"}"#.to_owned();
    let answer = post(
        "simulated",
        Some(sign(SECRET.as_bytes(), unknown.as_bytes())),
        unknown,
    )
    .await;
    assert_eq!(answer.status, 404, "{answer:?}");
    s.stop().await;
}
