#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test
//! Transport security of the server kit and the clients, over real connections with
//! certificates the test generates: a TLS listener answers a client that trusts its CA
//! and nobody in plaintext; with a client CA it wants a client certificate; a certificate
//! replaced on disk is served to new connections; connections that never finish their
//! handshake are closed within the bound while others are served; `https://` upstreams
//! are checked (and never called in plaintext); `rediss://` against a private CA;
//! PostgreSQL with `sslmode=verify-full`.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use aftersales_platform::{
    CancellationToken, client,
    db::{self, DbSettings},
    redis_conn::{self, RedisTarget, RedisTls},
    server::{self, GrpcServices, ServerSettings},
    tls::{RELOAD_CHECK, ServerTlsSettings, UpstreamTls},
};
use aftersales_testkit::tls::{CertFiles, TestCa, TlsPostgres, TlsRedis};
use sea_orm::ConnectionTrait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A server kit listener with `tls` (and health) on loopback, stopped when dropped.
struct Listener {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn listen(tls: Option<ServerTlsSettings>, handshake_timeout: Duration) -> Listener {
    aftersales_platform::tls::install_default_provider();
    let listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings = ServerSettings::for_tests();
    settings.tls = tls;
    settings.handshake_timeout = handshake_timeout;
    let stop = CancellationToken::new();
    tokio::spawn(server::serve(
        listener,
        settings,
        GrpcServices::new(),
        stop.clone(),
    ));
    Listener { addr, stop }
}

fn server_tls(cert: &CertFiles, client_ca: Option<&TestCa>) -> ServerTlsSettings {
    ServerTlsSettings {
        cert_file: cert.cert.clone(),
        key_file: cert.key.clone(),
        client_ca_file: client_ca.map(TestCa::ca_file),
    }
}

/// A health check over a fresh connection to `url`.
async fn health(url: &str, tls: &UpstreamTls) -> Result<(), String> {
    let endpoint = client::endpoint(url, tls)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(3));
    let channel = tokio::time::timeout(Duration::from_secs(10), endpoint.connect())
        .await
        .map_err(|_| "no connection within 10 s".to_owned())?
        .map_err(|e| format!("{e:?}"))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_tls_listener_answers_clients_that_trust_its_ca_and_nobody_in_plaintext() {
    let ca = TestCa::new("suite CA").unwrap();
    let cert = ca.issue("server", &["localhost", "127.0.0.1"]).unwrap();
    let server = listen(Some(server_tls(&cert, None)), Duration::from_secs(10)).await;
    let port = server.addr.port();
    let trusted = UpstreamTls::with_ca(ca.ca_pem());

    health(&format!("https://localhost:{port}"), &trusted)
        .await
        .expect("a client trusting the CA is served");
    health(&format!("https://127.0.0.1:{port}"), &trusted)
        .await
        .expect("the certificate names the address too");
    // Plaintext to the TLS port gets no answer.
    assert!(
        health(&format!("http://localhost:{port}"), &trusted)
            .await
            .is_err()
    );
    // The public roots do not vouch for the suite's CA.
    assert!(
        health(
            &format!("https://localhost:{port}"),
            &UpstreamTls::default()
        )
        .await
        .is_err()
    );
    // Another CA's client does not trust this server.
    let other = TestCa::new("another CA").unwrap();
    assert!(
        health(
            &format!("https://localhost:{port}"),
            &UpstreamTls::with_ca(other.ca_pem())
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn probes_that_cannot_speak_tls_get_a_plaintext_port_with_health_only() {
    aftersales_platform::tls::install_default_provider();
    let ca = TestCa::new("suite CA").unwrap();
    let cert = ca.issue("server", &["localhost"]).unwrap();
    let listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let probe_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut settings = ServerSettings::for_tests();
    settings.tls = Some(server_tls(&cert, None));
    settings.health_addr = Some(SocketAddr::from(([127, 0, 0, 1], probe_port)));
    settings.health_grace = Duration::from_secs(2);
    let stop = CancellationToken::new();
    let served = tokio::spawn(server::serve(
        listener,
        settings,
        GrpcServices::new(),
        stop.clone(),
    ));
    let plain = UpstreamTls::default();
    let probe = format!("http://127.0.0.1:{probe_port}");
    let mut answered = health(&probe, &plain).await;
    for _ in 0..50 {
        if answered.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        answered = health(&probe, &plain).await;
    }
    answered.expect("the probe port answers in plaintext");
    health(
        &format!("https://localhost:{port}"),
        &UpstreamTls::with_ca(ca.ca_pem()),
    )
    .await
    .expect("the main port serves TLS");
    assert!(
        health(&format!("http://127.0.0.1:{port}"), &plain)
            .await
            .is_err(),
        "the main port has no plaintext"
    );
    // Only health is on the probe port: reflection is not.
    let channel = client::endpoint(&probe, &plain)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(channel);
    let listed = reflection
        .server_reflection_info(tokio_stream::iter([
            tonic_reflection::pb::v1::ServerReflectionRequest {
                message_request: Some(
                    tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                        String::new(),
                    ),
                ),
                ..Default::default()
            },
        ]))
        .await;
    assert_eq!(listed.unwrap_err().code(), tonic::Code::Unimplemented);

    // Shutting down: the probe port reports NOT_SERVING through the grace period.
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let channel = client::endpoint(&probe, &plain)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    );
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        health(&probe, &plain).await.is_err(),
        "the probe port closes with the main port"
    );
}

#[tokio::test]
async fn an_https_upstream_is_never_called_in_plaintext() {
    let plain = listen(None, Duration::from_secs(10)).await;
    let port = plain.addr.port();
    let tls = UpstreamTls::with_ca(TestCa::new("CA").unwrap().ca_pem());
    health(&format!("http://127.0.0.1:{port}"), &tls)
        .await
        .expect("plaintext stays the default");
    // A plaintext server behind an https:// URL: the TLS handshake fails, nothing is sent
    // in the clear.
    let err = health(&format!("https://127.0.0.1:{port}"), &tls)
        .await
        .unwrap_err();
    assert!(!err.is_empty());
}

#[tokio::test]
async fn a_balanced_https_channel_checks_the_name_of_the_service_at_each_address() {
    let ca = TestCa::new("suite CA").unwrap();
    let cert = ca.issue("server", &["localhost"]).unwrap();
    let server = listen(Some(server_tls(&cert, None)), Duration::from_secs(10)).await;
    let port = server.addr.port();
    // `localhost` resolves to addresses; each connection must still verify `localhost`.
    let channel = client::balanced(
        &format!("https://localhost:{port}"),
        client::DEFAULT_REFRESH,
        &UpstreamTls::with_ca(ca.ca_pem()),
        |e| e.connect_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        HealthClient::new(channel).check(HealthCheckRequest::default()),
    )
    .await
    .expect("an answer within 10 s");
    assert!(answer.is_ok(), "{answer:?}");
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_its_certificates_are_served() {
    let ca = TestCa::new("suite CA").unwrap();
    let cert = ca.issue("server", &["localhost"]).unwrap();
    let server = listen(Some(server_tls(&cert, Some(&ca))), Duration::from_secs(10)).await;
    let url = format!("https://localhost:{}", server.addr.port());

    let anonymous = UpstreamTls::with_ca(ca.ca_pem());
    assert!(
        health(&url, &anonymous).await.is_err(),
        "a client without a certificate is refused"
    );
    let client = ca.issue("care", &["care"]).unwrap();
    health(
        &url,
        &UpstreamTls::with_ca(ca.ca_pem()).with_identity(&client.cert_pem, &client.key_pem),
    )
    .await
    .expect("a client with a certificate from the CA is served");
    let stranger = TestCa::new("stranger CA").unwrap();
    let forged = stranger.issue("care", &["care"]).unwrap();
    assert!(
        health(
            &url,
            &UpstreamTls::with_ca(ca.ca_pem()).with_identity(&forged.cert_pem, &forged.key_pem)
        )
        .await
        .is_err(),
        "a certificate from another CA is refused"
    );
}

#[tokio::test]
async fn a_certificate_replaced_on_disk_is_served_to_new_connections() {
    let first = TestCa::new("first CA").unwrap();
    let second = TestCa::new("second CA").unwrap();
    let cert = first.issue("server", &["localhost"]).unwrap();
    let server = listen(Some(server_tls(&cert, None)), Duration::from_secs(10)).await;
    let url = format!("https://localhost:{}", server.addr.port());
    health(&url, &UpstreamTls::with_ca(first.ca_pem()))
        .await
        .unwrap();

    // A renewal from another CA, written next to the files and moved over them (as a
    // Secret volume does), the key first.
    let renewed = second.issue("renewed", &["localhost"]).unwrap();
    let swap = |from: &std::path::Path, to: &std::path::Path| {
        let staged = to.with_extension("staged");
        std::fs::copy(from, &staged).unwrap();
        std::fs::rename(&staged, to).unwrap();
    };
    swap(&renewed.key, &cert.key);
    swap(&renewed.cert, &cert.cert);

    let deadline = Instant::now() + RELOAD_CHECK * 3 + Duration::from_secs(5);
    loop {
        match health(&url, &UpstreamTls::with_ca(second.ca_pem())).await {
            Ok(()) => break,
            Err(err) => assert!(
                Instant::now() < deadline,
                "the renewed certificate was not served: {err}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        health(&url, &UpstreamTls::with_ca(first.ca_pem()))
            .await
            .is_err(),
        "the old certificate is no longer served"
    );
}

/// Whether the server closes `peer` within `limit` (reading and discarding what it sends).
async fn closed_within(peer: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match peer.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn silent_and_half_sent_connections_are_closed_within_the_handshake_timeout() {
    let bound = Duration::from_millis(600);
    let plain = listen(None, bound).await;
    let mut silent = tokio::net::TcpStream::connect(plain.addr).await.unwrap();
    let mut half = tokio::net::TcpStream::connect(plain.addr).await.unwrap();
    half.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await);
    assert!(closed_within(&mut half, Duration::from_secs(5)).await);
    assert!(
        started.elapsed() < bound + Duration::from_secs(2),
        "closed only after {:?}",
        started.elapsed()
    );
    // A real client is still served, and so is one after the bound.
    health(
        &format!("http://127.0.0.1:{}", plain.addr.port()),
        &UpstreamTls::default(),
    )
    .await
    .unwrap();

    let ca = TestCa::new("suite CA").unwrap();
    let cert = ca.issue("server", &["localhost"]).unwrap();
    let secure = listen(Some(server_tls(&cert, None)), bound).await;
    // Stalled mid-handshake: a ClientHello record header and nothing more.
    let mut stalled = tokio::net::TcpStream::connect(secure.addr).await.unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .unwrap();
    let mut silent = tokio::net::TcpStream::connect(secure.addr).await.unwrap();
    // Meanwhile another client's handshake goes through: handshakes run side by side.
    health(
        &format!("https://localhost:{}", secure.addr.port()),
        &UpstreamTls::with_ca(ca.ca_pem()),
    )
    .await
    .expect("a stalled handshake holds up no other client");
    let started = Instant::now();
    assert!(closed_within(&mut stalled, Duration::from_secs(5)).await);
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await);
    assert!(started.elapsed() < bound + Duration::from_secs(2));
}

#[tokio::test]
async fn postgres_with_sslmode_verify_full_connects_and_plaintext_is_refused() {
    aftersales_platform::tls::install_default_provider();
    let ca = TestCa::new("database CA").unwrap();
    let pg = TlsPostgres::start(&ca).await.unwrap();
    let url = |host: &str, query: &str| {
        format!("postgres://postgres@{host}:{}/postgres?{query}", pg.port)
    };
    let ca_file = ca.ca_file().display().to_string();
    let mut settings = DbSettings::new(url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca_file}"),
    ));
    settings.connect_timeout = Duration::from_secs(5);
    let db = db::connect(&settings).await.expect("verify-full connects");
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "select ssl::text from pg_stat_ssl where pid = pg_backend_pid()",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<String>("", "ssl").unwrap(), "true");
    db.close().await.unwrap();

