//! Spawning the returns service for a test, and request builders.

use std::sync::Arc;

use aftersales_eventbus::EventBus;
use aftersales_platform::{
    CancellationToken,
    auth::{AuthSettings, DevIssuer},
};
use aftersales_protos::{
    common::v1 as common,
    returns::v1::{self as pb, return_service_client::ReturnServiceClient},
};
use aftersales_returns::{
    app::{ReturnsApp, ReturnsConfig},
    ports::SimulatedPayments,
    usecases::ReturnsCore,
};
use aftersales_runtime::ServiceSettings;
pub use aftersales_testkit::Backend;
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, Statement};
use tokio::net::TcpListener;
use tonic::{Request, transport::Channel};

pub struct TestApp {
    pub client: ReturnServiceClient<Channel>,
    pub core: Arc<ReturnsCore>,
    pub payments: SimulatedPayments,
    /// The bus the service's consumers read other services' events from.
    #[allow(dead_code)]
    pub bus: EventBus,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<()>>,
}

pub async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut ReturnsConfig)) -> TestApp {
    spawn_authenticated(backend, configure, None).await
}

/// Spawns the service verifying callers' tokens with `auth` (`None`: authentication
/// disabled, every caller unrestricted).
pub async fn spawn_authenticated(
    backend: Backend,
    configure: impl FnOnce(&mut ReturnsConfig),
    auth: Option<AuthSettings>,
) -> TestApp {
    let url = backend.fresh_url().await.expect("a fresh database");
    let (bus, queue) = aftersales_runtime::testing::backbone(backend, "returns")
        .await
        .expect("a backbone");
    let payments = SimulatedPayments::new();
    let mut config = ReturnsConfig::for_tests(payments.clone());
    configure(&mut config);
    let mut settings = ServiceSettings::for_tests(url, std::time::Duration::from_secs(2));
    if auth.is_some() {
        settings.auth = auth;
    }
    let app = ReturnsApp::build(settings, config, bus.clone(), queue)
        .await
        .expect("the service builds");
    let addr = app.local_addr();
    let core = app.core();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let handle = tokio::spawn(async move {
        app.run(token).await.expect("the service runs");
    });
    let client = ReturnServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connects");
    TestApp {
        client,
        core,
        payments,
        bus,
        shutdown,
        handle: Some(handle),
    }
}

impl TestApp {
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }

    pub async fn get(&mut self, id: &str) -> pb::Return {
        self.client
            .get_return(pb::GetReturnRequest { id: id.into() })
            .await
            .expect("return")
            .into_inner()
    }

    /// Counts rows of a query returning one `n`.
    pub async fn count(&self, sql: &str) -> i64 {
        let db = self.core.db();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                sql.to_owned(),
            ))
            .await
            .expect("query")
            .expect("a row");
        row.try_get::<i64>("", "n").expect("count")
    }

    pub async fn events(&self, return_id: &str, event_type: &str) -> i64 {
        self.count(&format!(
            "SELECT COUNT(*) AS n FROM outbox WHERE subject_id = '{return_id}' AND event_type = '{event_type}'"
        ))
        .await
    }
}

pub fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

pub fn cny(minor_units: i64) -> common::Money {
    common::Money {
        minor_units,
        currency: "CNY".into(),
    }
}

/// A one-line request: two kettles at 199.00 CNY delivered at `delivered_at`.
pub fn request(
    reason: pb::ReturnReason,
    outcome: pb::Outcome,
    delivered_at: DateTime<Utc>,
) -> pb::RequestReturnRequest {
    pb::RequestReturnRequest {
        idempotency_key: String::new(),
        order_id: "order-9".into(),
        customer_id: "cust-9".into(),
        ticket_id: String::new(),
        lines: vec![pb::ReturnLine {
            sku: "KETTLE-1".into(),
            product_line: "kettle".into(),
            quantity: 2,
            unit_price: Some(cny(19_900)),
            delivered_at: Some(ts(delivered_at)),
        }],
        reason: reason as i32,
        evidence: vec!["s3://evidence/kettle.jpg".into()],
        desired_outcome: outcome as i32,
        customer_time_zone: "Asia/Shanghai".into(),
        actor: None,
        refund_only: false,
    }
}

pub fn yesterday() -> DateTime<Utc> {
    Utc::now() - Duration::days(1)
}

/// Waits (up to 15 s) until `check` holds for the refund `refund_id`, and answers it.
#[allow(dead_code)]
pub async fn refund_when(
    app: &mut TestApp,
    refund_id: &str,
    check: impl Fn(&pb::Refund) -> bool,
) -> pb::Refund {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let refund = app
            .client
            .get_refund(pb::GetRefundRequest {
                refund_id: refund_id.into(),
                ..Default::default()
            })
            .await
            .expect("refund")
            .into_inner();
        if check(&refund) {
            return refund;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the refund never got there: {refund:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The service with token verification on, and the issuer its tokens come from.
pub struct Desk {
    pub app: TestApp,
    issuer: DevIssuer,
    stop: CancellationToken,
}

impl Desk {
    pub async fn spawn(backend: Backend) -> Self {
        let stop = CancellationToken::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let issuer = DevIssuer::generate(&url, DevIssuer::DEFAULT_AUDIENCE).unwrap();
        let serving = issuer.clone();
        let token_stop = stop.clone();
        tokio::spawn(async move { serving.serve(listener, token_stop).await });
        let auth = AuthSettings::oidc(issuer.settings());
        let app = spawn_authenticated(backend, |_| {}, Some(auth)).await;
        Self { app, issuer, stop }
    }

    pub fn token(&self, subject: &str, role: &str) -> String {
        self.issuer
            .mint(subject, &[role], std::time::Duration::from_secs(600))
            .unwrap()
    }

    pub async fn stop(self) {
        self.app.stop().await;
        self.stop.cancel();
    }
}

/// `body` with `token` as its bearer.
pub fn bearer<T>(body: T, token: &str) -> Request<T> {
    let mut request = Request::new(body);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}
