//! Spawning the care service (and a real tickets service) for a test, scripting events
//! onto the bus, and request builders.

use std::{sync::Arc, time::Duration as StdDuration};

use aftersales_care::{
    app::{CareApp, CareConfig},
    usecases::CareCore,
};
use aftersales_eventbus::{BusMessage, EventBus};
use aftersales_platform::{CancellationToken, codes::timestamp};
use aftersales_protos::{
    care::v1::{self as pb, care_service_client::CareServiceClient},
    common::v1 as common,
    events::v1::{EventEnvelope, event_envelope::Payload, type_name},
    tickets::v1::ticket_service_client::TicketServiceClient,
};
use aftersales_runtime::ServiceSettings;
pub use aftersales_testkit::Backend;
use aftersales_tickets::app::TicketsApp;
use chrono::{DateTime, Utc};
use prost::Message;
use sea_orm::{ConnectionTrait, Statement};
use tonic::transport::Channel;

pub struct TestApp {
    pub client: CareServiceClient<Channel>,
    pub core: Arc<CareCore>,
    pub bus: EventBus,
    pub url: String,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<()>>,
}

/// Where a test's care service runs.
pub struct Setup {
    pub backend: Backend,
    /// Reuse a database (a restart); `None` creates a fresh one.
    pub url: Option<String>,
    /// Share a bus with other services; `None` creates one.
    pub bus: Option<EventBus>,
    pub config: CareConfig,
}

impl Setup {
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            url: None,
            bus: None,
            config: CareConfig::for_tests(),
        }
    }
}

pub async fn spawn(backend: Backend) -> TestApp {
    spawn_with(Setup::new(backend)).await
}

pub async fn spawn_with(setup: Setup) -> TestApp {
    let url = match setup.url {
        Some(url) => url,
        None => setup.backend.fresh_url().await.expect("a fresh database"),
    };
    let (own_bus, queue) = aftersales_runtime::testing::backbone(setup.backend, "care")
        .await
        .expect("a backbone");
    let bus = setup.bus.unwrap_or(own_bus);
    let settings = ServiceSettings::for_tests(url.clone(), StdDuration::from_secs(2));
    let app = CareApp::build(settings, setup.config, bus.clone(), queue)
        .await
        .expect("the service builds");
    let addr = app.local_addr();
    let core = app.core();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let handle = tokio::spawn(async move {
        app.run(token).await.expect("the service runs");
    });
    let client = CareServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connects");
    TestApp {
        client,
        core,
        bus,
        url,
        shutdown,
        handle: Some(handle),
    }
}

impl TestApp {
    /// Stops the service; our client goes first so the drain does not wait on it.
    pub async fn stop(self) {
        let TestApp {
            client,
            shutdown,
            handle,
            ..
        } = self;
        drop(client);
        shutdown.cancel();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }

    pub async fn rows(&self, sql: &str) -> Vec<sea_orm::QueryResult> {
        let db = self.core.db();
        db.query_all_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .expect("query")
    }

    /// Counts rows of a query returning one `n`.
    pub async fn count(&self, sql: &str) -> i64 {
        let rows = self.rows(sql).await;
        rows[0].try_get::<i64>("", "n").expect("count")
    }

