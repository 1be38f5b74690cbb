//! The return flow end to end, its edges, and its failure modes.

use std::time::Duration;

use aftersales_platform::status::field_violations;
use aftersales_protos::returns::v1 as pb;
use aftersales_returns::domain::Money;
use chrono::{NaiveTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use tonic::Code;

use crate::helpers::{Backend, TestApp, cny, request, spawn, spawn_with, yesterday};

pub(crate) fn inspected_line(
    condition: pb::Condition,
    defect: bool,
    disposition: pb::Disposition,
) -> pb::InspectionLine {
    pb::InspectionLine {
        sku: "KETTLE-1".into(),
        condition: condition as i32,
        quality_defect: defect,
        disposition: disposition as i32,
        note: String::new(),
    }
}

fn track(
    tracking_number: &str,
    event_id: &str,
    kind: pb::TrackingKind,
) -> pb::RecordTrackingEventRequest {
    pb::RecordTrackingEventRequest {
        carrier: "simulated".into(),
        carrier_event_id: event_id.into(),
        tracking_number: tracking_number.into(),
        kind: kind as i32,
        occurred_at: None,
        detail: String::new(),
    }
}

/// Request → auto-approval → pickup → in transit → received → inspected; returns the
/// return and its tracking number.
pub(crate) async fn to_inspected(
    app: &mut TestApp,
    reason: pb::ReturnReason,
    inspection: pb::InspectionLine,
) -> (pb::Return, String) {
    let r = app
        .client
        .request_return(request(reason, pb::Outcome::Refund, yesterday()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status,
        pb::ReturnStatus::Approved as i32,
        "{}",
        r.eligibility_rule
    );
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
    assert_eq!(booked.status, pb::ReturnStatus::PickupBooked as i32);
    let shipment = booked.shipment.unwrap();
    let tracking = shipment.tracking_number.clone();
    assert!(shipment.label_ref.starts_with("label://simulated/"));
    let moved = app
        .client
        .record_tracking_event(track(
            &tracking,
            &format!("{tracking}-1"),
            pb::TrackingKind::PickedUp,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.status, pb::ReturnStatus::InTransit as i32);
    let received = app
        .client
        .record_tracking_event(track(
            &tracking,
            &format!("{tracking}-2"),
            pb::TrackingKind::DeliveredToWarehouse,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(received.status, pb::ReturnStatus::Received as i32);
    let inspected = app
        .client
        .record_inspection(pb::RecordInspectionRequest {
            return_id: r.id.clone(),
            lines: vec![inspection],
            actor: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inspected.status, pb::ReturnStatus::Inspected as i32);
    (inspected, tracking)
}

fn refund_request(id: &str) -> pb::ResolveReturnRequest {
    pb::ResolveReturnRequest {
        return_id: id.into(),
        resolution: pb::Resolution::Refund as i32,
        reason: String::new(),
        actor: None,
    }
}

async fn happy_path(backend: Backend) {
    let mut app = spawn(backend).await;
    let (r, tracking) = to_inspected(
        &mut app,
        pb::ReturnReason::QualityDefect,
        inspected_line(pb::Condition::Used, true, pb::Disposition::Refurbish),
    )
    .await;
    let refunded = app
        .client
        .resolve_return(refund_request(&r.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refunded.status, pb::ReturnStatus::Refunded as i32);
    assert!(
        refunded.deadlines.iter().all(|d| d.state == "met"),
        "{:?}",
        refunded.deadlines
    );

    let refund = app
        .client
        .get_refund(pb::GetRefundRequest {
            return_id: r.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refund.state, pb::RefundState::Succeeded as i32);
    // Two kettles plus the return shipping: the seller was at fault.
    assert_eq!(refund.amount, Some(cny(2 * 19_900 + 1_200)));
    assert_eq!(
        refund
            .lines
            .iter()
            .map(|l| l.kind.as_str())
            .collect::<Vec<_>>(),
        ["item", "return_shipping"]
    );
    assert_eq!(app.payments.payments(), [Money::new(41_000, "CNY")]);

    let stock = aftersales_returns::store::stock_of(app.core.db(), &r.id)
        .await
        .unwrap();
    assert_eq!(
        stock,
        [
            ("KETTLE-1".to_owned(), 2, "received".to_owned()),
            ("KETTLE-1".to_owned(), 2, "refurbish".to_owned())
        ]
    );
    for event in [
        "ReturnRequested",
        "ReturnApproved",
        "ReturnReceived",
        "ReturnInspected",
        "RefundSucceeded",
    ] {
        assert_eq!(
            app.events(&r.id, &format!("returns.{event}")).await,
            1,
            "{event}"
        );
    }

    let month = Utc::now().format("%Y-%m").to_string();
    let statement = app
        .client
        .carrier_reconciliation(pb::CarrierReconciliationRequest {
            carrier: "simulated".into(),
            month,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(statement.shipments.len(), 1);
    assert_eq!(statement.shipments[0].tracking_number, tracking);
    assert_eq!(statement.totals, [cny(1_200)]);

    let closed = app
        .client
        .close_return(pb::CloseReturnRequest {
            return_id: r.id.clone(),
            actor: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.status, pb::ReturnStatus::Closed as i32);
    assert_eq!(closed.history.len(), 8);
    app.stop().await;
}

#[tokio::test]
async fn the_happy_path_on_postgres_and_redis() {
    happy_path(Backend::Postgres).await;
}

#[tokio::test]
async fn the_happy_path_on_sqlite_in_process() {
    happy_path(Backend::Sqlite).await;
}

#[tokio::test]
async fn day_7_is_eligible_and_day_8_is_not_in_the_customers_time_zone() {
    let mut app = spawn(Backend::Postgres).await;
    let today = Utc::now().with_timezone(&Shanghai).date_naive();
    let local = |days_ago: i64, time: NaiveTime| {
        Shanghai
            .from_local_datetime(&(today - chrono::Duration::days(days_ago)).and_time(time))
            .unwrap()
            .with_timezone(&Utc)
    };
    // Delivered first thing on day 0, seven local days ago: still in.
    let first_minute = NaiveTime::from_hms_opt(0, 1, 0).unwrap();
    let day7 = app
        .client
        .request_return(request(
            pb::ReturnReason::NoReason,
            pb::Outcome::Refund,
            local(7, first_minute),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(day7.status, pb::ReturnStatus::Approved as i32);
    assert_eq!(day7.eligibility_rule, "no_reason_within_7_days");
    // Delivered in the last minute of the day before: day 8, out.
    let last_minute = NaiveTime::from_hms_opt(23, 59, 0).unwrap();
    let day8 = app
        .client
        .request_return(request(
            pb::ReturnReason::NoReason,
            pb::Outcome::Refund,
            local(8, last_minute),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(day8.status, pb::ReturnStatus::Rejected as i32);
    assert_eq!(
        day8.rejection_reason,
        "no_reason_period_over_7_days (sku KETTLE-1)"
    );
    assert_eq!(app.events(&day8.id, "returns.ReturnRejected").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn an_excluded_category_is_refused_with_the_rule_named() {
    let mut app = spawn(Backend::Postgres).await;
    app.client
        .upsert_return_policy(pb::UpsertReturnPolicyRequest {
            policy: Some(pb::ReturnPolicy {
                product_line: "kettle".into(),
                no_reason_days: 7,
                exchange_days: 15,
                warranty_months: 12,
                exclusion: "opened_hygiene".into(),
                auto_approve: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let refused = app
        .client
        .request_return(request(
            pb::ReturnReason::NoReason,
            pb::Outcome::Refund,
            yesterday(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refused.status, pb::ReturnStatus::Rejected as i32);
    assert_eq!(
        refused.rejection_reason,
        "excluded_opened_hygiene (sku KETTLE-1)"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_duplicated_tracking_event_changes_nothing() {
    let mut app = spawn(Backend::Postgres).await;
    let r = app
        .client
        .request_return(request(
            pb::ReturnReason::NoReason,
            pb::Outcome::Refund,
            yesterday(),
        ))
        .await
        .unwrap()
        .into_inner();
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
    let first = app
        .client
        .record_tracking_event(track(
            &tracking,
            "wh-1",
            pb::TrackingKind::DeliveredToWarehouse,
        ))
        .await
        .unwrap()
        .into_inner();
    let again = app
        .client
        .record_tracking_event(track(
            &tracking,
            "wh-1",
            pb::TrackingKind::DeliveredToWarehouse,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, again);
    assert_eq!(app.events(&r.id, "returns.ReturnReceived").await, 1);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM stock_ledger WHERE return_id = '{}'",
            r.id
        ))
        .await,
        1
    );
    let unknown = app
        .client
        .record_tracking_event(track("NOPE", "x", pb::TrackingKind::InTransit))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn a_retried_refund_pays_once() {
    let mut app = spawn(Backend::Postgres).await;
    let (r, _) = to_inspected(
        &mut app,
        pb::ReturnReason::NoReason,
        inspected_line(pb::Condition::LikeNew, false, pb::Disposition::Restock),
    )
    .await;
    let first = app
        .client
        .resolve_return(refund_request(&r.id))
        .await
        .unwrap()
        .into_inner();
    let again = app
        .client
        .resolve_return(refund_request(&r.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.refund_id, again.refund_id);
    app.core.pay_refund(&first.refund_id).await.unwrap();
    assert_eq!(
        app.payments.payments(),
        [Money::new(39_800, "CNY")],
        "no return shipping: nobody's fault"
    );
    assert_eq!(app.events(&r.id, "returns.RefundSucceeded").await, 1);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM refunds WHERE return_id = '{}'",
            r.id
        ))
        .await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn a_crash_between_sending_and_recording_a_refund_pays_once() {
    let mut app = spawn(Backend::Postgres).await;
    let (r, _) = to_inspected(
        &mut app,
        pb::ReturnReason::NoReason,
        inspected_line(pb::Condition::LikeNew, false, pb::Disposition::Restock),
    )
    .await;
    // The first attempt times out, so the refund stays pending with a retry scheduled.
    app.payments.fail_next_transiently(1);
    let pending = app
        .client
        .resolve_return(refund_request(&r.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pending.status, pb::ReturnStatus::Inspected as i32);
    let refund = app
        .client
        .get_refund(pb::GetRefundRequest {
            refund_id: pending.refund_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (refund.state, refund.attempts),
        (pb::RefundState::Pending as i32, 1)
    );

    // A process sends the refund to the provider and dies before recording the answer.
    let sent = aftersales_returns::ports::PaymentProvider::Simulated(app.payments.clone())
        .refund(&refund.id, "order-9", &Money::new(39_800, "CNY"))
        .await;
    let aftersales_returns::domain::refund::PaymentOutcome::Paid { reference } = sent else {
        panic!("the provider paid: {sent:?}");
    };

    // The worker retries on schedule: the provider recognises the key and pays nothing more.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let settled = loop {
        let current = app.get(&r.id).await;
        if current.status == pb::ReturnStatus::Refunded as i32 {
            break current;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the retry never recorded the refund"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let refund = app
        .client
        .get_refund(pb::GetRefundRequest {
            refund_id: settled.refund_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refund.state, pb::RefundState::Succeeded as i32);
    assert_eq!(refund.provider_reference, reference);
    assert_eq!(app.payments.payments().len(), 1, "paid once");
    assert_eq!(app.events(&r.id, "returns.RefundSucceeded").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_missed_step_deadline_emits_its_event_and_shows_the_return_overdue() {
    let mut app = spawn_with(Backend::Postgres, |config| {
        config.targets.pickup = chrono::Duration::seconds(1);
    })
    .await;
    let r = app
        .client
        .request_return(request(
            pb::ReturnReason::NoReason,
            pb::Outcome::Refund,
            yesterday(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.overdue);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let overdue = loop {
        let current = app.get(&r.id).await;
        if current.overdue {
            break current;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pickup deadline never fired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pickup = overdue
        .deadlines
        .iter()
        .find(|d| d.step == pb::Step::Pickup as i32)
        .unwrap();
    assert_eq!(pickup.state, "missed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.events(&r.id, "returns.ReturnStepOverdue").await,
        1,
        "once"
    );
    let listed = app
        .client
        .list_returns(pb::ListReturnsRequest {
            overdue: Some(true),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed
            .returns
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        [r.id.as_str()]
    );
    assert!(listed.returns[0].overdue);
    app.stop().await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_stores_nothing() {
    let mut app = spawn(Backend::Postgres).await;
    let mut bad = request(
        pb::ReturnReason::Unspecified,
        pb::Outcome::Refund,
        yesterday(),
    );
    bad.lines[0].unit_price = Some(aftersales_protos::common::v1::Money {
        minor_units: -5,
        currency: "yuan".into(),
    });
    bad.lines[0].quantity = 0;
    bad.customer_time_zone = "Moon/Base".into();
    let err = app.client.request_return(bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<String> = field_violations(&err)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        [
            "lines[0].quantity",
            "lines[0].unit_price.minor_units",
            "lines[0].unit_price.currency",
            "reason",
            "customer_time_zone"
        ]
    );
    let mut no_lines = request(pb::ReturnReason::NoReason, pb::Outcome::Refund, yesterday());
    no_lines.lines.clear();
    let err = app.client.request_return(no_lines).await.unwrap_err();
    assert_eq!(field_violations(&err)[0].field, "lines");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM returns").await, 0);

    let r = app
        .client
        .request_return(request(
            pb::ReturnReason::NoReason,
            pb::Outcome::Refund,
            yesterday(),
        ))
        .await
        .unwrap()
        .into_inner();
    let err = app
        .client
        .book_pickup(pb::BookPickupRequest {
            return_id: r.id.clone(),
            carrier: "pigeon".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_violations(&err)[0].field, "carrier");
    let err = app
        .client
        .book_pickup(pb::BookPickupRequest {
            return_id: r.id.clone(),
            carrier: "manual".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_violations(&err)[0].field, "tracking_number");
    let err = app
        .client
        .receive_return(pb::ReceiveReturnRequest {
            return_id: r.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "receiving before a pickup is an illegal step"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_retried_request_with_its_key_creates_one_return() {
    let mut app = spawn(Backend::Sqlite).await;
    let mut keyed = request(pb::ReturnReason::NoReason, pb::Outcome::Refund, yesterday());
    keyed.idempotency_key = "order-9-return".into();
    let first = app
        .client
        .request_return(keyed.clone())
        .await
        .unwrap()
        .into_inner();
    let again = app
        .client
        .request_return(keyed.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.id, again.id);
    keyed.reason = pb::ReturnReason::WrongItem as i32;
    let err = app.client.request_return(keyed).await.unwrap_err();
    assert_eq!(field_violations(&err)[0].field, "idempotency_key");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM returns").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn exchange_repair_and_rejection_each_settle_with_their_event() {
    let mut app = spawn(Backend::Sqlite).await;
    let outcomes = [
        (
            pb::Resolution::Exchange,
            pb::ReturnStatus::Exchanged,
            "returns.ExchangeShipmentRequested",
        ),
        (
            pb::Resolution::Repair,
            pb::ReturnStatus::SentToRepair,
            "returns.RepairJobRequested",
        ),
        (
            pb::Resolution::Reject,
            pb::ReturnStatus::RejectedAfterInspection,
            "returns.ReturnRejected",
        ),
    ];
    for (resolution, status, event) in outcomes {
        let (r, _) = to_inspected(
            &mut app,
            pb::ReturnReason::QualityDefect,
            inspected_line(pb::Condition::Used, true, pb::Disposition::Repair),
        )
        .await;
        let settled = app
            .client
            .resolve_return(pb::ResolveReturnRequest {
                return_id: r.id.clone(),
                resolution: resolution as i32,
                reason: "decided at inspection".into(),
                actor: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(settled.status, status as i32);
        assert_eq!(app.events(&r.id, event).await, 1, "{event}");
        assert!(settled.refund_id.is_empty());
    }
    assert!(app.payments.payments().is_empty(), "no money moved");
    app.stop().await;
}

#[tokio::test]
async fn a_nul_in_a_ticket_id_is_refused_before_it_can_poison_an_event() {
    let mut app = spawn(Backend::Postgres).await;
    let mut bad = request(pb::ReturnReason::NoReason, pb::Outcome::Refund, yesterday());
    bad.ticket_id = "T\0".into();
    bad.lines[0].sku = "KETTLE\u{7f}".into();
    let err = app.client.request_return(bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let fields: Vec<String> = field_violations(&err)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["ticket_id", "lines[0].sku"]);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM returns").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox").await, 0);
    app.stop().await;
}
