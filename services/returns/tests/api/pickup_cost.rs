//! A booked pickup tells care its carrier fee (`PickupBooked`, about the return, with its
//! ticket and order), and nothing about the carrier or the tracking number.

use aftersales_protos::{
    events::v1::{self as ev, event_envelope::Payload},
    returns::v1 as pb,
};
use sea_orm::{ConnectionTrait, Statement};

use crate::helpers::*;

async fn pickups(app: &TestApp, return_id: &str) -> Vec<ev::PickupBooked> {
    let db = app.core.db();
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        format!(
            "SELECT payload FROM outbox WHERE subject_id = '{return_id}' \
             AND event_type = 'returns.PickupBooked' ORDER BY seq"
        ),
    ))
    .await
    .expect("outbox")
    .into_iter()
    .filter_map(|row| {
        let bytes: Vec<u8> = row.try_get("", "payload").expect("payload");
        match aftersales_eventbus::envelope::decode(&bytes)
            .ok()?
            .payload?
        {
            Payload::PickupBooked(p) => Some(p),
            _ => None,
        }
    })
    .collect()
}

async fn pickup_fee(backend: Backend) {
    let mut app = spawn(backend).await;
    let mut asked = request(pb::ReturnReason::NoReason, pb::Outcome::Refund, yesterday());
    asked.ticket_id = "T-77".into();
    let r = app
        .client
        .request_return(asked)
        .await
        .expect("requested")
        .into_inner();
    assert!(pickups(&app, &r.id).await.is_empty());
    app.client
        .book_pickup(pb::BookPickupRequest {
            return_id: r.id.clone(),
            carrier: "manual".into(),
            tracking_number: "SF1234567".into(),
            fee: Some(cny(1_200)),
            ..Default::default()
        })
        .await
        .expect("booked");
    let [booked] = pickups(&app, &r.id).await.try_into().expect("one");
    assert_eq!(
        (booked.ticket_id.as_str(), booked.order_id.as_str()),
        ("T-77", r.order_id.as_str())
    );
    assert_eq!(booked.fee, Some(cny(1_200)));
    assert!(booked.booked_at.is_some());
    app.stop().await;
}

#[tokio::test]
async fn a_booked_pickup_publishes_its_fee_postgres() {
    pickup_fee(Backend::Postgres).await;
}

#[tokio::test]
async fn a_booked_pickup_publishes_its_fee_sqlite() {
    pickup_fee(Backend::Sqlite).await;
}
