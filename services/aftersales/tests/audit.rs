#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test
//! The audit trail through real gRPC: tickets, returns, dispatch and care in this process
//! with tokens from a development issuer served on loopback (its discovery document and
//! JWKS fetched over HTTP like a real provider's), on PostgreSQL + Redis and on SQLite.
//! A denial is recorded with its subject and RPC; a partner key issue, an SLA policy
//! change, a refund and a clear personal-data read are recorded with their targets; only
//! `admin` lists, with filters and paging.

use std::{net::SocketAddr, time::Duration};

use aftersales_care::app::{CareApp, CareConfig};
use aftersales_dispatch::app::{DispatchApp, DispatchConfig};
use aftersales_platform::{
    CancellationToken,
    auth::{AuthSettings, DevIssuer, roles},
    codes::timestamp,
};
use aftersales_protos::{
    audit::v1::{self as pb, audit_service_client::AuditServiceClient},
    care::v1::{self as care, care_service_client::CareServiceClient},
    common::v1 as common,
    dispatch::v1::{
        self as dispatch, dispatch_service_client::DispatchServiceClient,
        partner_key_service_client::PartnerKeyServiceClient,
    },
    returns::v1::{self as returns, return_service_client::ReturnServiceClient},
    tickets::v1::{self as tickets, ticket_service_client::TicketServiceClient},
};
use aftersales_returns::{app::ReturnsApp, ports::SimulatedPayments};
use aftersales_runtime::ServiceSettings;
use aftersales_testkit::Backend;
use aftersales_tickets::app::TicketsApp;
use chrono::Utc;
use tonic::{Code, Request, Status, transport::Channel};

const AUDIENCE: &str = "aftersales";
const TTL: Duration = Duration::from_secs(600);

/// The four services, each on its own port and database.
struct Suite {
    tickets: Channel,
    returns: Channel,
    dispatch: Channel,
    care: Channel,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A development issuer served on loopback, as a provider would be.
async fn issuer(stop: &CancellationToken) -> DevIssuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let issuer = DevIssuer::generate(url, AUDIENCE).unwrap();
    let served = issuer.clone();
    let stop = stop.clone();
    tokio::spawn(async move { served.serve(listener, stop).await.unwrap() });
    issuer
}

