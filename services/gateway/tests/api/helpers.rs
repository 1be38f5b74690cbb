//! Spawning real dispatch (and returns, and webhooks) services on fresh PostgreSQL
//! databases with a Redis backbone, gateways in front of them on port 0, and seeding
//! through dispatch's own API: two partners in two regions, each with an API key, and jobs
//! offered to each.

use std::time::Duration;

use aftersales_dispatch::app::{DispatchApp, DispatchConfig};
use aftersales_gateway::{
    app::{GatewayApp, GatewaySettings},
    auth::KeyLookups,
};
use aftersales_platform::CancellationToken;
use aftersales_protos::{
    common::v1 as common,
    dispatch::v1::{
        self as pb, dispatch_service_client::DispatchServiceClient,
        partner_key_service_client::PartnerKeyServiceClient,
    },
    partner::v1::{self as partner, partner_service_client::PartnerServiceClient},
    returns::v1::{self as rpb, return_service_client::ReturnServiceClient},
};
use aftersales_returns::{
    app::{ReturnsApp, ReturnsConfig},
    ports::SimulatedPayments,
};
use aftersales_runtime::ServiceSettings;
use aftersales_testkit::Backend;
use aftersales_webhooks::app::{WebhooksApp, WebhooksConfig};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::task::JoinHandle;
use tonic::{Request, transport::Channel};

pub const REGION_A: &str = "310104";
pub const REGION_B: &str = "310105";

/// Dispatch (and returns, when asked) running for one test, and the gateways in front.
pub struct Suite {
    pub dispatch: DispatchServiceClient<Channel>,
    pub keys: PartnerKeyServiceClient<Channel>,
    pub returns: Option<ReturnServiceClient<Channel>>,
    dispatch_url: String,
    returns_url: String,
    /// A closed port until `with_webhooks` starts the service.
    webhooks_url: String,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// A registered partner and its API key.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub id: String,
    pub key_id: String,
    pub secret: String,
}

async fn connect(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("an address")
        .connect()
        .await
        .expect("connects")
}

pub async fn suite(with_returns: bool) -> Suite {
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();

    let url = Backend::Postgres
        .fresh_url()
        .await
        .expect("a fresh database");
    let (bus, queue) = aftersales_runtime::testing::backbone(Backend::Postgres, "dispatch")
        .await
        .expect("a backbone");
    let settings = ServiceSettings::for_tests(url, Duration::from_secs(2));
    let app = DispatchApp::build(settings, DispatchConfig::for_tests(), bus, queue)
        .await
        .expect("dispatch builds");
    let dispatch_addr = app.local_addr();
    let token = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        app.run(token).await.expect("dispatch runs");
    }));

    let (returns, returns_url) = if with_returns {
        let url = Backend::Postgres
            .fresh_url()
            .await
            .expect("a fresh database");
        let (bus, queue) = aftersales_runtime::testing::backbone(Backend::Postgres, "returns")
            .await
            .expect("a backbone");
        let settings = ServiceSettings::for_tests(url, Duration::from_secs(2));
        let app = ReturnsApp::build(
            settings,
            ReturnsConfig::for_tests(SimulatedPayments::new()),
            bus,
            queue,
        )
        .await
        .expect("returns builds");
        let addr = app.local_addr();
        let token = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            app.run(token).await.expect("returns runs");
        }));
        (
            Some(ReturnServiceClient::new(connect(addr).await)),
            format!("http://{addr}"),
        )
    } else {
        // Never dialled: channels connect on first use.
        (None, "http://127.0.0.1:9".to_owned())
    };

    let channel = connect(dispatch_addr).await;
    Suite {
        dispatch: DispatchServiceClient::new(channel.clone()),
        keys: PartnerKeyServiceClient::new(channel),
        returns,
        dispatch_url: format!("http://{dispatch_addr}"),
        returns_url,
        webhooks_url: "http://127.0.0.1:9".to_owned(),
        shutdown,
        tasks,
    }
}

