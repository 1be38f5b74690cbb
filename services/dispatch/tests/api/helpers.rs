//! Spawning the dispatch service for a test, and request builders.

use std::{sync::Arc, time::Duration as StdDuration};

use aftersales_dispatch::{
    app::{DispatchApp, DispatchConfig},
    usecases::DispatchCore,
};
use aftersales_eventbus::EventBus;
use aftersales_platform::{CancellationToken, auth::AuthSettings};
use aftersales_protos::{
    audit::v1::{self as audit, audit_service_client::AuditServiceClient},
    common::v1 as common,
    dispatch::v1::{
        self as pb, dispatch_service_client::DispatchServiceClient,
        partner_key_service_client::PartnerKeyServiceClient,
    },
    events::v1::event_envelope::Payload,
};
use aftersales_runtime::ServiceSettings;
pub use aftersales_testkit::Backend;
use sea_orm::{ConnectionTrait, Statement};
use tonic::transport::Channel;

pub struct TestApp {
    pub client: DispatchServiceClient<Channel>,
    pub keys: PartnerKeyServiceClient<Channel>,
    pub audit: AuditServiceClient<Channel>,
    pub core: Arc<DispatchCore>,
    /// The bus the service consumes from (and relays to).
    pub bus: EventBus,
    /// Its database, for a restart on the same data.
    pub url: String,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<()>>,
}

pub async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut DispatchConfig)) -> TestApp {
    start(backend, configure, true).await
}

/// The service without its deadline worker: the test fires deadlines itself, through
/// [`TestApp::core`].
pub async fn spawn_without_worker(
    backend: Backend,
    configure: impl FnOnce(&mut DispatchConfig),
) -> TestApp {
    start(backend, configure, false).await
}

async fn start(
    backend: Backend,
    configure: impl FnOnce(&mut DispatchConfig),
    run_worker: bool,
) -> TestApp {
    let url = backend.fresh_url().await.expect("a fresh database");
    start_on(Start {
        backend,
        url,
        run_worker,
        auth: None,
        configure: Box::new(configure),
    })
    .await
}

/// How [`start_on`] starts the service.
pub struct Start<'a> {
    pub backend: Backend,
    /// The database, fresh or one an earlier run left.
    pub url: String,
    pub run_worker: bool,
    /// `None`: authentication disabled.
    pub auth: Option<AuthSettings>,
    pub configure: Box<dyn FnOnce(&mut DispatchConfig) + 'a>,
}

