//! The refund variants — refund-only, negotiated partial, price difference — each paid
//! exactly once through the payment port (under concurrent retries, and across a crash
//! between sending a payment and recording it), and each refused by its named rule.

use std::time::Duration as StdDuration;

use aftersales_platform::status::field_violations;
use aftersales_protos::returns::v1 as pb;
use aftersales_returns::{
    domain::{Money, refund::PaymentOutcome},
    ports::PaymentProvider,
};
use chrono::{Duration, Utc};
use tonic::{Code, Status};

use crate::helpers::{Backend, TestApp, cny, refund_when, request, spawn, yesterday};

/// The rule a refusal names.
fn refused_by(err: &Status) -> String {
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    err.message()
        .strip_prefix("refused by rule ")
        .and_then(|rest| rest.split_once(':'))
        .map(|(rule, _)| rule.to_owned())
        .unwrap_or_else(|| panic!("no rule named: {}", err.message()))
}

fn fields(err: &Status) -> Vec<String> {
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    field_violations(err).into_iter().map(|v| v.field).collect()
}

fn refund_only(reason: pb::ReturnReason, unit: i64, quantity: u32) -> pb::RequestReturnRequest {
    let mut r = request(reason, pb::Outcome::Refund, yesterday());
    r.refund_only = true;
    r.lines[0].unit_price = Some(cny(unit));
    r.lines[0].quantity = quantity;
    r
}

pub(crate) fn partial(return_id: &str, minor: i64) -> pb::AgreePartialRefundRequest {
    pb::AgreePartialRefundRequest {
        return_id: return_id.into(),
        amount: Some(cny(minor)),
        customer_agreement: "chat-msg-8812".into(),
        reason: "a scratch on the lid; the customer keeps the kettle".into(),
        actor: None,
    }
}

pub(crate) fn price_claim(
    key: &str,
    paid: i64,
    current: i64,
    days_ago: i64,
) -> pb::RequestPriceDifferenceRefundRequest {
    pb::RequestPriceDifferenceRefundRequest {
        idempotency_key: key.into(),
        order_id: "order-9".into(),
        customer_id: "cust-9".into(),
        sku: "KETTLE-1".into(),
        product_line: "kettle".into(),
        quantity: 2,
        paid_unit_price: Some(cny(paid)),
        current_unit_price: Some(cny(current)),
        purchased_at: Some(crate::helpers::ts(Utc::now() - Duration::days(days_ago))),
        customer_time_zone: "Asia/Shanghai".into(),
        actor: None,
    }
}

async fn refunds_succeeded(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) AS n FROM outbox WHERE event_type = 'returns.RefundSucceeded'")
        .await
}