    let refused = |query: &str| {
        let mut settings = DbSettings::new(url("localhost", query));
        settings.connect_timeout = Duration::from_secs(5);
        settings
    };
    assert!(
        db::connect(&refused("sslmode=disable")).await.is_err(),
        "the server admits TLS connections only"
    );
    let other = TestCa::new("another CA").unwrap();
    assert!(
        db::connect(&refused(&format!(
            "sslmode=verify-full&sslrootcert={}",
            other.ca_file().display()
        )))
        .await
        .is_err(),
        "a server certificate from a CA not trusted is refused"
    );
}

#[tokio::test]
async fn rediss_with_a_private_ca_connects_and_runs_commands() {
    let ca = TestCa::new("cache CA").unwrap();
    let redis = TlsRedis::start(&ca).await.unwrap();
    let target = RedisTarget::Single(redis.url());
    let timeout = Duration::from_secs(5);

    let mut conn = redis_conn::open(&target, &RedisTls::with_ca(ca.ca_pem()), timeout)
        .await
        .expect("rediss:// with the CA connects");
    let () = redis::cmd("SET")
        .arg("tls-test")
        .arg("sealed")
        .query_async(&mut conn)
        .await
        .unwrap();
    let value: String = redis::cmd("GET")
        .arg("tls-test")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(value, "sealed");

    let other = TestCa::new("another CA").unwrap();
    assert!(
        redis_conn::open(&target, &RedisTls::with_ca(other.ca_pem()), timeout)
            .await
            .is_err(),
        "a server certificate from a CA not trusted is refused"
    );
    assert!(
        redis_conn::open(
            &RedisTarget::Single(format!("redis://127.0.0.1:{}", redis.port)),
            &RedisTls::default(),
            timeout
        )
        .await
        .is_err(),
        "the server speaks TLS only"
    );
}
