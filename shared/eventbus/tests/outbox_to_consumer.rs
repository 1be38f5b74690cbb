//! Outbox → relay → bus → consumer group, on real PostgreSQL with a single Redis and with
//! a Redis Cluster, and on the in-process bus with SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::sync::{Arc, Mutex};

use aftersales_eventbus::{
    BusMessage, EventBus, MemoryBus, RedisBus,
    consumer::{
        Consumer, ConsumerSettings, EventEnvelopeHandler, EventHandler, Outcome, replay_dead_letter,
    },
    entity::dead_letter,
    envelope::new_event,
    migration::{CreateDeadLetters, CreateOutbox, CreateProcessedEvents},
    outbox::{NewEvent, enqueue},
    relay::Relay,
};
use aftersales_protos::events::v1::{self as ev, EventEnvelope, event_envelope::Payload};
use aftersales_testkit::Backend;
use sea_orm::{DatabaseConnection, DatabaseTransaction, EntityTrait, TransactionTrait};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

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

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl EventHandler for Recorder {
    async fn handle(&self, _txn: &DatabaseTransaction, message: &BusMessage) -> Result<(), String> {
        self.0.lock().unwrap().push(message.event_id.clone());
        Ok(())
    }
}

async fn database(backend: Backend) -> DatabaseConnection {
    let url = backend.fresh_url().await.unwrap();
    let db = aftersales_platform::db::connect(&aftersales_platform::db::DbSettings::new(url))
        .await
        .unwrap();
    aftersales_platform::db::migrate::<Migrator>(&db)
        .await
        .unwrap();
    db
}

async fn redis_bus() -> EventBus {
    let conn = aftersales_testkit::redis_connection().await.unwrap();
    let reader = aftersales_testkit::redis_connection().await.unwrap();
    EventBus::Redis(RedisBus::new(
        conn,
        reader,
        aftersales_testkit::unique_prefix(),
    ))
}

async fn redis_cluster_bus() -> EventBus {
    let conn = aftersales_testkit::redis_cluster_connection()
        .await
        .unwrap();
    let reader = aftersales_testkit::redis_cluster_connection()
        .await
        .unwrap();
    EventBus::Redis(RedisBus::new(
        conn,
        reader,
        aftersales_testkit::unique_prefix(),
    ))
}

