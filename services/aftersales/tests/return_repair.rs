//! The return → repair → settle loop through the real binary (`serve returns dispatch`),
//! on PostgreSQL + Redis and on the embedded backends (SQLite files, in-process queue and
//! bus): a return resolved as repair gets one dispatch job (returns' `RepairJobRequested`
//! → dispatch), the partner repairs it and the return ends repaired and shipped back
//! (dispatch's `JobCompleted` → returns); a job that cannot repair the goods ends in a
//! refund paid once (`RETURNS_UNREPAIRABLE=refund`). On both the process is killed
//! (SIGKILL) in the middle of each flow — right after the return is sent to repair, and
//! right after the partner reports the unrepairable job, with the event, its handling and
//! the refund in flight — and started again on the same databases (and Redis; the
//! in-process bus starts empty, and the relays publish their replay window again); on
//! Redis every `RepairJobRequested` and `JobCompleted` is then delivered once more. Every
//! step still happens exactly once (one job per return, one refund, no status twice).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::time::Duration;

use aftersales_eventbus::{BusMessage, EventBus, RedisBus};
use aftersales_protos::{
    common::v1 as common,
    dispatch::v1::{self as dpb, dispatch_service_client::DispatchServiceClient},
    returns::v1::{self as rpb, return_service_client::ReturnServiceClient},
};
use sea_orm::{ConnectionTrait, Database, Statement};
use support::suite::{Backends, DataDir, Launch, Suite};
use tonic::transport::Channel;

const REGION: &str = "310104";

/// The suite the loop runs on: returns and dispatch, repairs in one region, goods that
/// cannot be repaired refunded, a failed refund tried again after a second.
async fn start(backends: &Backends) -> Suite {
    Launch::on(&["returns", "dispatch"], backends)
        .await
        .env("RETURNS_REPAIR_REGION_CODE", REGION)
        .env("RETURNS_UNREPAIRABLE", "refund")
        .env("RETURNS_REFUND_RETRY_AFTER_MS", "1000")
        .spawn()
}

async fn clients(
    suite: &mut Suite,
) -> (ReturnServiceClient<Channel>, DispatchServiceClient<Channel>) {
    (
        ReturnServiceClient::new(suite.channel("returns").await),
        DispatchServiceClient::new(suite.channel("dispatch").await),
    )
}

/// `SELECT COUNT(*) AS n …` on one of the suite's databases.
async fn count(url: &str, sql: &str) -> i64 {
    let db = Database::connect(url).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    let n = row.try_get::<i64>("", "n").unwrap();
    db.close().await.unwrap();
    n
}

/// Delivers again, on Redis, every event of `event_type` the database of `service` has
/// published, as the relay would after a crash between publishing and marking.
async fn redeliver(suite: &Suite, service: &str, event_type: &str) -> usize {
    let Some(prefix) = suite.redis_prefix() else {
        return 0;
    };
    let url = suite.database_url(service);
    let db = Database::connect(&url).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT event_id, stream, subject_id, payload FROM outbox \
                 WHERE event_type = '{event_type}' ORDER BY seq"
            ),
        ))
        .await
        .unwrap();
    db.close().await.unwrap();
    let conn = aftersales_testkit::redis_connection().await.unwrap();
    let reader = aftersales_testkit::redis_connection().await.unwrap();
    let bus = EventBus::Redis(RedisBus::new(conn, reader, prefix.to_owned()));
    for row in &rows {
        let stream: String = row.try_get("", "stream").unwrap();
        let message = BusMessage {
            event_id: row.try_get("", "event_id").unwrap(),
            event_type: event_type.into(),
            subject_id: row.try_get("", "subject_id").unwrap(),
            payload: row.try_get("", "payload").unwrap(),
            headers: Default::default(),
        };
        bus.publish(&stream, &[message]).await.unwrap();
    }
    rows.len()
}

fn partner_actor(id: &str) -> common::Actor {
    common::Actor {
        id: id.into(),
        role: common::ActorRole::Partner as i32,
    }
}

/// A kettle repairer covering the warehouse's region.
fn repairer() -> dpb::PartnerSpec {
    dpb::PartnerSpec {
        name: "Kettle Fix".into(),
        coverage: vec![dpb::Coverage {
            region_code: REGION.into(),
            area: dpb::AreaKind::Urban as i32,
        }],
        location: None,
        service_radius_km: 0.0,
        skills: vec!["kettle".into()],
        daily_capacity: 20,
        active: true,
        insured: true,
        fees: None,
        time_zone: "Asia/Shanghai".into(),
    }
}

