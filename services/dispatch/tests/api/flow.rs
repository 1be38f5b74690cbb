//! Dispatch, re-offers, filters, the on-site SLA, quotes, isolation and keys.

use aftersales_platform::status::field_violations;
use aftersales_protos::{audit::v1 as audit, dispatch::v1 as pb};
use chrono::Duration;
use tonic::Code;

use crate::helpers::*;

/// Near A, farther B, and three that must never be offered the job: no skill, no
/// insurance, another region.
async fn a_network(app: &mut TestApp) -> (String, String) {
    let a = app.register(spec("A near", 31.201, 121.451)).await.id;
    let b = app.register(spec("B far", 31.30, 121.55)).await.id;
    let mut unskilled = spec("C unskilled", 31.2, 121.45);
    unskilled.skills = vec!["phone".into()];
    app.register(unskilled).await;
    let mut uninsured = spec("D uninsured", 31.2, 121.45);
    uninsured.insured = false;
    app.register(uninsured).await;
    let mut elsewhere = spec("E elsewhere", 31.2, 121.45);
    elsewhere.coverage[0].region_code = "110101".into();
    app.register(elsewhere).await;
    (a, b)
}

async fn dispatch_and_reoffer(backend: Backend) {
    let mut app = spawn(backend).await;
    let (a, b) = a_network(&mut app).await;
    let job = app.create(job_request("T-1", false)).await;
    assert_eq!(job.status, pb::JobStatus::Offered as i32);
    assert_eq!(job.partner_id, a, "the nearest capable partner first");
    let expires = open_offer(&job).expires_at.expect("a deadline").seconds;
    let offered = open_offer(&job).offered_at.expect("offered").seconds;
    assert_eq!(
        expires - offered,
        30 * 60,
        "the default acceptance deadline"
    );

    let job = app.answer(&job, false).await;
    assert_eq!(job.status, pb::JobStatus::Offered as i32);
    assert_eq!(job.partner_id, b, "a decline goes to the next candidate");
    let job = app.answer(&job, false).await;
    assert_eq!(job.status, pb::JobStatus::Unassigned as i32, "nobody left");
    assert!(
        job.status_reason.contains("no partner left"),
        "{}",
        job.status_reason
    );
    assert_eq!(job.offers.len(), 2, "the whole offer history is kept");
    assert!(
        job.offers
            .iter()
            .all(|o| o.status == pb::OfferStatus::Declined as i32)
    );
    assert_eq!(app.events(&job.id, "dispatch.JobOffered").await, 2);
    assert_eq!(app.events(&job.id, "dispatch.JobDeclined").await, 2);
    assert_eq!(app.events(&job.id, "dispatch.JobUnassigned").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn dispatch_picks_the_nearest_capable_partner_and_reoffers_on_decline_postgres() {
    dispatch_and_reoffer(Backend::Postgres).await;
}

#[tokio::test]
async fn dispatch_picks_the_nearest_capable_partner_and_reoffers_on_decline_sqlite() {
    dispatch_and_reoffer(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_lapsed_offer_goes_to_the_next_candidate() {
    let mut app = spawn_with(Backend::Postgres, |c| {
        c.rules.offer_timeout = Duration::seconds(1);
    })
    .await;
    let (a, b) = a_network(&mut app).await;
    let job = app.create(job_request("T-2", false)).await;
    assert_eq!(job.partner_id, a);
    let job = app.wait_for(&job.id, |j| j.partner_id == b).await;
    assert_eq!(job.offers[0].status, pb::OfferStatus::Expired as i32);
    assert_eq!(job.offers[1].status, pb::OfferStatus::Open as i32);
    let job = app
        .wait_for(&job.id, |j| j.status == pb::JobStatus::Unassigned as i32)
        .await;
    assert_eq!(job.offers.len(), 2);
    assert_eq!(app.events(&job.id, "dispatch.JobDeclined").await, 2);
    assert_eq!(app.events(&job.id, "dispatch.JobUnassigned").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_declining_partner_is_not_told_who_is_offered_the_job_next() {
    let mut app = spawn(Backend::Postgres).await;
    let (a, b) = a_network(&mut app).await;
    let job = app.create(job_request("T-8", false)).await;
    assert_eq!(job.partner_id, a);
    let reply = app
        .client
        .respond_to_offer(pb::RespondToOfferRequest {
            job_id: job.id.clone(),
            offer_id: open_offer(&job).id,
            accept: false,
            decline_reason: "busy".into(),
            actor: Some(partner_actor(&a)),
        })
        .await
        .expect("declines")
        .into_inner();
    assert_eq!(reply.partner_id, "", "the job is no longer A's, nor named");
    assert!(
        reply.offers.iter().all(|o| o.partner_id == a),
        "only A's own offer: {:?}",
        reply.offers
    );
    assert_eq!(reply.offers.len(), 1);
    assert_eq!(reply.offers[0].status, pb::OfferStatus::Declined as i32);
    assert!(reply.contact.is_none());
    assert_eq!(
        app.job(&job.id).await.partner_id,
        b,
        "the job did go to the next candidate"
    );
    app.stop().await;
}

#[tokio::test]
async fn capacity_and_radius_keep_partners_out() {
    let mut app = spawn(Backend::Postgres).await;
    let mut near = spec("near, one job a day", 31.201, 121.451);
    near.daily_capacity = 1;
    let near = app.register(near).await.id;
    let mut short_reach = spec("near but a 1 km radius", 31.21, 121.47);
    short_reach.service_radius_km = 1.0;
    app.register(short_reach).await;
    let far = app.register(spec("far", 31.30, 121.55)).await.id;
    let first = app.create(job_request("T-3", false)).await;
    assert_eq!(first.partner_id, near);
    let second = app.create(job_request("T-4", false)).await;
    assert_eq!(
        second.partner_id, far,
        "the near partner is at capacity today"
    );
    app.stop().await;
}

#[tokio::test]
async fn concurrent_jobs_never_push_a_partner_past_its_capacity() {
    let mut app = spawn(Backend::Postgres).await;
    let mut near = spec("near, two jobs a day", 31.201, 121.451);
    near.daily_capacity = 2;
    let near = app.register(near).await.id;
    let creates: Vec<_> = (0..8)
        .map(|i| {
            let mut client = app.client.clone();
            tokio::spawn(async move {
                client
                    .create_job(job_request(&format!("T-c{i}"), false))
                    .await
                    .expect("creates")
                    .into_inner()
            })
        })
        .collect();
    let mut to_near = 0;
    for create in creates {
        let job = create.await.unwrap();
        if job.partner_id == near {
            to_near += 1;
        } else {
            assert_eq!(job.status, pb::JobStatus::Unassigned as i32, "{job:?}");
        }
    }
    assert_eq!(to_near, 2, "exactly the partner's capacity");
    app.stop().await;
}

#[tokio::test]
async fn a_missed_visit_is_late_once_and_counts_against_the_partner() {
    let mut app = spawn_with(Backend::Postgres, |c| {
        c.rules.visit_targets.urban = Duration::seconds(1);
    })
    .await;
    let a = app.register(spec("A", 31.201, 121.451)).await.id;
    let job = app.create(job_request("T-5", false)).await;
    let job = app.answer(&job, true).await;
    assert_eq!(job.status, pb::JobStatus::Accepted as i32);
    assert_eq!(job.area, pb::AreaKind::Urban as i32);
    let job = app.wait_for(&job.id, |j| j.visit_late).await;
    assert_eq!(app.events(&job.id, "dispatch.VisitLate").await, 1);
    app.client
        .record_visit(pb::RecordVisitRequest {
            job_id: job.id.clone(),
            arrived_at: None,
            notes: "traffic".into(),
            actor: Some(partner_actor(&a)),
        })
        .await
        .expect("records the visit");
    assert_eq!(
        app.events(&job.id, "dispatch.VisitLate").await,
        1,
        "late once"
    );
    let now = chrono::Utc::now();
    let card = app
        .client
        .get_scorecard(pb::GetScorecardRequest {
            partner_id: a,
            from: Some(ts(now - Duration::hours(1))),
            to: Some(ts(now + Duration::hours(1))),
        })
        .await
        .expect("scorecard")
        .into_inner();
    assert_eq!((card.visits, card.visits_on_time), (1, 0));
    assert_eq!(card.on_time_visit_rate, 0.0);
    app.stop().await;
}

#[tokio::test]
async fn quotes_within_schedule_pass_and_the_rest_wait_for_review() {
    let mut app = spawn(Backend::Postgres).await;
    let a = app.register(spec("A", 31.201, 121.451)).await.id;
    let job = app.create(job_request("T-6", true)).await;
    let job = app.answer(&job, true).await;
    let submit = |key: &str, lines: Vec<pb::QuoteLine>| pb::SubmitQuoteRequest {
        idempotency_key: key.into(),
        job_id: job.id.clone(),
        lines,
        actor: Some(partner_actor(&a)),
    };
    let within = vec![
        line(pb::QuoteLineKind::Labour, "", 10_500),
        line(pb::QuoteLineKind::CallOut, "", 3_000),
    ];
    let auto = app
        .client
        .submit_quote(submit("q-1", within.clone()))
        .await
        .expect("quote")
        .into_inner();
    assert_eq!(auto.status, pb::QuoteStatus::Approved as i32);
    assert!(auto.auto_approved);
    assert_eq!(
        auto.payer,
        pb::Payer::Company as i32,
        "warranty work bills the company"
    );
    assert_eq!(auto.total, Some(cny(13_500)));
    let again = app
        .client
        .submit_quote(submit("q-1", within))
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(again.id, auto.id, "a retried quote is the same quote");

    let dear = app
        .client
        .submit_quote(submit(
            "q-2",
            vec![line(pb::QuoteLineKind::Part, "VALVE-9", 8_000)],
        ))
        .await
        .expect("quote")
        .into_inner();
    assert_eq!(dear.status, pb::QuoteStatus::PendingReview as i32);
    assert!(!dear.lines[0].within_schedule);
    assert_eq!(app.events(&job.id, "dispatch.QuoteNeedsReview").await, 1);
    let blocked = app
        .client
        .submit_quote(submit("q-3", vec![line(pb::QuoteLineKind::Labour, "", 1)]))
        .await
        .unwrap_err();
    assert_eq!(blocked.code(), Code::FailedPrecondition);
    let by_partner = app
        .client
        .review_quote(pb::ReviewQuoteRequest {
            quote_id: dear.id.clone(),
            approve: true,
            note: String::new(),
            actor: Some(partner_actor(&a)),
        })
        .await
        .unwrap_err();
    assert_eq!(by_partner.code(), Code::PermissionDenied);
    let reviewed = app
        .client
        .review_quote(pb::ReviewQuoteRequest {
            quote_id: dear.id.clone(),
            approve: true,
            note: "valve price checked".into(),
            actor: Some(agent()),
        })
        .await
        .expect("reviewed")
        .into_inner();
    assert_eq!(reviewed.status, pb::QuoteStatus::Approved as i32);
    assert_eq!(reviewed.reviewed_by, "dispatcher-1");
    app.stop().await;
}

#[tokio::test]
async fn partners_see_only_their_jobs_and_contact_reads_are_audited() {
    let mut app = spawn(Backend::Postgres).await;
    let a = app.register(spec("A", 31.201, 121.451)).await.id;
    let mut far = spec("B", 31.30, 121.55);
    far.coverage.push(pb::Coverage {
        region_code: "320000".into(),
        area: pb::AreaKind::County as i32,
    });
    let b = app.register(far).await.id;
    let job = app.create(job_request("T-7", false)).await;
    assert_eq!(job.partner_id, a);
    let get = |partner: &str| pb::GetJobRequest {
        job_id: job.id.clone(),
        actor: Some(partner_actor(partner)),
    };
    let other = app.client.get_job(get(&b)).await.unwrap_err();
    assert_eq!(other.code(), Code::NotFound);
    assert!(!other.message().contains("Li Lei"));
    let listed = app
        .client
        .list_jobs(pb::ListJobsRequest {
            actor: Some(partner_actor(&b)),
            ..Default::default()
        })
        .await
        .expect("lists")
        .into_inner();
    assert!(listed.jobs.is_empty(), "B lists none of A's jobs");
    let steal = app
        .client
        .respond_to_offer(pb::RespondToOfferRequest {
            job_id: job.id.clone(),
            offer_id: open_offer(&job).id,
            accept: true,
            decline_reason: String::new(),
            actor: Some(partner_actor(&b)),
        })
        .await
        .unwrap_err();
    assert_eq!(steal.code(), Code::NotFound);

    let offered = app
        .client
        .get_job(get(&a))
        .await
        .expect("A sees its offer")
        .into_inner();
    assert!(offered.contact.is_none(), "no contact before acceptance");
    assert!(offered.customer_id.is_empty() || offered.customer_id == "cust-1");
    app.answer(&job, true).await;
    let accepted = app
        .client
        .get_job(get(&a))
        .await
        .expect("A's job")
        .into_inner();
    assert_eq!(
        accepted.contact.as_ref().map(|c| c.name.as_str()),
        Some("Li Lei")
    );
    assert!(accepted.offers.iter().all(|o| o.partner_id == a));
    // The partner's clear reads, in the trail; with authentication disabled the desk's
    // reads in `answer` are clear too (every role), and recorded without a partner.
    let target = format!("job:{}", job.id);
    let partner_reads = |trail: Vec<audit::AuditRecord>| -> Vec<(String, serde_json::Value)> {
        trail
            .into_iter()
            .map(|r| {
                (
                    r.rpc,
                    serde_json::from_str::<serde_json::Value>(&r.detail).unwrap(),
                )
            })
            .filter(|(_, detail)| detail["partner"] == a.as_str())
            .collect()
    };
    let reads = partner_reads(app.trail(&target).await);
    let rpcs: Vec<&str> = reads.iter().map(|(rpc, _)| rpc.as_str()).collect();
    assert_eq!(
        rpcs,
        [
            "/aftersales.dispatch.v1.DispatchService/GetJob",
            "/aftersales.dispatch.v1.DispatchService/RespondToOffer",
        ],
        "the read and, before it, the accept answer"
    );
    for (_, detail) in &reads {
        assert_eq!(detail["contact"], "clear");
        assert_eq!(
            detail["fields"],
            serde_json::json!(["name", "phone", "address"])
        );
    }
    app.client
        .complete_job(pb::CompleteJobRequest {
            idempotency_key: "done-1".into(),
            job_id: job.id.clone(),
            outcome: pb::CompletionOutcome::Fixed as i32,
            photos: vec![pb::Photo {
                url: "https://photos.example/1.jpg".into(),
                sha256: "a".repeat(64),
            }],
            notes: String::new(),
            actor: Some(partner_actor(&a)),
        })
        .await
        .expect("completes");
    let closed = app
        .client
        .get_job(get(&a))
        .await
        .expect("A's job")
        .into_inner();
    assert!(closed.contact.is_none(), "closed work hides the contact");
    assert_eq!(
        partner_reads(app.trail(&target).await).len(),
        2,
        "no contact shown, nothing audited"
    );
    let cancel = app
        .client
        .cancel_job(pb::CancelJobRequest {
            job_id: job.id.clone(),
            reason: "x".into(),
            actor: Some(partner_actor(&a)),
        })
        .await
        .unwrap_err();
    assert_eq!(cancel.code(), Code::PermissionDenied);
    app.stop().await;
}

#[tokio::test]
async fn keys_authenticate_rotate_with_overlap_and_revoke() {
    let mut app = spawn(Backend::Postgres).await;
    let mut partner = spec("A", 31.201, 121.451);
    let a = app.register(partner.clone()).await;
    let first = app
        .keys
        .issue_partner_key(pb::IssuePartnerKeyRequest {
            partner_id: a.id.clone(),
            label: "main".into(),
            actor: Some(agent()),
        })
        .await
        .expect("issued")
        .into_inner();
    let auth = |secret: &str| pb::AuthenticatePartnerKeyRequest {
        secret: secret.into(),
    };
    let who = app
        .keys
        .authenticate_partner_key(auth(&first.secret))
        .await
        .expect("valid")
        .into_inner();
    assert_eq!(who.partner_id, a.id);
    let stored = format!(
        "SELECT COUNT(*) AS n FROM partner_keys WHERE secret_hash = '{}' OR prefix = '{}'",
        first.secret, first.secret
    );
    assert_eq!(
        app.count(&stored).await,
        0,
        "the clear key is stored nowhere"
    );

    let key_id = first.key.as_ref().expect("a key").id.clone();
    let second = app
        .keys
        .rotate_partner_key(pb::RotatePartnerKeyRequest {
            key_id,
            overlap_seconds: 1,
            actor: Some(agent()),
        })
        .await
        .expect("rotated")
        .into_inner();
    for secret in [&first.secret, &second.secret] {
        app.keys
            .authenticate_partner_key(auth(secret))
            .await
            .expect("both keys work during the overlap");
    }
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let old = app
        .keys
        .authenticate_partner_key(auth(&first.secret))
        .await
        .unwrap_err();
    assert_eq!(old.code(), Code::Unauthenticated);
    app.keys
        .authenticate_partner_key(auth(&second.secret))
        .await
        .expect("the new key still works");

    partner.active = false;
    app.client
        .update_partner(pb::UpdatePartnerRequest {
            partner_id: a.id.clone(),
            spec: Some(partner),
            expected_version: a.version,
            actor: Some(agent()),
        })
        .await
        .expect("deactivated");
    let inactive = app
        .keys
        .authenticate_partner_key(auth(&second.secret))
        .await
        .unwrap_err();
    assert_eq!(
        inactive.code(),
        Code::Unauthenticated,
        "an inactive partner's keys stop"
    );
    app.keys
        .revoke_partner_key(pb::RevokePartnerKeyRequest {
            key_id: second.key.expect("a key").id,
            actor: Some(agent()),
        })
        .await
        .expect("revoked");
    let listed = app
        .keys
        .list_partner_keys(pb::ListPartnerKeysRequest { partner_id: a.id })
        .await
        .expect("listed")
        .into_inner();
    assert_eq!(listed.keys.len(), 2);
    assert!(listed.keys[1].revoked_at.is_some());
    assert!(listed.keys.iter().all(|k| k.prefix.len() == 12));
    app.stop().await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_a_retried_create_makes_one_job() {
    let mut app = spawn(Backend::Postgres).await;
    app.register(spec("A", 31.201, 121.451)).await;
    let mut bad = job_request("", false);
    bad.location = None;
    bad.urgency = 42;
    let status = app.client.create_job(bad).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = field_violations(&status)
        .into_iter()
        .map(|f| f.field)
        .collect();
    assert_eq!(fields, vec!["ticket_id", "location.region_code", "urgency"]);
    let mut bad_partner = spec("", 91.0, 0.0);
    bad_partner.daily_capacity = 0;
    let status = app
        .client
        .register_partner(pb::RegisterPartnerRequest {
            spec: Some(bad_partner),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let fields: Vec<String> = field_violations(&status)
        .into_iter()
        .map(|f| f.field)
        .collect();
    assert_eq!(
        fields,
        vec!["spec.name", "spec.daily_capacity", "spec.location.latitude"]
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM jobs").await, 0);

    let mut keyed = job_request("T-8", false);
    keyed.idempotency_key = "create-1".into();
    let first = app.create(keyed.clone()).await;
    let again = app.create(keyed.clone()).await;
    assert_eq!(first.id, again.id);
    keyed.fault_description = "something else".into();
    let reused = app.client.create_job(keyed).await.unwrap_err();
    assert_eq!(reused.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&reused)[0].field, "idempotency_key");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM jobs").await, 1);
    assert_eq!(app.events(&first.id, "dispatch.JobCreated").await, 1);
    let missing = app
        .client
        .get_job(pb::GetJobRequest {
            job_id: "nope".into(),
            actor: None,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    app.stop().await;
}

pub fn ts(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    aftersales_platform::codes::timestamp(t)
}