impl Suite {
    /// Test settings pointing at this suite's services.
    pub fn settings(&self) -> GatewaySettings {
        let mut settings =
            GatewaySettings::for_tests(self.dispatch_url.clone(), self.returns_url.clone());
        settings.webhooks_url = self.webhooks_url.clone();
        settings
    }

    /// Starts the webhooks service on a fresh database (loopback targets allowed, as in
    /// its own tests); gateways started afterwards forward to it.
    pub async fn with_webhooks(&mut self) {
        let url = Backend::Postgres
            .fresh_url()
            .await
            .expect("a fresh database");
        let (bus, queue) = aftersales_runtime::testing::backbone(Backend::Postgres, "webhooks")
            .await
            .expect("a backbone");
        let settings = ServiceSettings::for_tests(url, Duration::from_secs(2));
        let app = WebhooksApp::build(settings, WebhooksConfig::for_tests(), bus, queue)
            .await
            .expect("webhooks builds");
        self.webhooks_url = format!("http://{}", app.local_addr());
        let token = self.shutdown.clone();
        self.tasks.push(tokio::spawn(async move {
            app.run(token).await.expect("webhooks runs");
        }));
    }

    /// A gateway with the test settings as changed by `configure`.
    pub async fn gateway(&mut self, configure: impl FnOnce(&mut GatewaySettings)) -> Gateway {
        let mut settings = self.settings();
        configure(&mut settings);
        let (gateway, task) = spawn_gateway(settings, self.shutdown.clone()).await;
        self.tasks.push(task);
        gateway
    }

    /// An active, insured appliance partner covering `region` (urban), with an API key.
    pub async fn partner(&mut self, name: &str, region: &str) -> Seeded {
        let partner = self
            .dispatch
            .register_partner(pb::RegisterPartnerRequest {
                idempotency_key: String::new(),
                spec: Some(spec(name, region)),
                actor: Some(agent()),
            })
            .await
            .expect("registers")
            .into_inner();
        let key = self
            .keys
            .issue_partner_key(pb::IssuePartnerKeyRequest {
                partner_id: partner.id.clone(),
                label: "main".into(),
                actor: Some(agent()),
            })
            .await
            .expect("a key")
            .into_inner();
        Seeded {
            id: partner.id,
            key_id: key.key.expect("key metadata").id,
            secret: key.secret,
        }
    }

    /// A job in `region`, offered at once to the partner covering it.
    pub async fn job(&mut self, region: &str, ticket: &str) -> pb::Job {
        self.dispatch
            .create_job(job_request(region, ticket))
            .await
            .expect("creates")
            .into_inner()
    }

    /// The job as the company sees it.
    pub async fn admin_job(&mut self, id: &str) -> pb::Job {
        self.dispatch
            .get_job(pb::GetJobRequest {
                job_id: id.into(),
                actor: Some(agent()),
            })
            .await
            .expect("job")
            .into_inner()
    }

