//! `serve tickets` on PostgreSQL and a Redis Cluster (`REDIS_CLUSTER_NODES`, three masters
//! and three replicas): tickets' SLA clocks are scheduled on the cluster and fire through
//! the real binary, one master fails over to its replica while they come due, and still
//! every clock breaches once, every breach escalates once, and every event reaches the
//! tickets stream on the cluster. A `REDIS_URL` that names a cluster node is refused at
//! start instead of failing every command with MOVED.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::{
    collections::HashMap,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use aftersales_eventbus::envelope;
use aftersales_protos::{
    events::v1::event_envelope::Payload,
    tickets::v1::{self as pb, ticket_service_client::TicketServiceClient},
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use tonic::transport::Channel;

const BIN: &str = env!("CARGO_BIN_EXE_aftersales");
const TICKETS: usize = 12;

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
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

async fn client(port: u16) -> TicketServiceClient<Channel> {
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Channel::from_shared(url.clone()).unwrap().connect().await {
            Ok(channel) => return TicketServiceClient::new(channel),
            Err(err) => {
                assert!(Instant::now() < deadline, "not serving: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test]
async fn sla_clocks_fire_once_through_the_binary_on_a_redis_cluster_across_a_failover() {
    let port = support::free_port();
    let prefix = aftersales_testkit::unique_prefix();
    let database_url = aftersales_testkit::fresh_postgres_url().await.unwrap();
    let _service = support::KillOnDrop(
        Command::new(BIN)
            .args(["serve", "tickets"])
            .env("AUTH_MODE", "disabled")
            .env("DATABASE_URL", &database_url)
            .env(
                "REDIS_CLUSTER_NODES",
                aftersales_testkit::redis_cluster_nodes(),
            )
            .env("REDIS_KEY_PREFIX", &prefix)
            .env("TICKETS_GRPC_ADDR", format!("127.0.0.1:{port}"))
            .env("METRICS_ADDR", "off")
            .env("SLA_LEASE_MS", "3000")
            .env("SLA_MAX_IDLE_MS", "200")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut client = client(port).await;
    client
        .upsert_sla_policy(support::fast_social_policy(2, 4))
        .await
        .unwrap();
    for n in 0..TICKETS {
        client
            .create_ticket(pb::CreateTicketRequest {
                idempotency_key: format!("cluster-{n}"),
                customer_id: format!("cust-{n}"),
                channel: pb::Channel::Social as i32,
                category: pb::Category::Complaint as i32,
                subject: "Heater smokes".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    // The schedule lives on the cluster, spread over more than one master.
    let mut holders = 0;
    for (_, mut conn) in aftersales_testkit::redis_cluster_masters().await.unwrap() {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}sla:*:idx"))
            .query_async(&mut conn)
            .await
            .unwrap();
        holders += usize::from(!keys.is_empty());
    }
    assert!(holders >= 2, "the SLA shards sit on {holders} master(s)");

    // Fail over the master of the first SLA shard while the first-response clocks come due.
    let mut cluster = aftersales_testkit::redis_cluster_connection()
        .await
        .unwrap();
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(format!("{prefix}sla:{{sla-0}}:idx"))
        .query_async(&mut cluster)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    aftersales_testkit::redis_cluster_failover(slot)
        .await
        .unwrap();

    let db = Database::connect(&database_url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let running = count(
            &db,
            "SELECT COUNT(*) AS n FROM sla_clocks WHERE state <> 'breached'",
        )
        .await;
        if running == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{running} clocks never fired");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let breached = count(
        &db,
        "SELECT COUNT(*) AS n FROM sla_clocks WHERE state = 'breached'",
    )
    .await;
    assert_eq!(breached, 2 * TICKETS as i64, "both clocks of every ticket");
    let at_manager = count(
        &db,
        "SELECT COUNT(*) AS n FROM tickets WHERE escalation_level = 'manager'",
    )
    .await;
    assert_eq!(
        at_manager, TICKETS as i64,
        "two breaches, two escalations each"
    );

    // One TicketEscalated per breached clock, and every event on the cluster's stream.
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT payload FROM outbox".to_owned(),
        ))
        .await
        .unwrap();
    let mut escalations: HashMap<String, usize> = HashMap::new();
    for row in &rows {
        let payload: Vec<u8> = row.try_get("", "payload").unwrap();
        if let Some(Payload::TicketEscalated(e)) = envelope::decode(&payload).unwrap().payload {
            *escalations.entry(e.clock_id).or_default() += 1;
        }
    }
    assert_eq!(escalations.len() as i64, breached);
    assert!(
        escalations.values().all(|n| *n == 1),
        "a breach escalated twice: {escalations:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let unpublished = count(
            &db,
            "SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL",
        )
        .await;
        if unpublished == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{unpublished} events unpublished"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let on_stream: usize = redis::cmd("XLEN")
        .arg(format!("{prefix}events:tickets"))
        .query_async(&mut cluster)
        .await
        .unwrap();
    assert!(
        on_stream >= rows.len(),
        "{on_stream} entries on the stream for {} events",
        rows.len()
    );
}

#[tokio::test]
async fn a_redis_url_naming_a_cluster_node_is_refused_at_start() {
    let node = aftersales_testkit::redis_cluster_nodes()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    let mut child = support::KillOnDrop(
        Command::new(BIN)
            .args(["serve", "tickets"])
            .env("AUTH_MODE", "disabled")
            .env("DATABASE_URL", aftersales_testkit::fresh_sqlite_url())
            .env("REDIS_URL", node)
            .env(
                "TICKETS_GRPC_ADDR",
                format!("127.0.0.1:{}", support::free_port()),
            )
            .env("METRICS_ADDR", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running against a cluster node"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("REDIS_CLUSTER_NODES"), "{stderr}");
}
