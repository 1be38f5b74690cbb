//! Spawning the service for a test, and typed shortcuts for the calls tests make.

use aftersales_deadlines::{DeadlineQueue, worker::WorkerSettings};
use std::{sync::Arc, time::Duration};

use aftersales_eventbus::EventBus;
use aftersales_eventbus::{entity::outbox, envelope};
use aftersales_platform::{CancellationToken, auth::AuthSettings, clock::SharedClock};
use aftersales_protos::events::v1::EventEnvelope;
use aftersales_protos::tickets::v1::{self as pb, ticket_service_client::TicketServiceClient};
use aftersales_runtime::ServiceSettings;
pub use aftersales_testkit::Backend;
use aftersales_tickets::{
    app::TicketsApp, domain::commitments::Commitments, usecases::TicketsCore,
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Statement};
use tonic::transport::Channel;

pub struct TestApp {
    pub client: TicketServiceClient<Channel>,
    /// Where the service listens, for clients of its other gRPC services.
    #[allow(dead_code)]
    pub addr: std::net::SocketAddr,
    pub core: Arc<TicketsCore>,
    pub queue: DeadlineQueue,
    /// The bus the service's consumers read other services' events from.
    #[allow(dead_code)]
    pub bus: EventBus,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<()>>,
}

pub struct Options {
    pub run_worker: bool,
    pub lease: Duration,
    /// Where the use cases read "now"; the system clock when `None`.
    pub clock: Option<SharedClock>,
    /// How callers authenticate; disabled (every caller holds every role) when `None`.
    pub auth: Option<AuthSettings>,
    /// The forbidden commitments; the handbook's list, refused, when `None`.
    pub commitments: Option<Commitments>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            run_worker: true,
            lease: Duration::from_secs(2),
            clock: None,
            auth: None,
            commitments: None,
        }
    }
}

pub async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, Options::default()).await
}

#[allow(dead_code)]
pub fn worker_settings(lease: Duration) -> WorkerSettings {
    ServiceSettings::for_tests(String::new(), lease).worker
}

