//! The scripted month of spare parts through the API: receipts, reservations,
//! transfers, consumption and stocktakes with discrepancies, on a manual clock, with every
//! figure worked out by hand in the comments.

use aftersales_protos::dispatch::v1 as pb;
use chrono::Duration;

use crate::{
    helpers::*,
    parts::{ACCEPTED, WAITING, spawn_at},
};

async fn a_month_of_stock(backend: Backend) {
    let (mut app, clock, t0) = spawn_at(backend).await;
    let day = |n: i64| {
        clock.set(t0 + Duration::days(n));
    };
    let p = app.register(spec("P", 31.201, 121.451)).await.id;
    let pump = app.part("Drain pump", "PUMP-1").await;
    let belt = app.part("Drive belt", "").await;
    let c = app.site(pb::SiteKind::CentralWarehouse, "").await;
    let r = app.site(pb::SiteKind::RegionalCentre, "").await;
    let o = app.site(pb::SiteKind::PartnerOutlet, &p).await;

    // Day 1: the central warehouse receives 50 pumps and 20 belts.
    day(1);
    app.receive("r-1", &c, &[(&pump, 50), (&belt, 20)]).await;
    // Day 2: 20 pumps leave for the regional centre: C 30, R 0 on hand + 20 in transit.
    day(2);
    let t1 = app.ship(&pump, &c, &r, 20).await.expect("ships");
    assert_eq!(app.stock(&pump, &r).await, (0, 0, 20));
    // Day 3: they arrive (R 20); R warns below 15 available.
    day(3);
    app.arrive(&t1.id).await;
    app.threshold(&pump, &r, 15).await;
    // Day 4: 6 pumps R → O (R 14 < 15: the one warning of the month), 4 belts C → O
    // (C belts 16).
    day(4);
    let t2 = app.ship(&pump, &r, &o, 6).await.expect("ships");
    let t3 = app.ship(&belt, &c, &o, 4).await.expect("ships");
    // Day 5: J1 needs 2 pumps and a belt at O, where nothing has arrived: it waits.
    day(5);
    let j1 = app.accepted_job("T-1").await;
    let asked = app
        .request_parts(&j1, &o, &[(&pump, 2), (&belt, 1)])
        .await
        .expect("requests");
    assert_eq!(asked.job.as_ref().unwrap().status, WAITING);
    assert!(asked.reservations.iter().all(|l| l.reserved == 0));
    // Day 6: the pumps arrive (O 6 on hand, 2 held for J1); the belt is still missing.
    day(6);
    assert!(app.arrive(&t2.id).await.resumed_job_ids.is_empty());
    assert_eq!(app.job(&j1.id).await.status, WAITING);
    // Day 7: the belts arrive (O belts 4, 1 held): J1 is whole and resumes.
    day(7);
    assert_eq!(
        app.arrive(&t3.id).await.resumed_job_ids,
        vec![j1.id.clone()]
    );
    assert_eq!(app.job(&j1.id).await.status, ACCEPTED);
    // Day 8: J2 takes 3 of the 4 pumps available at O at once (O: 6 on hand, 5 held).
    day(8);
    let j2 = app.accepted_job("T-2").await;
    let j2_parts = app.request_parts(&j2, &o, &[(&pump, 3)]).await.unwrap();
    assert_eq!(j2_parts.job.as_ref().unwrap().status, ACCEPTED);
    // Day 9: J1 is fixed: 2 pumps and a belt consumed (O pumps 4, 3 held; belts 3).
    day(9);
    app.finish(&j1, pb::CompletionOutcome::Fixed).await;
    // Day 10: J3 needs 2 pumps and 4 belts; 1 pump and 3 belts are available: it gets
    // them and waits (O: pumps 4 held, belts 3 held).
    day(10);
    let j3 = app.accepted_job("T-3").await;
    let j3_parts = app
        .request_parts(&j3, &o, &[(&pump, 2), (&belt, 4)])
        .await
        .unwrap();
    let held: Vec<u64> = j3_parts.reservations.iter().map(|l| l.reserved).collect();
    assert_eq!(held, [1, 3]);
    assert_eq!(j3_parts.job.as_ref().unwrap().status, WAITING);
    // Day 11: J2 is cancelled: its 3 pumps are released and J3's missing pump is given
    // at once (O: 4 on hand, 2 held for J3); J3 still waits for a belt.
    day(11);
    app.client
        .cancel_job(pb::CancelJobRequest {
            job_id: j2.id.clone(),
            reason: "customer withdrew".into(),
            actor: Some(agent()),
        })
        .await
        .expect("cancels");
    assert_eq!(app.stock(&pump, &o).await, (4, 2, 0));
    assert_eq!(app.job(&j3.id).await.status, WAITING);
    // Day 12: O receives 5 pumps (9 on hand) and a belt (4, all held): J3 is whole and
    // resumes.
    day(12);
    let receipt = app.receive("r-2", &o, &[(&pump, 5), (&belt, 1)]).await;
    assert_eq!(receipt.resumed_job_ids, vec![j3.id.clone()]);
    assert_eq!(app.job(&j3.id).await.status, ACCEPTED);
    // Day 13: J3 is fixed: 2 pumps and 4 belts consumed (O pumps 7, belts 0).
    day(13);
    app.finish(&j3, pb::CompletionOutcome::Fixed).await;
    // Day 14: stocktakes. O counts 6 pumps (7 recorded: −1) and no belts (right); C
    // counts 31 pumps (30: +1) and 15 belts (16: −1).
    day(14);
    let take = app
        .client
        .record_stocktake(pb::RecordStocktakeRequest {
            idempotency_key: "count-o".into(),
            site_id: o.clone(),
            counts: vec![
                pb::StocktakeCount {
                    part_id: pump.clone(),
                    counted: 6,
                },
                pb::StocktakeCount {
                    part_id: belt.clone(),
                    counted: 0,
                },
            ],
            actor: None,
        })
        .await
        .expect("counts O")
        .into_inner();
    let report: Vec<(u64, u64, i64)> = take
        .lines
        .iter()
        .map(|l| (l.expected, l.counted, l.discrepancy))
        .collect();
    assert_eq!(report, [(7, 6, -1), (0, 0, 0)]);
    let take = app
        .client
        .record_stocktake(pb::RecordStocktakeRequest {
            idempotency_key: "count-c".into(),
            site_id: c.clone(),
            counts: vec![
                pb::StocktakeCount {
                    part_id: pump.clone(),
                    counted: 31,
                },
                pb::StocktakeCount {
                    part_id: belt.clone(),
                    counted: 15,
                },
            ],
            actor: None,
        })
        .await
        .expect("counts C")
        .into_inner();
    let report: Vec<i64> = take.lines.iter().map(|l| l.discrepancy).collect();
    assert_eq!(report, [1, -1]);

    // The month's end. Pumps: 55 received − 4 consumed ± 0 counted = 51 = C 31 + R 14 +
    // O 6. Belts: 21 received − 5 consumed − 1 counted = 15 = C 15 + O 0. Nothing held,
    // nothing in transit.
    day(30);
    assert_eq!(app.stock(&pump, &c).await, (31, 0, 0));
    assert_eq!(app.stock(&pump, &r).await, (14, 0, 0));
    assert_eq!(app.stock(&pump, &o).await, (6, 0, 0));
    assert_eq!(app.stock(&belt, &c).await, (15, 0, 0));
    assert_eq!(app.stock(&belt, &o).await, (0, 0, 0));
    assert_eq!(app.stock(&belt, &r).await, (0, 0, 0));
    // The ledger adds up to every row: each figure is the sum of its movements.
    let off = app
        .count(
            "SELECT COUNT(*) AS n FROM part_stock s WHERE \
             on_hand <> (SELECT COALESCE(SUM(on_hand_delta), 0) FROM part_movements m \
               WHERE m.part_id = s.part_id AND m.site_id = s.site_id) \
             OR reserved <> (SELECT COALESCE(SUM(reserved_delta), 0) FROM part_movements m \
               WHERE m.part_id = s.part_id AND m.site_id = s.site_id) \
             OR in_transit <> (SELECT COALESCE(SUM(in_transit_delta), 0) FROM part_movements m \
               WHERE m.part_id = s.part_id AND m.site_id = s.site_id)",
        )
        .await;
    assert_eq!(off, 0, "every stock row equals its ledger");
    assert_eq!(app.published(&pump, "dispatch.PartLowStock").await.len(), 1);
    assert_eq!(app.events(&j1.id, "dispatch.JobPartsReady").await, 1);
    assert_eq!(app.events(&j3.id, "dispatch.JobPartsReady").await, 1);
    assert_eq!(app.events(&j2.id, "dispatch.JobPartsReady").await, 0);

    // Turnover of pumps at O over [day 0, day 30): on hand 0 for 6 days, 6 for 3, 4 for
    // 3, 9 for 1, 7 for 1, 6 for 16: 142 unit-days, average 142/30; consumed 4, so
    // 4 ÷ (142/30) = 120/142.
    let month = (t0, t0 + Duration::days(30));
    let at_o = app.turnover(&pump, &o, month.0, month.1).await;
    assert_eq!(at_o.consumed, 4);
    assert!(
        (at_o.average_on_hand - 142.0 / 30.0).abs() < 1e-9,
        "{at_o:?}"
    );
    assert!((at_o.turnover - 120.0 / 142.0).abs() < 1e-9, "{at_o:?}");
    // Every site: 0 (1 day), 50 (1), 30 (1), 50 (1), 44 (2), 50 (3), 48 (3), 53 (1),
    // 51 (1), 51 (16): 1,432 unit-days; 4 ÷ (1432/30) = 120/1432.
    let all = app.turnover(&pump, "", month.0, month.1).await;
    assert_eq!(all.consumed, 4);
    assert!(
        (all.average_on_hand - 1432.0 / 30.0).abs() < 1e-9,
        "{all:?}"
    );
    assert!((all.turnover - 120.0 / 1432.0).abs() < 1e-9, "{all:?}");
    app.stop().await;
}

#[tokio::test]
async fn stock_is_exact_after_a_scripted_month_postgres() {
    a_month_of_stock(Backend::Postgres).await;
}

#[tokio::test]
async fn stock_is_exact_after_a_scripted_month_sqlite() {
    a_month_of_stock(Backend::Sqlite).await;
}