/// An event of the suite's contract about ticket `n`: consumers decode every delivery.
fn event(n: u32) -> NewEvent {
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

fn message(n: u32) -> BusMessage {
    let event = event(n);
    BusMessage {
        event_id: event.event_id,
        event_type: event.event_type,
        subject_id: event.subject_id,
        payload: event.payload,
        headers: Default::default(),
    }
}

async fn each_event_is_applied_once(db: DatabaseConnection, bus: EventBus) {
    let txn = db.begin().await.unwrap();
    enqueue(&txn, vec![event(1), event(2)], chrono::Utc::now())
        .await
        .unwrap();
    txn.commit().await.unwrap();
    // A rolled-back transaction publishes nothing.
    let txn = db.begin().await.unwrap();
    enqueue(&txn, vec![event(3)], chrono::Utc::now())
        .await
        .unwrap();
    txn.rollback().await.unwrap();

    let relay = Relay::new("tickets", db.clone(), bus.clone());
    assert_eq!(relay.publish_batch().await.unwrap(), 2);
    assert_eq!(relay.publish_batch().await.unwrap(), 0);
    assert_eq!(relay.backlog().await.unwrap(), 0);

    let recorder = Arc::new(Recorder::default());
    let mut settings = ConsumerSettings::new("tickets", "care");
    settings.block = std::time::Duration::from_millis(100);
    let consumer = Consumer::new(db.clone(), bus.clone(), settings, recorder.clone());
    assert_eq!(
        consumer.poll_once().await.unwrap(),
        [Outcome::Applied, Outcome::Applied]
    );

    // The relay died after publishing but before marking: the same event comes again.
    bus.publish("tickets", &[message(1)]).await.unwrap();
    assert_eq!(consumer.poll_once().await.unwrap(), [Outcome::Duplicate]);
    assert_eq!(*recorder.0.lock().unwrap(), ["evt-1", "evt-2"]);
}

#[tokio::test]
async fn postgres_outbox_through_redis_streams() {
    each_event_is_applied_once(database(Backend::Postgres).await, redis_bus().await).await;
}

#[tokio::test]
async fn postgres_outbox_through_redis_cluster_streams() {
    each_event_is_applied_once(database(Backend::Postgres).await, redis_cluster_bus().await).await;
}

#[tokio::test]
async fn sqlite_outbox_through_the_in_process_bus() {
    each_event_is_applied_once(
        database(Backend::Sqlite).await,
        EventBus::Memory(MemoryBus::new()),
    )
    .await;
}

#[tokio::test]
async fn a_delivery_left_unacknowledged_is_taken_over() {
    unacknowledged_is_taken_over(redis_bus().await).await;
}

#[tokio::test]
async fn on_a_cluster_a_delivery_left_unacknowledged_is_taken_over() {
    unacknowledged_is_taken_over(redis_cluster_bus().await).await;
}

async fn unacknowledged_is_taken_over(bus: EventBus) {
    bus.ensure_group("s", "g").await.unwrap();
    let message = BusMessage {
        event_id: "e".into(),
        event_type: "t".into(),
        subject_id: "x".into(),
        payload: vec![],
        headers: [(
            "traceparent".to_owned(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
        )]
        .into(),
    };
    bus.publish("s", std::slice::from_ref(&message))
        .await
        .unwrap();
    let first = bus
        .read("s", "g", "dies", 10, std::time::Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].message, message);
    let taken = bus
        .claim_stale("s", "g", "survivor", std::time::Duration::ZERO, 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].delivery_id, first[0].delivery_id);
}

#[tokio::test]
async fn after_redis_loses_its_data_the_replay_window_is_published_again() {
    replay_after_loss(redis_bus().await).await;
}

#[tokio::test]
async fn after_a_redis_cluster_loses_its_data_the_replay_window_is_published_again() {
    replay_after_loss(redis_cluster_bus().await).await;
}

/// On a cluster the "intact" marker must live where the stream lives, so that a master
/// that comes back empty is noticed.
#[tokio::test]
async fn on_a_cluster_the_loss_marker_shares_the_stream_slot() {
    let prefix = aftersales_testkit::unique_prefix();
    let bus = RedisBus::new(
        aftersales_testkit::redis_cluster_connection()
            .await
            .unwrap(),
        aftersales_testkit::redis_cluster_connection()
            .await
            .unwrap(),
        prefix.clone(),
    );
    let stream = bus.stream_key("tickets");
    let bus = EventBus::Redis(bus);
    assert!(bus.check_lost("tickets").await.unwrap());
    bus.publish("tickets", &[message(1)]).await.unwrap();
    let mut holders = Vec::new();
    for (addr, mut conn) in aftersales_testkit::redis_cluster_masters().await.unwrap() {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("*{prefix}*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            holders.push((addr, keys));
        }
    }
    assert_eq!(holders.len(), 1, "{holders:?}");
    let mut keys = holders[0].1.clone();
    keys.sort();
    assert_eq!(keys, [stream.clone(), format!("{{{stream}}}:intact")]);
}

async fn replay_after_loss(bus: EventBus) {
    let db = database(Backend::Postgres).await;
    let relay = Relay::new("tickets", db.clone(), bus.clone());
    assert!(
        bus.check_lost("tickets").await.unwrap(),
        "a fresh prefix counts as lost"
    );
    let txn = db.begin().await.unwrap();
    enqueue(&txn, vec![event(1), event(2)], chrono::Utc::now())
        .await
        .unwrap();
    txn.commit().await.unwrap();
    assert_eq!(relay.publish_batch().await.unwrap(), 2);
    assert!(!bus.check_lost("tickets").await.unwrap());
    // The stream is gone (FLUSHALL, restart without persistence): publish again.
    assert_eq!(relay.replay_window().await.unwrap(), 2);
    assert_eq!(relay.publish_batch().await.unwrap(), 2);
    let recorder = Arc::new(Recorder::default());
    let mut settings = ConsumerSettings::new("tickets", "care");
    settings.block = std::time::Duration::from_millis(100);
    let consumer = Consumer::new(db.clone(), bus.clone(), settings, recorder.clone());
    let outcomes = consumer.poll_once().await.unwrap();
    assert_eq!(
        outcomes,
        [
            Outcome::Applied,
            Outcome::Applied,
            Outcome::Duplicate,
            Outcome::Duplicate
        ]
    );
}