pub async fn spawn_with(backend: Backend, options: Options) -> TestApp {
    let url = backend.fresh_url().await.expect("a fresh database");
    let (bus, queue) = aftersales_runtime::testing::backbone(backend, "sla")
        .await
        .expect("a backbone");
    let mut settings = ServiceSettings::for_tests(url, options.lease);
    settings.run_worker = options.run_worker;
    if let Some(auth) = options.auth {
        settings.auth = Some(auth);
    }
    let clock = options
        .clock
        .unwrap_or_else(aftersales_platform::clock::system);
    let commitments = options.commitments.unwrap_or_default();
    let app = TicketsApp::build_with(settings, bus.clone(), queue.clone(), clock, commitments)
        .await
        .expect("the service builds");
    let addr = app.local_addr();
    let core = app.core();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let handle = tokio::spawn(async move {
        app.run(token).await.expect("the service runs");
    });
    let client = TicketServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connects");
    TestApp {
        client,
        addr,
        core,
        queue,
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

    /// A fast policy for the SOCIAL channel so tests see clocks fire in seconds.
    pub async fn fast_policy(&mut self, first_response_s: u64, resolution_s: u64) {
        self.client
            .upsert_sla_policy(pb::UpsertSlaPolicyRequest {
                policy: Some(pb::SlaPolicy {
                    id: "fast".into(),
                    priority: 1,
                    match_channels: vec![pb::Channel::Social as i32],
                    first_response: Some(pb::SlaTarget {
                        seconds: first_response_s,
                        calendar_id: String::new(),
                    }),
                    resolution: Some(pb::SlaTarget {
                        seconds: resolution_s,
                        calendar_id: String::new(),
                    }),
                    escalate_on_breach: true,
                    ..Default::default()
                }),
            })
            .await
            .expect("policy stored");
    }

    pub async fn create(&mut self, channel: pb::Channel, key: &str) -> pb::Ticket {
        self.client
            .create_ticket(create_request(channel, key))
            .await
            .expect("ticket created")
            .into_inner()
    }

    pub async fn sla(&mut self, ticket_id: &str) -> pb::SlaStatus {
        self.client
            .get_sla_status(pb::GetSlaStatusRequest {
                ticket_id: ticket_id.into(),
            })
            .await
            .expect("sla status")
            .into_inner()
    }

    pub async fn ticket(&mut self, id: &str) -> pb::Ticket {
        self.client
            .get_ticket(pb::GetTicketRequest { id: id.into() })
            .await
            .expect("ticket")
            .into_inner()
    }

    /// Polls until `done` holds for the SLA status, or panics after `limit`.
    pub async fn wait_for_sla(
        &mut self,
        ticket_id: &str,
        limit: Duration,
        done: impl Fn(&pb::SlaStatus) -> bool,
    ) -> pb::SlaStatus {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let status = self.sla(ticket_id).await;
            if done(&status) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition not reached in {limit:?}: {status:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Outbox events of one type about one ticket.
    pub async fn events(&self, ticket_id: &str, event_type: &str) -> usize {
        self.count(&format!(
            "SELECT COUNT(*) AS n FROM outbox WHERE subject_id = '{ticket_id}' AND event_type = '{event_type}'"
        ))
        .await
    }

    /// The events the service wrote about one ticket, in the order it wrote them.
    #[allow(dead_code)]
    pub async fn envelopes(&self, ticket_id: &str) -> Vec<EventEnvelope> {
        outbox::Entity::find()
            .filter(outbox::Column::SubjectId.eq(ticket_id))
            .order_by_asc(outbox::Column::Seq)
            .all(self.core.db())
            .await
            .expect("outbox rows")
            .iter()
            .map(|row| envelope::decode(&row.payload).expect("an envelope"))
            .collect()
    }

    /// Replies stored on one ticket.
    #[allow(dead_code)]
    pub async fn replies(&self, ticket_id: &str) -> usize {
        self.count(&format!(
            "SELECT COUNT(*) AS n FROM ticket_replies WHERE ticket_id = '{ticket_id}'"
        ))
        .await
    }

    /// Runs a statement against the service's database; returns the rows it changed.
    #[allow(dead_code)]
    pub async fn execute(&self, sql: &str) -> u64 {
        let db = self.core.db();
        db.execute_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .expect("the statement runs")
        .rows_affected()
    }

    /// Outbox rows the relay has not published yet.
    #[allow(dead_code)]
    pub async fn unpublished(&self) -> usize {
        self.count("SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL")
            .await
    }

    async fn count(&self, sql: &str) -> usize {
        let db = self.core.db();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                sql.to_owned(),
            ))
            .await
            .expect("query")
            .expect("a row");
        row.try_get::<i64>("", "n").expect("count") as usize
    }
}

pub fn create_request(channel: pb::Channel, key: &str) -> pb::CreateTicketRequest {
    pb::CreateTicketRequest {
        idempotency_key: key.into(),
        customer_id: "cust-1".into(),
        order_id: "order-1".into(),
        channel: channel as i32,
        category: pb::Category::Complaint as i32,
        severity: pb::Severity::General as i32,
        subject: "Kettle leaks".into(),
        description: "Water under the kettle after two days".into(),
        evidence: vec!["s3://evidence/1.jpg".into()],
        customer_tier: pb::CustomerTier::Regular as i32,
        actor: None,
        product: None,
        complexity: pb::Complexity::Unspecified as i32,
        reported_at: None,
    }
}

pub fn clock(status: &pb::SlaStatus, kind: pb::ClockKind) -> pb::SlaClock {
    status
        .clocks
        .iter()
        .find(|c| c.kind == kind as i32)
        .cloned()
        .expect("the clock exists")
}

pub fn millis(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("a timestamp");
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}
