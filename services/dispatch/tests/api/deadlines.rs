//! Deadlines fired by the test itself, as the worker hands them over: a claimed batch of
//! lapsed offers is re-offered in one transaction without pushing any partner past its
//! capacity, firing it again changes nothing, and batches that want the same partners in
//! opposite orders do not deadlock.

use aftersales_deadlines::worker::{Deadlines, Due};
use aftersales_dispatch::usecases::DispatchDeadline;
use aftersales_protos::dispatch::v1::{self as pb};
use chrono::Duration;

use crate::helpers::*;

/// Offers lapse a second after they are made.
const TIMEOUT_MS: u64 = 1_000;

/// A near partner that takes every first offer, and two farther ones with room for two
/// jobs each today.
async fn network(app: &mut TestApp) -> (String, String, String) {
    let mut near = spec("near", 31.201, 121.451);
    near.daily_capacity = 20;
    let near = app.register(near).await.id;
    let mut second = spec("second, two a day", 31.25, 121.50);
    second.daily_capacity = 2;
    let second = app.register(second).await.id;
    let mut third = spec("third, two a day", 31.30, 121.55);
    third.daily_capacity = 2;
    let third = app.register(third).await.id;
    (near, second, third)
}

fn lapses(jobs: &[pb::Job]) -> Vec<Due<DispatchDeadline>> {
    jobs.iter()
        .map(|job| Due {
            member: DispatchDeadline::Offer(open_offer(job).id),
            due_ms: 0,
        })
        .collect()
}

/// Partners whose counters of offers taken (the sum over their quarters and slots) differ
/// from their open and accepted offers.
const COUNTERS_OFF: &str = "SELECT COUNT(*) AS n FROM \
     (SELECT partner_id, SUM(taken) AS taken FROM offer_load GROUP BY partner_id) AS l \
     FULL JOIN (SELECT partner_id, COUNT(*) AS taken FROM offers \
       WHERE status IN ('open', 'accepted') GROUP BY partner_id) AS o USING (partner_id) \
     WHERE COALESCE(l.taken, 0) <> COALESCE(o.taken, 0)";

/// Jobs by the partner now holding each (`""` for none) and how many are unassigned.
async fn holders(app: &mut TestApp, jobs: &[pb::Job]) -> (Vec<String>, usize) {
    let mut holders = Vec::new();
    let mut unassigned = 0;
    for job in jobs {
        let job = app.job(&job.id).await;
        if job.status == pb::JobStatus::Unassigned as i32 {
            unassigned += 1;
        }
        holders.push(job.partner_id);
    }
    (holders, unassigned)
}

#[tokio::test]
async fn a_batch_of_lapsed_offers_is_reoffered_within_every_partners_capacity() {
    let mut app = spawn_without_worker(Backend::Postgres, |c| {
        c.rules.offer_timeout = Duration::milliseconds(TIMEOUT_MS as i64);
    })
    .await;
    let (near, second, third) = network(&mut app).await;
    let mut jobs = Vec::new();
    for i in 0..6 {
        let job = app.create(job_request(&format!("T-b{i}"), false)).await;
        assert_eq!(job.partner_id, near);
        jobs.push(job);
    }
    let batch = lapses(&jobs);
    tokio::time::sleep(std::time::Duration::from_millis(TIMEOUT_MS + 100)).await;

    app.core.fire(&batch).await.expect("the batch fires");
    let (held, unassigned) = holders(&mut app, &jobs).await;
    let count = |p: &str| held.iter().filter(|h| *h == p).count();
    assert_eq!(count(&near), 0, "every lapsed job left the near partner");
    assert_eq!(count(&second), 2, "{held:?}");
    assert_eq!(count(&third), 2, "{held:?}");
    assert_eq!(unassigned, 2);
    let declined = app
        .count("SELECT COUNT(*) AS n FROM outbox WHERE event_type = 'dispatch.JobDeclined'")
        .await;
    assert_eq!(declined, 6);
    assert_eq!(
        app.count(COUNTERS_OFF).await,
        0,
        "counters match the offers taken"
    );

    app.core.fire(&batch).await.expect("fires again");
    assert_eq!(
        holders(&mut app, &jobs).await,
        (held, unassigned),
        "nothing changed"
    );
    let declined_again = app
        .count("SELECT COUNT(*) AS n FROM outbox WHERE event_type = 'dispatch.JobDeclined'")
        .await;
    assert_eq!(declined_again, 6);
    assert_eq!(app.count(COUNTERS_OFF).await, 0, "counters still match");
    app.stop().await;
}

/// A job near `(31.20, lon)`.
fn job_at(ticket: &str, lon: f64) -> pb::CreateJobRequest {
    let mut request = job_request(ticket, false);
    if let Some(point) = request.location.as_mut().and_then(|l| l.point.as_mut()) {
        point.longitude = lon;
    }
    request
}

#[tokio::test]
async fn batches_that_want_the_same_partners_in_opposite_orders_do_not_deadlock() {
    let mut app = spawn_without_worker(Backend::Postgres, |c| {
        c.rules.offer_timeout = Duration::milliseconds(TIMEOUT_MS as i64);
    })
    .await;
    let mut first = spec("first", 31.25, 121.50);
    first.daily_capacity = 50;
    app.register(first).await;
    // SIDE jobs west, SIDE east, then one more of each; all go to the only partner there
    // is yet.
    const SIDE: usize = 16;
    const WEST: f64 = 121.40;
    const EAST: f64 = 121.60;
    let mut jobs = Vec::new();
    for (i, lon) in [[WEST; SIDE], [EAST; SIDE]]
        .concat()
        .into_iter()
        .chain([WEST, EAST])
        .enumerate()
    {
        jobs.push(app.create(job_at(&format!("T-x{i}"), lon)).await);
    }
    let mut west = spec("west", 31.20, WEST);
    west.daily_capacity = 50;
    let west = app.register(west).await.id;
    let mut east = spec("east", 31.20, EAST);
    east.daily_capacity = 50;
    let east = app.register(east).await.id;
    let mut all = lapses(&jobs);
    tokio::time::sleep(std::time::Duration::from_millis(TIMEOUT_MS + 100)).await;

    // In job order, one batch wants the west partner for SIDE jobs and then the east
    // one; the other the east partner for SIDE and then the west one. Without one lock
    // order across batches, each would hold the partner the other waits for.
    let last_east = all.pop().expect("a last east job");
    let last_west = all.pop().expect("a last west job");
    let mut other = all.split_off(SIDE);
    let mut one = all;
    one.push(last_east);
    other.push(last_west);
    let (a, b) = tokio::join!(app.core.fire(&one), app.core.fire(&other));
    a.expect("one batch fires");
    b.expect("the other batch fires");

    let (held, unassigned) = holders(&mut app, &jobs).await;
    assert_eq!(unassigned, 0);
    let nearest: Vec<&String> = [[&west; SIDE], [&east; SIDE]]
        .concat()
        .into_iter()
        .chain([&west, &east])
        .collect();
    for (i, (holder, nearest)) in held.iter().zip(nearest).enumerate() {
        assert_eq!(holder, nearest, "job {i} went to its nearest partner");
    }
    app.stop().await;
}
