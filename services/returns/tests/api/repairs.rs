//! A return sent to repair settles on what dispatch reports of its repair job (events put
//! on the `dispatch` stream by hand): repaired goods go back to the customer; goods the
//! job could not repair are refunded (or exchanged, by `RETURNS_UNREPAIRABLE`). Every
//! event is delivered twice, and the second delivery changes nothing: one status change,
//! one refund paid once.

use std::time::Duration;

use aftersales_eventbus::{BusMessage, envelope::new_event};
use aftersales_protos::{
    dispatch::v1::CompletionOutcome,
    events::v1::{self as ev, event_envelope::Payload},
    returns::v1 as pb,
};
use aftersales_returns::domain::rma::repair::Unrepairable;
use chrono::Utc;

use crate::helpers::{Backend, TestApp, request, spawn, spawn_with, yesterday};

fn message(job_id: &str, payload: Payload) -> BusMessage {
    let event = new_event("dispatch", "dispatch", job_id, payload, Utc::now());
    BusMessage {
        event_id: event.event_id,
        event_type: event.event_type,
        subject_id: event.subject_id,
        payload: event.payload,
        headers: Default::default(),
    }
}

fn job_created(job_id: &str, return_id: &str) -> BusMessage {
    let payload = Payload::JobCreated(ev::JobCreated {
        job_id: job_id.into(),
        return_id: return_id.into(),
        product_line: "kettle".into(),
        ..Default::default()
    });
    message(job_id, payload)
}

fn job_completed(job_id: &str, return_id: &str, outcome: CompletionOutcome) -> BusMessage {
    let payload = Payload::JobCompleted(ev::JobCompleted {
        job_id: job_id.into(),
        return_id: return_id.into(),
        outcome: outcome as i32,
        ..Default::default()
    });
    message(job_id, payload)
}

fn job_cancelled(job_id: &str) -> BusMessage {
    let payload = Payload::JobCancelled(ev::JobCancelled {
        job_id: job_id.into(),
        reason: "no parts anywhere".into(),
        partner_id: String::new(),
    });
    message(job_id, payload)
}

