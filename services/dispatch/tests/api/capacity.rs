//! A partner's capacity as the counters of offers taken keep it (PostgreSQL): a declined
//! offer gives its place back, and concurrent jobs fill a partner exactly, whether they
//! hold it shared (far from full) or exclusively (near full).

use aftersales_protos::dispatch::v1 as pb;

use crate::helpers::*;

#[tokio::test]
async fn a_declined_offer_gives_its_place_back() {
    let mut app = spawn(Backend::Postgres).await;
    let mut near = spec("near, one job a day", 31.201, 121.451);
    near.daily_capacity = 1;
    let near = app.register(near).await.id;
    let far = app.register(spec("far", 31.30, 121.55)).await.id;
    let first = app.create(job_request("T-d1", false)).await;
    assert_eq!(first.partner_id, near);
    let first = app.answer(&first, false).await;
    assert_eq!(first.partner_id, far, "re-offered after the decline");
    let second = app.create(job_request("T-d2", false)).await;
    assert_eq!(
        second.partner_id, near,
        "the declined offer no longer counts"
    );
    let third = app.create(job_request("T-d3", false)).await;
    assert_eq!(third.partner_id, far, "the near partner is full again");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_jobs_fill_a_large_partner_exactly() {
    let mut app = spawn(Backend::Postgres).await;
    // Above the test server's max_connections, so the first jobs hold the partner shared
    // and the last ones exclusively.
    let capacity = 105;
    let mut near = spec("near, large", 31.201, 121.451);
    near.daily_capacity = capacity;
    let near = app.register(near).await.id;
    let jobs: Vec<String> = (0..capacity + 7).map(|i| format!("T-l{i}")).collect();
    let mut to_near = 0;
    for wave in jobs.chunks(16) {
        let creates: Vec<_> = wave
            .iter()
            .map(|ticket| {
                let mut client = app.client.clone();
                let request = job_request(ticket, false);
                tokio::spawn(async move {
                    client
                        .create_job(request)
                        .await
                        .expect("creates")
                        .into_inner()
                })
            })
            .collect();
        for create in creates {
            let job = create.await.unwrap();
            if job.partner_id == near {
                to_near += 1;
            } else {
                assert_eq!(job.status, pb::JobStatus::Unassigned as i32, "{job:?}");
            }
        }
    }
    assert_eq!(to_near, capacity, "exactly the partner's capacity");
    app.stop().await;
}
