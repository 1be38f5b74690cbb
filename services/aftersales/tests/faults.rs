//! Faults under load: while tickets with short SLA targets stream in, Redis is flushed,
//! Redis restarts, the service (and its SLA worker) is killed hard mid-batch and started
//! again, and PostgreSQL restarts. Afterwards every clock that came due fired, no breach
//! escalated twice, no outbox event was lost, no consumer applied an event twice, and the
//! service answered again within a bounded time after each fault.
//!
//! Its own test binary: it restarts the machine's Redis and PostgreSQL, which no other
//! test may be using at the time (cargo runs test binaries one after another).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::{
    collections::{HashMap, HashSet},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aftersales_eventbus::{
    BusMessage, EventBus, RedisBus,
    consumer::{Consumer, ConsumerSettings, EventHandler},
    envelope,
    migration::{CreateDeadLetters, CreateProcessedEvents},
};
use aftersales_platform::CancellationToken;
use aftersales_protos::{
    events::v1::event_envelope::Payload,
    tickets::v1::{self as pb, ticket_service_client::TicketServiceClient},
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, Statement};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tonic::transport::Channel;

const BIN: &str = env!("CARGO_BIN_EXE_aftersales");
/// The most a fault may keep the service from answering.
const RECOVERY_BOUND: Duration = Duration::from_secs(45);

struct Suite {
    database_url: String,
    prefix: String,
    port: u16,
}

impl Suite {
    fn start(&self) -> support::KillOnDrop {
        support::KillOnDrop(
            Command::new(BIN)
                .args(["serve", "tickets"])
                .env("AUTH_MODE", "disabled")
                .env("DATABASE_URL", &self.database_url)
                .env("REDIS_URL", aftersales_testkit::redis_url())
                .env("REDIS_KEY_PREFIX", &self.prefix)
                .env("TICKETS_GRPC_ADDR", format!("127.0.0.1:{}", self.port))
                .env("SLA_LEASE_MS", "2000")
                .env("SLA_MAX_IDLE_MS", "200")
                .env("SLA_LOST_CHECK_INTERVAL_MS", "200")
                .env("SHUTDOWN_HEALTH_GRACE_MS", "0")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("the service starts"),
        )
    }

    fn client(&self) -> TicketServiceClient<Channel> {
        let endpoint =
            tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", self.port))
                .expect("an endpoint")
                .connect_timeout(Duration::from_secs(1))
                .timeout(Duration::from_secs(5));
        TicketServiceClient::new(endpoint.connect_lazy())
    }