async fn rules_and_amounts(backend: Backend) {
    let mut app = spawn(backend).await;

    // Refund-only: over the default limit (50.00) it is refused, by name, storing nothing.
    let err = app
        .client
        .request_return(refund_only(pb::ReturnReason::NoReason, 19_900, 2))
        .await
        .unwrap_err();
    assert_eq!(refused_by(&err), "refund_only_over_limit");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM returns").await, 0);
    let mut exchange = refund_only(pb::ReturnReason::NoReason, 1_000, 1);
    exchange.desired_outcome = pb::Outcome::Exchange as i32;
    let err = app.client.request_return(exchange).await.unwrap_err();
    assert_eq!(fields(&err), ["desired_outcome"]);

    // Within the limit: approved and refunded at once, with no pickup.
    let cheap = app
        .client
        .request_return(refund_only(pb::ReturnReason::NoReason, 2_500, 2))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cheap.status, pb::ReturnStatus::Refunded as i32);
    assert!(cheap.refund_only && cheap.shipment.is_none());
    assert!(
        cheap
            .deadlines
            .iter()
            .all(|d| d.step != pb::Step::Pickup as i32),
        "{:?}",
        cheap.deadlines
    );
    let refund = app
        .client
        .get_refund(pb::GetRefundRequest {
            refund_id: cheap.refund_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refund.kind, pb::RefundKind::RefundOnly as i32);
    assert_eq!(refund.amount, Some(cny(5_000)));

    // Not received: refund-only whatever the amount.
    let lost = app
        .client
        .request_return(refund_only(pb::ReturnReason::NotReceived, 19_900, 2))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lost.status, pb::ReturnStatus::Refunded as i32);

    // A negotiated partial refund: at most the paid amount and half of it by default.
    let kept = app
        .client
        .request_return(request(
            pb::ReturnReason::NotAsDescribed,
            pb::Outcome::Refund,
            yesterday(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.status, pb::ReturnStatus::Approved as i32);
    let err = app
        .client
        .agree_partial_refund(partial(&kept.id, 50_000))
        .await
        .unwrap_err();
    assert_eq!(refused_by(&err), "partial_refund_above_paid");
    let err = app
        .client
        .agree_partial_refund(partial(&kept.id, 19_901))
        .await
        .unwrap_err();
    assert_eq!(refused_by(&err), "partial_refund_over_percent");
    let mut bad = partial(&kept.id, 0);
    bad.customer_agreement.clear();
    bad.amount = None;
    let err = app.client.agree_partial_refund(bad).await.unwrap_err();
    assert_eq!(fields(&err), ["amount", "customer_agreement"]);
    let mut yen = partial(&kept.id, 1_000);
    yen.amount = Some(aftersales_protos::common::v1::Money {
        minor_units: 1_000,
        currency: "JPY".into(),
    });
    let err = app.client.agree_partial_refund(yen).await.unwrap_err();
    assert_eq!(fields(&err), ["amount.currency"]);
    let agreed = app
        .client
        .agree_partial_refund(partial(&kept.id, 19_900))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(agreed.status, pb::ReturnStatus::Refunded as i32);
    let agreement = agreed.partial_agreement.clone().unwrap();
    assert_eq!(agreement.amount, Some(cny(19_900)));
    assert_eq!(agreement.customer_agreement, "chat-msg-8812");
    assert_eq!(
        agreement.reason,
        "a scratch on the lid; the customer keeps the kettle"
    );
    let refund = app
        .client
        .get_refund(pb::GetRefundRequest {
            return_id: kept.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refund.kind, pb::RefundKind::NegotiatedPartial as i32);
    assert_eq!(refund.amount, Some(cny(19_900)));
    let err = app
        .client
        .book_pickup(pb::BookPickupRequest {
            return_id: kept.id.clone(),
            carrier: "simulated".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "the goods stay");

    // The price difference: (199.00 − 179.00) × 2, within 15 days, once per order line.
    let paid = app
        .client
        .request_price_difference_refund(price_claim("", 19_900, 17_900, 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paid.state, pb::RefundState::Succeeded as i32);
    assert_eq!(paid.kind, pb::RefundKind::PriceDifference as i32);
    assert_eq!(paid.amount, Some(cny(4_000)));
    assert!(paid.return_id.is_empty());
    assert_eq!(paid.order_id, "order-9");
    let err = app
        .client
        .request_price_difference_refund(price_claim("", 19_900, 15_900, 3))
        .await
        .unwrap_err();
    assert_eq!(refused_by(&err), "price_difference_already_refunded");
    let mut other_line = price_claim("", 19_900, 19_900, 3);
    other_line.sku = "KETTLE-2".into();
    let err = app
        .client
        .request_price_difference_refund(other_line.clone())
        .await
        .unwrap_err();
    assert_eq!(refused_by(&err), "price_not_lower");
    other_line.current_unit_price = Some(cny(10_000));
    other_line.purchased_at = Some(crate::helpers::ts(Utc::now() - Duration::days(20)));
    let err = app
        .client
        .request_price_difference_refund(other_line)
        .await
        .unwrap_err();
    assert_eq!(refused_by(&err), "price_protection_window_over");
    let mut bad = price_claim("", 19_900, 17_900, 3);
    bad.quantity = 0;
    bad.paid_unit_price = None;
    bad.purchased_at = Some(crate::helpers::ts(Utc::now() + Duration::days(2)));
    let err = app
        .client
        .request_price_difference_refund(bad)
        .await
        .unwrap_err();
    assert_eq!(
        fields(&err),
        ["quantity", "paid_unit_price", "purchased_at"]
    );

    assert_eq!(
        app.payments.payments().len(),
        4,
        "refund-only twice, the partial refund, the price difference"
    );
    assert_eq!(refunds_succeeded(&app).await, 4);
    app.stop().await;
}

#[tokio::test]
async fn each_variant_has_its_rule_and_amount_on_postgres_and_redis() {
    rules_and_amounts(Backend::Postgres).await;
}

#[tokio::test]
async fn each_variant_has_its_rule_and_amount_on_sqlite_in_process() {
    rules_and_amounts(Backend::Sqlite).await;
}

/// Runs `n` copies of a call at once, each on its own task.
pub(crate) async fn at_once<T, F, Fut>(n: usize, call: F) -> Vec<Result<T, Status>>
where
    T: Send + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, Status>> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(call())).collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

async fn concurrent_retries_pay_once(backend: Backend) {
    let app = spawn(backend).await;
    let client = app.client.clone();

    // Refund-only, retried with its key five times at once: one return, one payment.
    let mut keyed = refund_only(pb::ReturnReason::NotReceived, 19_900, 2);
    keyed.idempotency_key = "lost-parcel-1".into();
    let results = at_once(5, || {
        let mut c = client.clone();
        let r = keyed.clone();
        async move { c.request_return(r).await.map(|r| r.into_inner()) }
    })
    .await;
    let ids: Vec<String> = results.into_iter().map(|r| r.unwrap().id).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM returns").await, 1);

    // A negotiated partial refund agreed five times at once: one refund, one payment.
    let kept = client
        .clone()
        .request_return(request(
            pb::ReturnReason::NotAsDescribed,
            pb::Outcome::Refund,
            yesterday(),
        ))
        .await
        .unwrap()
        .into_inner();
    let results = at_once(5, || {
        let mut c = client.clone();
        let r = partial(&kept.id, 10_000);
        async move { c.agree_partial_refund(r).await.map(|r| r.into_inner()) }
    })
    .await;
    for r in results {
        let r = r.unwrap();
        assert_eq!(r.status, pb::ReturnStatus::Refunded as i32);
    }

    // A price difference claimed five times at once with one key, and five times with
    // fresh keys: one refund, one payment; the others are refused by the once-per-line
    // rule.
    let results = at_once(5, || {
        let mut c = client.clone();
        let r = price_claim("price-drop-1", 19_900, 17_900, 3);
        async move {
            c.request_price_difference_refund(r)
                .await
                .map(|r| r.into_inner())
        }
    })
    .await;
    let refund_ids: Vec<String> = results.into_iter().map(|r| r.unwrap().id).collect();
    assert!(
        refund_ids.iter().all(|id| *id == refund_ids[0]),
        "{refund_ids:?}"
    );
    let keys = std::sync::atomic::AtomicUsize::new(0);
    let results = at_once(5, || {
        let mut c = client.clone();
        let n = keys.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let r = price_claim(&format!("other-key-{n}"), 19_900, 17_900, 3);
        async move {
            c.request_price_difference_refund(r)
                .await
                .map(|r| r.into_inner())
        }
    })
    .await;
    for r in results {
        assert_eq!(
            refused_by(&r.unwrap_err()),
            "price_difference_already_refunded"
        );
    }

    // And every pending-refund payer at once (the API, the worker, a second replica).
    let paid_ids = [ids[0].clone(), kept.id.clone()];
    for return_id in &paid_ids {
        let refund_id = app
            .core
            .get_return(return_id)
            .await
            .unwrap()
            .rma
            .refund_id
            .unwrap();
        let (a, b, c) = tokio::join!(
            app.core.pay_refund(&refund_id),
            app.core.pay_refund(&refund_id),
            app.core.pay_refund(&refund_id)
        );
        a.unwrap();
        b.unwrap();
        c.unwrap();
    }
    let mut paid: Vec<i64> = app.payments.payments().iter().map(|m| m.minor).collect();
    paid.sort();
    assert_eq!(paid, [4_000, 10_000, 39_800], "each variant paid once");
    assert_eq!(refunds_succeeded(&app).await, 3);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM refunds").await, 3);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_retries_pay_each_variant_once_on_postgres_and_redis() {
    concurrent_retries_pay_once(Backend::Postgres).await;
}

#[tokio::test]
async fn concurrent_retries_pay_each_variant_once_on_sqlite_in_process() {
    concurrent_retries_pay_once(Backend::Sqlite).await;
}

/// A process sends the pending refund to the provider and dies before recording the
/// answer; the worker's retry finds the provider paid it and records that, paying nothing
/// more.
async fn crash_then_retry(app: &mut TestApp, refund_id: &str, amount: Money) {
    let pending = refund_when(app, refund_id, |_| true).await;
    assert_eq!(
        (pending.state, pending.attempts),
        (pb::RefundState::Pending as i32, 1),
        "the first attempt timed out"
    );
    let sent = PaymentProvider::Simulated(app.payments.clone())
        .refund(refund_id, &pending.order_id, &amount)
        .await;
    let PaymentOutcome::Paid { reference } = sent else {
        panic!("the provider paid: {sent:?}");
    };
    let settled = refund_when(app, refund_id, |r| {
        r.state == pb::RefundState::Succeeded as i32
    })
    .await;
    assert_eq!(settled.provider_reference, reference);
}

async fn a_crash_between_sending_and_recording_pays_once(backend: Backend) {
    let mut app = spawn(backend).await;

    app.payments.fail_next_transiently(1);
    let lost = app
        .client
        .request_return(refund_only(pb::ReturnReason::NotReceived, 19_900, 2))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        lost.status,
        pb::ReturnStatus::Approved as i32,
        "refund pending"
    );
    crash_then_retry(&mut app, &lost.refund_id, Money::new(39_800, "CNY")).await;
    assert_eq!(
        app.get(&lost.id).await.status,
        pb::ReturnStatus::Refunded as i32
    );

    let kept = app
        .client
        .request_return(request(
            pb::ReturnReason::NotAsDescribed,
            pb::Outcome::Refund,
            yesterday(),
        ))
        .await
        .unwrap()
        .into_inner();
    app.payments.fail_next_transiently(1);
    let agreed = app
        .client
        .agree_partial_refund(partial(&kept.id, 8_000))
        .await
        .unwrap()
        .into_inner();
    let err = app
        .client
        .cancel_return(pb::CancelReturnRequest {
            return_id: kept.id.clone(),
            reason: "changed my mind".into(),
            actor: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "the refund is under way"
    );
    crash_then_retry(&mut app, &agreed.refund_id, Money::new(8_000, "CNY")).await;
    assert_eq!(
        app.get(&kept.id).await.status,
        pb::ReturnStatus::Refunded as i32
    );

    app.payments.fail_next_transiently(1);
    let claimed = app
        .client
        .request_price_difference_refund(price_claim("drop-2", 19_900, 18_900, 1))
        .await
        .unwrap()
        .into_inner();
    crash_then_retry(&mut app, &claimed.id, Money::new(2_000, "CNY")).await;

    // Let any late retry run: still one payment and one event each.
    tokio::time::sleep(StdDuration::from_millis(1_500)).await;
    assert_eq!(app.payments.payments().len(), 3, "paid once each");
    assert_eq!(refunds_succeeded(&app).await, 3);
    for kind in ["refund_only", "negotiated_partial", "price_difference"] {
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) AS n FROM refunds WHERE state = 'succeeded' AND body LIKE '%\"kind\":\"{kind}\"%'"
            ))
            .await,
            1,
            "{kind}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_crash_between_sending_and_recording_pays_each_variant_once_on_postgres_and_redis() {
    a_crash_between_sending_and_recording_pays_once(Backend::Postgres).await;
}

#[tokio::test]
async fn a_crash_between_sending_and_recording_pays_each_variant_once_on_sqlite_in_process() {
    a_crash_between_sending_and_recording_pays_once(Backend::Sqlite).await;
}

/// The provider refuses a variant's refund for good: the return (or order line) is
/// released and the refund can be made again, paid once.
async fn a_refused_payment_releases_what_it_held(backend: Backend) {
    let mut app = spawn(backend).await;

    app.payments.fail_next_permanently(1);
    let lost = app
        .client
        .request_return(refund_only(pb::ReturnReason::NotReceived, 19_900, 2))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lost.status, pb::ReturnStatus::Approved as i32);
    assert!(lost.refund_id.is_empty(), "released");
    let again = app
        .client
        .resolve_return(pb::ResolveReturnRequest {
            return_id: lost.id.clone(),
            resolution: pb::Resolution::Refund as i32,
            reason: String::new(),
            actor: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.status, pb::ReturnStatus::Refunded as i32);

    let kept = app
        .client
        .request_return(request(
            pb::ReturnReason::NotAsDescribed,
            pb::Outcome::Refund,
            yesterday(),
        ))
        .await
        .unwrap()
        .into_inner();
    app.payments.fail_next_permanently(1);
    let refused = app
        .client
        .agree_partial_refund(partial(&kept.id, 6_000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refused.status, pb::ReturnStatus::Approved as i32);
    assert!(refused.refund_id.is_empty() && refused.partial_agreement.is_some());
    let agreed = app
        .client
        .agree_partial_refund(partial(&kept.id, 6_000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(agreed.status, pb::ReturnStatus::Refunded as i32);
    assert_eq!(
        agreed
            .deadlines
            .iter()
            .filter(|d| d.step == pb::Step::Refund as i32 && d.state == "running")
            .count(),
        0
    );

    app.payments.fail_next_permanently(1);
    let failed = app
        .client
        .request_price_difference_refund(price_claim("drop-a", 19_900, 17_900, 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(failed.state, pb::RefundState::Failed as i32);
    let paid = app
        .client
        .request_price_difference_refund(price_claim("drop-b", 19_900, 17_900, 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paid.state, pb::RefundState::Succeeded as i32);

    let mut paid: Vec<i64> = app.payments.payments().iter().map(|m| m.minor).collect();
    paid.sort();
    assert_eq!(paid, [4_000, 6_000, 39_800]);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM outbox WHERE event_type = 'returns.RefundFailed'")
            .await,
        3
    );
    assert_eq!(refunds_succeeded(&app).await, 3);
    app.stop().await;
}

#[tokio::test]
async fn a_refused_payment_releases_what_it_held_on_postgres_and_redis() {
    a_refused_payment_releases_what_it_held(Backend::Postgres).await;
}

#[tokio::test]
async fn a_refused_payment_releases_what_it_held_on_sqlite_in_process() {
    a_refused_payment_releases_what_it_held(Backend::Sqlite).await;
}
