//! Returns' `RepairJobRequested` (put on the `returns` stream by hand) creates the return's
//! repair job once, under the id returns chose (or, for an event without one, an id
//! derived from the return and the instant): dispatched like `CreateJob` (an offer with its deadline), referring to
//! the return, without a ticket or a contact; delivered twice, or replayed under another
//! event id, it creates nothing more. Completing the job names the return in
//! `JobCompleted`. Over gRPC, `CreateJob` needs a ticket unless it names a return.

use std::time::Duration as StdDuration;

use aftersales_dispatch::usecases::repair_job_id;
use aftersales_eventbus::{BusMessage, envelope::new_event};
use aftersales_platform::status::field_violations;
use aftersales_protos::{
    dispatch::v1 as pb,
    events::v1::{self as ev, event_envelope::Payload},
    returns::v1::ReturnReason,
};
use chrono::{DateTime, SubsecRound, Utc};
use tonic::Code;

use crate::helpers::{Backend, REGION, TestApp, open_offer, partner_actor, spawn, spec};

fn repair_requested(return_id: &str, job_id: &str, at: DateTime<Utc>) -> BusMessage {
    let payload = Payload::RepairJobRequested(ev::RepairJobRequested {
        return_id: return_id.into(),
        ticket_id: String::new(),
        customer_id: "cust-1".into(),
        lines: Vec::new(),
        region_code: REGION.into(),
        product_line: "appliance".into(),
        reason: ReturnReason::QualityDefect as i32,
        defective_skus: vec!["WM-1".into()],
        warranty: true,
        job_id: job_id.into(),
    });
    let event = new_event("returns", "returns", return_id, payload, at);
    BusMessage {
        event_id: event.event_id,
        event_type: event.event_type,
        subject_id: event.subject_id,
        payload: event.payload,
        headers: Default::default(),
    }
}

async fn wait_processed(app: &TestApp, n: i64) {
    let sql = "SELECT COUNT(*) AS n FROM processed_events";
    for _ in 0..100 {
        if app.count(sql).await >= n {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    panic!("fewer than {n} events were processed");
}

async fn a_return_gets_one_repair_job(backend: Backend) {
    let mut app = spawn(backend).await;
    let partner = app.register(spec("A", 31.201, 121.451)).await;
    let at = Utc::now().trunc_subsecs(3);
    // Returns chose the job's id.
    let id = uuid::Uuid::now_v7().to_string();
    let event = repair_requested("ret-1", &id, at);
    app.bus
        .publish("returns", &[event.clone(), event])
        .await
        .unwrap();
    wait_processed(&app, 1).await;
    let job = app
        .wait_for(&id, |j| j.status == pb::JobStatus::Offered as i32)
        .await;
    assert_eq!(
        (job.return_id.as_str(), job.ticket_id.as_str()),
        ("ret-1", "")
    );
    assert_eq!(job.product_line, "appliance");
    assert!(job.warranty);
    assert!(job.contact.is_none(), "a return's job has no contact");
    assert!(job.fault_description.contains("quality_defect"));
    assert!(job.fault_description.contains("WM-1"));
    assert_eq!(open_offer(&job).partner_id, partner.id);

    // The same request replayed under another event id finds the job there.
    app.bus
        .publish("returns", &[repair_requested("ret-1", &id, at)])
        .await
        .unwrap();
    wait_processed(&app, 2).await;
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM jobs").await, 1);
    assert_eq!(app.events(&id, "dispatch.JobCreated").await, 1);
    assert_eq!(app.events(&id, "dispatch.JobOffered").await, 1);

    // The partner repairs it: `JobCompleted` names the return.
    let accepted = app.answer(&job, true).await;
    assert_eq!(accepted.status, pb::JobStatus::Accepted as i32);
    app.client
        .complete_job(pb::CompleteJobRequest {
            job_id: id.clone(),
            outcome: pb::CompletionOutcome::Fixed as i32,
            actor: Some(partner_actor(&partner.id)),
            ..Default::default()
        })
        .await
        .unwrap();
    let completed = app.published(&id, "dispatch.JobCompleted").await;
    let [Payload::JobCompleted(completed)] = completed.as_slice() else {
        panic!("one JobCompleted, got {completed:?}");
    };
    assert_eq!(completed.return_id, "ret-1");
    app.stop().await;
}

#[tokio::test]
async fn a_return_gets_one_repair_job_on_postgres_and_redis() {
    a_return_gets_one_repair_job(Backend::Postgres).await;
}

#[tokio::test]
async fn a_return_gets_one_repair_job_on_sqlite_in_process() {
    a_return_gets_one_repair_job(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_return_nobody_can_repair_leaves_its_job_unassigned_once() {
    let mut app = spawn(Backend::Sqlite).await;
    let at = Utc::now().trunc_subsecs(3);
    // Written before returns chose job ids: the id follows from the return and instant.
    let event = repair_requested("ret-2", "", at);
    app.bus
        .publish("returns", &[event.clone(), event])
        .await
        .unwrap();
    let id = repair_job_id("ret-2", at);
    wait_processed(&app, 1).await;
    let job = app
        .wait_for(&id, |j| j.status == pb::JobStatus::Unassigned as i32)
        .await;
    assert_eq!(job.return_id, "ret-2");
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(app.events(&id, "dispatch.JobUnassigned").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn create_job_needs_a_ticket_unless_it_names_a_return() {
    let mut app = spawn(Backend::Sqlite).await;
    let mut neither = crate::helpers::job_request("", false);
    neither.contact = None;
    let err = app.client.create_job(neither.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        field_violations(&err)
            .iter()
            .any(|v| v.field == "ticket_id"),
        "{err:?}"
    );
    let mut of_return = neither;
    of_return.return_id = "ret-3".into();
    let job = app.create(of_return).await;
    assert_eq!(
        (job.ticket_id.as_str(), job.return_id.as_str()),
        ("", "ret-3")
    );
    app.stop().await;
}
