//! What a finished job tells care about its cost: `RepairCosted` with its approved quotes
//! (labour and call-out apart from the partner's parts, who pays) and the parts it
//! consumed from stock valued at the partner's fee-schedule price; a quote approved after
//! completion published again; and `StockLevelChanged` for every change on hand.

use aftersales_protos::{
    common::v1 as common,
    dispatch::v1 as pb,
    events::v1::{self as ev, event_envelope::Payload},
};

use crate::helpers::*;

fn money(m: &Option<common::Money>) -> i64 {
    m.as_ref().map_or(-1, |m| m.minor_units)
}

async fn costed(app: &TestApp, job_id: &str) -> Vec<ev::RepairCosted> {
    app.published(job_id, "dispatch.RepairCosted")
        .await
        .into_iter()
        .filter_map(|p| match p {
            Payload::RepairCosted(c) => Some(c),
            _ => None,
        })
        .collect()
}

async fn repair_costs(backend: Backend) {
    let mut app = spawn(backend).await;
    let p = app.register(spec("P", 31.201, 121.451)).await.id;
    let pump = app.part("Drain pump", "PUMP-1").await;
    let belt = app.part("Drive belt", "").await;
    let outlet = app.site(pb::SiteKind::PartnerOutlet, &p).await;
    app.receive("r-1", &outlet, &[(&pump, 5), (&belt, 2)]).await;

    // Warranty work: an auto-approved quote, two pumps and a belt from stock.
    let job = app.accepted_job("T-C1").await;
    let quoted = app
        .client
        .submit_quote(pb::SubmitQuoteRequest {
            idempotency_key: "q-1".into(),
            job_id: job.id.clone(),
            lines: vec![
                line(pb::QuoteLineKind::Labour, "", 10_000),
                line(pb::QuoteLineKind::CallOut, "", 3_000),
                line(pb::QuoteLineKind::Part, "PUMP-1", 5_000),
            ],
            actor: Some(partner_actor(&p)),
        })
        .await
        .expect("quote")
        .into_inner();
    assert_eq!(quoted.status, pb::QuoteStatus::Approved as i32);
    app.request_parts(&job, &outlet, &[(&pump, 2), (&belt, 1)])
        .await
        .expect("reserved");
    assert!(costed(&app, &job.id).await.is_empty(), "not finished yet");
    app.finish(&job, pb::CompletionOutcome::Fixed).await;
    let [cost] = costed(&app, &job.id).await.try_into().expect("one");
    assert_eq!(
        (cost.ticket_id.as_str(), cost.partner_id.as_str()),
        ("T-C1", p.as_str())
    );
    let [q] = cost.quotes.try_into().expect("one quote");
    assert_eq!(
        (
            q.quote_id.as_str(),
            money(&q.labour),
            money(&q.parts),
            q.company_pays
        ),
        (quoted.id.as_str(), 13_000, 5_000, true)
    );
    let mut parts: Vec<(String, u64, i64)> = cost
        .parts
        .iter()
        .map(|c| (c.part_id.clone(), c.quantity, money(&c.unit_value)))
        .collect();
    parts.sort();
    let mut expected = vec![(pump.clone(), 2, 5_000), (belt.clone(), 1, -1)];
    expected.sort();
    assert_eq!(parts, expected, "the belt has no price in the schedule");

    let levels: Vec<(i64, u64, i64, String)> = app
        .published(&pump, "dispatch.StockLevelChanged")
        .await
        .into_iter()
        .filter_map(|p| match p {
            Payload::StockLevelChanged(s) => {
                Some((s.on_hand_delta, s.consumed, s.on_hand, s.region_code))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        levels,
        [(5, 0, 5, REGION.to_owned()), (-2, 2, 3, REGION.to_owned())],
        "the receipt and the consumption; the reservation changed nothing on hand"
    );

    // Customer-paid work whose quote waits for review when the job ends: approved later,
    // it is published again (without parts).
    let paid = app.create(job_request("T-C2", false)).await;
    let paid = app.answer(&paid, true).await;
    let dear = app
        .client
        .submit_quote(pb::SubmitQuoteRequest {
            idempotency_key: "q-2".into(),
            job_id: paid.id.clone(),
            lines: vec![line(pb::QuoteLineKind::Labour, "", 20_000)],
            actor: Some(partner_actor(&p)),
        })
        .await
        .expect("quote")
        .into_inner();
    assert_eq!(dear.status, pb::QuoteStatus::PendingReview as i32);
    app.finish(&paid, pb::CompletionOutcome::NotFixed).await;
    let first = costed(&app, &paid.id).await;
    assert!(first.len() == 1 && first[0].quotes.is_empty(), "{first:?}");
    app.client
        .review_quote(pb::ReviewQuoteRequest {
            quote_id: dear.id.clone(),
            approve: true,
            note: String::new(),
            actor: Some(agent()),
        })
        .await
        .expect("reviewed");
    let costs = costed(&app, &paid.id).await;
    assert_eq!(costs.len(), 2);
    let [q] = costs[1].quotes.clone().try_into().expect("one quote");
    assert_eq!(
        (money(&q.labour), money(&q.parts), q.company_pays),
        (20_000, 0, false)
    );
    assert!(costs[1].parts.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_finished_job_publishes_its_cost_postgres() {
    repair_costs(Backend::Postgres).await;
}

#[tokio::test]
async fn a_finished_job_publishes_its_cost_sqlite() {
    repair_costs(Backend::Sqlite).await;
}
