//! Outbox → relay → Redis Cluster stream → consumer group while the master of the stream's
//! slot dies (`SIGKILL`, no graceful hand-over) and the cluster promotes its replica on
//! its own: no event is lost and each takes effect once. A binary of its own, holding the
//! testkit's cluster fault lock, so no other test sees a node go down under it; the
//! cluster is restored (the dead node rejoins as a replica) before the checks.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::{sync::Arc, time::Duration};

use aftersales_eventbus::{
    BusMessage, EventBus, RedisBus,
    consumer::{Consumer, ConsumerSettings, EventHandler},
    envelope::new_event,
    migration::{CreateDeadLetters, CreateOutbox, CreateProcessedEvents},
    outbox::{NewEvent, enqueue},
    relay::Relay,
};
use aftersales_platform::redis_conn::{self, RedisConn, RedisTarget, RedisTls};
use aftersales_protos::events::v1::{self as ev, event_envelope::Payload};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, Statement,
    TransactionTrait,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tokio_util::sync::CancellationToken;

struct Migrator;
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateOutbox),
            Box::new(CreateProcessedEvents),
            Box::new(CreateDeadLetters),
        ]
    }
}

/// Applies an event as a service does: a row written in the consumer's transaction.
/// Rows per event id are the effects; the consumer's dedupe must keep them at one.
struct Effects;

impl EventHandler for Effects {
    async fn handle(&self, txn: &DatabaseTransaction, message: &BusMessage) -> Result<(), String> {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO effects (event_id) VALUES ($1)",
            [message.event_id.clone().into()],
        ))
        .await
        .map(drop)
        .map_err(|e| e.to_string())
    }
}

fn event(n: usize) -> NewEvent {
    let subject = format!("ticket-{n}");
    let payload = Payload::TicketEscalated(ev::TicketEscalated {
        ticket_id: subject.clone(),
        ..Default::default()
    });
    NewEvent {
        event_id: format!("evt-{n}"),
        ..new_event("tickets", "tickets", &subject, payload, chrono::Utc::now())
    }
}

/// `(event id, effects)` for every event that took effect.
async fn effects(db: &DatabaseConnection) -> Vec<(String, i64)> {
    db.query_all_raw(Statement::from_string(
        DbBackend::Postgres,
        "SELECT event_id, COUNT(*) AS n FROM effects GROUP BY event_id",
    ))
    .await
    .unwrap()
    .iter()
    .map(|row| {
        (
            row.try_get::<String>("", "event_id").unwrap(),
            row.try_get::<i64>("", "n").unwrap(),
        )
    })
    .collect()
}

async fn cluster_conn() -> RedisConn {
    // The client the services use, with their timeouts and retries.
    let nodes = aftersales_testkit::redis_cluster_nodes();
    let target = RedisTarget::Cluster(nodes.split(',').map(str::to_owned).collect());
    redis_conn::open(&target, &RedisTls::default(), redis_conn::COMMAND_TIMEOUT)
        .await
        .unwrap()
}

#[tokio::test]
async fn killing_the_master_of_a_stream_while_events_flow_loses_none_and_applies_each_once() {
    let _lock = aftersales_testkit::redis_cluster_fault_lock(Duration::from_secs(300)).unwrap();
    // Start from a healthy cluster, whatever an earlier run left.
    aftersales_testkit::redis_cluster_restore().await.unwrap();

    let url = aftersales_testkit::fresh_postgres_url().await.unwrap();
    let db = aftersales_platform::db::connect(&aftersales_platform::db::DbSettings::new(url))
        .await
        .unwrap();
    aftersales_platform::db::migrate::<Migrator>(&db)
        .await
        .unwrap();
    db.execute_unprepared("CREATE TABLE effects (event_id TEXT NOT NULL)")
        .await
        .unwrap();

    let redis_bus = RedisBus::new(
        cluster_conn().await,
        cluster_conn().await,
        aftersales_testkit::unique_prefix(),
    );
    let stream_key = redis_bus.stream_key("tickets");
    let bus = EventBus::Redis(redis_bus);
    let shutdown = CancellationToken::new();
    let relay = Relay::new("tickets", db.clone(), bus.clone());
    let nudge = relay.nudge();
    let mut tasks = vec![tokio::spawn(relay.clone().run(shutdown.clone()))];
    for _ in 0..2 {
        let mut settings = ConsumerSettings::new("tickets", "care");
        settings.block = Duration::from_millis(100);
        // Short, so deliveries whose acknowledgement died with the master come back soon.
        settings.stale_after = Duration::from_secs(2);
        let consumer = Consumer::new(db.clone(), bus.clone(), settings, Arc::new(Effects));
        tasks.push(tokio::spawn(consumer.run(shutdown.clone())));
    }

    // Events committed one by one over about five seconds, through the kill.
    const COUNT: usize = 500;
    let producer = {
        let db = db.clone();
        let nudge = nudge.clone();
        tokio::spawn(async move {
            for n in 0..COUNT {
                let txn = db.begin().await.unwrap();
                enqueue(&txn, vec![event(n)], chrono::Utc::now())
                    .await
                    .unwrap();
                txn.commit().await.unwrap();
                nudge.notify_one();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while effects(&db).await.len() < COUNT / 10 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut conn = cluster_conn().await;
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(&stream_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let applied_before_kill = effects(&db).await.len();
    let killed = aftersales_testkit::redis_cluster_kill_master(slot).await;

    producer.await.unwrap();
    while effects(&db).await.len() < COUNT && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Past `stale_after`, so a delivery whose acknowledgement the dead master took along
    // is delivered again and would show if it took effect twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    shutdown.cancel();
    for task in tasks {
        task.await.unwrap();
    }
    // Whatever happened, leave a healthy cluster to the tests after this one.
    let restored = aftersales_testkit::redis_cluster_restore().await;

    let killed = killed.unwrap();
    restored.unwrap();
    eprintln!(
        "killed {} (slot {slot}) after {applied_before_kill} of {COUNT} events applied; {} took over",
        killed.addr, killed.promoted
    );
    let effects = effects(&db).await;
    let lost: Vec<usize> = (0..COUNT)
        .filter(|n| !effects.iter().any(|(id, _)| *id == format!("evt-{n}")))
        .collect();
    assert!(
        lost.is_empty(),
        "{} events never applied: {lost:?}",
        lost.len()
    );
    let twice: Vec<&(String, i64)> = effects.iter().filter(|(_, n)| *n != 1).collect();
    assert!(twice.is_empty(), "applied more than once: {twice:?}");
    assert_eq!(relay.backlog().await.unwrap(), 0);
}
