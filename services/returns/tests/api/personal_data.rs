//! Personal data in free text: phone numbers, e-mail addresses and ID numbers written into
//! a return's evidence, reasons, inspection notes or a carrier's details are masked before
//! anything stores them (every text column of the return's rows, its outbox and the
//! idempotency responses, read straight from the database), events carry no free text,
//! and care's `CustomerAnonymised` erases the text of that customer's returns (and the
//! reasons of their compensations) once, however often it is delivered.

use std::time::Duration;

use aftersales_eventbus::{
    BusMessage,
    envelope::{self, new_event},
};
use aftersales_platform::pii::ANONYMISED_TEXT;
use aftersales_protos::{
    events::v1::{self as ev, event_envelope::Payload},
    returns::v1 as pb,
};
use chrono::Utc;
use sea_orm::{ConnectionTrait, Statement};

use crate::helpers::{Backend, TestApp, request, spawn, yesterday};

/// What a customer or carrier wrote, in clear; none of it may be stored.
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

/// The text columns (and blobs, as lossy text) of every row a query returns.
async fn rows(app: &TestApp, sql: &str, text: &[&str], blobs: &[&str]) -> Vec<String> {
    let db = app.core.db();
    let found = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap();
    found
        .iter()
        .map(|row| {
            let mut out = String::new();
            for column in text {
                let value: Option<String> = row.try_get("", column).unwrap();
                out.push_str(&value.unwrap_or_default());
                out.push('|');
            }
            for column in blobs {
                let value: Vec<u8> = row.try_get("", column).unwrap();
                out.push_str(&String::from_utf8_lossy(&value));
                if let Ok(decoded) = envelope::decode(&value) {
                    out.push_str(&format!("{decoded:?}"));
                }
                out.push('|');
            }
            out
        })
        .collect()
}

/// Every row the database keeps about the return, as text, by table.
async fn stored(app: &TestApp, id: &str) -> Vec<(&'static str, String)> {
    let mut all = Vec::new();
    let queries: [(&str, String, &[&str], &[&str]); 6] = [
        (
            "returns",
            format!("SELECT * FROM returns WHERE id = '{id}'"),
            &[
                "id",
                "order_id",
                "customer_id",
                "status",
                "reason",
                "carrier",
                "tracking_number",
                "body",
            ],
            &[],
        ),
        (
            "tracking_events",
            format!("SELECT * FROM tracking_events WHERE return_id = '{id}'"),
            &["carrier", "carrier_event_id", "kind", "detail"],
            &[],
        ),
        (
            "refunds",
            format!("SELECT * FROM refunds WHERE return_id = '{id}'"),
            &["id", "state", "body"],
            &[],
        ),
        (
            "shipments",
            format!("SELECT * FROM shipments WHERE return_id = '{id}'"),
            &["carrier", "tracking_number"],
            &[],
        ),
        (
            "outbox",
            format!("SELECT * FROM outbox WHERE subject_id = '{id}'"),
            &["event_type"],
            &["payload"],
        ),
        (
            "idempotency_keys",
            "SELECT * FROM idempotency_keys".to_owned(),
            &["scope", "key"],
            &["response"],
        ),
    ];
    for (table, sql, text, blobs) in queries {
        for row in rows(app, &sql, text, blobs).await {
            all.push((table, row));
        }
    }
    all
}

fn track(
    tracking: &str,
    n: u32,
    kind: pb::TrackingKind,
    detail: &str,
) -> pb::RecordTrackingEventRequest {
    pb::RecordTrackingEventRequest {
        carrier: "simulated".into(),
        carrier_event_id: format!("{tracking}-{n}"),
        tracking_number: tracking.into(),
        kind: kind as i32,
        occurred_at: None,
        detail: detail.into(),
    }
}