/// A return with a defect, picked up, received, inspected and resolved as repair.
async fn sent_to_repair(app: &mut TestApp) -> pb::Return {
    let r = app
        .client
        .request_return(request(
            pb::ReturnReason::QualityDefect,
            pb::Outcome::Repair,
            yesterday(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.status, pb::ReturnStatus::Approved as i32);
    app.client
        .book_pickup(pb::BookPickupRequest {
            return_id: r.id.clone(),
            carrier: "simulated".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    app.client
        .receive_return(pb::ReceiveReturnRequest {
            return_id: r.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    app.client
        .record_inspection(pb::RecordInspectionRequest {
            return_id: r.id.clone(),
            lines: vec![pb::InspectionLine {
                sku: "KETTLE-1".into(),
                condition: pb::Condition::Used as i32,
                quality_defect: true,
                disposition: pb::Disposition::Repair as i32,
                note: String::new(),
            }],
            actor: None,
        })
        .await
        .unwrap();
    let sent = app
        .client
        .resolve_return(pb::ResolveReturnRequest {
            return_id: r.id.clone(),
            resolution: pb::Resolution::Repair as i32,
            reason: String::new(),
            actor: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sent.status, pb::ReturnStatus::SentToRepair as i32);
    assert!(!sent.repair_job_id.is_empty(), "the job's id is chosen");
    assert_eq!(app.events(&r.id, "returns.RepairJobRequested").await, 1);
    sent
}

async fn wait_for(app: &mut TestApp, id: &str, status: pb::ReturnStatus) -> pb::Return {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.get(id).await;
        if r.status == status as i32 {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "return {id} stayed in {} instead of {status:?}",
            r.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn processed(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) AS n FROM processed_events")
        .await
}

async fn repaired_goods_go_back_once(backend: Backend) {
    let mut app = spawn(backend).await;
    let r = sent_to_repair(&mut app).await;
    let job = r.repair_job_id.as_str();
    let created = job_created(job, &r.id);
    let done = job_completed(job, &r.id, CompletionOutcome::Fixed);
    app.bus
        .publish("dispatch", &[created.clone(), created, done.clone(), done])
        .await
        .unwrap();
    let repaired = wait_for(&mut app, &r.id, pb::ReturnStatus::Repaired).await;
    assert_eq!(repaired.repair_job_id, r.repair_job_id);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(processed(&app).await, 2, "each event applied once");
    let moves = repaired
        .history
        .iter()
        .filter(|s| s.to == pb::ReturnStatus::Repaired as i32)
        .count();
    assert_eq!(moves, 1);
    assert!(app.payments.payments().is_empty(), "no money moved");

    // A late outcome of the same job changes nothing any more.
    let late = job_completed(job, &r.id, CompletionOutcome::NotFixed);
    app.bus.publish("dispatch", &[late]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.get(&r.id).await.status,
        pb::ReturnStatus::Repaired as i32
    );
    assert!(app.payments.payments().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn repaired_goods_go_back_once_on_postgres_and_redis() {
    repaired_goods_go_back_once(Backend::Postgres).await;
}

#[tokio::test]
async fn repaired_goods_go_back_once_on_sqlite_in_process() {
    repaired_goods_go_back_once(Backend::Sqlite).await;
}

async fn unrepairable_goods_are_refunded_once(backend: Backend) {
    let mut app = spawn(backend).await;
    let r = sent_to_repair(&mut app).await;
    let job = r.repair_job_id.as_str();
    // The job is cancelled: its event names only the job, whose id the return chose (no
    // `JobCreated` needed first), and comes twice.
    let cancelled = job_cancelled(job);
    app.bus
        .publish("dispatch", &[cancelled.clone(), cancelled])
        .await
        .unwrap();
    let refunded = wait_for(&mut app, &r.id, pb::ReturnStatus::Refunded).await;
    assert!(!refunded.refund_id.is_empty());
    let late = job_completed(job, &r.id, CompletionOutcome::NotFixed);
    app.bus
        .publish("dispatch", &[job_created(job, &r.id), late.clone(), late])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.payments.payments().len(), 1, "paid once");
    assert_eq!(app.events(&r.id, "returns.RefundSucceeded").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM refunds").await, 1);
    assert_eq!(processed(&app).await, 3);
    app.stop().await;
}

#[tokio::test]
async fn unrepairable_goods_are_refunded_once_on_postgres_and_redis() {
    unrepairable_goods_are_refunded_once(Backend::Postgres).await;
}

#[tokio::test]
async fn unrepairable_goods_are_refunded_once_on_sqlite_in_process() {
    unrepairable_goods_are_refunded_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn by_policy_unrepairable_goods_are_exchanged_once() {
    let mut app = spawn_with(Backend::Sqlite, |config| {
        config.repair.unrepairable = Unrepairable::Exchange;
    })
    .await;
    let r = sent_to_repair(&mut app).await;
    let unfixed = job_completed(&r.repair_job_id, &r.id, CompletionOutcome::NeedsParts);
    app.bus
        .publish("dispatch", &[unfixed.clone(), unfixed])
        .await
        .unwrap();
    wait_for(&mut app, &r.id, pb::ReturnStatus::Exchanged).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.events(&r.id, "returns.ExchangeShipmentRequested").await,
        1
    );
    assert!(app.payments.payments().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn jobs_of_tickets_leave_returns_alone() {
    let mut app = spawn(Backend::Sqlite).await;
    let r = sent_to_repair(&mut app).await;
    let ticket_job = job_completed("job-t1", "", CompletionOutcome::NotFixed);
    app.bus
        .publish("dispatch", &[ticket_job, job_cancelled("job-t2")])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(processed(&app).await, 2);
    assert_eq!(
        app.get(&r.id).await.status,
        pb::ReturnStatus::SentToRepair as i32
    );
    app.stop().await;
}
