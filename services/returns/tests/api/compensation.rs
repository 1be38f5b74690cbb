//! Compensation on a ticket, with real tokens: each role approves up to its limit at once,
//! above it the request waits for the next level (refused for a lower approver and for
//! the requester); cash is paid exactly once through the payment port (under concurrent
//! retries with the same key, and across a crash between sending and recording); coupons,
//! gifts and warranties are granted without a payment; bad input is named by field.

use std::time::Duration as StdDuration;

use aftersales_platform::{auth::roles, status::field_violations};
use aftersales_protos::{
    common::v1 as common,
    returns::v1::{self as pb, return_service_client::ReturnServiceClient},
};
use aftersales_returns::{
    domain::{Money, refund::PaymentOutcome},
    ports::PaymentProvider,
};
use tonic::{Code, Status, transport::Channel};

use crate::{
    helpers::{Backend, Desk, TestApp, bearer, cny},
    variants::at_once,
};

fn ask(kind: pb::CompensationKind, minor: i64) -> pb::RequestCompensationRequest {
    pb::RequestCompensationRequest {
        idempotency_key: String::new(),
        ticket_id: "ticket-7".into(),
        customer_id: "cust-9".into(),
        order_id: String::new(),
        kind: kind as i32,
        amount: Some(cny(minor)),
        warranty_months: if kind == pb::CompensationKind::ExtendedWarranty {
            24
        } else {
            0
        },
        reason: "delivery a week late; call 13812345678".into(),
        actor: None,
    }
}

fn approve(id: &str) -> pb::ApproveCompensationRequest {
    pb::ApproveCompensationRequest {
        idempotency_key: String::new(),
        compensation_id: id.into(),
        actor: None,
    }
}

fn status(c: &pb::Compensation) -> pb::CompensationStatus {
    pb::CompensationStatus::try_from(c.status).unwrap()
}

async fn request(
    client: &mut ReturnServiceClient<Channel>,
    body: pb::RequestCompensationRequest,
    token: &str,
) -> Result<pb::Compensation, Status> {
    client
        .request_compensation(bearer(body, token))
        .await
        .map(tonic::Response::into_inner)
}

/// The rule a refusal names, and its detail.
fn refused(err: &Status) -> (String, String) {
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let rest = err
        .message()
        .strip_prefix("refused by rule ")
        .unwrap_or_else(|| panic!("no rule named: {}", err.message()));
    let (rule, detail) = rest.split_once(':').unwrap();
    (rule.to_owned(), detail.trim().to_owned())
}

async fn events(app: &TestApp, event_type: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) AS n FROM outbox WHERE event_type = 'returns.{event_type}'"
    ))
    .await
}