pub async fn start_on(start: Start<'_>) -> TestApp {
    let Start {
        backend,
        url,
        run_worker,
        auth,
        configure,
    } = start;
    let (bus, queue) = aftersales_runtime::testing::backbone(backend, "dispatch")
        .await
        .expect("a backbone");
    let mut config = DispatchConfig::for_tests();
    configure(&mut config);
    let mut settings = ServiceSettings::for_tests(url.clone(), StdDuration::from_secs(2));
    settings.run_worker = run_worker;
    if auth.is_some() {
        settings.auth = auth;
    }
    let app = DispatchApp::build(settings, config, bus.clone(), queue)
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
        client: DispatchServiceClient::new(channel.clone()),
        keys: PartnerKeyServiceClient::new(channel.clone()),
        audit: AuditServiceClient::new(channel),
        core,
        bus,
        url,
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

    /// The audit trail's records about `target` (`job:<id>`), newest first, as
    /// `AuditService` lists them to an admin (any caller when authentication is disabled).
    pub async fn trail(&mut self, target: &str) -> Vec<audit::AuditRecord> {
        self.audit
            .list_audit_records(audit::ListAuditRecordsRequest {
                target: target.into(),
                page_size: 100,
                ..Default::default()
            })
            .await
            .expect("lists the trail")
            .into_inner()
            .records
    }

    pub async fn events(&self, job_id: &str, event_type: &str) -> i64 {
        self.count(&format!(
            "SELECT COUNT(*) AS n FROM outbox WHERE subject_id = '{job_id}' AND event_type = '{event_type}'"
        ))
        .await
    }

    /// The payloads of the events of `event_type` published about `subject_id` (a job or
    /// settlement id), in the order they were written.
    pub async fn published(&self, subject_id: &str, event_type: &str) -> Vec<Payload> {
        let db = self.core.db();
        db.query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT payload FROM outbox WHERE subject_id = '{subject_id}' \
                 AND event_type = '{event_type}' ORDER BY seq"
            ),
        ))
        .await
        .expect("outbox")
        .into_iter()
        .map(|row| {
            let bytes: Vec<u8> = row.try_get("", "payload").expect("payload");
            aftersales_eventbus::envelope::decode(&bytes)
                .expect("an envelope")
                .payload
                .expect("a payload")
        })
        .collect()
    }

    pub async fn register(&mut self, spec: pb::PartnerSpec) -> pb::Partner {
        self.client
            .register_partner(pb::RegisterPartnerRequest {
                spec: Some(spec),
                ..Default::default()
            })
            .await
            .expect("registers")
            .into_inner()
    }

    pub async fn create(&mut self, request: pb::CreateJobRequest) -> pb::Job {
        self.client
            .create_job(request)
            .await
            .expect("creates")
            .into_inner()
    }

    pub async fn job(&mut self, id: &str) -> pb::Job {
        self.client
            .get_job(pb::GetJobRequest {
                job_id: id.into(),
                actor: None,
            })
            .await
            .expect("job")
            .into_inner()
    }

    /// The open offer's partner answers it.
    pub async fn answer(&mut self, job: &pb::Job, accept: bool) -> pb::Job {
        let offer = open_offer(job);
        self.client
            .respond_to_offer(pb::RespondToOfferRequest {
                job_id: job.id.clone(),
                offer_id: offer.id.clone(),
                accept,
                decline_reason: if accept { String::new() } else { "busy".into() },
                actor: Some(partner_actor(&offer.partner_id)),
            })
            .await
            .expect("answers");
        self.job(&job.id).await
    }

    /// Polls until `check` holds for the job (the worker acts on its own schedule).
    pub async fn wait_for(&mut self, id: &str, check: impl Fn(&pb::Job) -> bool) -> pb::Job {
        for _ in 0..100 {
            let job = self.job(id).await;
            if check(&job) {
                return job;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        panic!("job {id} never reached the expected state");
    }
}

pub fn open_offer(job: &pb::Job) -> pb::Offer {
    job.offers
        .iter()
        .find(|o| o.status == pb::OfferStatus::Open as i32)
        .cloned()
        .expect("an open offer")
}

pub fn partner_actor(id: &str) -> common::Actor {
    common::Actor {
        id: id.into(),
        role: common::ActorRole::Partner as i32,
    }
}

pub fn agent() -> common::Actor {
    common::Actor {
        id: "dispatcher-1".into(),
        role: common::ActorRole::Agent as i32,
    }
}

pub fn cny(minor_units: i64) -> common::Money {
    common::Money {
        minor_units,
        currency: "CNY".into(),
    }
}

pub const REGION: &str = "310104";

/// An active, insured appliance partner in the test region at `(lat, lon)`.
pub fn spec(name: &str, lat: f64, lon: f64) -> pb::PartnerSpec {
    pb::PartnerSpec {
        name: name.into(),
        coverage: vec![pb::Coverage {
            region_code: REGION.into(),
            area: pb::AreaKind::Urban as i32,
        }],
        location: Some(pb::GeoPoint {
            latitude: lat,
            longitude: lon,
        }),
        service_radius_km: 0.0,
        skills: vec!["appliance".into()],
        daily_capacity: 10,
        active: true,
        insured: true,
        fees: Some(pb::FeeSchedule {
            labour: vec![pb::LabourRate {
                product_line: "appliance".into(),
                price: Some(cny(10_000)),
            }],
            parts: vec![pb::PartPrice {
                part_code: "PUMP-1".into(),
                price: Some(cny(5_000)),
            }],
            call_out_fee: Some(cny(3_000)),
        }),
        time_zone: "Asia/Shanghai".into(),
    }
}

/// A job for ticket `ticket` near (31.20, 121.45) in the test region.
pub fn job_request(ticket: &str, warranty: bool) -> pb::CreateJobRequest {
    pb::CreateJobRequest {
        idempotency_key: String::new(),
        ticket_id: ticket.into(),
        return_id: String::new(),
        customer_id: "cust-1".into(),
        location: Some(pb::CustomerLocation {
            region_code: REGION.into(),
            point: Some(pb::GeoPoint {
                latitude: 31.20,
                longitude: 121.45,
            }),
        }),
        contact: Some(pb::CustomerContact {
            name: "Li Lei".into(),
            phone: "13800000000".into(),
            address: "1 Huaihai Road".into(),
        }),
        product_line: "appliance".into(),
        fault_description: "washing machine does not drain".into(),
        urgency: pb::Urgency::Normal as i32,
        warranty,
        actor: Some(agent()),
    }
}

pub fn line(kind: pb::QuoteLineKind, code: &str, minor: i64) -> pb::QuoteLine {
    pb::QuoteLine {
        kind: kind as i32,
        part_code: code.into(),
        description: String::new(),
        quantity: 1,
        unit_price: Some(cny(minor)),
        within_schedule: false,
        schedule_price: None,
    }
}
