//! RPC benchmarks: the no-op floor, GetTicket and ListTickets against it, and CreateTicket
//! against inserting the same rows straight through the database driver.

use std::{sync::Arc, time::Duration};

use aftersales_platform::{
    CancellationToken,
    server::{self, GrpcServices, ServerSettings},
};
use aftersales_protos::{
    bench::v1::{
        echo_client::EchoClient,
        echo_server::{Echo, EchoServer},
    },
    tickets::v1::{self as pb, ticket_service_client::TicketServiceClient},
};
use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value};
use tonic::{
    Request, Response, Status,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

use crate::load::{Stats, closed_loop};

#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

struct NoOp;

#[tonic::async_trait]
impl Echo for NoOp {
    async fn echo(&self, request: Request<pb::Ticket>) -> Result<Response<pb::Ticket>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

/// Serves the floor on port 0 with the same server kit; returns its address.
pub async fn start_floor(stop: CancellationToken) -> anyhow::Result<std::net::SocketAddr> {
    let listener = server::bind("127.0.0.1:0".parse()?).await?;
    let addr = listener.local_addr()?;
    let mut settings = ServerSettings::for_tests();
    settings.concurrency_per_connection = 1024;
    tokio::spawn(server::serve(
        listener,
        settings,
        GrpcServices::new()
            .with_descriptors(aftersales_protos::BENCH_DESCRIPTOR_SET)
            .with(EchoServer::new(NoOp)),
        stop,
    ));
    Ok(addr)
}

/// A ticket as GetTicket returns it, for a like-for-like floor.
pub fn sample_ticket() -> pb::Ticket {
    pb::Ticket {
        id: uuid::Uuid::now_v7().to_string(),
        customer_id: "cust-000123".into(),
        order_id: "order-0000456789".into(),
        channel: pb::Channel::Hotline as i32,
        category: pb::Category::Complaint as i32,
        severity: pb::Severity::General as i32,
        subject: "Kettle leaks after two days".into(),
        description: "Water pools under the kettle after each boil; photos attached.".into(),
        evidence: vec!["s3://evidence/0001.jpg".into()],
        customer_tier: pb::CustomerTier::Regular as i32,
        status: pb::TicketStatus::New as i32,
        sla_policy_id: "default".into(),
        sla_policy_version: 1,
        ..Default::default()
    }
}

pub async fn floor(channel: Channel, load: Load) -> Stats {
    let ticket = sample_ticket();
    closed_loop(load.concurrency, load.warmup, load.duration, move |_| {
        let mut client = EchoClient::new(channel.clone());
        let ticket = ticket.clone();
        async move { client.echo(ticket).await.is_ok() }
    })
    .await
}

pub fn create_request(key: String) -> pb::CreateTicketRequest {
    pb::CreateTicketRequest {
        idempotency_key: key,
        customer_id: "cust-000123".into(),
        order_id: "order-0000456789".into(),
        channel: pb::Channel::Hotline as i32,
        category: pb::Category::Complaint as i32,
        severity: pb::Severity::General as i32,
        subject: "Kettle leaks after two days".into(),
        description: "Water pools under the kettle after each boil; photos attached.".into(),
        evidence: vec!["s3://evidence/0001.jpg".into()],
        customer_tier: pb::CustomerTier::Regular as i32,
        actor: None,
        product: None,
        complexity: pb::Complexity::Simple as i32,
        reported_at: None,
    }
}

/// Runs `create` `n` times, 64 at a time, and returns the ids it gave back.
pub async fn seed_with<F, Fut>(n: usize, create: F) -> anyhow::Result<Vec<String>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<String, Status>> + Send + 'static,
{
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(64) {
        let calls: Vec<_> = chunk.iter().map(|_| tokio::spawn(create())).collect();
        for call in calls {
            ids.push(call.await??);
        }
    }
    Ok(ids)
}

/// Creates `n` tickets to read back; returns their ids.
pub async fn seed(client: TicketServiceClient<Channel>, n: usize) -> anyhow::Result<Vec<String>> {
    seed_with(n, || {
        let mut client = client.clone();
        async move {
            Ok(client
                .create_ticket(create_request(String::new()))
                .await?
                .into_inner()
                .id)
        }
    })
    .await
}

/// GetTicket in a closed loop; with `bearer`, every call carries it in `authorization`.
pub async fn get_ticket(
    channel: Channel,
    bearer: Option<MetadataValue<Ascii>>,
    ids: Arc<Vec<String>>,
    load: Load,
) -> Stats {
    closed_loop(load.concurrency, load.warmup, load.duration, move |seq| {
        let mut client = TicketServiceClient::new(channel.clone());
        let mut request = Request::new(pb::GetTicketRequest {
            id: ids[seq as usize % ids.len()].clone(),
        });
        if let Some(bearer) = &bearer {
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
        }
        async move { client.get_ticket(request).await.is_ok() }
    })
    .await
}

pub async fn list_tickets(channel: Channel, load: Load) -> Stats {
    closed_loop(load.concurrency, load.warmup, load.duration, move |_| {
        let mut client = TicketServiceClient::new(channel.clone());
        let request = pb::ListTicketsRequest {
            customer_id: "cust-000123".into(),
            page_size: 20,
            ..Default::default()
        };
        async move { client.list_tickets(request).await.is_ok() }
    })
    .await
}

pub async fn create_ticket(channel: Channel, load: Load) -> Stats {
    let run = uuid::Uuid::new_v4().simple().to_string();
    closed_loop(load.concurrency, load.warmup, load.duration, move |seq| {
        let mut client = TicketServiceClient::new(channel.clone());
        let request = create_request(format!("bench-{run}-{seq}"));
        async move { client.create_ticket(request).await.is_ok() }
    })
    .await
}

fn ts() -> Value {
    Value::from(Utc::now())
}

fn none_text() -> Value {
    Value::from(Option::<String>::None)
}

fn none_ts() -> Value {
    Value::from(Option::<chrono::DateTime<Utc>>::None)
}

/// The rows one CreateTicket writes (ticket, two clocks, outbox event, idempotency key,
/// audit line), inserted in one transaction straight through the driver: the database's
/// own limit for the same work.
async fn insert_raw(db: &DatabaseConnection, seq: u64) -> Result<(), sea_orm::DbErr> {
    let id = uuid::Uuid::now_v7().to_string();
    let pg = |sql: &str, values: Vec<Value>| {
        Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
    };
    let txn = db.begin().await?;
    txn.execute_raw(pg(
        "INSERT INTO tickets (id, customer_id, order_id, channel, category, severity, subject, description, evidence, \
         customer_tier, assignee, escalation_level, status, policy_id, policy_version, breached, reopen_count, \
         first_response_at, created_at, updated_at, resolved_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21)",
        vec![
            id.clone().into(),
            "cust-raw".into(),
            "order-0000456789".into(),
            "hotline".into(),
            "complaint".into(),
            "general".into(),
            "Kettle leaks after two days".into(),
            "Water pools under the kettle after each boil; photos attached.".into(),
            "[\"s3://evidence/0001.jpg\"]".into(),
            "regular".into(),
            none_text(),
            "agent".into(),
            "new".into(),
            "default".into(),
            1i32.into(),
            false.into(),
            0i32.into(),
            none_ts(),
            ts(),
            ts(),
            none_ts(),
        ],
    ))
    .await?;
    for kind in ["first_response", "resolution"] {
        txn.execute_raw(pg(
            "INSERT INTO sla_clocks (id, ticket_id, kind, state, target_seconds, calendar_id, warning_percent, started_at, \
             paused_seconds, paused_at, due_at, warning_at, warned, met_at, breached_at, cycle, next_fire_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)",
            vec![
                uuid::Uuid::now_v7().to_string().into(),
                id.clone().into(),
                kind.into(),
                "running".into(),
                3600i64.into(),
                none_text(),
                75i32.into(),
                ts(),
                0i64.into(),
                none_ts(),
                ts(),
                ts(),
                false.into(),
                none_ts(),
                none_ts(),
                1i32.into(),
                ts(),
            ],
        ))
        .await?;
    }
    txn.execute_raw(pg(
        "INSERT INTO outbox (event_id, stream, event_type, subject_id, payload, headers, created_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7)",
        vec![
            uuid::Uuid::now_v7().to_string().into(),
            "tickets".into(),
            "tickets.TicketCreated".into(),
            id.clone().into(),
            vec![0u8; 260].into(),
            "".into(),
            ts(),
        ],
    ))
    .await?;
    txn.execute_raw(pg(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, response, created_at) VALUES ($1,$2,$3,$4,$5)",
        vec![
            "bench.raw".into(),
            format!("raw-{id}-{seq}").into(),
            "0".repeat(64).into(),
            vec![0u8; 700].into(),
            ts(),
        ],
    ))
    .await?;
    txn.execute_raw(pg(
        "INSERT INTO ticket_activity (ticket_id, actor_id, actor_role, action, detail, at) VALUES ($1,$2,$3,$4,$5,$6)",
        vec![id.into(), "anonymous".into(), "unspecified".into(), "create".into(), "".into(), ts()],
    ))
    .await?;
    txn.commit().await
}

pub async fn raw_inserts(db: DatabaseConnection, load: Load) -> Stats {
    closed_loop(load.concurrency, load.warmup, load.duration, move |seq| {
        let db = db.clone();
        async move { insert_raw(&db, seq).await.is_ok() }
    })
    .await
}

pub mod returns {
    //! The same for the returns service: reading one return, and requesting one (a return,
    //! its eligibility decision, a step deadline, outbox events and an idempotency key).

    use aftersales_protos::{
        common::v1 as common,
        returns::v1::{self as pb, return_service_client::ReturnServiceClient},
    };
    use std::sync::Arc;
    use tonic::transport::Channel;

    use super::Load;
    use crate::load::{Stats, closed_loop};

    pub(crate) fn request(key: String) -> pb::RequestReturnRequest {
        let delivered = chrono::Utc::now() - chrono::Duration::days(1);
        pb::RequestReturnRequest {
            idempotency_key: key,
            order_id: "order-0000456789".into(),
            customer_id: "cust-000123".into(),
            lines: vec![pb::ReturnLine {
                sku: "KETTLE-1".into(),
                product_line: "kettle".into(),
                quantity: 1,
                unit_price: Some(common::Money {
                    minor_units: 19_900,
                    currency: "CNY".into(),
                }),
                delivered_at: Some(prost_types::Timestamp {
                    seconds: delivered.timestamp(),
                    nanos: 0,
                }),
            }],
            reason: pb::ReturnReason::NoReason as i32,
            desired_outcome: pb::Outcome::Refund as i32,
            customer_time_zone: "Asia/Shanghai".into(),
            ..Default::default()
        }
    }

    pub async fn seed(
        client: ReturnServiceClient<Channel>,
        n: usize,
    ) -> anyhow::Result<Vec<String>> {
        super::seed_with(n, || {
            let mut client = client.clone();
            async move {
                Ok(client
                    .request_return(request(String::new()))
                    .await?
                    .into_inner()
                    .id)
            }
        })
        .await
    }

    pub async fn get_return(channel: Channel, ids: Arc<Vec<String>>, load: Load) -> Stats {
        closed_loop(load.concurrency, load.warmup, load.duration, move |seq| {
            let mut client = ReturnServiceClient::new(channel.clone());
            let id = ids[seq as usize % ids.len()].clone();
            async move { client.get_return(pb::GetReturnRequest { id }).await.is_ok() }
        })
        .await
    }

    pub async fn request_return(channel: Channel, load: Load) -> Stats {
        let run = uuid::Uuid::new_v4().simple().to_string();
        closed_loop(load.concurrency, load.warmup, load.duration, move |seq| {
            let mut client = ReturnServiceClient::new(channel.clone());
            let request = request(format!("bench-{run}-{seq}"));
            async move { client.request_return(request).await.is_ok() }
        })
        .await
    }
}
