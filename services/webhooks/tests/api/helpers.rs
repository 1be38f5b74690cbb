//! Spawning the webhooks service for a test, publishing events as a producing service
//! would, and the receiver every test delivers to.

use std::{sync::Arc, time::Duration as StdDuration};

use aftersales_eventbus::{BusMessage, EventBus, envelope::new_event};
use aftersales_platform::CancellationToken;
use aftersales_protos::{
    events::v1::{self as ev, event_envelope::Payload},
    webhooks::v1::{self as pb, webhook_service_client::WebhookServiceClient},
};
use aftersales_runtime::ServiceSettings;
pub use aftersales_testkit::{Backend, webhook_receiver::WebhookReceiver};
use aftersales_webhooks::{
    app::{WebhooksApp, WebhooksConfig},
    domain::retry::RetrySchedule,
    usecases::WebhooksCore,
};
use tonic::transport::Channel;

pub struct TestApp {
    pub client: WebhookServiceClient<Channel>,
    pub core: Arc<WebhooksCore>,
    pub bus: EventBus,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<()>>,
}

/// Retries quick enough for a test: from 200 ms, at most 2 s apart.
pub fn quick_retries(config: &mut WebhooksConfig) {
    config.policy.retry = RetrySchedule {
        first: StdDuration::from_millis(200),
        max: StdDuration::from_secs(2),
    };
}

pub async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, quick_retries).await
}

pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut WebhooksConfig)) -> TestApp {
    spawn_with_settings(backend, configure, |_| {}).await
}

pub async fn spawn_with_settings(
    backend: Backend,
    configure: impl FnOnce(&mut WebhooksConfig),
    settle: impl FnOnce(&mut ServiceSettings),
) -> TestApp {
    let url = backend.fresh_url().await.expect("a fresh database");
    let (bus, queue) = aftersales_runtime::testing::backbone(backend, "webhooks")
        .await
        .expect("a backbone");
    let mut config = WebhooksConfig::for_tests();
    configure(&mut config);
    let mut settings = ServiceSettings::for_tests(url, StdDuration::from_secs(2));
    settle(&mut settings);
    let app = WebhooksApp::build(settings, config, bus.clone(), queue)
        .await
        .expect("the service builds");
    let addr = app.local_addr();
    let core = app.core();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let handle = tokio::spawn(async move {
        app.run(token).await.expect("the service runs");
    });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("an address")
        .connect()
        .await
        .expect("connects");
    TestApp {
        client: WebhookServiceClient::new(channel),
        core,
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

    /// Creates an endpoint (internal when `partner` is empty) and returns it with its
    /// secret.
    pub async fn endpoint(
        &self,
        partner: &str,
        url: &str,
        types: &[&str],
    ) -> (pb::Endpoint, String) {
        let created = self
            .client
            .clone()
            .create_endpoint(pb::CreateEndpointRequest {
                partner_id: partner.into(),
                url: url.into(),
                event_types: types.iter().map(|t| t.to_string()).collect(),
                description: "test".into(),
                idempotency_key: String::new(),
            })
            .await
            .expect("the endpoint is created")
            .into_inner();
        (created.endpoint.expect("an endpoint"), created.secret)
    }

    /// Publishes events on `stream` as a producing service's relay would; returns their ids.
    pub async fn publish(&self, stream: &str, payloads: Vec<Payload>) -> Vec<String> {
        let now = chrono::Utc::now();
        let messages: Vec<BusMessage> = payloads
            .into_iter()
            .map(|payload| {
                let event = new_event(stream, stream, "subject", payload, now);
                BusMessage {
                    event_id: event.event_id,
                    event_type: event.event_type,
                    subject_id: event.subject_id,
                    payload: event.payload,
                    headers: Default::default(),
                }
            })
            .collect();
        let ids = messages.iter().map(|m| m.event_id.clone()).collect();
        self.bus
            .publish(stream, &messages)
            .await
            .expect("events published");
        ids
    }

    pub async fn deliveries(&self, endpoint_id: &str, partner: &str) -> Vec<pb::Delivery> {
        self.client
            .clone()
            .list_deliveries(pb::ListDeliveriesRequest {
                partner_id: partner.into(),
                endpoint_id: endpoint_id.into(),
                state: 0,
                page_size: 500,
                page_token: String::new(),
            })
            .await
            .expect("the log is read")
            .into_inner()
            .deliveries
    }
}

pub fn offered(partner: &str, n: usize) -> Payload {
    Payload::JobOffered(ev::JobOffered {
        job_id: format!("job-{n}"),
        offer_id: format!("offer-{n}"),
        partner_id: partner.into(),
        expires_at: None,
        attempt: 1,
    })
}

pub fn ticket_created() -> Payload {
    Payload::TicketCreated(ev::TicketCreated { ticket: None })
}

/// Polls `check` until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: StdDuration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}