    /// Waits until care has applied `n` distinct events.
    pub async fn wait_for_events(&self, n: i64) {
        for _ in 0..300 {
            if self
                .count("SELECT COUNT(*) AS n FROM processed_events")
                .await
                >= n
            {
                return;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        panic!("care never applied {n} events");
    }

    pub async fn upsert(&mut self, request: pb::UpsertCustomerRequest) -> pb::Customer {
        self.client
            .upsert_customer(request)
            .await
            .expect("customer stored")
            .into_inner()
    }

    pub async fn read(&mut self, id: &str, reader: pb::Reader) -> pb::Customer {
        self.client
            .get_customer(pb::GetCustomerRequest {
                customer_id: id.into(),
                phone: String::new(),
                reader: Some(reader),
            })
            .await
            .expect("customer read")
            .into_inner()
    }

    pub async fn follow_ups(&mut self, ticket_id: &str) -> Vec<pb::FollowUp> {
        self.client
            .list_follow_ups(pb::ListFollowUpsRequest {
                ticket_id: ticket_id.into(),
                ..Default::default()
            })
            .await
            .expect("follow-ups")
            .into_inner()
            .follow_ups
    }

    pub async fn kpis(
        &mut self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        by: pb::KpiDimension,
    ) -> Vec<pb::KpiGroup> {
        self.client
            .get_kpis(pb::GetKpisRequest {
                from: Some(timestamp(from)),
                to: Some(timestamp(to)),
                group_by: by as i32,
            })
            .await
            .expect("kpis")
            .into_inner()
            .groups
    }

    /// Publishes envelopes as their services would, each on its service's stream.
    pub async fn publish(&self, events: &[EventEnvelope]) {
        for e in events {
            let payload = e.payload.as_ref().expect("a payload");
            let event_type = type_name(payload);
            let stream = event_type.split('.').next().expect("a stream");
            let message = BusMessage {
                event_id: e.id.clone(),
                event_type: event_type.to_owned(),
                subject_id: e.subject_id.clone(),
                payload: e.encode_to_vec(),
                headers: Default::default(),
            };
            self.bus
                .publish(stream, &[message])
                .await
                .expect("published");
        }
    }
}

/// An envelope about `subject` at `at`, with a fresh id.
pub fn envelope(subject: &str, at: DateTime<Utc>, payload: Payload) -> EventEnvelope {
    EventEnvelope {
        id: uuid::Uuid::now_v7().to_string(),
        r#type: type_name(&payload).to_owned(),
        subject_id: subject.to_owned(),
        occurred_at: Some(timestamp(at)),
        source: "test".into(),
        payload: Some(payload),
    }
}

pub fn agent() -> common::Actor {
    common::Actor {
        id: "agent-7".into(),
        role: common::ActorRole::Agent as i32,
    }
}

/// A reader holding `pii:read` with a reason, or none.
pub fn reader(pii: bool) -> pb::Reader {
    pb::Reader {
        actor: Some(agent()),
        roles: if pii { vec!["pii:read".into()] } else { vec![] },
        purpose: if pii {
            "callback about ticket T-1".into()
        } else {
            String::new()
        },
    }
}

pub fn customer(id: &str) -> pb::UpsertCustomerRequest {
    pb::UpsertCustomerRequest {
        idempotency_key: String::new(),
        customer_id: id.into(),
        name: "Li Lei".into(),
        phone: "+86 138-0013-8000".into(),
        email: "lilei@example.com".into(),
        address: "Shanghai Xuhui Huaihai Road 1".into(),
        region_code: "310104".into(),
        purchases: Some(pb::PurchaseStats {
            order_count: 6,
            order_value: Some(common::Money {
                minor_units: 2_500_000,
                currency: "CNY".into(),
            }),
            first_order_at: None,
            last_order_at: None,
        }),
        reader: None,
    }
}

/// A tickets service on `bus`, with its own database and queue.
pub struct Tickets {
    pub client: TicketServiceClient<Channel>,
    pub url: String,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl Tickets {
    pub async fn spawn(backend: Backend, bus: EventBus) -> Self {
        let url = backend.fresh_url().await.expect("a fresh database");
        let (_, queue) = aftersales_runtime::testing::backbone(backend, "sla")
            .await
            .expect("a backbone");
        let settings = ServiceSettings::for_tests(url, StdDuration::from_secs(2));
        let app = TicketsApp::build(settings, bus, queue)
            .await
            .expect("tickets builds");
        let addr = app.local_addr();
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let handle = tokio::spawn(async move {
            app.run(token).await.expect("tickets runs");
        });
        let url = format!("http://{addr}");
        let client = TicketServiceClient::connect(url.clone())
            .await
            .expect("connects");
        Self {
            client,
            url,
            shutdown,
            handle: Some(handle),
        }
    }

    /// Stops the service; our client goes first so the drain does not wait on it.
    pub async fn stop(self) {
        let Tickets {
            client,
            shutdown,
            handle,
            ..
        } = self;
        drop(client);
        shutdown.cancel();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }
}
