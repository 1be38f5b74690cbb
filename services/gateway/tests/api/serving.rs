//! The gateway as a process: health on both faces, and a stop that ends both servers.

use std::time::{Duration, Instant};

use aftersales_gateway::app::GatewaySettings;
use aftersales_platform::CancellationToken;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::spawn_gateway;

#[tokio::test]
async fn health_is_served_on_both_faces_and_shutdown_stops_both() {
    let settings =
        GatewaySettings::for_tests("http://127.0.0.1:9".into(), "http://127.0.0.1:9".into());
    let shutdown = CancellationToken::new();
    let (gw, task) = spawn_gateway(settings, shutdown.clone()).await;

    let mut health = HealthClient::new(gw.channel.clone());
    let status = health
        .check(HealthCheckRequest {
            service: "aftersales.partner.v1.PartnerService".into(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    let http = gw.http.get("/healthz", None).await;
    assert_eq!(
        (http.status.as_u16(), http.body["status"].as_str()),
        (200, Some("ok"))
    );

    let started = Instant::now();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("both faces stop within the drain bound")
        .expect("the gateway task ends cleanly");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        gw.http
            .client
            .get(gw.http.url("/healthz"))
            .send()
            .await
            .is_err(),
        "the HTTP face is closed"
    );
}