async fn connect(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

impl Suite {
    async fn start(backend: Backend, issuer: &DevIssuer, stop: CancellationToken) -> Self {
        let (bus, mut queues) = aftersales_runtime::testing::suite(
            backend,
            &["tickets", "returns", "dispatch", "care"],
        )
        .await
        .unwrap();
        let mut settings = Vec::new();
        for _ in 0..4 {
            let url = backend.fresh_url().await.unwrap();
            let mut s = ServiceSettings::for_tests(url, Duration::from_secs(2));
            s.auth = Some(AuthSettings::oidc(issuer.settings()));
            settings.push(s);
        }
        let care_queue = queues.pop().unwrap();
        let dispatch_queue = queues.pop().unwrap();
        let returns_queue = queues.pop().unwrap();
        let tickets_queue = queues.pop().unwrap();
        let care_settings = settings.pop().unwrap();
        let dispatch_settings = settings.pop().unwrap();
        let returns_settings = settings.pop().unwrap();
        let tickets_settings = settings.pop().unwrap();
        let mut tasks = Vec::new();

        let app = TicketsApp::build(tickets_settings, bus.clone(), tickets_queue)
            .await
            .unwrap();
        let tickets = app.local_addr();
        let token = stop.clone();
        tasks.push(tokio::spawn(async move { app.run(token).await.unwrap() }));

        let config = aftersales_returns::app::ReturnsConfig::for_tests(SimulatedPayments::new());
        let app = ReturnsApp::build(returns_settings, config, bus.clone(), returns_queue)
            .await
            .unwrap();
        let returns = app.local_addr();
        let token = stop.clone();
        tasks.push(tokio::spawn(async move { app.run(token).await.unwrap() }));

        let app = DispatchApp::build(
            dispatch_settings,
            DispatchConfig::for_tests(),
            bus.clone(),
            dispatch_queue,
        )
        .await
        .unwrap();
        let dispatch = app.local_addr();
        let token = stop.clone();
        tasks.push(tokio::spawn(async move { app.run(token).await.unwrap() }));

        let app = CareApp::build(care_settings, CareConfig::for_tests(), bus, care_queue)
            .await
            .unwrap();
        let care = app.local_addr();
        let token = stop.clone();
        tasks.push(tokio::spawn(async move { app.run(token).await.unwrap() }));

        Self {
            tickets: connect(tickets).await,
            returns: connect(returns).await,
            dispatch: connect(dispatch).await,
            care: connect(care).await,
            stop,
            tasks,
        }
    }

    async fn stop(self) {
        let Self {
            tickets,
            returns,
            dispatch,
            care,
            stop,
            tasks,
        } = self;
        drop((tickets, returns, dispatch, care));
        stop.cancel();
        for task in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }
}

/// `message` with `token` as its bearer.
fn with<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn list(
    channel: &Channel,
    token: &str,
    filter: pb::ListAuditRecordsRequest,
) -> Result<pb::ListAuditRecordsResponse, Status> {
    AuditServiceClient::new(channel.clone())
        .list_audit_records(with(token, filter))
        .await
        .map(tonic::Response::into_inner)
}

fn by_rpc(rpc: &str) -> pb::ListAuditRecordsRequest {
    pb::ListAuditRecordsRequest {
        rpc: rpc.into(),
        ..Default::default()
    }
}

fn cny(minor_units: i64) -> common::Money {
    common::Money {
        minor_units,
        currency: "CNY".into(),
    }
}

fn sla_policy(id: &str) -> tickets::UpsertSlaPolicyRequest {
    let target = |seconds| {
        Some(tickets::SlaTarget {
            seconds,
            calendar_id: String::new(),
        })
    };
    tickets::UpsertSlaPolicyRequest {
        policy: Some(tickets::SlaPolicy {
            id: id.into(),
            priority: 5,
            match_channels: vec![tickets::Channel::Social as i32],
            first_response: target(3_600),
            resolution: target(86_400),
            ..Default::default()
        }),
    }
}

fn partner_spec() -> dispatch::PartnerSpec {
    dispatch::PartnerSpec {
        name: "Xuhui Repairs".into(),
        coverage: vec![dispatch::Coverage {
            region_code: "310104".into(),
            area: dispatch::AreaKind::Urban as i32,
        }],
        location: Some(dispatch::GeoPoint {
            latitude: 31.19,
            longitude: 121.43,
        }),
        skills: vec!["appliance".into()],
        daily_capacity: 10,
        active: true,
        insured: true,
        fees: Some(dispatch::FeeSchedule {
            labour: vec![dispatch::LabourRate {
                product_line: "appliance".into(),
                price: Some(cny(10_000)),
            }],
            parts: Vec::new(),
            call_out_fee: Some(cny(3_000)),
        }),
        ..Default::default()
    }
}

fn track(
    tracking: &str,
    event: &str,
    kind: returns::TrackingKind,
) -> returns::RecordTrackingEventRequest {
    returns::RecordTrackingEventRequest {
        carrier: "simulated".into(),
        carrier_event_id: event.into(),
        tracking_number: tracking.into(),
        kind: kind as i32,
        occurred_at: None,
        detail: String::new(),
    }
}

/// Request → auto-approval → pickup → received → inspected, as a desk agent (who is also
/// a supervisor, for the carrier's tracking events); the return's id.
async fn inspected_return(channel: &Channel, desk: &str) -> String {
    let mut client = ReturnServiceClient::new(channel.clone());
    let r = client
        .request_return(with(
            desk,
            returns::RequestReturnRequest {
                order_id: "order-9".into(),
                customer_id: "cust-9".into(),
                lines: vec![returns::ReturnLine {
                    sku: "KETTLE-1".into(),
                    product_line: "kettle".into(),
                    quantity: 1,
                    unit_price: Some(cny(19_900)),
                    delivered_at: Some(timestamp(Utc::now() - chrono::Duration::days(1))),
                }],
                reason: returns::ReturnReason::NoReason as i32,
                desired_outcome: returns::Outcome::Refund as i32,
                customer_time_zone: "Asia/Shanghai".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.status, returns::ReturnStatus::Approved as i32);
    let booked = client
        .book_pickup(with(
            desk,
            returns::BookPickupRequest {
                return_id: r.id.clone(),
                carrier: "simulated".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let tracking = booked.shipment.unwrap().tracking_number;
    for (n, kind) in [
        returns::TrackingKind::PickedUp,
        returns::TrackingKind::DeliveredToWarehouse,
    ]
    .into_iter()
    .enumerate()
    {
        client
            .record_tracking_event(with(
                desk,
                track(&tracking, &format!("{tracking}-{n}"), kind),
            ))
            .await
            .unwrap();
    }
    let inspected = client
        .record_inspection(with(
            desk,
            returns::RecordInspectionRequest {
                return_id: r.id.clone(),
                lines: vec![returns::InspectionLine {
                    sku: "KETTLE-1".into(),
                    condition: returns::Condition::LikeNew as i32,
                    quality_defect: false,
                    disposition: returns::Disposition::Restock as i32,
                    note: String::new(),
                }],
                actor: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inspected.status, returns::ReturnStatus::Inspected as i32);
    r.id
}

async fn the_trail(backend: Backend) {
    let stop = CancellationToken::new();
    let issuer = issuer(&stop).await;
    let suite = Suite::start(backend, &issuer, stop).await;
    let mint = |subject: &str, roles: &[&str]| issuer.mint(subject, roles, TTL).unwrap();
    let admin = mint("admin-1", &[roles::ADMIN]);
    let desk = mint("agent-1", &[roles::AGENT, roles::SUPERVISOR]);
    let cashier = mint("cashier-1", &[roles::REFUNDS]);
    let reader = mint("agent-2", &[roles::AGENT, roles::PII_READ]);
    let began = Utc::now() - chrono::Duration::seconds(1);

    // A denied call: recorded with the verified subject, its roles and the RPC.
    let mut keys = PartnerKeyServiceClient::new(suite.dispatch.clone());
    let denied = keys
        .issue_partner_key(with(
            &desk,
            dispatch::IssuePartnerKeyRequest {
                partner_id: "p-elsewhere".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let mut filter = by_rpc("IssuePartnerKey");
    filter.subject = "agent-1".into();
    let records = list(&suite.dispatch, &admin, filter).await.unwrap().records;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(
        record.rpc,
        "/aftersales.dispatch.v1.PartnerKeyService/IssuePartnerKey"
    );
    assert_eq!(record.outcome, "PERMISSION_DENIED");
    assert_eq!(record.roles, ["agent", "supervisor"]);
    assert!(
        record.detail.contains("requires the role admin"),
        "{record:?}"
    );
    assert!(record.at.is_some());

    // A partner key issue: recorded with the partner as its target.
    let partner = DispatchServiceClient::new(suite.dispatch.clone())
        .register_partner(with(
            &admin,
            dispatch::RegisterPartnerRequest {
                spec: Some(partner_spec()),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let issued = keys
        .issue_partner_key(with(
            &admin,
            dispatch::IssuePartnerKeyRequest {
                partner_id: partner.id.clone(),
                label: "workshop".into(),
                actor: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut filter = by_rpc("/aftersales.dispatch.v1.PartnerKeyService/IssuePartnerKey");
    filter.subject = "admin-1".into();
    let records = list(&suite.dispatch, &admin, filter).await.unwrap().records;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].target, format!("partner:{}", partner.id));
    assert_eq!(records[0].outcome, "OK");
    assert!(records[0].detail.contains(&issued.key.unwrap().id));
    let registered = list(&suite.dispatch, &admin, by_rpc("RegisterPartner"))
        .await
        .unwrap()
        .records;
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].target, format!("partner:{}", partner.id));

    // An SLA policy change.
    let mut ticketing = TicketServiceClient::new(suite.tickets.clone());
    ticketing
        .upsert_sla_policy(with(&admin, sla_policy("social")))
        .await
        .unwrap();
    let records = list(&suite.tickets, &admin, by_rpc("UpsertSlaPolicy"))
        .await
        .unwrap()
        .records;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].target, "sla_policy:social");
    assert_eq!(records[0].subject, "admin-1");

    // A refund.
    let return_id = inspected_return(&suite.returns, &desk).await;
    let refunded = ReturnServiceClient::new(suite.returns.clone())
        .resolve_return(with(
            &cashier,
            returns::ResolveReturnRequest {
                return_id: return_id.clone(),
                resolution: returns::Resolution::Refund as i32,
                reason: String::new(),
                actor: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refunded.status, returns::ReturnStatus::Refunded as i32);
    let filter = pb::ListAuditRecordsRequest {
        target: format!("return:{return_id}"),
        ..Default::default()
    };
    let records = list(&suite.returns, &admin, filter).await.unwrap().records;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        records[0].rpc,
        "/aftersales.returns.v1.ReturnService/ResolveReturn"
    );
    assert_eq!(
        (records[0].subject.as_str(), records[0].outcome.as_str()),
        ("cashier-1", "OK")
    );
    assert_eq!(records[0].roles, ["refunds"]);

    // A clear personal-data read; a masked one is no privileged act.
    let mut profiles = CareServiceClient::new(suite.care.clone());
    let mut customer = care::UpsertCustomerRequest {
        customer_id: "c-1".into(),
        name: "Li Lei".into(),
        phone: "+86 138-0013-8000".into(),
        email: "lilei@example.com".into(),
        address: "Shanghai Xuhui Huaihai Road 1".into(),
        region_code: "310104".into(),
        ..Default::default()
    };
    customer.purchases = Some(care::PurchaseStats {
        order_count: 1,
        order_value: Some(cny(19_900)),
        first_order_at: None,
        last_order_at: None,
    });
    profiles
        .upsert_customer(with(&desk, customer))
        .await
        .unwrap();
    let read = |token: &str, roles: &[&str]| {
        with(
            token,
            care::GetCustomerRequest {
                customer_id: "c-1".into(),
                reader: Some(care::Reader {
                    actor: None,
                    roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                    purpose: "callback about ticket T-1".into(),
                }),
                ..Default::default()
            },
        )
    };
    let masked = profiles
        .get_customer(read(&desk, &[]))
        .await
        .unwrap()
        .into_inner();
    assert!(!masked.contact_unmasked);
    let by_target = pb::ListAuditRecordsRequest {
        target: "customer:c-1".into(),
        ..Default::default()
    };
    let records = list(&suite.care, &admin, by_target.clone())
        .await
        .unwrap()
        .records;
    assert!(records.is_empty(), "{records:?}");
    let clear = profiles
        .get_customer(read(&reader, &[roles::PII_READ]))
        .await
        .unwrap()
        .into_inner();
    assert!(clear.contact_unmasked);
    let records = list(&suite.care, &admin, by_target.clone())
        .await
        .unwrap()
        .records;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].subject, "agent-2");
    assert_eq!(
        records[0].rpc,
        "/aftersales.care.v1.CareService/GetCustomer"
    );
    let detail: serde_json::Value = serde_json::from_str(&records[0].detail).unwrap();
    assert_eq!(detail["purpose"], "callback about ticket T-1");
    let fields = detail["fields"].as_array().unwrap();
    assert!(fields.contains(&"phone".into()), "{fields:?}");
    // The customer's own access log is the same records.
    let export = profiles
        .export_customer_data(with(
            &reader,
            care::ExportCustomerDataRequest {
                customer_id: "c-1".into(),
                reader: Some(care::Reader {
                    actor: None,
                    roles: vec![roles::PII_READ.into()],
                    purpose: "subject access request".into(),
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let operations: Vec<&str> = export
        .access_log
        .iter()
        .map(|a| a.operation.as_str())
        .collect();
    assert_eq!(operations, ["GetCustomer", "ExportCustomerData"]);
    assert_eq!(export.access_log[0].actor_id, "agent-2");
    let records = list(&suite.care, &admin, by_target).await.unwrap().records;
    assert_eq!(records.len(), 2, "the export is recorded too");

    // Only admin lists; a refusal is itself recorded.
    for channel in [&suite.tickets, &suite.returns, &suite.dispatch, &suite.care] {
        for token in [&desk, &cashier, &reader] {
            let refused = list(channel, token, pb::ListAuditRecordsRequest::default())
                .await
                .unwrap_err();
            assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        }
    }
    let mut filter = by_rpc("ListAuditRecords");
    filter.subject = "cashier-1".into();
    let records = list(&suite.tickets, &admin, filter).await.unwrap().records;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, "PERMISSION_DENIED");

    // Filters and paging.
    for id in ["p-1", "p-2", "p-3"] {
        ticketing
            .upsert_sla_policy(with(&admin, sla_policy(id)))
            .await
            .unwrap();
    }
    let mut page = by_rpc("UpsertSlaPolicy");
    page.page_size = 3;
    let first = list(&suite.tickets, &admin, page.clone()).await.unwrap();
    assert_eq!(first.records.len(), 3);
    assert!(!first.next_page_token.is_empty());
    let targets: Vec<&str> = first.records.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(
        targets,
        ["sla_policy:p-3", "sla_policy:p-2", "sla_policy:p-1"],
        "newest first"
    );
    page.page_token = first.next_page_token;
    let second = list(&suite.tickets, &admin, page.clone()).await.unwrap();
    let targets: Vec<&str> = second.records.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, ["sla_policy:social"]);
    assert!(second.next_page_token.is_empty());
    let mut window = by_rpc("UpsertSlaPolicy");
    window.until = Some(timestamp(began));
    assert!(
        list(&suite.tickets, &admin, window.clone())
            .await
            .unwrap()
            .records
            .is_empty()
    );
    window.until = None;
    window.since = Some(timestamp(began));
    assert_eq!(
        list(&suite.tickets, &admin, window.clone())
            .await
            .unwrap()
            .records
            .len(),
        4
    );
    window.subject = "someone-else".into();
    assert!(
        list(&suite.tickets, &admin, window)
            .await
            .unwrap()
            .records
            .is_empty()
    );
    page.page_token = "not a token".into();
    let bad = list(&suite.tickets, &admin, page).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    suite.stop().await;
}

#[tokio::test]
async fn privileged_acts_and_denials_are_recorded_and_listed_on_sqlite() {
    the_trail(Backend::Sqlite).await;
}

#[tokio::test]
async fn privileged_acts_and_denials_are_recorded_and_listed_on_postgres() {
    the_trail(Backend::Postgres).await;
}
