//! Dispatch under load: CreateJob (store, rank every partner covering the region, offer,
//! schedule the acceptance deadline, outbox) at the same concurrency as the other RPCs.
//! How late the acceptance deadlines fire is measured with the other services' deadlines
//! (`handlers`).

use aftersales_dispatch::app::{DispatchApp, DispatchConfig};
use aftersales_platform::CancellationToken;
use aftersales_protos::{
    common::v1 as common,
    dispatch::v1::{self as pb, dispatch_service_client::DispatchServiceClient},
};
use tonic::transport::Channel;

use crate::home::Home;
use crate::load::{Stats, closed_loop};
use crate::rpc::Load;

/// Partners covering the benchmark region: each job is ranked against all of them.
const PARTNERS: usize = 20;
const REGION: &str = "310104";

pub(crate) fn partner(i: usize) -> pb::PartnerSpec {
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

pub(crate) fn job(seq: u64) -> pb::CreateJobRequest {
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

/// Starts dispatch on a fresh PostgreSQL database and Redis, registers the partners and
/// measures CreateJob. The offers' deadline lies beyond the run, so no re-offer cascade
/// loads the machine; dispatch stops when the measurement ends.
pub async fn run(load: Load) -> anyhow::Result<Stats> {
    let stop = CancellationToken::new();
    let home = Home::fresh().await?;
    let mut config = DispatchConfig::for_tests();
    config.rules.offer_timeout = chrono::Duration::hours(1);
    let app = DispatchApp::build(
        home.settings(),
        config,
        home.bus().await?,
        home.queue("dispatch").await?,
    )
    .await?;
    let addr = app.local_addr();
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
    let create = closed_loop(load.concurrency, load.warmup, load.duration, move |seq| {
        let mut client = DispatchServiceClient::new(channel.clone());
        async move { client.create_job(job(seq)).await.is_ok() }
    })
    .await;
    stop.cancel();
    let _ = running.await;
    Ok(create)
}
