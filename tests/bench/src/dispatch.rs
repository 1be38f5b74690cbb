//! Dispatch under load: CreateJob (store, rank every partner covering the region, offer,
//! schedule the acceptance deadline, outbox) at the same concurrency as the other RPCs,
//! then how late the acceptance deadlines of those offers fired: each lapsed offer's
//! `responded_at − expires_at`, read back from the database.

use std::time::Duration;

use aftersales_deadlines::{DeadlineQueue, RedisQueue, RedisQueueSettings};
use aftersales_dispatch::app::{DispatchApp, DispatchConfig};
use aftersales_eventbus::{EventBus, RedisBus};
use aftersales_platform::CancellationToken;
use aftersales_protos::{
    common::v1 as common,
    dispatch::v1::{self as pb, dispatch_service_client::DispatchServiceClient},
};
use aftersales_runtime::ServiceSettings;
use sea_orm::{ConnectionTrait, Statement};
use serde::Serialize;
use tonic::transport::Channel;

use crate::load::{Stats, closed_loop, percentile};
use crate::rpc::Load;

/// Partners covering the benchmark region: each job is ranked against all of them.
const PARTNERS: usize = 20;
const REGION: &str = "310104";

#[derive(Debug, Clone, Serialize)]
pub struct Lapses {
    pub offers: usize,
    pub p50_ms: i64,
    pub p99_ms: i64,
    pub max_ms: i64,
    pub early: usize,
}

fn partner(i: usize) -> pb::PartnerSpec {
    let money = |minor_units| common::Money {
        minor_units,
        currency: "CNY".into(),
    };
    pb::PartnerSpec {
        name: format!("bench outlet {i}"),
        coverage: vec![pb::Coverage {
            region_code: REGION.into(),
            area: pb::AreaKind::Urban as i32,
        }],
        location: Some(pb::GeoPoint {
            latitude: 31.2 + i as f64 * 0.01,
            longitude: 121.45,
        }),
        skills: vec!["appliance".into()],
        daily_capacity: 1_000_000,
        active: true,
        insured: true,
        fees: Some(pb::FeeSchedule {
            labour: vec![pb::LabourRate {
                product_line: "appliance".into(),
                price: Some(money(10_000)),
            }],
            parts: vec![],
            call_out_fee: Some(money(3_000)),
        }),
        ..Default::default()
    }
}

fn job(seq: u64) -> pb::CreateJobRequest {
    pb::CreateJobRequest {
        ticket_id: format!("bench-ticket-{seq}"),
        customer_id: format!("bench-cust-{}", seq % 1_000),
        location: Some(pb::CustomerLocation {
            region_code: REGION.into(),
            point: Some(pb::GeoPoint {
                latitude: 31.25,
                longitude: 121.45,
            }),
        }),
        product_line: "appliance".into(),
        fault_description: "does not heat".into(),
        ..Default::default()
    }
}

/// Starts dispatch on a fresh PostgreSQL database and Redis, registers the partners,
/// measures CreateJob, then waits for the first round of offers to lapse, and stops
/// dispatch: every lapse re-offers to the next partner, and that cascade must not load
/// the machine while later parts of the run are measured.
pub async fn run(load: Load, offer_timeout: Duration) -> anyhow::Result<(Stats, Lapses)> {
    let stop = CancellationToken::new();
    let prefix = aftersales_testkit::unique_prefix();
    let conn = aftersales_testkit::redis_connection().await?;
    let queue = DeadlineQueue::Redis(RedisQueue::new(
        conn.clone(),
        &RedisQueueSettings {
            key_prefix: prefix.clone(),
            name: "dispatch".into(),
            shards: 16,
        },
    ));
    let bus = EventBus::Redis(RedisBus::new(
        conn,
        aftersales_testkit::redis_connection().await?,
        prefix,
    ));
    let mut settings = ServiceSettings::for_tests(
        aftersales_testkit::fresh_postgres_url().await?,
        Duration::from_secs(30),
    );
    settings.server.concurrency_per_connection = 1024;
    let mut config = DispatchConfig::for_tests();
    config.rules.offer_timeout = chrono::Duration::from_std(offer_timeout)?;
    let app = DispatchApp::build(settings, config, bus, queue).await?;
    let addr = app.local_addr();
    let db = app.core().db().clone();
    let running = tokio::spawn(app.run(stop.clone()));
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = DispatchServiceClient::new(channel.clone());
    for i in 0..PARTNERS {
        client
            .register_partner(pb::RegisterPartnerRequest {
                spec: Some(partner(i)),
                ..Default::default()
            })
            .await?;
    }

    let started = chrono::Utc::now();
    let create = closed_loop(load.concurrency, load.warmup, load.duration, move |seq| {
        let mut client = DispatchServiceClient::new(channel.clone());
        async move { client.create_job(job(seq)).await.is_ok() }
    })
    .await;

    // Every offer made so far lapses within the timeout after the last one was made.
    tokio::time::sleep(offer_timeout + Duration::from_secs(3)).await;
    let lapsed = format!(
        "SELECT CAST((EXTRACT(EPOCH FROM (CAST(body::json->>'responded_at' AS timestamptz) - expires_at)) * 1000) AS BIGINT) AS late_ms \
         FROM offers WHERE status = 'expired' AND offered_at >= '{}'",
        started.to_rfc3339()
    );
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), lapsed))
        .await?;
    let mut late: Vec<i64> = rows
        .iter()
        .filter_map(|row| row.try_get::<i64>("", "late_ms").ok())
        .collect();
    late.sort_unstable();
    stop.cancel();
    let _ = running.await;
    let lapses = Lapses {
        offers: late.len(),
        p50_ms: percentile(&late, 50.0),
        p99_ms: percentile(&late, 99.0),
        max_ms: late.last().copied().unwrap_or_default(),
        early: late.iter().filter(|ms| **ms < 0).count(),
    };
    Ok((create, lapses))
}
