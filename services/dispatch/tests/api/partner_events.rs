//! The events a partner is pushed (by the outbound webhooks), each naming its partner: a
//! cancelled job, an offer withdrawn with it (never one that lapsed), a reviewed quote, an
//! issued settlement.

use aftersales_deadlines::worker::{Deadlines, Due};
use aftersales_dispatch::usecases::DispatchDeadline;
use aftersales_protos::{
    dispatch::v1::{self as pb},
    events::v1::{
        JobCancelled, OfferWithdrawn, QuoteReviewed, SettlementIssued, event_envelope::Payload,
    },
};
use chrono::{Duration, Utc};

use crate::helpers::*;

async fn withdrawals(app: &TestApp, job_id: &str) -> Vec<OfferWithdrawn> {
    app.published(job_id, "dispatch.OfferWithdrawn")
        .await
        .into_iter()
        .map(|p| match p {
            Payload::OfferWithdrawn(w) => w,
            other => panic!("not an OfferWithdrawn: {other:?}"),
        })
        .collect()
}

async fn cancellations(app: &TestApp, job_id: &str) -> Vec<JobCancelled> {
    app.published(job_id, "dispatch.JobCancelled")
        .await
        .into_iter()
        .map(|p| match p {
            Payload::JobCancelled(c) => c,
            other => panic!("not a JobCancelled: {other:?}"),
        })
        .collect()
}

async fn cancel(app: &mut TestApp, job_id: &str) -> pb::Job {
    app.client
        .cancel_job(pb::CancelJobRequest {
            job_id: job_id.into(),
            reason: "customer withdrew the request".into(),
            actor: Some(agent()),
        })
        .await
        .expect("cancels")
        .into_inner()
}

async fn cancelling_withdraws_the_open_offer(backend: Backend) {
    let mut app = spawn(backend).await;
    let a = app.register(spec("A", 31.201, 121.451)).await.id;

    // Offered to A, unanswered: the offer is withdrawn from A.
    let offered = app.create(job_request("T-1", false)).await;
    let offer = open_offer(&offered);
    let cancelled = cancel(&mut app, &offered.id).await;
    assert_eq!(
        cancelled.offers[0].status,
        pb::OfferStatus::Withdrawn as i32
    );
    assert_eq!(
        withdrawals(&app, &offered.id).await,
        vec![OfferWithdrawn {
            job_id: offered.id.clone(),
            offer_id: offer.id,
            partner_id: a.clone(),
            reason: "job cancelled".into(),
        }]
    );
    let cancelled = cancellations(&app, &offered.id).await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].partner_id, a, "the partner it was offered to");

    // Accepted by A: nothing to withdraw; the cancellation names A.
    let accepted = app.create(job_request("T-2", false)).await;
    let accepted = app.answer(&accepted, true).await;
    cancel(&mut app, &accepted.id).await;
    assert!(withdrawals(&app, &accepted.id).await.is_empty());
    let cancelled = cancellations(&app, &accepted.id).await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].partner_id, a, "the partner holding the work");

    // Declined by A, nobody left: the cancellation names nobody.
    let declined = app.create(job_request("T-3", false)).await;
    let declined = app.answer(&declined, false).await;
    assert_eq!(declined.status, pb::JobStatus::Unassigned as i32);
    cancel(&mut app, &declined.id).await;
    assert!(withdrawals(&app, &declined.id).await.is_empty());
    let cancelled = cancellations(&app, &declined.id).await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].partner_id, "");
    app.stop().await;
}

#[tokio::test]
async fn cancelling_an_offered_job_withdraws_the_offer_from_its_partner_postgres() {
    cancelling_withdraws_the_open_offer(Backend::Postgres).await;
}

#[tokio::test]
async fn cancelling_an_offered_job_withdraws_the_offer_from_its_partner_sqlite() {
    cancelling_withdraws_the_open_offer(Backend::Sqlite).await;
}