/// Waits (up to 15 s) until `check` holds for the compensation `id`, and answers it.
async fn compensation_when(
    desk: &mut Desk,
    id: &str,
    check: impl Fn(&pb::Compensation) -> bool,
) -> pb::Compensation {
    let token = desk.token("analyst-1", roles::ANALYST);
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(15);
    loop {
        let found = desk
            .app
            .client
            .get_compensation(bearer(pb::GetCompensationRequest { id: id.into() }, &token))
            .await
            .unwrap()
            .into_inner();
        if check(&found) {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the compensation never got there: {found:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

async fn approval_limits_follow_the_token_role(backend: Backend) {
    let desk = Desk::spawn(backend).await;
    let agent = desk.token("agent-1", roles::AGENT);
    let other_agent = desk.token("agent-2", roles::AGENT);
    let supervisor = desk.token("sup-1", roles::SUPERVISOR);
    let manager = desk.token("mgr-1", roles::MANAGER);
    let analyst = desk.token("analyst-1", roles::ANALYST);
    let client = &mut desk.app.client.clone();

    // Within the agent's limit: approved at once and paid.
    let at_limit = request(client, ask(pb::CompensationKind::Cash, 5_000), &agent)
        .await
        .unwrap();
    assert_eq!(status(&at_limit), pb::CompensationStatus::Paid);
    assert_eq!(
        (at_limit.decided_by.as_str(), at_limit.decided_role.as_str()),
        ("agent-1", "agent")
    );
    assert!(!at_limit.reason.contains("13812345678"), "masked");

    // Above it: waits. A body claiming the manager's role changes nothing.
    let mut claimed = ask(pb::CompensationKind::Cash, 5_001);
    claimed.actor = Some(common::Actor {
        id: "agent-1".into(),
        role: common::ActorRole::Manager as i32,
    });
    let waiting = request(client, claimed, &agent).await.unwrap();
    assert_eq!(status(&waiting), pb::CompensationStatus::PendingApproval);
    assert_eq!(
        (
            waiting.requested_role.as_str(),
            waiting.requester_limit_minor
        ),
        ("agent", 5_000)
    );
    assert_eq!(events(&desk.app, "CompensationRequested").await, 1);

    // Another agent's limit is too low; the requester may not approve their own.
    let low = client
        .approve_compensation(bearer(approve(&waiting.id), &other_agent))
        .await
        .unwrap_err();
    let (rule, detail) = refused(&low);
    assert_eq!(rule, "compensation_over_approval_limit");
    assert!(detail.contains("agent approval limit of 5000"), "{detail}");
    let own = client
        .approve_compensation(bearer(approve(&waiting.id), &agent))
        .await
        .unwrap_err();
    assert_eq!(refused(&own).0, "compensation_self_approval");

    // The next level approves it, and it is paid.
    let approved = client
        .approve_compensation(bearer(approve(&waiting.id), &supervisor))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status(&approved), pb::CompensationStatus::Paid);
    assert_eq!(
        (approved.decided_by.as_str(), approved.decided_role.as_str()),
        ("sup-1", "supervisor")
    );
    let again = client
        .approve_compensation(bearer(approve(&waiting.id), &manager))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "decided already");

    // A supervisor's limit and the manager's above it.
    let big = request(client, ask(pb::CompensationKind::Cash, 50_001), &supervisor)
        .await
        .unwrap();
    assert_eq!(status(&big), pb::CompensationStatus::PendingApproval);
    let own = client
        .approve_compensation(bearer(approve(&big.id), &supervisor))
        .await
        .unwrap_err();
    assert_eq!(refused(&own).0, "compensation_self_approval");
    let low = client
        .approve_compensation(bearer(approve(&big.id), &other_agent))
        .await
        .unwrap_err();
    assert!(refused(&low).1.contains("5000"));
    let by_manager = client
        .approve_compensation(bearer(approve(&big.id), &manager))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status(&by_manager), pb::CompensationStatus::Paid);
    assert_eq!(by_manager.decided_role, "manager");
    let within = request(client, ask(pb::CompensationKind::Cash, 500_000), &manager)
        .await
        .unwrap();
    assert_eq!(status(&within), pb::CompensationStatus::Paid);
    let beyond = request(client, ask(pb::CompensationKind::Cash, 500_001), &manager)
        .await
        .unwrap_err();
    assert_eq!(refused(&beyond).0, "compensation_over_every_limit");

    // A rejection needs a covering limit too (or is the requester withdrawing).
    let gift = request(client, ask(pb::CompensationKind::Gift, 20_000), &agent)
        .await
        .unwrap();
    let reject = |token: &str| {
        bearer(
            pb::RejectCompensationRequest {
                idempotency_key: String::new(),
                compensation_id: gift.id.clone(),
                reason: "too generous".into(),
                actor: None,
            },
            token,
        )
    };
    let low = client
        .reject_compensation(reject(&other_agent))
        .await
        .unwrap_err();
    assert_eq!(refused(&low).0, "compensation_over_approval_limit");
    let rejected = client
        .reject_compensation(reject(&supervisor))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status(&rejected), pb::CompensationStatus::Rejected);
    assert_eq!(rejected.rejection_reason, "too generous");

    // Who may call at all; an analyst reads.
    let denied = request(client, ask(pb::CompensationKind::Cash, 1), &analyst)
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let listed = client
        .list_compensations(bearer(
            pb::ListCompensationsRequest {
                ticket_id: "ticket-7".into(),
                status: pb::CompensationStatus::Paid as i32,
                page_size: 2,
                page_token: String::new(),
            },
            &analyst,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.compensations.len(), 2);
    assert_eq!(listed.compensations[0].id, within.id, "newest first");
    let rest = client
        .list_compensations(bearer(
            pb::ListCompensationsRequest {
                ticket_id: "ticket-7".into(),
                status: pb::CompensationStatus::Paid as i32,
                page_size: 2,
                page_token: listed.next_page_token.clone(),
            },
            &analyst,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.compensations.len(), 2);
    assert!(rest.next_page_token.is_empty());

    let mut paid: Vec<i64> = desk
        .app
        .payments
        .payments()
        .iter()
        .map(|m| m.minor)
        .collect();
    paid.sort();
    assert_eq!(paid, [5_000, 5_001, 50_001, 500_000]);
    assert_eq!(events(&desk.app, "CompensationPaid").await, 4);
    assert_eq!(events(&desk.app, "CompensationRejected").await, 1);
    let audited = desk
        .app
        .count(
            "SELECT COUNT(*) AS n FROM audit_records WHERE rpc LIKE '%Compensation' \
             AND rpc NOT LIKE '%GetCompensation' AND rpc NOT LIKE '%ListCompensations'",
        )
        .await;
    assert!(
        audited >= 14,
        "every request, approval and rejection: {audited}"
    );
    let approvals = desk
        .app
        .count(&format!(
            "SELECT COUNT(*) AS n FROM audit_records WHERE rpc LIKE '%ApproveCompensation' \
             AND target = 'compensation:{}' AND subject = 'sup-1'",
            waiting.id
        ))
        .await;
    assert_eq!(approvals, 1, "the approval is recorded with its approver");
    desk.stop().await;
}

#[tokio::test]
async fn approval_limits_follow_the_token_role_on_postgres_and_redis() {
    approval_limits_follow_the_token_role(Backend::Postgres).await;
}

#[tokio::test]
async fn approval_limits_follow_the_token_role_on_sqlite_in_process() {
    approval_limits_follow_the_token_role(Backend::Sqlite).await;
}

async fn cash_is_paid_once_under_concurrent_retries(backend: Backend) {
    let mut desk = Desk::spawn(backend).await;
    let agent = desk.token("agent-1", roles::AGENT);
    let supervisor = desk.token("sup-1", roles::SUPERVISOR);
    let other_supervisor = desk.token("sup-2", roles::SUPERVISOR);

    // The same keyed request eight times at once: one compensation, paid once.
    let mut keyed = ask(pb::CompensationKind::Cash, 3_000);
    keyed.idempotency_key = "ticket-7-goodwill".into();
    let client = desk.app.client.clone();
    let results = at_once(8, || {
        let (mut client, body, token) = (client.clone(), keyed.clone(), agent.clone());
        async move { request(&mut client, body, &token).await }
    })
    .await;
    let ids: Vec<String> = results.into_iter().map(|r| r.unwrap().id).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    compensation_when(&mut desk, &ids[0], |c| {
        c.status == pb::CompensationStatus::Paid as i32
    })
    .await;

    // Approvals of one waiting compensation: eight with one key, and two approvers racing.
    let client = &mut desk.app.client.clone();
    let waiting = request(client, ask(pb::CompensationKind::Cash, 9_000), &agent)
        .await
        .unwrap();
    let mut keyed = approve(&waiting.id);
    keyed.idempotency_key = "approve-once".into();
    let shared = desk.app.client.clone();
    let results = at_once(8, || {
        let (mut client, body, token) = (shared.clone(), keyed.clone(), supervisor.clone());
        async move {
            client
                .approve_compensation(bearer(body, &token))
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let raced = request(client, ask(pb::CompensationKind::Cash, 7_000), &agent)
        .await
        .unwrap();
    let (mut a, mut b) = (desk.app.client.clone(), desk.app.client.clone());
    let (first, second) = tokio::join!(
        a.approve_compensation(bearer(approve(&raced.id), &supervisor)),
        b.approve_compensation(bearer(approve(&raced.id), &other_supervisor)),
    );
    assert_eq!(
        [first.is_ok(), second.is_ok()]
            .iter()
            .filter(|ok| **ok)
            .count(),
        1,
        "one approval wins: {first:?} {second:?}"
    );
    for id in [&waiting.id, &raced.id] {
        compensation_when(&mut desk, id, |c| {
            c.status == pb::CompensationStatus::Paid as i32
        })
        .await;
    }

    // Let any late retry run: still one payment and one event each.
    tokio::time::sleep(StdDuration::from_millis(1_500)).await;
    let mut paid: Vec<i64> = desk
        .app
        .payments
        .payments()
        .iter()
        .map(|m| m.minor)
        .collect();
    paid.sort();
    assert_eq!(paid, [3_000, 7_000, 9_000], "each paid once");
    assert_eq!(events(&desk.app, "CompensationPaid").await, 3);
    assert_eq!(events(&desk.app, "CompensationApproved").await, 3);
    assert_eq!(
        desk.app
            .count("SELECT COUNT(*) AS n FROM compensations")
            .await,
        3
    );
    desk.stop().await;
}

#[tokio::test]
async fn cash_is_paid_once_under_concurrent_retries_on_postgres_and_redis() {
    cash_is_paid_once_under_concurrent_retries(Backend::Postgres).await;
}

#[tokio::test]
async fn cash_is_paid_once_under_concurrent_retries_on_sqlite_in_process() {
    cash_is_paid_once_under_concurrent_retries(Backend::Sqlite).await;
}

/// A process sends the payment and dies before recording the answer; the worker's retry
/// finds the provider paid it and records that, paying nothing more.
async fn a_crash_between_sending_and_recording_pays_once(backend: Backend) {
    let mut desk = Desk::spawn(backend).await;
    let agent = desk.token("agent-1", roles::AGENT);
    let supervisor = desk.token("sup-1", roles::SUPERVISOR);
    let client = &mut desk.app.client.clone();

    desk.app.payments.fail_next_transiently(1);
    let mut on_order = ask(pb::CompensationKind::Cash, 4_000);
    on_order.order_id = "order-9".into();
    let pending = request(client, on_order, &agent).await.unwrap();
    assert_eq!(
        (status(&pending), pending.payment_attempts),
        (pb::CompensationStatus::Approved, 1),
        "the first attempt timed out"
    );
    crash_then_retry(&mut desk, &pending.id, Money::new(4_000, "CNY")).await;

    // The same after an approval.
    let waiting = request(client, ask(pb::CompensationKind::Cash, 8_000), &agent)
        .await
        .unwrap();
    desk.app.payments.fail_next_transiently(1);
    let approved = client
        .approve_compensation(bearer(approve(&waiting.id), &supervisor))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status(&approved), pb::CompensationStatus::Approved);
    crash_then_retry(&mut desk, &waiting.id, Money::new(8_000, "CNY")).await;

    // Refused for good: failed, announced once, never retried.
    desk.app.payments.fail_next_permanently(1);
    let refused = request(client, ask(pb::CompensationKind::Cash, 1_000), &agent)
        .await
        .unwrap();
    assert_eq!(status(&refused), pb::CompensationStatus::PaymentFailed);

    tokio::time::sleep(StdDuration::from_millis(1_500)).await;
    assert_eq!(desk.app.payments.payments().len(), 2, "paid once each");
    assert_eq!(events(&desk.app, "CompensationPaid").await, 2);
    assert_eq!(events(&desk.app, "CompensationPaymentFailed").await, 1);
    desk.stop().await;
}

async fn crash_then_retry(desk: &mut Desk, id: &str, amount: Money) {
    let sent = PaymentProvider::Simulated(desk.app.payments.clone())
        .compensate(id, "cust-9", None, &amount)
        .await;
    let PaymentOutcome::Paid { reference } = sent else {
        panic!("the provider paid: {sent:?}");
    };
    let settled = compensation_when(desk, id, |c| {
        c.status == pb::CompensationStatus::Paid as i32
    })
    .await;
    assert_eq!(settled.provider_reference, reference);
}

#[tokio::test]
async fn a_crash_between_sending_and_recording_pays_once_on_postgres_and_redis() {
    a_crash_between_sending_and_recording_pays_once(Backend::Postgres).await;
}

#[tokio::test]
async fn a_crash_between_sending_and_recording_pays_once_on_sqlite_in_process() {
    a_crash_between_sending_and_recording_pays_once(Backend::Sqlite).await;
}

async fn other_kinds_are_granted_without_payment_and_bad_input_is_named(backend: Backend) {
    let desk = Desk::spawn(backend).await;
    let agent = desk.token("agent-1", roles::AGENT);
    let supervisor = desk.token("sup-1", roles::SUPERVISOR);
    let client = &mut desk.app.client.clone();

    for kind in [
        pb::CompensationKind::Coupon,
        pb::CompensationKind::Gift,
        pb::CompensationKind::ExtendedWarranty,
    ] {
        let granted = request(client, ask(kind, 2_000), &agent).await.unwrap();
        assert_eq!(
            status(&granted),
            pb::CompensationStatus::Granted,
            "{kind:?}"
        );
        assert_eq!(granted.payment_attempts, 0);
    }
    let warranty = request(
        client,
        ask(pb::CompensationKind::ExtendedWarranty, 30_000),
        &agent,
    )
    .await
    .unwrap();
    assert_eq!(status(&warranty), pb::CompensationStatus::PendingApproval);
    let granted = client
        .approve_compensation(bearer(approve(&warranty.id), &supervisor))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status(&granted), pb::CompensationStatus::Granted);
    assert_eq!(granted.warranty_months, 24);
    assert_eq!(desk.app.payments.calls(), 0, "nothing went to the provider");
    assert_eq!(events(&desk.app, "CompensationGranted").await, 4);
    assert_eq!(events(&desk.app, "CompensationPaid").await, 0);

    let fields = |err: Status| -> Vec<String> {
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        field_violations(&err)
            .into_iter()
            .map(|v| v.field)
            .collect()
    };
    let empty = pb::RequestCompensationRequest::default();
    let err = request(client, empty, &agent).await.unwrap_err();
    assert_eq!(
        fields(err),
        ["ticket_id", "customer_id", "kind", "amount", "reason"]
    );
    let mut zero = ask(pb::CompensationKind::Cash, 0);
    zero.amount = Some(common::Money {
        minor_units: 0,
        currency: "yuan".into(),
    });
    let err = request(client, zero, &agent).await.unwrap_err();
    assert_eq!(fields(err), ["amount.currency"]);
    let err = request(client, ask(pb::CompensationKind::Cash, 0), &agent)
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["amount.minor_units"]);
    let mut months = ask(pb::CompensationKind::Coupon, 100);
    months.warranty_months = 12;
    let err = request(client, months, &agent).await.unwrap_err();
    assert_eq!(fields(err), ["warranty_months"]);
    let mut none = ask(pb::CompensationKind::ExtendedWarranty, 100);
    none.warranty_months = 0;
    let err = request(client, none, &agent).await.unwrap_err();
    assert_eq!(fields(err), ["warranty_months"]);
    let err = client
        .reject_compensation(bearer(
            pb::RejectCompensationRequest {
                compensation_id: warranty.id.clone(),
                ..Default::default()
            },
            &supervisor,
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["reason"]);
    let err = client
        .approve_compensation(bearer(approve("no-such-compensation"), &supervisor))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    desk.stop().await;
}

#[tokio::test]
async fn other_kinds_are_granted_without_payment_on_postgres_and_redis() {
    other_kinds_are_granted_without_payment_and_bad_input_is_named(Backend::Postgres).await;
}

#[tokio::test]
async fn other_kinds_are_granted_without_payment_on_sqlite_in_process() {
    other_kinds_are_granted_without_payment_and_bad_input_is_named(Backend::Sqlite).await;
}