/// Fails every event until `heal` is set.
#[derive(Default)]
struct Poisoned {
    heal: std::sync::atomic::AtomicBool,
}

impl EventHandler for Poisoned {
    async fn handle(
        &self,
        _txn: &DatabaseTransaction,
        _message: &BusMessage,
    ) -> Result<(), String> {
        if self.heal.load(std::sync::atomic::Ordering::SeqCst) {
            Ok(())
        } else {
            Err("no such customer".into())
        }
    }
}

async fn a_poison_event_is_dead_lettered_then_replayed(db: DatabaseConnection, bus: EventBus) {
    let poison = BusMessage {
        event_id: "evt-poison".into(),
        ..message(9)
    };
    bus.publish("tickets", &[poison]).await.unwrap();
    let handler = Arc::new(Poisoned::default());
    let mut settings = ConsumerSettings::new("tickets", "care");
    settings.block = std::time::Duration::from_millis(50);
    settings.stale_after = std::time::Duration::ZERO;
    settings.max_attempts = 3;
    let consumer = Consumer::new(db.clone(), bus.clone(), settings, handler.clone());
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        outcomes.extend(consumer.poll_once().await.unwrap());
        if matches!(outcomes.last(), Some(Outcome::DeadLettered(_))) {
            break;
        }
    }
    let failed = Outcome::Failed("no such customer".into());
    assert_eq!(
        outcomes,
        [
            failed.clone(),
            failed,
            Outcome::DeadLettered("no such customer".into())
        ]
    );
    assert!(
        consumer.poll_once().await.unwrap().is_empty(),
        "acknowledged: the group moved on"
    );

    // Fixed: the operator puts it back, the group applies it once.
    handler
        .heal
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        replay_dead_letter(&db, &bus, "care", "evt-poison")
            .await
            .unwrap()
    );
    assert!(
        !replay_dead_letter(&db, &bus, "care", "evt-poison")
            .await
            .unwrap(),
        "gone"
    );
    assert_eq!(consumer.poll_once().await.unwrap(), [Outcome::Applied]);
}

#[tokio::test]
async fn postgres_poison_event_dead_lettered_and_replayed() {
    a_poison_event_is_dead_lettered_then_replayed(
        database(Backend::Postgres).await,
        redis_bus().await,
    )
    .await;
}

#[tokio::test]
async fn redis_cluster_poison_event_dead_lettered_and_replayed() {
    a_poison_event_is_dead_lettered_then_replayed(
        database(Backend::Postgres).await,
        redis_cluster_bus().await,
    )
    .await;
}

#[tokio::test]
async fn sqlite_poison_event_dead_lettered_and_replayed() {
    a_poison_event_is_dead_lettered_then_replayed(
        database(Backend::Sqlite).await,
        EventBus::Memory(MemoryBus::new()),
    )
    .await;
}

/// Bytes that are no event envelope (field 1 announced as 64-bit, then cut short).
const UNDECODABLE: &[u8] = &[9, 1, 2];

