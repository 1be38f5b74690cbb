//! Every hop encrypted, through the real binary: dispatch and the gateway serve gRPC over
//! mutual TLS (certificates from the suite's CA), the gateway's HTTP face serves HTTPS with
//! a certificate of its own, and the gateway reaches dispatch over `https://`, checking
//! dispatch's certificate against the private CA and presenting its own client
//! certificate. A partner's call over HTTPS makes the gateway look its key up at dispatch:
//! a refused key (401) shows the hop worked, where a failed hop answers 503.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use aftersales_platform::{client, tls::UpstreamTls};
use aftersales_testkit::tls::TestCa;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const BIN: &str = env!("CARGO_BIN_EXE_aftersales");

/// A health check of `service` over a fresh connection to `url`.
async fn health(url: &str, tls: &UpstreamTls, service: &str) -> Result<(), String> {
    let endpoint = client::endpoint(url, tls)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(3));
    let channel = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Waits until `url` answers a health check of `service`, or fails after 30 s.
async fn wait_up(url: &str, tls: &UpstreamTls, service: &str, child: &mut support::KillOnDrop) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match health(url, tls, service).await {
            Ok(()) => return,
            Err(err) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{service} not up at {url}: {err}"
                );
                assert!(child.0.try_wait().unwrap().is_none(), "serve exited early");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[tokio::test]
async fn dispatch_and_the_gateway_talk_over_mutual_tls_and_partners_over_https() {
    aftersales_platform::tls::install_default_provider();
    let suite = TestCa::new("suite CA").unwrap();
    let server = suite.issue("server", &["localhost", "127.0.0.1"]).unwrap();
    let gateway_client = suite.issue("gateway", &["gateway"]).unwrap();
    let public = TestCa::new("public CA").unwrap();
    let face = public.issue("face", &["localhost"]).unwrap();
    let database = aftersales_testkit::fresh_sqlite_url();

    let migrated = Command::new(BIN)
        .args(["migrate", "dispatch"])
        .env("DISPATCH_DATABASE_URL", &database)
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{migrated:?}");

    let dispatch_port = support::free_port();
    let gateway_grpc = support::free_port();
    let gateway_http = support::free_port();
    let mut child = support::KillOnDrop(
        Command::new(BIN)
            .args(["serve", "dispatch", "gateway"])
            .env("AUTH_MODE", "disabled")
            .env("DISPATCH_DATABASE_URL", &database)
            .env("DISPATCH_GRPC_ADDR", format!("127.0.0.1:{dispatch_port}"))
            .env("GATEWAY_GRPC_ADDR", format!("127.0.0.1:{gateway_grpc}"))
            .env("GATEWAY_HTTP_ADDR", format!("127.0.0.1:{gateway_http}"))
            .env(
                "METRICS_ADDR",
                format!("127.0.0.1:{}", support::free_port()),
            )
            // Every gRPC listener: the suite's certificate, clients must show one too.
            .env("TLS_CERT_FILE", &server.cert)
            .env("TLS_KEY_FILE", &server.key)
            .env("TLS_CLIENT_CA_FILE", suite.ca_file())
            // The gateway's calls: dispatch checked against the suite's CA, with the
            // gateway's own client certificate.
            .env(
                "GATEWAY_DISPATCH_URL",
                format!("https://localhost:{dispatch_port}"),
            )
            .env(
                "GATEWAY_RETURNS_URL",
                format!("https://localhost:{}", support::free_port()),
            )
            .env("UPSTREAM_CA_FILE", suite.ca_file())
            .env("UPSTREAM_CLIENT_CERT_FILE", &gateway_client.cert)
            .env("UPSTREAM_CLIENT_KEY_FILE", &gateway_client.key)
            // The partner face: a certificate from another (public) CA, no client certs.
            .env("GATEWAY_HTTP_TLS_CERT_FILE", &face.cert)
            .env("GATEWAY_HTTP_TLS_KEY_FILE", &face.key)
            .env("SHUTDOWN_HEALTH_GRACE_MS", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );

    let with_cert = UpstreamTls::with_ca(suite.ca_pem())
        .with_identity(&gateway_client.cert_pem, &gateway_client.key_pem);
    let dispatch = format!("https://localhost:{dispatch_port}");
    wait_up(
        &dispatch,
        &with_cert,
        "aftersales.dispatch.v1.DispatchService",
        &mut child,
    )
    .await;
    wait_up(
        &format!("https://localhost:{gateway_grpc}"),
        &with_cert,
        "",
        &mut child,
    )
    .await;
    assert!(
        health(&dispatch, &UpstreamTls::with_ca(suite.ca_pem()), "")
            .await
            .is_err(),
        "a client without a certificate is refused"
    );
    assert!(
        health(&format!("http://127.0.0.1:{dispatch_port}"), &with_cert, "")
            .await
            .is_err(),
        "plaintext is refused"
    );

    let partners = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(public.ca_pem().as_bytes()).unwrap()])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let face_url = format!("https://localhost:{gateway_http}");
    let health = partners
        .get(format!("{face_url}/healthz"))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success(), "{health:?}");
    let offers = partners
        .get(format!("{face_url}/v1/offers"))
        .bearer_auth("pk_not_a_real_key")
        .send()
        .await
        .unwrap();
    assert_eq!(
        offers.status().as_u16(),
        401,
        "dispatch looked the key up over mutual TLS and refused it (503 means the hop failed): {}",
        offers.text().await.unwrap_or_default()
    );
    // The partner face speaks nothing but TLS.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{gateway_http}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plaintext HTTP is refused"
    );

    let status = support::terminate(&mut child, Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}");
}
