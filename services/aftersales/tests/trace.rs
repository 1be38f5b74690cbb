//! One trace across services: a partner's call to the gateway (DeclineOffer) → the
//! dispatch RPC it forwards (trace context in gRPC metadata) → dispatch's outbox event
//! (no partner left: `JobUnassigned`) → the tickets consumer (trace context in event
//! headers) → the escalation and the event tickets writes. Spans are collected with the
//! OpenTelemetry in-memory exporter; gateway, dispatch and tickets run in this process on
//! PostgreSQL and one Redis bus.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::time::Duration;

use aftersales_dispatch::app::{DispatchApp, DispatchConfig};
use aftersales_gateway::app::{GatewayApp, GatewaySettings};
use aftersales_platform::{CancellationToken, telemetry::propagate_trace};
use aftersales_protos::{
    dispatch::v1::{
        self as dpb, dispatch_service_client::DispatchServiceClient,
        partner_key_service_client::PartnerKeyServiceClient,
    },
    partner::v1::{self as ppb, partner_service_client::PartnerServiceClient},
    tickets::v1::{self as tpb, ticket_service_client::TicketServiceClient},
};
use aftersales_runtime::ServiceSettings;
use aftersales_testkit::Backend;
use aftersales_tickets::app::TicketsApp;
use opentelemetry::trace::{TraceContextExt, TracerProvider};
use opentelemetry_sdk::{
    propagation::TraceContextPropagator,
    trace::{InMemorySpanExporter, SdkTracerProvider},
};
use sea_orm::{ConnectionTrait, Statement};
use tonic::transport::Channel;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_a_partner_call_through_gateway_and_dispatch_into_tickets_events() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("trace-test")));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let (bus, mut queues) =
        aftersales_runtime::testing::suite(Backend::Postgres, &["sla", "dispatch"])
            .await
            .unwrap();
    let dispatch_queue = queues.pop().unwrap();
    let sla_queue = queues.pop().unwrap();
    let lease = Duration::from_secs(2);
    let tickets = TicketsApp::build(
        ServiceSettings::for_tests(
            aftersales_testkit::fresh_postgres_url().await.unwrap(),
            lease,
        ),
        bus.clone(),
        sla_queue,
    )
    .await
    .unwrap();
    let dispatch = DispatchApp::build(
        ServiceSettings::for_tests(
            aftersales_testkit::fresh_postgres_url().await.unwrap(),
            lease,
        ),
        DispatchConfig::for_tests(),
        bus,
        dispatch_queue,
    )
    .await
    .unwrap();
    let (tickets_addr, dispatch_addr) = (tickets.local_addr(), dispatch.local_addr());
    let tickets_db = tickets.core().db().clone();
    let shutdown = CancellationToken::new();
    let gateway = GatewayApp::build(GatewaySettings::for_tests(
        format!("http://{dispatch_addr}"),
        format!("http://{tickets_addr}"),
    ))
    .await
    .unwrap();
    let gateway_addr = gateway.grpc_addr();
    let tickets_running = tokio::spawn(tickets.run(shutdown.clone()));
    let dispatch_running = tokio::spawn(dispatch.run(shutdown.clone()));
    let gateway_running = tokio::spawn(gateway.run(shutdown.clone()));

    let channel = |addr| async move {
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap()
    };
    let mut tickets_client = TicketServiceClient::new(channel(tickets_addr).await);
    let ticket = tickets_client
        .create_ticket(tpb::CreateTicketRequest {
            customer_id: "cust-1".into(),
            channel: tpb::Channel::App as i32,
            category: tpb::Category::Complaint as i32,
            severity: tpb::Severity::General as i32,
            subject: "washer".into(),
            description: "broken".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    // One partner covers the region; it declines, and nobody is left.
    let dispatch_channel = channel(dispatch_addr).await;
    let mut dispatch_client = DispatchServiceClient::new(dispatch_channel.clone());
    let partner = dispatch_client
        .register_partner(dpb::RegisterPartnerRequest {
            spec: Some(dpb::PartnerSpec {
                name: "only outlet".into(),
                coverage: vec![dpb::Coverage {
                    region_code: "310104".into(),
                    area: dpb::AreaKind::Urban as i32,
                }],
                skills: vec!["washer".into()],
                daily_capacity: 5,
                active: true,
                insured: true,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let key = PartnerKeyServiceClient::new(dispatch_channel)
        .issue_partner_key(dpb::IssuePartnerKeyRequest {
            partner_id: partner.id.clone(),
            label: "trace".into(),
            actor: None,
        })
        .await
        .unwrap()
        .into_inner()
        .secret;
    let job = dispatch_client
        .create_job(dpb::CreateJobRequest {
            ticket_id: ticket.id.clone(),
            customer_id: "cust-1".into(),
            location: Some(dpb::CustomerLocation {
                region_code: "310104".into(),
                point: None,
            }),
            product_line: "washer".into(),
            fault_description: "does not spin".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.partner_id, partner.id);

    // The partner's own span: its trace is the one everything below must join.
    let root = tracing::info_span!("partner call");
    let trace_id = root.context().span().span_context().trace_id();
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {key}").parse().unwrap();
    let mut partner_client =
        PartnerServiceClient::with_interceptor(channel(gateway_addr).await, move |request| {
            let mut request = propagate_trace(request)?;
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
            Ok(request)
        });
    let declined = partner_client
        .decline_offer(ppb::DeclineOfferRequest {
            job_id: job.id.clone(),
            reason: "no technician free".into(),
        })
        .instrument(root.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(declined.id, job.id);
    let job = dispatch_client
        .get_job(dpb::GetJobRequest {
            job_id: job.id.clone(),
            actor: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.status, dpb::JobStatus::Unassigned as i32);

    // The escalation tickets wrote carries the caller's trace in its event headers.
    let escalated = Statement::from_string(
        tickets_db.get_database_backend(),
        format!(
            "SELECT headers FROM outbox WHERE subject_id = '{}' AND event_type = 'tickets.TicketEscalated'",
            ticket.id
        ),
    );
    let mut headers = None;
    for _ in 0..100 {
        if let Some(row) = tickets_db.query_one_raw(escalated.clone()).await.unwrap() {
            headers = Some(row.try_get::<String>("", "headers").unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let headers = headers.expect("tickets escalated the ticket");
    assert!(
        headers.contains(&format!("traceparent=00-{trace_id}-")),
        "event headers {headers:?} carry trace {trace_id}"
    );

    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let in_trace: Vec<String> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace_id)
        .map(|s| s.name.to_string())
        .collect();
    for expected in [
        "/aftersales.partner.v1.PartnerService/DeclineOffer",
        "/aftersales.dispatch.v1.DispatchService/RespondToOffer",
        "consume dispatch.JobUnassigned",
    ] {
        assert!(
            in_trace.iter().any(|name| name == expected),
            "{expected} is not in the caller's trace: {in_trace:?}"
        );
    }

    shutdown.cancel();
    tickets_running.await.unwrap().unwrap();
    dispatch_running.await.unwrap().unwrap();
    gateway_running.await.unwrap().unwrap();
}