/// One rule for every consumer of the suite: a delivery that is not an event envelope
/// cannot succeed on any retry, so it is dead-lettered at once, without reaching the
/// handler, and the group moves on to the next event.
async fn an_undecodable_event_is_dead_lettered_at_once(db: DatabaseConnection, bus: EventBus) {
    let broken = BusMessage {
        event_id: "evt-broken".into(),
        payload: UNDECODABLE.to_vec(),
        ..message(1)
    };
    bus.publish("tickets", &[broken, message(2)]).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let mut settings = ConsumerSettings::new("tickets", "care");
    settings.block = std::time::Duration::from_millis(50);
    settings.stale_after = std::time::Duration::ZERO;
    let consumer = Consumer::new(db.clone(), bus.clone(), settings, recorder.clone());

    let outcomes = consumer.poll_once().await.unwrap();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert!(
        matches!(&outcomes[0], Outcome::DeadLettered(reason) if reason.contains("decode")),
        "dead-lettered on the first delivery: {outcomes:?}"
    );
    assert_eq!(outcomes[1], Outcome::Applied);
    assert_eq!(
        *recorder.0.lock().unwrap(),
        ["evt-2"],
        "the handler never saw it"
    );
    assert!(
        consumer.poll_once().await.unwrap().is_empty(),
        "acknowledged: nothing is retried"
    );
    let letter = dead_letter::Entity::find_by_id(("care".to_owned(), "evt-broken".to_owned()))
        .one(&db)
        .await
        .unwrap()
        .expect("stored as a dead letter");
    assert_eq!(letter.attempts, 1);
    assert_eq!(letter.payload, UNDECODABLE, "kept whole for an operator");
    assert_eq!(letter.stream, "tickets");
}

#[tokio::test]
async fn postgres_undecodable_event_dead_lettered_at_once() {
    an_undecodable_event_is_dead_lettered_at_once(
        database(Backend::Postgres).await,
        redis_bus().await,
    )
    .await;
}

#[tokio::test]
async fn sqlite_undecodable_event_dead_lettered_at_once() {
    an_undecodable_event_is_dead_lettered_at_once(
        database(Backend::Sqlite).await,
        EventBus::Memory(MemoryBus::new()),
    )
    .await;
}

/// Keeps the subject of each envelope it is handed and counts the commits it hears of.
#[derive(Default)]
struct Subjects {
    seen: Mutex<Vec<String>>,
    commits: std::sync::atomic::AtomicUsize,
}

impl EventEnvelopeHandler for Subjects {
    async fn handle_event(
        &self,
        _txn: &DatabaseTransaction,
        envelope: &EventEnvelope,
    ) -> Result<(), String> {
        self.seen.lock().unwrap().push(envelope.subject_id.clone());
        Ok(())
    }

