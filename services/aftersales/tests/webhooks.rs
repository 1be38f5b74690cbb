//! Partners are told, not polling: through the real binary (`serve dispatch webhooks`),
//! on PostgreSQL with Redis and on the embedded backends, a job offered to a partner
//! reaches that partner's webhook endpoint and no other partner's, signed so the official
//! Standard Webhooks library verifies it; when the job is cancelled under the partner it
//! is told that too.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::time::Duration;

use aftersales_protos::{
    common::v1 as common,
    dispatch::v1::{self as dpb, dispatch_service_client::DispatchServiceClient},
    webhooks::v1::{self as wpb, webhook_service_client::WebhookServiceClient},
};
use aftersales_testkit::webhook_receiver::WebhookReceiver;
use support::suite::{Backends, DataDir, Launch};

const REGION: &str = "310104";

fn partner(name: &str, lat: f64) -> dpb::RegisterPartnerRequest {
    dpb::RegisterPartnerRequest {
        spec: Some(dpb::PartnerSpec {
            name: name.into(),
            coverage: vec![dpb::Coverage {
                region_code: REGION.into(),
                area: dpb::AreaKind::Urban as i32,
            }],
            location: Some(dpb::GeoPoint {
                latitude: lat,
                longitude: 121.45,
            }),
            skills: vec!["appliance".into()],
            daily_capacity: 10,
            active: true,
            insured: true,
            time_zone: "Asia/Shanghai".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn actor(id: &str, role: common::ActorRole) -> Option<common::Actor> {
    Some(common::Actor {
        id: id.into(),
        role: role as i32,
    })
}

async fn a_partner_is_pushed_its_offer_and_its_cancellation(backends: Backends) {
    let receiver = WebhookReceiver::start(&[]).await.unwrap();
    let mut suite = Launch::on(&["dispatch", "webhooks"], &backends)
        .await
        .env("WEBHOOKS_ALLOWED_TARGETS", "127.0.0.0/8")
        .env(
            "METRICS_ADDR",
            format!("127.0.0.1:{}", support::free_port()),
        )
        .spawn();
    let mut dispatch = DispatchServiceClient::new(suite.channel("dispatch").await);
    let mut webhooks = WebhookServiceClient::new(suite.channel("webhooks").await);

    let near = dispatch
        .register_partner(partner("near", 31.20))
        .await
        .unwrap()
        .into_inner();
    let far = dispatch
        .register_partner(partner("far", 31.30))
        .await
        .unwrap()
        .into_inner();
    let mut secrets = Vec::new();
    for p in [&near, &far] {
        let created = webhooks
            .create_endpoint(wpb::CreateEndpointRequest {
                partner_id: p.id.clone(),
                url: receiver.url(&format!("/{}", p.id)),
                event_types: vec![
                    "dispatch.JobOffered".into(),
                    "dispatch.OfferWithdrawn".into(),
                    "dispatch.JobCancelled".into(),
                ],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        secrets.push(created.secret);
    }
    receiver.set_secrets(&secrets).await.unwrap();

    let job = dispatch
        .create_job(dpb::CreateJobRequest {
            ticket_id: "ticket-1".into(),
            customer_id: "cust-1".into(),
            location: Some(dpb::CustomerLocation {
                region_code: REGION.into(),
                point: Some(dpb::GeoPoint {
                    latitude: 31.20,
                    longitude: 121.45,
                }),
            }),
            product_line: "appliance".into(),
            fault_description: "does not drain".into(),
            urgency: dpb::Urgency::Normal as i32,
            actor: actor("agent-1", common::ActorRole::Agent),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let offer = job
        .offers
        .iter()
        .find(|o| o.status == dpb::OfferStatus::Open as i32)
        .cloned()
        .expect("an open offer");
    let offered_to = offer.partner_id.clone();
    let other = if offered_to == near.id {
        &far.id
    } else {
        &near.id
    };

    let received = receiver.wait_for(1, Duration::from_secs(20)).await.unwrap();
    let first = &received.verified[0];
    assert_eq!(first.event_type, "dispatch.JobOffered");
    assert_eq!(
        first.path,
        format!("/{offered_to}"),
        "only the partner offered the job"
    );

    dispatch
        .cancel_job(dpb::CancelJobRequest {
            job_id: job.id.clone(),
            reason: "customer fixed it".into(),
            actor: actor("agent-1", common::ActorRole::Agent),
        })
        .await
        .unwrap();
    let received = receiver.wait_for(3, Duration::from_secs(20)).await.unwrap();
    let mut types: Vec<_> = received
        .verified
        .iter()
        .map(|d| {
            assert_eq!(
                d.path,
                format!("/{offered_to}"),
                "{} went to another partner",
                d.id
            );
            d.event_type.as_str()
        })
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "dispatch.JobCancelled",
            "dispatch.JobOffered",
            "dispatch.OfferWithdrawn"
        ]
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = receiver.deliveries().await.unwrap();
    assert_eq!(after.verified.len(), 3);
    assert!(after.verified.iter().all(|d| d.path != format!("/{other}")));
    assert_eq!((after.duplicates, after.rejected), (0, 0));
    support::terminate(&mut suite.child, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn a_partner_is_pushed_its_offer_and_its_cancellation_on_postgres_and_redis() {
    a_partner_is_pushed_its_offer_and_its_cancellation(Backends::PostgresAndRedis).await;
}

#[tokio::test]
async fn a_partner_is_pushed_its_offer_and_its_cancellation_on_the_embedded_backends() {
    let dir = DataDir::new("webhooks");
    a_partner_is_pushed_its_offer_and_its_cancellation(dir.backends()).await;
}
