//! Third-party inspection: a return inspection cannot judge goes to a lab with its own
//! step deadline, and the lab's verdict settles it like an inspection would.

use std::sync::Arc;

use aftersales_deadlines::worker::{Deadlines, Due};
use aftersales_platform::{clock::ManualClock, status::field_violations};
use aftersales_protos::returns::v1 as pb;
use aftersales_returns::{domain::Step, usecases::deadlines::ReturnsDeadline};
use chrono::{Duration, Utc};
use tonic::Code;

use crate::{
    flow::{inspected_line, to_inspected},
    helpers::{Backend, TestApp, cny, spawn, spawn_with},
};

fn ask_lab(return_id: &str) -> pb::RequestThirdPartyInspectionRequest {
    pb::RequestThirdPartyInspectionRequest {
        return_id: return_id.into(),
        lab: "cqc-lab-shanghai".into(),
        reason: "the heating element may or may not be faulty".into(),
        actor: None,
    }
}

fn verdict(return_id: &str, verdict: pb::ThirdPartyVerdict) -> pb::RecordThirdPartyResultRequest {
    pb::RecordThirdPartyResultRequest {
        return_id: return_id.into(),
        lab_reference: "CQC-2026-0042".into(),
        verdict: verdict as i32,
        notes: "tested at 230 V".into(),
        actor: None,
    }
}