    fn committed(&self, _envelope: &EventEnvelope) {
        self.commits
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn an_envelope_handler_gets_each_decoded_event_once_and_hears_of_its_commit() {
    let db = database(Backend::Sqlite).await;
    let bus = EventBus::Memory(MemoryBus::new());
    let broken = BusMessage {
        event_id: "evt-broken".into(),
        payload: UNDECODABLE.to_vec(),
        ..message(3)
    };
    bus.publish("tickets", &[message(1), broken, message(1), message(2)])
        .await
        .unwrap();
    let handler = Arc::new(Subjects::default());
    let mut settings = ConsumerSettings::new("tickets", "care");
    settings.block = std::time::Duration::from_millis(50);
    let consumer = Consumer::new(db, bus, settings, handler.clone());
    let outcomes = consumer.poll_once().await.unwrap();
    assert!(
        matches!(
            outcomes.as_slice(),
            [
                Outcome::Applied,
                Outcome::DeadLettered(_),
                Outcome::Duplicate,
                Outcome::Applied
            ]
        ),
        "{outcomes:?}"
    );
    assert_eq!(*handler.seen.lock().unwrap(), ["ticket-1", "ticket-2"]);
    assert_eq!(
        handler.commits.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "told of each commit, not of the duplicate or the dead letter"
    );
}

/// Fails the event `evt-3` only; counts every handling.
#[derive(Default)]
struct OneBad(Mutex<Vec<String>>);

impl EventHandler for OneBad {
    async fn handle(&self, _txn: &DatabaseTransaction, message: &BusMessage) -> Result<(), String> {
        self.0.lock().unwrap().push(message.event_id.clone());
        if message.event_id == "evt-3" {
            Err("bad".into())
        } else {
            Ok(())
        }
    }
}

/// A read is applied in one transaction when every event of it goes through; one bad
/// event makes the read be applied one by one, so the others are applied once and the
/// bad one alone is retried.
async fn a_bad_event_holds_back_none_of_its_batch(db: DatabaseConnection, bus: EventBus) {
    let messages: Vec<BusMessage> = (1..=5).map(message).collect();
    bus.publish("tickets", &messages).await.unwrap();
    let handler = Arc::new(OneBad::default());
    let mut settings = ConsumerSettings::new("tickets", "care");
    settings.block = std::time::Duration::from_millis(50);
    let consumer = Consumer::new(db.clone(), bus.clone(), settings, handler.clone());
    let outcomes = consumer.poll_once().await.unwrap();
    assert_eq!(
        outcomes,
        [
            Outcome::Applied,
            Outcome::Applied,
            Outcome::Failed("bad".into()),
            Outcome::Applied,
            Outcome::Applied,
        ]
    );
    let processed = aftersales_eventbus::entity::processed_event::Entity::find()
        .all(&db)
        .await
        .unwrap();
    let mut ids: Vec<_> = processed.into_iter().map(|p| p.event_id).collect();
    ids.sort();
    assert_eq!(
        ids,
        ["evt-1", "evt-2", "evt-4", "evt-5"],
        "each good one once"
    );

    // A read that goes through is applied in one go: each handled once, all recorded.
    let more: Vec<BusMessage> = (6..=9).map(message).collect();
    bus.publish("tickets", &more).await.unwrap();
    handler.0.lock().unwrap().clear();
    assert_eq!(
        consumer.poll_once().await.unwrap(),
        vec![Outcome::Applied; 4]
    );
    assert_eq!(
        *handler.0.lock().unwrap(),
        ["evt-6", "evt-7", "evt-8", "evt-9"]
    );
}

#[tokio::test]
async fn postgres_a_bad_event_holds_back_none_of_its_batch() {
    a_bad_event_holds_back_none_of_its_batch(database(Backend::Postgres).await, redis_bus().await)
        .await;
}

#[tokio::test]
async fn sqlite_a_bad_event_holds_back_none_of_its_batch() {
    a_bad_event_holds_back_none_of_its_batch(
        database(Backend::Sqlite).await,
        EventBus::Memory(MemoryBus::new()),
    )
    .await;
}

/// Gathers the subjects of a transaction's events and "writes" them in `before_commit`,
/// which it can be told to fail once.
#[derive(Default)]
struct Gathering {
    gathered: Mutex<Vec<String>>,
    written: Mutex<Vec<String>>,
    before_commits: std::sync::atomic::AtomicUsize,
    fail_next: std::sync::atomic::AtomicBool,
}

impl EventEnvelopeHandler for Gathering {
    async fn handle_event(
        &self,
        _txn: &DatabaseTransaction,
        envelope: &EventEnvelope,
    ) -> Result<(), String> {
        self.gathered
            .lock()
            .unwrap()
            .push(envelope.subject_id.clone());
        Ok(())
    }

    fn batch_started(&self) {
        self.gathered.lock().unwrap().clear();
    }

    async fn before_commit(&self, _txn: &DatabaseTransaction) -> Result<(), String> {
        use std::sync::atomic::Ordering::SeqCst;
        self.before_commits.fetch_add(1, SeqCst);
        if self.fail_next.swap(false, SeqCst) {
            return Err("the gathered rows could not be written".into());
        }
        let gathered = std::mem::take(&mut *self.gathered.lock().unwrap());
        self.written.lock().unwrap().extend(gathered);
        Ok(())
    }
}

/// A read with events already processed, and one event twice, still goes through in
/// one transaction (one `before_commit`), applying each fresh event once; a failing
/// `before_commit` rolls the read back and it is applied one by one.
async fn a_read_is_recorded_at_once_and_written_before_its_commit(
    db: DatabaseConnection,
    bus: EventBus,
) {
    use std::sync::atomic::Ordering::SeqCst;
    let handler = Arc::new(Gathering::default());
    let mut settings = ConsumerSettings::new("tickets", "care");
    settings.block = std::time::Duration::from_millis(50);
    let consumer = Consumer::new(db.clone(), bus.clone(), settings, handler.clone());

    bus.publish("tickets", &[message(1), message(2)])
        .await
        .unwrap();
    assert_eq!(
        consumer.poll_once().await.unwrap(),
        [Outcome::Applied, Outcome::Applied]
    );
    assert_eq!(handler.before_commits.load(SeqCst), 1);

    bus.publish("tickets", &[message(1), message(3), message(3), message(4)])
        .await
        .unwrap();
    assert_eq!(
        consumer.poll_once().await.unwrap(),
        [
            Outcome::Duplicate,
            Outcome::Applied,
            Outcome::Duplicate,
            Outcome::Applied
        ]
    );
    assert_eq!(
        handler.before_commits.load(SeqCst),
        2,
        "the read went through in one transaction"
    );

    handler.fail_next.store(true, SeqCst);
    bus.publish("tickets", &[message(5), message(6)])
        .await
        .unwrap();
    assert_eq!(
        consumer.poll_once().await.unwrap(),
        [Outcome::Applied, Outcome::Applied]
    );
    assert_eq!(
        handler.before_commits.load(SeqCst),
        5,
        "the failed one, then one per event"
    );
    assert_eq!(
        *handler.written.lock().unwrap(),
        [
            "ticket-1", "ticket-2", "ticket-3", "ticket-4", "ticket-5", "ticket-6"
        ]
    );
    let processed = aftersales_eventbus::entity::processed_event::Entity::find()
        .all(&db)
        .await
        .unwrap();
    assert_eq!(processed.len(), 6, "each recorded once");
}

#[tokio::test]
async fn postgres_a_read_is_recorded_at_once_and_written_before_its_commit() {
    a_read_is_recorded_at_once_and_written_before_its_commit(
        database(Backend::Postgres).await,
        redis_bus().await,
    )
    .await;
}

#[tokio::test]
async fn sqlite_a_read_is_recorded_at_once_and_written_before_its_commit() {
    a_read_is_recorded_at_once_and_written_before_its_commit(
        database(Backend::Sqlite).await,
        EventBus::Memory(MemoryBus::new()),
    )
    .await;
}

/// The in-process bus starts empty with its process: events a relay published before a
/// crash, not yet consumed, are on no bus after the restart. The new bus tells the relay
/// once that it lost its data, and the relay publishes its replay window again.
#[tokio::test]
async fn after_a_restart_the_in_process_bus_gets_the_replay_window_again() {
    let db = database(Backend::Sqlite).await;
    let before = EventBus::Memory(MemoryBus::new());
    let txn = db.begin().await.unwrap();
    enqueue(&txn, vec![event(1), event(2)], chrono::Utc::now())
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let relay = Relay::new("tickets", db.clone(), before.clone());
    assert_eq!(relay.publish_batch().await.unwrap(), 2);
    // The process dies here: published, never consumed.

    let after = EventBus::Memory(MemoryBus::new());
    let relay = Relay::new("tickets", db.clone(), after.clone());
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(relay.run(stop.clone()));
    let recorder = Arc::new(Recorder::default());
    let mut settings = ConsumerSettings::new("tickets", "care");
    settings.block = std::time::Duration::from_millis(50);
    let consumer = Consumer::new(db.clone(), after.clone(), settings, recorder.clone());
    let mut applied = Vec::new();
    for _ in 0..100 {
        applied.extend(consumer.poll_once().await.unwrap());
        if applied.len() >= 2 {
            break;
        }
    }
    stop.cancel();
    running.await.unwrap();
    assert_eq!(applied, [Outcome::Applied, Outcome::Applied]);
    assert_eq!(*recorder.0.lock().unwrap(), ["evt-1", "evt-2"]);
    assert!(
        !after.check_lost("tickets").await.unwrap(),
        "told once per relay"
    );
}