/// A return with free text everywhere it can have some: evidence, carrier details, a
/// warehouse note, an inspection note and a rejection reason.
async fn rejected_return(
    app: &mut TestApp,
    customer_id: &str,
    key: &str,
    text: &str,
) -> pb::Return {
    let mut asked = request(
        pb::ReturnReason::QualityDefect,
        pb::Outcome::Refund,
        yesterday(),
    );
    asked.idempotency_key = key.into();
    asked.customer_id = customer_id.into();
    asked.evidence = vec!["s3://evidence/kettle.jpg".into(), format!("note {text}")];
    let r = app
        .client
        .request_return(asked.clone())
        .await
        .unwrap()
        .into_inner();
    let replayed = app.client.request_return(asked).await.unwrap().into_inner();
    assert_eq!(replayed.id, r.id);
    let booked = app
        .client
        .book_pickup(pb::BookPickupRequest {
            return_id: r.id.clone(),
            carrier: "simulated".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let tracking = booked.shipment.unwrap().tracking_number;
    for (n, kind) in [
        (1, pb::TrackingKind::PickedUp),
        (2, pb::TrackingKind::DeliveredToWarehouse),
    ] {
        app.client
            .record_tracking_event(track(&tracking, n, kind, &format!("signed by {text}")))
            .await
            .unwrap();
    }
    app.client
        .record_inspection(pb::RecordInspectionRequest {
            return_id: r.id.clone(),
            lines: vec![pb::InspectionLine {
                sku: "KETTLE-1".into(),
                condition: pb::Condition::Damaged as i32,
                quality_defect: false,
                disposition: pb::Disposition::Scrap as i32,
                note: format!("dropped, says {text}"),
            }],
            actor: None,
        })
        .await
        .unwrap();
    app.client
        .resolve_return(pb::ResolveReturnRequest {
            return_id: r.id.clone(),
            resolution: pb::Resolution::Reject as i32,
            reason: format!("customer damage, told {text}"),
            actor: None,
        })
        .await
        .unwrap()
        .into_inner()
}

async fn free_text_is_masked_before_it_is_stored(backend: Backend) {
    let mut app = spawn(backend).await;
    let r = rejected_return(&mut app, "cust-9", "ask-1", TEXT).await;
    assert_eq!(r.status, pb::ReturnStatus::RejectedAfterInspection as i32);
    assert_eq!(r.evidence[1], format!("note {MASKED}"));
    assert_eq!(
        r.rejection_reason,
        format!("customer damage, told {MASKED}")
    );
    assert_eq!(r.inspection[0].note, format!("dropped, says {MASKED}"));
    assert!(
        r.shipment
            .as_ref()
            .unwrap()
            .last_event
            .ends_with(&format!("signed by {MASKED}")),
        "{:?}",
        r.shipment
    );
    assert_clean("the answer", &format!("{r:?}"));
    assert_clean("GetReturn", &format!("{:?}", app.get(&r.id).await));

    let rows = stored(&app, &r.id).await;
    for table in ["returns", "tracking_events", "outbox", "idempotency_keys"] {
        assert!(rows.iter().any(|(t, _)| *t == table), "no {table} row");
    }
    for (table, row) in &rows {
        assert_clean(table, row);
    }
    let body = &rows.iter().find(|(t, _)| *t == "returns").unwrap().1;
    assert!(
        body.contains("138****5678"),
        "the masked form is kept: {body}"
    );

    // Events carry ids, not free text.
    for (table, row) in rows.iter().filter(|(t, _)| *t == "outbox") {
        for said in ["note ", "signed by", "dropped, says", "customer damage"] {
            assert!(!row.contains(said), "{table} carries {said:?}: {row}");
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

const SAID: &str = "Mr Wang of 5 Garden Road";

async fn anonymisation_erases_the_customers_return_text_once(backend: Backend) {
    let mut app = spawn(backend).await;
    let gone = rejected_return(&mut app, "cust-gone", "gone-1", SAID).await;
    let stays = rejected_return(&mut app, "cust-stays", "stays-1", SAID).await;
    let gone_gift = gift(&mut app, "cust-gone").await;
    let kept_gift = gift(&mut app, "cust-stays").await;

    let event = customer_anonymised("cust-gone");
    app.bus
        .publish("care", &[event.clone(), event.clone()])
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !app.get(&gone.id).await.evidence.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the return was never anonymised"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give the duplicate delivery every chance to be applied.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM processed_events")
            .await,
        1,
        "the event is applied once"
    );

    let erased = app.get(&gone.id).await;
    assert_eq!(erased.rejection_reason, ANONYMISED_TEXT);
    assert_eq!(erased.inspection[0].note, ANONYMISED_TEXT);
    assert_eq!(
        erased.shipment.as_ref().unwrap().last_event,
        ANONYMISED_TEXT
    );
    assert_eq!(
        (erased.customer_id.as_str(), erased.status),
        (
            "cust-gone",
            pb::ReturnStatus::RejectedAfterInspection as i32
        ),
        "ids and codes stay"
    );
    for (table, row) in stored(&app, &gone.id).await {
        for said in ["Wang", "Garden Road", "evidence/kettle"] {
            assert!(!row.contains(said), "{table} keeps {said:?}: {row}");
        }
    }
    let kept = app.get(&stays.id).await;
    assert_eq!(kept.evidence.len(), 2, "another customer's return stays");
    assert!(kept.rejection_reason.contains(SAID));
    let erased = compensation(&mut app, &gone_gift).await;
    assert_eq!(
        (erased.reason.as_str(), erased.amount.unwrap().minor_units),
        (ANONYMISED_TEXT, 1_000),
        "the compensation's reason goes, its amount stays"
    );
    assert!(
        compensation(&mut app, &kept_gift)
            .await
            .reason
            .contains(SAID)
    );

    // The customer comes back: a new return keeps its text when the old event is
    // delivered again.
    let back = rejected_return(&mut app, "cust-gone", "back-1", SAID).await;
    app.bus.publish("care", &[event]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(app.get(&back.id).await.rejection_reason.contains(SAID));
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM processed_events")
            .await,
        1
    );
    app.stop().await;
}

/// A gift granted to `customer_id` with [`SAID`] as its reason; answers its id.
async fn gift(app: &mut TestApp, customer_id: &str) -> String {
    app.client
        .request_compensation(pb::RequestCompensationRequest {
            ticket_id: "ticket-1".into(),
            customer_id: customer_id.into(),
            kind: pb::CompensationKind::Gift as i32,
            amount: Some(crate::helpers::cny(1_000)),
            reason: SAID.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .id
}

async fn compensation(app: &mut TestApp, id: &str) -> pb::Compensation {
    app.client
        .get_compensation(pb::GetCompensationRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn anonymisation_erases_the_customers_return_text_once_on_postgres() {
    anonymisation_erases_the_customers_return_text_once(Backend::Postgres).await;
}

#[tokio::test]
async fn anonymisation_erases_the_customers_return_text_once_on_sqlite() {
    anonymisation_erases_the_customers_return_text_once(Backend::Sqlite).await;
}