/// Offers lapse a second after they are made.
const TIMEOUT_MS: u64 = 1_000;

#[tokio::test]
async fn a_lapsed_offer_is_never_published_as_withdrawn() {
    let mut app = spawn_without_worker(Backend::Postgres, |c| {
        c.rules.offer_timeout = Duration::milliseconds(TIMEOUT_MS as i64);
    })
    .await;
    let a = app.register(spec("A", 31.201, 121.451)).await.id;
    let fired = app.create(job_request("T-1", false)).await;
    let pending = app.create(job_request("T-2", false)).await;
    let lapse = |job: &pb::Job| Due {
        member: DispatchDeadline::Offer(open_offer(job).id),
        due_ms: 0,
    };
    let (fired_lapse, pending_lapse) = (lapse(&fired), lapse(&pending));
    tokio::time::sleep(std::time::Duration::from_millis(TIMEOUT_MS + 100)).await;

    // The deadline fired: the offer lapsed (nobody else to ask), then the job is cancelled.
    app.core.fire(&[fired_lapse]).await.expect("fires");
    assert_eq!(
        app.job(&fired.id).await.status,
        pb::JobStatus::Unassigned as i32
    );
    cancel(&mut app, &fired.id).await;
    assert!(withdrawals(&app, &fired.id).await.is_empty());
    assert_eq!(app.events(&fired.id, "dispatch.JobDeclined").await, 1);
    assert_eq!(cancellations(&app, &fired.id).await[0].partner_id, "");

    // Cancelled after the deadline passed but before it fired: the offer lapsed all the
    // same, and its partner is told so, not of a withdrawal.
    let cancelled = cancel(&mut app, &pending.id).await;
    assert_eq!(cancelled.offers[0].status, pb::OfferStatus::Expired as i32);
    assert!(withdrawals(&app, &pending.id).await.is_empty());
    let declined = app.published(&pending.id, "dispatch.JobDeclined").await;
    assert!(
        matches!(&declined[..], [Payload::JobDeclined(d)] if d.expired && d.partner_id == a),
        "{declined:?}"
    );
    assert_eq!(cancellations(&app, &pending.id).await[0].partner_id, a);
    app.core.fire(&[pending_lapse]).await.expect("fires late");
    assert_eq!(
        app.events(&pending.id, "dispatch.JobDeclined").await,
        1,
        "the late deadline changes nothing"
    );
    assert!(withdrawals(&app, &pending.id).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_reviewed_quote_is_published_for_its_partner() {
    let mut app = spawn(Backend::Postgres).await;
    let a = app.register(spec("A", 31.201, 121.451)).await.id;
    let job = app.create(job_request("T-1", true)).await;
    let job = app.answer(&job, true).await;
    let submit = |lines: Vec<pb::QuoteLine>| pb::SubmitQuoteRequest {
        idempotency_key: String::new(),
        job_id: job.id.clone(),
        lines,
        actor: Some(partner_actor(&a)),
    };
    let review = |quote_id: &str, approve: bool| pb::ReviewQuoteRequest {
        quote_id: quote_id.into(),
        approve,
        note: "called the customer on 13800000000".into(),
        actor: Some(agent()),
    };
    let auto = app
        .client
        .submit_quote(submit(vec![line(pb::QuoteLineKind::Labour, "", 10_000)]))
        .await
        .expect("quote")
        .into_inner();
    assert!(auto.auto_approved);
    assert!(
        app.published(&job.id, "dispatch.QuoteReviewed")
            .await
            .is_empty(),
        "nobody reviewed a quote within the schedule"
    );

    let dear = |minor| vec![line(pb::QuoteLineKind::Part, "VALVE-9", minor)];
    let rejected = app
        .client
        .submit_quote(submit(dear(8_000)))
        .await
        .expect("quote")
        .into_inner();
    app.client
        .review_quote(review(&rejected.id, false))
        .await
        .expect("rejected");
    let approved = app
        .client
        .submit_quote(submit(dear(9_000)))
        .await
        .expect("quote")
        .into_inner();
    app.client
        .review_quote(review(&approved.id, true))
        .await
        .expect("approved");
    let again = app.client.review_quote(review(&approved.id, true)).await;
    assert!(again.is_err(), "a quote is decided once");

    let reviewed = app.published(&job.id, "dispatch.QuoteReviewed").await;
    let decision = |quote: &pb::Quote, approved: bool, minor| {
        Payload::QuoteReviewed(QuoteReviewed {
            job_id: job.id.clone(),
            quote_id: quote.id.clone(),
            partner_id: a.clone(),
            approved,
            total: Some(cny(minor)),
        })
    };
    assert_eq!(
        reviewed,
        vec![
            decision(&rejected, false, 8_000),
            decision(&approved, true, 9_000)
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn an_issued_settlement_is_published_for_its_partner() {
    let mut app = spawn(Backend::Postgres).await;
    let p = app.register(spec("P", 31.201, 121.451)).await.id;
    let job = app.create(job_request("T-1", true)).await;
    let job = app.answer(&job, true).await;
    app.client
        .submit_quote(pb::SubmitQuoteRequest {
            idempotency_key: String::new(),
            job_id: job.id.clone(),
            lines: vec![line(pb::QuoteLineKind::Labour, "", 10_000)],
            actor: Some(partner_actor(&p)),
        })
        .await
        .expect("quote");
    app.client
        .complete_job(pb::CompleteJobRequest {
            idempotency_key: String::new(),
            job_id: job.id.clone(),
            outcome: pb::CompletionOutcome::Fixed as i32,
            photos: vec![],
            notes: String::new(),
            actor: Some(partner_actor(&p)),
        })
        .await
        .expect("complete");
    let month = Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m")
        .to_string();
    let s = app
        .client
        .generate_settlement(pb::GenerateSettlementRequest {
            partner_id: p.clone(),
            month: month.clone(),
            actor: Some(agent()),
        })
        .await
        .expect("settlement")
        .into_inner();
    const ISSUED: &str = "dispatch.SettlementIssued";
    assert!(
        app.published(&s.id, ISSUED).await.is_empty(),
        "a draft is not published"
    );
    let act = |action: pb::SettlementAction, reason: &str| pb::UpdateSettlementStatusRequest {
        settlement_id: s.id.clone(),
        action: action as i32,
        reason: reason.into(),
        actor: Some(agent()),
    };
    let first = app
        .client
        .update_settlement_status(act(pb::SettlementAction::Issue, ""))
        .await
        .expect("issued")
        .into_inner();
    assert_eq!(
        app.published(&s.id, ISSUED).await,
        vec![Payload::SettlementIssued(SettlementIssued {
            settlement_id: s.id.clone(),
            partner_id: p.clone(),
            month: month.clone(),
            total: Some(cny(10_000)),
            issued_at: first.updated_at,
        })]
    );
    app.client
        .update_settlement_status(act(pb::SettlementAction::Dispute, "a line is missing"))
        .await
        .expect("disputed");
    assert_eq!(
        app.published(&s.id, ISSUED).await.len(),
        1,
        "a dispute is not an issue"
    );
    app.client
        .update_settlement_status(act(pb::SettlementAction::Issue, ""))
        .await
        .expect("issued again");
    app.client
        .update_settlement_status(act(pb::SettlementAction::Pay, ""))
        .await
        .expect("paid");
    let all = app.published(&s.id, ISSUED).await;
    assert_eq!(
        all.len(),
        2,
        "issued again after the dispute, not on payment"
    );
    assert!(
        all.iter()
            .all(|e| matches!(e, Payload::SettlementIssued(i) if i.partner_id == p)),
        "{all:?}"
    );
    app.stop().await;
}