    /// How long until the service answers a read again.
    async fn time_to_answer(&self) -> Duration {
        let began = Instant::now();
        let mut client = self.client();
        loop {
            let answered = client
                .list_tickets(pb::ListTicketsRequest {
                    page_size: 1,
                    ..Default::default()
                })
                .await;
            if answered.is_ok() {
                return began.elapsed();
            }
            assert!(
                began.elapsed() < RECOVERY_BOUND,
                "no answer {RECOVERY_BOUND:?} after the fault: {answered:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn sh(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .expect("the command runs");
    assert!(status.success(), "{program} {args:?} failed");
}

fn setup_script() -> String {
    format!(
        "{}/../../tests/setup/backends.sh",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn restart_redis() {
    let _ = Command::new("redis-cli")
        .args(["-p", "6379", "shutdown", "nosave"])
        .status();
    sh("bash", &[&setup_script()]);
}

fn restart_postgres() {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("a PostgreSQL cluster")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .max()
        .expect("a version");
    sh(
        "pg_ctlcluster",
        &["--skip-systemctl-redirect", &version, "main", "restart"],
    );
}

/// Records every event id it applies, in order, duplicates included.
#[derive(Default)]
struct Applied(Mutex<Vec<String>>);

impl EventHandler for Applied {
    async fn handle(&self, _txn: &DatabaseTransaction, message: &BusMessage) -> Result<(), String> {
        self.0
            .lock()
            .map_err(|e| e.to_string())?
            .push(message.event_id.clone());
        Ok(())
    }
}

struct ConsumerDb;

impl MigratorTrait for ConsumerDb {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateProcessedEvents), Box::new(CreateDeadLetters)]
    }
}

async fn query_strings(db: &DatabaseConnection, sql: &str) -> Vec<(String, Vec<u8>)> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .expect("query")
    .into_iter()
    .map(|row| {
        (
            row.try_get::<String>("", "event_id").expect("id"),
            row.try_get::<Vec<u8>>("", "payload").expect("payload"),
        )
    })
    .collect()
}

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

#[tokio::test]
async fn the_suite_survives_redis_loss_redis_restart_a_killed_worker_and_a_postgres_restart() {
    let suite = Suite {
        database_url: aftersales_testkit::fresh_postgres_url().await.unwrap(),
        prefix: aftersales_testkit::unique_prefix(),
        port: std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    };
    let mut service = suite.start();
    suite.time_to_answer().await;
    let mut client = suite.client();
    client
        .upsert_sla_policy(support::fast_social_policy(2, 4))
        .await
        .unwrap();

    // A consumer of the tickets stream in its own database, for the whole run.
    let consumer_url = aftersales_testkit::fresh_postgres_url().await.unwrap();
    let consumer_db = Database::connect(&consumer_url).await.unwrap();
    ConsumerDb::up(&consumer_db, None).await.unwrap();
    let bus = EventBus::Redis(RedisBus::new(
        aftersales_platform::redis_conn::connect(
            &aftersales_testkit::redis_url(),
            &Default::default(),
            Duration::from_secs(3),
        )
        .await
        .unwrap(),
        aftersales_platform::redis_conn::connect(
            &aftersales_testkit::redis_url(),
            &Default::default(),
            Duration::from_secs(6),
        )
        .await
        .unwrap(),
        suite.prefix.clone(),
    ));
    let applied = Arc::new(Applied::default());
    let mut settings = ConsumerSettings::new("tickets", "fault-test");
    settings.stale_after = Duration::from_secs(2);
    let stop_consumer = CancellationToken::new();
    let consumer = tokio::spawn(
        Consumer::new(consumer_db.clone(), bus, settings, applied.clone())
            .run(stop_consumer.clone()),
    );

    // A steady stream of tickets; each is retried with its key until it is created.
    let stop_stream = CancellationToken::new();
    let stream = {
        let stop = stop_stream.clone();
        let mut client = suite.client();
        tokio::spawn(async move {
            let mut created = Vec::new();
            let mut n = 0;
            while !stop.is_cancelled() {
                n += 1;
                let request = pb::CreateTicketRequest {
                    idempotency_key: format!("fault-{n}"),
                    customer_id: format!("cust-{n}"),
                    channel: pb::Channel::Social as i32,
                    category: pb::Category::Complaint as i32,
                    subject: "Heater smokes".into(),
                    ..Default::default()
                };
                loop {
                    match client.create_ticket(request.clone()).await {
                        Ok(ticket) => {
                            created.push(ticket.into_inner().id);
                            break;
                        }
                        Err(_) if !stop.is_cancelled() => {
                            tokio::time::sleep(Duration::from_millis(200)).await
                        }
                        Err(_) => break,
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            created
        })
    };

    let mut recoveries = Vec::new();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut redis = aftersales_testkit::redis_connection().await.unwrap();
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut redis)
        .await
        .unwrap();
    recoveries.push(("FLUSHALL", suite.time_to_answer().await));

    tokio::time::sleep(Duration::from_secs(3)).await;
    restart_redis();
    recoveries.push(("Redis restart", suite.time_to_answer().await));

    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(service); // SIGKILL, whatever the worker was doing
    service = suite.start();
    recoveries.push(("service killed", suite.time_to_answer().await));

    tokio::time::sleep(Duration::from_secs(3)).await;
    restart_postgres();
    recoveries.push(("PostgreSQL restart", suite.time_to_answer().await));

    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_stream.cancel();
    let created = stream.await.unwrap();
    println!(
        "created {} tickets; answered again after {recoveries:?}",
        created.len()
    );
    assert!(
        created.len() > 20,
        "the stream kept going: {}",
        created.len()
    );

    // Every clock that came due fires (resolution: 4 s after the last ticket).
    let db = Database::connect(&suite.database_url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let running = count(
            &db,
            "SELECT COUNT(*) AS n FROM sla_clocks WHERE state = 'running'",
        )
        .await;
        if running == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{running} clocks never fired");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let tickets = count(&db, "SELECT COUNT(*) AS n FROM tickets").await;
    assert_eq!(
        tickets as usize,
        created.len(),
        "every acknowledged create is stored, once"
    );
    let breached = count(
        &db,
        "SELECT COUNT(*) AS n FROM sla_clocks WHERE state = 'breached'",
    )
    .await;
    assert_eq!(
        breached,
        2 * tickets,
        "both clocks of every ticket breached"
    );
    let at_manager = count(
        &db,
        "SELECT COUNT(*) AS n FROM tickets WHERE escalation_level = 'manager'",
    )
    .await;
    assert_eq!(at_manager, tickets, "two breaches, two escalations each");

    // No breach escalated twice: one TicketEscalated per breached clock.
    let events = query_strings(&db, "SELECT event_id, payload FROM outbox").await;
    let mut escalations: HashMap<String, usize> = HashMap::new();
    for (_, payload) in &events {
        if let Some(Payload::TicketEscalated(e)) = envelope::decode(payload).unwrap().payload {
            *escalations.entry(e.clock_id).or_default() += 1;
        }
    }
    assert_eq!(escalations.len() as i64, breached);
    assert!(
        escalations.values().all(|n| *n == 1),
        "a breach escalated twice: {escalations:?}"
    );

    // No event lost: every outbox event reaches the consumer; none applied twice.
    let deadline = Instant::now() + Duration::from_secs(60);
    let expected: HashSet<String> = events.iter().map(|(id, _)| id.clone()).collect();
    loop {
        let seen: HashSet<String> = applied.0.lock().unwrap().iter().cloned().collect();
        if seen == expected {
            break;
        }
        let missing = expected.difference(&seen).count();
        assert!(
            Instant::now() < deadline,
            "{missing} of {} events never reached the consumer",
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let applied_ids = applied.0.lock().unwrap().clone();
    assert_eq!(
        applied_ids.len(),
        expected.len(),
        "an event was applied twice"
    );

    stop_consumer.cancel();
    let _ = consumer.await;
    drop(service);
}