/// An inspected return that inspection could not judge, sent to the lab.
async fn at_the_lab(app: &mut TestApp) -> pb::Return {
    let (r, _) = to_inspected(
        app,
        pb::ReturnReason::NoReason,
        inspected_line(pb::Condition::Used, false, pb::Disposition::Restock),
    )
    .await;
    let waiting = app
        .client
        .request_third_party_inspection(ask_lab(&r.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(waiting.status, pb::ReturnStatus::AwaitingThirdParty as i32);
    let lab = waiting.third_party_inspection.clone().unwrap();
    assert_eq!(lab.lab, "cqc-lab-shanghai");
    let deadline = waiting
        .deadlines
        .iter()
        .find(|d| d.step == pb::Step::ThirdPartyInspection as i32)
        .unwrap();
    assert_eq!(deadline.state, "running");
    assert_eq!(deadline.due_at, lab.due_at);
    let requested = lab.requested_at.unwrap().seconds;
    assert_eq!(
        lab.due_at.unwrap().seconds - requested,
        7 * 86_400,
        "the default target"
    );
    assert_eq!(
        app.events(&r.id, "returns.ThirdPartyInspectionRequested")
            .await,
        1
    );
    waiting
}

async fn both_verdicts(backend: Backend) {
    let mut app = spawn(backend).await;

    // A confirmed defect: refunded with the return shipping, as a defect found at
    // inspection would be.
    let defect = at_the_lab(&mut app).await;
    let inspected = app
        .client
        .record_third_party_result(verdict(&defect.id, pb::ThirdPartyVerdict::DefectConfirmed))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inspected.status, pb::ReturnStatus::Inspected as i32);
    assert!(inspected.inspection.iter().all(|l| l.quality_defect));
    let lab = inspected.third_party_inspection.clone().unwrap();
    assert_eq!(lab.verdict, pb::ThirdPartyVerdict::DefectConfirmed as i32);
    assert_eq!(lab.lab_reference, "CQC-2026-0042");
    let lab_deadline = inspected
        .deadlines
        .iter()
        .find(|d| d.step == pb::Step::ThirdPartyInspection as i32)
        .unwrap();
    assert_eq!(lab_deadline.state, "met");
    assert_eq!(
        app.events(&defect.id, "returns.ThirdPartyResultRecorded")
            .await,
        1
    );
    let again = app
        .client
        .record_third_party_result(verdict(&defect.id, pb::ThirdPartyVerdict::NoDefect))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "one verdict");
    let refunded = app
        .client
        .resolve_return(pb::ResolveReturnRequest {
            return_id: defect.id.clone(),
            resolution: pb::Resolution::Refund as i32,
            reason: String::new(),
            actor: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refunded.status, pb::ReturnStatus::Refunded as i32);
    let refund = app
        .client
        .get_refund(pb::GetRefundRequest {
            refund_id: refunded.refund_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refund.amount, Some(cny(2 * 19_900 + 1_200)));
    assert_eq!(refund.kind, pb::RefundKind::Return as i32);

    // Damage by the customer: the goods count as damaged without a defect, and the return
    // is rejected after inspection.
    let damaged = at_the_lab(&mut app).await;
    let inspected = app
        .client
        .record_third_party_result(verdict(&damaged.id, pb::ThirdPartyVerdict::CustomerDamage))
        .await
        .unwrap()
        .into_inner();
    assert!(
        inspected
            .inspection
            .iter()
            .all(|l| !l.quality_defect && l.condition == pb::Condition::Damaged as i32)
    );
    let rejected = app
        .client
        .resolve_return(pb::ResolveReturnRequest {
            return_id: damaged.id.clone(),
            resolution: pb::Resolution::Reject as i32,
            reason: "damaged by the customer (lab report CQC-2026-0042)".into(),
            actor: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        rejected.status,
        pb::ReturnStatus::RejectedAfterInspection as i32
    );
    assert_eq!(app.payments.payments().len(), 1, "only the defect was paid");
    app.stop().await;
}

#[tokio::test]
async fn both_verdicts_continue_the_flow_on_postgres_and_redis() {
    both_verdicts(Backend::Postgres).await;
}

#[tokio::test]
async fn both_verdicts_continue_the_flow_on_sqlite_in_process() {
    both_verdicts(Backend::Sqlite).await;
}

async fn lab_deadline_fires_at_its_instant_once(backend: Backend) {
    let clock = ManualClock::at(Utc::now());
    let handle = clock.clone();
    let mut app = spawn_with(backend, move |config| {
        config.clock = Arc::new(handle);
        config.targets.third_party = Duration::days(3);
    })
    .await;
    let waiting = at_the_lab_in(&mut app).await;
    let agg = app.core.get_return(&waiting.id).await.unwrap();
    let lab = agg
        .deadlines
        .iter()
        .find(|d| d.step == Step::ThirdPartyInspection)
        .unwrap()
        .clone();
    let batch = [Due {
        member: ReturnsDeadline::Step(lab.id.clone()),
        due_ms: 0,
    }];

    // A millisecond early (a worker with a fast clock): nothing is missed.
    clock.set(lab.due_at - Duration::milliseconds(1));
    app.core.fire(&batch).await.unwrap();
    assert!(!app.get(&waiting.id).await.overdue);
    assert_eq!(
        app.events(&waiting.id, "returns.ReturnStepOverdue").await,
        0
    );

    // At its instant, missed once, however often it is claimed again.
    clock.set(lab.due_at);
    app.core.fire(&batch).await.unwrap();
    app.core.fire(&batch).await.unwrap();
    let overdue = app.get(&waiting.id).await;
    assert!(overdue.overdue);
    let state = overdue
        .deadlines
        .iter()
        .find(|d| d.step == pb::Step::ThirdPartyInspection as i32)
        .unwrap();
    assert_eq!(state.state, "missed");
    assert_eq!(
        app.events(&waiting.id, "returns.ReturnStepOverdue").await,
        1
    );

    // The verdict arriving late still settles the step, as met late.
    let late = app
        .client
        .record_third_party_result(verdict(&waiting.id, pb::ThirdPartyVerdict::NoDefect))
        .await
        .unwrap()
        .into_inner();
    assert!(!late.overdue);
    let state = late
        .deadlines
        .iter()
        .find(|d| d.step == pb::Step::ThirdPartyInspection as i32)
        .unwrap();
    assert_eq!(state.state, "met_late");
    app.stop().await;
}

/// Like [`at_the_lab`], for a service whose lab target is not the default.
async fn at_the_lab_in(app: &mut TestApp) -> pb::Return {
    let (r, _) = to_inspected(
        app,
        pb::ReturnReason::NoReason,
        inspected_line(pb::Condition::Used, false, pb::Disposition::Restock),
    )
    .await;
    app.client
        .request_third_party_inspection(ask_lab(&r.id))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn the_lab_deadline_fires_at_its_instant_once_on_postgres_and_redis() {
    lab_deadline_fires_at_its_instant_once(Backend::Postgres).await;
}

#[tokio::test]
async fn the_lab_deadline_fires_at_its_instant_once_on_sqlite_in_process() {
    lab_deadline_fires_at_its_instant_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn bad_lab_requests_name_the_field_and_illegal_steps_are_refused() {
    let mut app = spawn(Backend::Postgres).await;
    let err = app
        .client
        .request_third_party_inspection(pb::RequestThirdPartyInspectionRequest {
            return_id: "r-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<String> = field_violations(&err)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["lab", "reason"]);
    let err = app
        .client
        .record_third_party_result(pb::RecordThirdPartyResultRequest {
            return_id: "r-1".into(),
            lab_reference: "L-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let fields: Vec<String> = field_violations(&err)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["verdict"]);

    // Only an inspected return goes to the lab, and only a return at the lab has a verdict.
    let r = app
        .client
        .request_return(crate::helpers::request(
            pb::ReturnReason::NoReason,
            pb::Outcome::Refund,
            crate::helpers::yesterday(),
        ))
        .await
        .unwrap()
        .into_inner();
    let early = app
        .client
        .request_third_party_inspection(ask_lab(&r.id))
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    let no_lab = app
        .client
        .record_third_party_result(verdict(&r.id, pb::ThirdPartyVerdict::NoDefect))
        .await
        .unwrap_err();
    assert_eq!(no_lab.code(), Code::FailedPrecondition);
    app.stop().await;
}

/// The lab's deadline goes through the real schedule and worker like every step deadline.
async fn the_worker_fires_a_missed_lab_deadline_once(backend: Backend) {
    let mut app = spawn_with(backend, |config| {
        config.targets.third_party = Duration::seconds(1);
    })
    .await;
    let waiting = at_the_lab_in(&mut app).await;
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let overdue = loop {
        let current = app.get(&waiting.id).await;
        if current.overdue {
            break current;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "the lab deadline never fired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let lab = overdue
        .deadlines
        .iter()
        .find(|d| d.step == pb::Step::ThirdPartyInspection as i32)
        .unwrap();
    assert_eq!(lab.state, "missed");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        app.events(&waiting.id, "returns.ReturnStepOverdue").await,
        1,
        "once"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_worker_fires_a_missed_lab_deadline_once_on_postgres_and_redis() {
    the_worker_fires_a_missed_lab_deadline_once(Backend::Postgres).await;
}

#[tokio::test]
async fn the_worker_fires_a_missed_lab_deadline_once_on_sqlite_in_process() {
    the_worker_fires_a_missed_lab_deadline_once(Backend::Sqlite).await;
}
