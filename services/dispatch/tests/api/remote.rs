//! Remote diagnosis: a job closed without a visit, the states that allow it, the event
//! consumers count it by, and the scorecard.

use aftersales_platform::status::field_violations;
use aftersales_protos::{dispatch::v1 as pb, events::v1::event_envelope::Payload};
use chrono::{Duration, Utc};
use tonic::Code;

use crate::{flow::ts, helpers::*};

fn remotely(
    job_id: &str,
    partner: &str,
    key: &str,
    outcome: pb::CompletionOutcome,
) -> pb::ResolveRemotelyRequest {
    pb::ResolveRemotelyRequest {
        idempotency_key: key.into(),
        job_id: job_id.into(),
        outcome: outcome as i32,
        notes: "guided the customer through a reset by phone".into(),
        actor: Some(partner_actor(partner)),
    }
}

async fn remote_resolution(backend: Backend) {
    let mut app = spawn(backend).await;
    let p = app.register(spec("P", 31.201, 121.451)).await.id;

    // j1: accepted, resolved remotely (retried with the same key).
    let j1 = app.create(job_request("T-1", true)).await;
    let j1 = app.answer(&j1, true).await;
    let first = app
        .client
        .resolve_remotely(remotely(&j1.id, &p, "r-1", pb::CompletionOutcome::Fixed))
        .await
        .expect("resolves")
        .into_inner();
    assert_eq!(first.status, pb::JobStatus::Completed as i32);
    let completion = first.completion.clone().expect("a completion");
    assert_eq!(completion.mode, pb::CompletionMode::Remote as i32);
    assert_eq!(first.visited_at, None, "nobody went on site");
    let again = app
        .client
        .resolve_remotely(remotely(&j1.id, &p, "r-1", pb::CompletionOutcome::Fixed))
        .await
        .expect("a retry answers")
        .into_inner();
    assert_eq!(
        again.updated_at, first.updated_at,
        "the retry changed nothing"
    );
    let completed = app.published(&j1.id, "dispatch.JobCompleted").await;
    assert_eq!(completed.len(), 1, "published once");
    let Payload::JobCompleted(event) = &completed[0] else {
        panic!("not a JobCompleted");
    };
    assert_eq!(event.mode, pb::CompletionMode::Remote as i32);
    assert_eq!(event.outcome, pb::CompletionOutcome::Fixed as i32);

    // j2: the technician is on site: that is on-site work, not a remote resolution.
    let j2 = app.create(job_request("T-2", false)).await;
    let j2 = app.answer(&j2, true).await;
    app.client
        .record_visit(pb::RecordVisitRequest {
            job_id: j2.id.clone(),
            arrived_at: None,
            notes: String::new(),
            actor: Some(partner_actor(&p)),
        })
        .await
        .expect("visit");
    let refused = app
        .client
        .resolve_remotely(remotely(&j2.id, &p, "r-2", pb::CompletionOutcome::Fixed))
        .await
        .expect_err("on site");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    app.client
        .complete_job(pb::CompleteJobRequest {
            idempotency_key: String::new(),
            job_id: j2.id.clone(),
            outcome: pb::CompletionOutcome::Fixed as i32,
            photos: vec![],
            notes: String::new(),
            actor: Some(partner_actor(&p)),
        })
        .await
        .expect("completes on site");
    let Payload::JobCompleted(event) = &app.published(&j2.id, "dispatch.JobCompleted").await[0]
    else {
        panic!("not a JobCompleted");
    };
    assert_eq!(event.mode, pb::CompletionMode::OnSite as i32);

    // j3: only offered, not accepted: nothing to resolve yet; NEEDS_PARTS is no resolution.
    let j3 = app.create(job_request("T-3", false)).await;
    let refused = app
        .client
        .resolve_remotely(remotely(&j3.id, &p, "r-3", pb::CompletionOutcome::Fixed))
        .await
        .expect_err("offered only");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let bad = app
        .client
        .resolve_remotely(remotely(&j3.id, &p, "", pb::CompletionOutcome::NeedsParts))
        .await
        .expect_err("needs parts");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = field_violations(&bad)
        .into_iter()
        .map(|f| f.field)
        .collect();
    assert_eq!(fields, ["outcome"]);

    // Two completed, one of them remote.
    let now = Utc::now();
    let card = app
        .client
        .get_scorecard(pb::GetScorecardRequest {
            partner_id: p.clone(),
            from: Some(ts(now - Duration::hours(1))),
            to: Some(ts(now + Duration::hours(1))),
        })
        .await
        .expect("scorecard")
        .into_inner();
    assert_eq!(card.jobs_completed, 2);
    assert_eq!(card.remote_resolutions, 1);
    assert_eq!(card.remote_resolution_rate, 0.5);
    assert_eq!((card.visits, card.first_time_fixes), (1, 2));
    app.stop().await;
}

#[tokio::test]
async fn a_job_resolved_remotely_counts_as_such_postgres() {
    remote_resolution(Backend::Postgres).await;
}

#[tokio::test]
async fn a_job_resolved_remotely_counts_as_such_sqlite() {
    remote_resolution(Backend::Sqlite).await;
}