    /// Builds the partner's statement of the current month.
    pub async fn settle(&mut self, partner_id: &str) -> pb::Settlement {
        self.dispatch
            .generate_settlement(pb::GenerateSettlementRequest {
                partner_id: partner_id.into(),
                month: this_month(),
                actor: Some(agent()),
            })
            .await
            .expect("settles")
            .into_inner()
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// A gateway on its own, e.g. in front of an upstream that never answers.
pub async fn spawn_gateway(
    settings: GatewaySettings,
    shutdown: CancellationToken,
) -> (Gateway, JoinHandle<()>) {
    let app = GatewayApp::build(settings)
        .await
        .expect("the gateway builds");
    let (grpc_addr, http_addr) = (app.grpc_addr(), app.http_addr());
    let lookups = app.key_lookups();
    let task = tokio::spawn(async move {
        app.run(shutdown).await.expect("the gateway runs");
    });
    let channel = connect(grpc_addr).await;
    let gateway = Gateway {
        grpc: PartnerServiceClient::new(channel.clone()),
        channel,
        http: Http {
            base: format!("http://{http_addr}"),
            client: reqwest::Client::new(),
        },
        grpc_addr,
        http_addr,
        lookups,
    };
    (gateway, task)
}

/// Clients of one gateway's two faces.
#[derive(Clone)]
pub struct Gateway {
    pub grpc: PartnerServiceClient<Channel>,
    /// The gRPC face's channel, for other clients (health, reflection).
    pub channel: Channel,
    pub http: Http,
    pub grpc_addr: std::net::SocketAddr,
    pub http_addr: std::net::SocketAddr,
    /// Key lookups the gateway has sent to dispatch so far.
    pub lookups: KeyLookups,
}

impl Gateway {
    /// The same gateway reached from another loopback address (127.0.0.2, …): another
    /// client as far as per-address limits go.
    pub async fn reached_from(&self, ip: std::net::IpAddr) -> Gateway {
        let channel = Channel::from_shared(format!("http://{}", self.grpc_addr))
            .expect("an address")
            .local_address(Some(ip))
            .connect()
            .await
            .expect("connects");
        Gateway {
            grpc: PartnerServiceClient::new(channel.clone()),
            channel,
            http: Http {
                base: self.http.base.clone(),
                client: reqwest::Client::builder()
                    .local_address(ip)
                    .build()
                    .expect("a client"),
            },
            grpc_addr: self.grpc_addr,
            http_addr: self.http_addr,
            lookups: self.lookups.clone(),
        }
    }
}

/// `message` with the API key in `authorization: Bearer`.
pub fn keyed<T>(message: T, secret: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {secret}").parse().expect("an ASCII key"),
    );
    request
}

/// An HTTP answer: status, headers and the JSON body (`Null` when there is none).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first field violation's field, for 400s.
    pub fn violated_field(&self) -> &str {
        self.body["field_violations"][0]["field"]
            .as_str()
            .unwrap_or("")
    }
}

#[derive(Clone)]
pub struct Http {
    pub base: String,
    pub client: reqwest::Client,
}

impl Http {
    pub async fn get(&self, path: &str, secret: Option<&str>) -> Answer {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(secret) = secret {
            request = request.bearer_auth(secret);
        }
        answer(request).await
    }

    /// A request with `method`, the key and, unless `Value::Null`, `body` as JSON.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        secret: &str,
        body: Value,
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(secret);
        if !body.is_null() {
            request = request.json(&body);
        }
        answer(request).await
    }

    /// A POST with `body` as JSON; `Value::Null` sends no body at all.
    pub async fn post(&self, path: &str, secret: Option<&str>, body: Value) -> Answer {
        let mut request = self.client.post(format!("{}{path}", self.base));
        if !body.is_null() {
            request = request.json(&body);
        }
        if let Some(secret) = secret {
            request = request.bearer_auth(secret);
        }
        answer(request).await
    }

    /// A request built by the caller (custom headers, raw bodies).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        answer(request).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the gateway answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("a body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "a JSON body from {status}: {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    Answer {
        status,
        headers,
        body,
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

/// "YYYY-MM" of now in Asia/Shanghai, the partners' time zone.
pub fn this_month() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(8))
        .format("%Y-%m")
        .to_string()
}

