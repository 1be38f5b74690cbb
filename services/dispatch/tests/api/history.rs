//! Scorecard and settlement figures from a scripted history through the API.

use aftersales_protos::dispatch::v1::{self as pb};
use chrono::{Duration, Utc};
use tonic::Code;

use crate::{flow::ts, helpers::*};

async fn accept_quote_complete(
    app: &mut TestApp,
    partner: &str,
    request: pb::CreateJobRequest,
    quote: Vec<pb::QuoteLine>,
    outcome: pb::CompletionOutcome,
    visit: bool,
) -> pb::Job {
    let job = app.create(request).await;
    assert_eq!(job.partner_id, partner);
    let job = app.answer(&job, true).await;
    if visit {
        app.client
            .record_visit(pb::RecordVisitRequest {
                job_id: job.id.clone(),
                arrived_at: None,
                notes: String::new(),
                actor: Some(partner_actor(partner)),
            })
            .await
            .expect("visit");
    }
    app.client
        .submit_quote(pb::SubmitQuoteRequest {
            idempotency_key: String::new(),
            job_id: job.id.clone(),
            lines: quote,
            actor: Some(partner_actor(partner)),
        })
        .await
        .expect("quote");
    app.client
        .complete_job(pb::CompleteJobRequest {
            idempotency_key: String::new(),
            job_id: job.id.clone(),
            outcome: outcome as i32,
            photos: vec![],
            notes: String::new(),
            actor: Some(partner_actor(partner)),
        })
        .await
        .expect("complete")
        .into_inner()
}

#[tokio::test]
async fn scorecard_and_settlement_from_a_known_history() {
    let mut app = spawn(Backend::Postgres).await;
    let p = app.register(spec("P", 31.201, 121.451)).await.id;
    let labour = || line(pb::QuoteLineKind::Labour, "", 10_000);
    let call_out = || line(pb::QuoteLineKind::CallOut, "", 3_000);

    // j1: warranty, visited in time, fixed — until j4 repeats it.
    let j1 = accept_quote_complete(
        &mut app,
        &p,
        job_request("T-1", true),
        vec![labour(), call_out()],
        pb::CompletionOutcome::Fixed,
        true,
    )
    .await;
    // j2: paid by the customer, needs parts.
    let j2 = accept_quote_complete(
        &mut app,
        &p,
        job_request("T-2", false),
        vec![call_out()],
        pb::CompletionOutcome::NeedsParts,
        false,
    )
    .await;
    assert_eq!(j2.status, pb::JobStatus::CannotComplete as i32);
    // j3: declined, nobody else: unassigned.
    let j3 = app.create(job_request("T-3", false)).await;
    app.answer(&j3, false).await;
    // j4: the same ticket and product as j1 within 30 days.
    let j4 = accept_quote_complete(
        &mut app,
        &p,
        job_request("T-1", true),
        vec![labour()],
        pb::CompletionOutcome::Fixed,
        false,
    )
    .await;
    assert_eq!(j4.repeat_of_job_id, j1.id);
    let j1 = app.job(&j1.id).await;
    let revoked = j1.completion.as_ref().expect("completed");
    assert!(revoked.first_time_fix_revoked);
    assert_eq!(revoked.repeat_job_id, j4.id);

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
    assert_eq!((card.offers, card.offers_accepted), (4, 3));
    assert_eq!(card.acceptance_rate, 0.75);
    assert_eq!((card.visits, card.visits_on_time), (1, 1));
    assert_eq!(card.on_time_visit_rate, 1.0);
    assert_eq!((card.jobs_completed, card.first_time_fixes), (3, 1));
    assert!((card.first_time_fix_rate - 1.0 / 3.0).abs() < 1e-12);
    // (13,000 + 3,000 + 10,000) / 3 = 8,666.67 → 8,667
    assert_eq!(card.cost_per_job, Some(cny(8_667)));
    let hours: Vec<f64> = [&j1, &j2, &j4]
        .iter()
        .map(|j| {
            let accepted = j.accepted_at.expect("accepted");
            let done = j
                .completion
                .as_ref()
                .and_then(|c| c.completed_at)
                .expect("done");
            let secs = (done.seconds - accepted.seconds) as f64
                + f64::from(done.nanos - accepted.nanos) / 1e9;
            secs / 3_600.0
        })
        .collect();
    let expected = hours.iter().sum::<f64>() / 3.0;
    assert!(
        (card.mean_hours_to_complete - expected).abs() < 1e-3,
        "{card:?} vs {expected}"
    );

    let month = now
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m")
        .to_string();
    let generate = |actor| pb::GenerateSettlementRequest {
        partner_id: p.clone(),
        month: month.clone(),
        actor: Some(actor),
    };
    let by_partner = app
        .client
        .generate_settlement(generate(partner_actor(&p)))
        .await
        .unwrap_err();
    assert_eq!(by_partner.code(), Code::PermissionDenied);
    let s = app
        .client
        .generate_settlement(generate(agent()))
        .await
        .expect("settlement")
        .into_inner();
    assert_eq!(s.status, pb::SettlementStatus::Draft as i32);
    assert_eq!(s.lines.len(), 3);
    assert_eq!(s.company_total, Some(cny(13_000 + 10_000)), "warranty work");
    assert_eq!(s.customer_total, Some(cny(3_000)));
    assert_eq!(s.total, Some(cny(26_000)));

    let act = |action: pb::SettlementAction, reason: &str| pb::UpdateSettlementStatusRequest {
        settlement_id: s.id.clone(),
        action: action as i32,
        reason: reason.into(),
        actor: Some(agent()),
    };
    app.client
        .update_settlement_status(act(pb::SettlementAction::Issue, ""))
        .await
        .expect("issued");
    let regenerate = app
        .client
        .generate_settlement(generate(agent()))
        .await
        .unwrap_err();
    assert_eq!(
        regenerate.code(),
        Code::FailedPrecondition,
        "an issued statement stays"
    );
    app.client
        .update_settlement_status(act(pb::SettlementAction::Dispute, "j2 call-out missing"))
        .await
        .expect("disputed");
    let rebuilt = app
        .client
        .generate_settlement(generate(agent()))
        .await
        .expect("rebuilt")
        .into_inner();
    assert_eq!(
        (rebuilt.id.as_str(), rebuilt.status),
        (s.id.as_str(), pb::SettlementStatus::Draft as i32)
    );
    app.client
        .update_settlement_status(act(pb::SettlementAction::Issue, ""))
        .await
        .expect("issued");
    let paid = app
        .client
        .update_settlement_status(act(pb::SettlementAction::Pay, ""))
        .await
        .expect("paid")
        .into_inner();
    assert_eq!(paid.status, pb::SettlementStatus::Paid as i32);
    let mine = app
        .client
        .list_settlements(pb::ListSettlementsRequest {
            partner_id: String::new(),
            page: None,
            actor: Some(partner_actor("someone-else")),
        })
        .await
        .expect("lists")
        .into_inner();
    assert!(mine.settlements.is_empty(), "another partner sees none");
    app.stop().await;
}