/// A faulty kettle returned for repair under ticket `ticket`, picked up, received,
/// inspected with the defect and resolved as repair.
async fn sent_to_repair(returns: &mut ReturnServiceClient<Channel>, ticket: &str) -> rpb::Return {
    let delivered = chrono::Utc::now() - chrono::Duration::days(1);
    let r = returns
        .request_return(rpb::RequestReturnRequest {
            order_id: format!("order-{ticket}"),
            customer_id: "cust-repair".into(),
            ticket_id: ticket.into(),
            lines: vec![rpb::ReturnLine {
                sku: "KETTLE-1".into(),
                product_line: "kettle".into(),
                quantity: 1,
                unit_price: Some(common::Money {
                    minor_units: 19_900,
                    currency: "CNY".into(),
                }),
                delivered_at: Some(prost_types::Timestamp {
                    seconds: delivered.timestamp(),
                    nanos: 0,
                }),
            }],
            reason: rpb::ReturnReason::QualityDefect as i32,
            evidence: vec!["s3://evidence/kettle.jpg".into()],
            desired_outcome: rpb::Outcome::Repair as i32,
            customer_time_zone: "Asia/Shanghai".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status,
        rpb::ReturnStatus::Approved as i32,
        "{}",
        r.eligibility_rule
    );
    returns
        .book_pickup(rpb::BookPickupRequest {
            return_id: r.id.clone(),
            carrier: "simulated".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    returns
        .receive_return(rpb::ReceiveReturnRequest {
            return_id: r.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    returns
        .record_inspection(rpb::RecordInspectionRequest {
            return_id: r.id.clone(),
            lines: vec![rpb::InspectionLine {
                sku: "KETTLE-1".into(),
                condition: rpb::Condition::Used as i32,
                quality_defect: true,
                disposition: rpb::Disposition::Repair as i32,
                note: String::new(),
            }],
            actor: None,
        })
        .await
        .unwrap();
    let sent = returns
        .resolve_return(rpb::ResolveReturnRequest {
            return_id: r.id.clone(),
            resolution: rpb::Resolution::Repair as i32,
            reason: String::new(),
            actor: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sent.status, rpb::ReturnStatus::SentToRepair as i32);
    sent
}

/// The jobs of `ticket`.
async fn jobs_of(dispatch: &mut DispatchServiceClient<Channel>, ticket: &str) -> Vec<dpb::Job> {
    dispatch
        .list_jobs(dpb::ListJobsRequest {
            ticket_id: ticket.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .jobs
}

/// Waits (up to 15 s) for the return's repair job to be offered, and answers it.
async fn offered_job(dispatch: &mut DispatchServiceClient<Channel>, ticket: &str) -> dpb::Job {
    for _ in 0..150 {
        if let [job] = jobs_of(dispatch, ticket).await.as_slice()
            && job.status == dpb::JobStatus::Offered as i32
        {
            return job.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no repair job was offered for ticket {ticket}");
}

/// The partner holding the offer accepts the job and completes it with `outcome`.
async fn repair(
    dispatch: &mut DispatchServiceClient<Channel>,
    job: &dpb::Job,
    outcome: dpb::CompletionOutcome,
) {
    let partner = job.partner_id.clone();
    let offer = job
        .offers
        .iter()
        .find(|o| o.status == dpb::OfferStatus::Open as i32)
        .expect("an open offer");
    dispatch
        .respond_to_offer(dpb::RespondToOfferRequest {
            job_id: job.id.clone(),
            offer_id: offer.id.clone(),
            accept: true,
            decline_reason: String::new(),
            actor: Some(partner_actor(&partner)),
        })
        .await
        .unwrap();
    dispatch
        .complete_job(dpb::CompleteJobRequest {
            idempotency_key: format!("complete-{}", job.id),
            job_id: job.id.clone(),
            outcome: outcome as i32,
            photos: Vec::new(),
            notes: String::new(),
            actor: Some(partner_actor(&partner)),
        })
        .await
        .unwrap();
}

/// Waits (up to 20 s) for the return to reach `status`.
async fn settled(
    returns: &mut ReturnServiceClient<Channel>,
    id: &str,
    status: rpb::ReturnStatus,
) -> rpb::Return {
    let mut last = 0;
    for _ in 0..200 {
        let r = returns
            .get_return(rpb::GetReturnRequest { id: id.into() })
            .await
            .unwrap()
            .into_inner();
        if r.status == status as i32 {
            return r;
        }
        last = r.status;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("return {id} stayed in {last} instead of {status:?}");
}

async fn return_repair_and_settle(backends: Backends, kill_in_the_middle: bool) {
    let mut suite = start(&backends).await;
    let (mut returns, mut dispatch) = clients(&mut suite).await;
    dispatch
        .register_partner(dpb::RegisterPartnerRequest {
            spec: Some(repairer()),
            ..Default::default()
        })
        .await
        .unwrap();

    // Return → repair → ship back, the process killed once `RepairJobRequested` is written
    // (its relay, its handling by dispatch and the job's offer in flight).
    let fixed = sent_to_repair(&mut returns, "T-fixed").await;
    if kill_in_the_middle {
        suite.kill_and_start_again();
        (returns, dispatch) = clients(&mut suite).await;
    }
    let job = offered_job(&mut dispatch, "T-fixed").await;
    assert_eq!(
        (
            job.id.as_str(),
            job.return_id.as_str(),
            job.product_line.as_str()
        ),
        (fixed.repair_job_id.as_str(), fixed.id.as_str(), "kettle")
    );
    assert_eq!(job.location.as_ref().unwrap().region_code, REGION);
    repair(&mut dispatch, &job, dpb::CompletionOutcome::Fixed).await;
    let back = settled(&mut returns, &fixed.id, rpb::ReturnStatus::Repaired).await;
    assert_eq!(back.repair_job_id, job.id);
    assert!(back.refund_id.is_empty(), "repaired goods are not refunded");

    // Return → cannot repair → refund, the process killed once in the middle.
    let broken = sent_to_repair(&mut returns, "T-broken").await;
    let job = offered_job(&mut dispatch, "T-broken").await;
    repair(&mut dispatch, &job, dpb::CompletionOutcome::NotFixed).await;
    if kill_in_the_middle {
        // SIGKILL: JobCompleted, its handling and the refund are in flight.
        suite.kill_and_start_again();
        (returns, dispatch) = clients(&mut suite).await;
    }
    let refunded = settled(&mut returns, &broken.id, rpb::ReturnStatus::Refunded).await;
    let refund = returns
        .get_refund(rpb::GetRefundRequest {
            refund_id: String::new(),
            return_id: broken.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refund.id, refunded.refund_id);
    assert_eq!(refund.state, rpb::RefundState::Succeeded as i32);

    // Every event of the loop delivered once more (on Redis): nothing changes. Give the
    // redeliveries every chance, then count: each step happened once.
    if suite.redis_prefix().is_some() {
        let requests = redeliver(&suite, "returns", "returns.RepairJobRequested").await;
        assert_eq!(requests, 2);
        let outcomes = redeliver(&suite, "dispatch", "dispatch.JobCompleted").await;
        assert_eq!(outcomes, 2);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let back = settled(&mut returns, &fixed.id, rpb::ReturnStatus::Repaired).await;
    assert_eq!(back.history.len(), 7, "no step twice: {:?}", back.history);
    settled(&mut returns, &broken.id, rpb::ReturnStatus::Refunded).await;
    for ticket in ["T-fixed", "T-broken"] {
        assert_eq!(jobs_of(&mut dispatch, ticket).await.len(), 1, "{ticket}");
    }
    let exit = support::terminate(&mut suite.child, Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit}");
    let refunds = format!(
        "SELECT COUNT(*) AS n FROM refunds WHERE return_id = '{}'",
        broken.id
    );
    assert_eq!(count(&suite.database_url("returns"), &refunds).await, 1);
    for (return_id, event, n) in [
        (&fixed.id, "returns.RefundSucceeded", 0),
        (&broken.id, "returns.RefundSucceeded", 1),
        (&fixed.id, "returns.RepairJobRequested", 1),
        (&broken.id, "returns.RepairJobRequested", 1),
    ] {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM outbox WHERE subject_id = '{return_id}' AND event_type = '{event}'"
        );
        assert_eq!(
            count(&suite.database_url("returns"), &sql).await,
            n,
            "{event} of {return_id}"
        );
    }
    let jobs = count(
        &suite.database_url("dispatch"),
        "SELECT COUNT(*) AS n FROM jobs",
    )
    .await;
    assert_eq!(jobs, 2, "one job per return");
}

#[tokio::test]
async fn return_repair_settle_on_postgres_and_redis_with_a_killed_process() {
    return_repair_and_settle(Backends::PostgresAndRedis, true).await;
}

#[tokio::test]
async fn return_repair_settle_on_the_embedded_backends_with_a_killed_process() {
    let dir = DataDir::new("return-repair");
    return_repair_and_settle(dir.backends(), true).await;
}