fn spec(name: &str, region: &str) -> pb::PartnerSpec {
    pb::PartnerSpec {
        name: name.into(),
        coverage: vec![pb::Coverage {
            region_code: region.into(),
            area: pb::AreaKind::Urban as i32,
        }],
        location: Some(pb::GeoPoint {
            latitude: 31.201,
            longitude: 121.451,
        }),
        service_radius_km: 0.0,
        skills: vec!["appliance".into()],
        daily_capacity: 50,
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

/// The customer's name on the job for `ticket`: unique, so a test can look for a leak.
pub fn contact_name(ticket: &str) -> String {
    format!("Customer of {ticket}")
}

fn job_request(region: &str, ticket: &str) -> pb::CreateJobRequest {
    pb::CreateJobRequest {
        idempotency_key: String::new(),
        ticket_id: ticket.into(),
        return_id: String::new(),
        customer_id: "cust-1".into(),
        location: Some(pb::CustomerLocation {
            region_code: region.into(),
            point: Some(pb::GeoPoint {
                latitude: 31.20,
                longitude: 121.45,
            }),
        }),
        contact: Some(pb::CustomerContact {
            name: contact_name(ticket),
            phone: "13800000000".into(),
            address: "1 Huaihai Road".into(),
        }),
        product_line: "appliance".into(),
        fault_description: "washing machine does not drain".into(),
        urgency: pb::Urgency::Normal as i32,
        warranty: true,
        actor: Some(agent()),
    }
}

/// Labour and call-out at the fee-schedule prices: approved without review.
pub fn scheduled_lines() -> Vec<pb::QuoteLine> {
    vec![
        pb::QuoteLine {
            kind: pb::QuoteLineKind::Labour as i32,
            description: "drain pump replacement".into(),
            quantity: 1,
            unit_price: Some(cny(10_000)),
            ..Default::default()
        },
        pb::QuoteLine {
            kind: pb::QuoteLineKind::CallOut as i32,
            quantity: 1,
            unit_price: Some(cny(3_000)),
            ..Default::default()
        },
    ]
}

/// The same lines as the HTTP face takes them.
pub fn scheduled_lines_json() -> Value {
    serde_json::json!([
        {"kind": "labour", "description": "drain pump replacement", "quantity": 1,
         "unit_price": {"minor_units": 10000, "currency": "CNY"}},
        {"kind": "call_out", "quantity": 1,
         "unit_price": {"minor_units": 3000, "currency": "CNY"}}
    ])
}

/// A return of two kettles, approved at once, with a pickup booked with the simulated
/// carrier: its id and tracking number.
pub async fn booked_return(returns: &mut ReturnServiceClient<Channel>) -> (String, String) {
    let delivered = chrono::Utc::now() - chrono::Duration::days(1);
    let r = returns
        .request_return(rpb::RequestReturnRequest {
            idempotency_key: String::new(),
            order_id: "order-9".into(),
            customer_id: "cust-9".into(),
            ticket_id: String::new(),
            lines: vec![rpb::ReturnLine {
                sku: "KETTLE-1".into(),
                product_line: "kettle".into(),
                quantity: 2,
                unit_price: Some(cny(19_900)),
                delivered_at: Some(prost_types::Timestamp {
                    seconds: delivered.timestamp(),
                    nanos: 0,
                }),
            }],
            reason: rpb::ReturnReason::NoReason as i32,
            evidence: vec![],
            desired_outcome: rpb::Outcome::Refund as i32,
            customer_time_zone: "Asia/Shanghai".into(),
            actor: None,
            refund_only: false,
        })
        .await
        .expect("requested")
        .into_inner();
    assert_eq!(r.status, rpb::ReturnStatus::Approved as i32);
    let booked = returns
        .book_pickup(rpb::BookPickupRequest {
            return_id: r.id.clone(),
            carrier: "simulated".into(),
            ..Default::default()
        })
        .await
        .expect("booked")
        .into_inner();
    let tracking = booked.shipment.expect("a shipment").tracking_number;
    (r.id, tracking)
}

/// Partner A (covering `REGION_A`, holding two jobs it accepted: one to drive over gRPC,
/// one over HTTP) and partner B (covering `REGION_B`): the set-up of the tests where a
/// partner works on its jobs and the other partner must not reach them.
pub async fn two_accepted_jobs(
    s: &mut Suite,
    gw: &mut Gateway,
    ticket_prefix: &str,
) -> (Seeded, Seeded, pb::Job, pb::Job) {
    let a = s.partner("A", REGION_A).await;
    let b = s.partner("B", REGION_B).await;
    let by_grpc = s.job(REGION_A, &format!("{ticket_prefix}-1")).await;
    let by_http = s.job(REGION_A, &format!("{ticket_prefix}-2")).await;
    for job in [&by_grpc, &by_http] {
        gw.grpc
            .accept_offer(keyed(
                partner::AcceptOfferRequest {
                    job_id: job.id.clone(),
                },
                &a.secret,
            ))
            .await
            .expect("A accepts");
    }
    (a, b, by_grpc, by_http)
}
