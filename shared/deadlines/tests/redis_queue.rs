//! The Redis schedule against a real Redis and a real Redis Cluster (three masters, three
//! replicas): ordering, never early, leases, lost data, shards spread over the masters,
//! every clock fired once by competing workers, and a failover while clocks come due.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use aftersales_deadlines::{
    Claim, DeadlineQueue, Millis, RedisQueue, RedisQueueSettings, now_ms,
    worker::{self, Deadlines, Due, WorkerSettings},
};
use aftersales_platform::redis_conn::RedisConn;
use tokio_util::sync::CancellationToken;

async fn single() -> RedisConn {
    aftersales_testkit::redis_connection().await.unwrap().into()
}

async fn cluster() -> RedisConn {
    aftersales_testkit::redis_cluster_connection()
        .await
        .unwrap()
        .into()
}

fn settings(shards: usize) -> RedisQueueSettings {
    RedisQueueSettings {
        key_prefix: aftersales_testkit::unique_prefix(),
        name: "sla".into(),
        shards,
    }
}

/// Each scenario runs once on a single Redis and once on the cluster.
macro_rules! on_both {
    ($($scenario:ident),+ $(,)?) => {
        mod single_redis {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(super::single().await).await
            })+
        }
        mod redis_cluster {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(super::cluster().await).await
            })+
        }
    };
}

on_both!(
    claims_due_items_across_shards_and_never_early,
    a_later_write_never_delays_an_item,
    an_unacknowledged_claim_is_handed_out_again_after_its_lease,
    cancelled_items_do_not_fire,
    reports_lost_data_once,
    competing_workers_fire_every_clock_once,
    many_clocks_split_into_compact_chunks_and_each_is_found_again,
    a_shard_in_the_layout_before_chunks_is_rebuilt_once,
);

fn ids(claims: &[Claim]) -> Vec<String> {
    let mut ids: Vec<String> = claims.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    ids
}

async fn claims_due_items_across_shards_and_never_early(conn: RedisConn) {
    let q = DeadlineQueue::Redis(RedisQueue::new(conn, &settings(4)));
    let items: Vec<(String, i64)> = (0..20)
        .map(|i| (format!("clock-{i:02}"), 1_000 + i))
        .collect();
    q.schedule(&items).await.unwrap();
    assert_eq!(q.next_due().await.unwrap(), Some(1_000));
    assert!(q.claim(999, 100, 5_000).await.unwrap().is_empty());
    let claimed = q.claim(1_009, 100, 5_000).await.unwrap();
    assert_eq!(
        ids(&claimed),
        (0..10).map(|i| format!("clock-{i:02}")).collect::<Vec<_>>()
    );
    assert!(claimed.iter().all(|c| c.due_ms <= 1_009 && !c.reclaimed));
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.scheduled, stats.in_flight), (10, 10));
}

async fn a_later_write_never_delays_an_item(conn: RedisConn) {
    let q = DeadlineQueue::Redis(RedisQueue::new(conn, &settings(2)));
    q.schedule(&[("a".into(), 100)]).await.unwrap();
    q.schedule(&[("a".into(), 900)]).await.unwrap();
    assert_eq!(q.next_due().await.unwrap(), Some(100));
}

async fn an_unacknowledged_claim_is_handed_out_again_after_its_lease(conn: RedisConn) {
    let q = DeadlineQueue::Redis(RedisQueue::new(conn, &settings(2)));
    q.schedule(&[("a".into(), 100), ("b".into(), 100)])
        .await
        .unwrap();
    assert_eq!(q.claim(100, 10, 1_000).await.unwrap().len(), 2);
    q.ack(&["b".into()]).await.unwrap();
    assert!(q.claim(1_099, 10, 1_000).await.unwrap().is_empty());
    let again = q.claim(1_100, 10, 1_000).await.unwrap();
    assert_eq!(ids(&again), ["a"]);
    assert!(again[0].reclaimed);
    q.ack(&["a".into()]).await.unwrap();
    assert_eq!(q.next_due().await.unwrap(), None);
}

async fn cancelled_items_do_not_fire(conn: RedisConn) {
    let q = DeadlineQueue::Redis(RedisQueue::new(conn, &settings(3)));
    q.schedule(&[("a".into(), 100), ("b".into(), 100)])
        .await
        .unwrap();
    q.cancel(&["a".into()]).await.unwrap();
    assert_eq!(ids(&q.claim(200, 10, 1_000).await.unwrap()), ["b"]);
}

async fn reports_lost_data_once(conn: RedisConn) {
    let q = DeadlineQueue::Redis(RedisQueue::new(conn, &settings(1)));
    assert!(
        q.check_lost().await.unwrap(),
        "a fresh prefix has no marker yet"
    );
    assert!(!q.check_lost().await.unwrap());
}

/// 20,000 clocks in one shard: chunks split many times over. Every chunk stays in
/// Redis's compact encoding; a clock moved earlier, a cancelled one and every other one
/// are found where the directory says, and each due clock is claimed once, at its instant.
async fn many_clocks_split_into_compact_chunks_and_each_is_found_again(conn: RedisConn) {
    const N: i64 = 20_000;
    let settings = settings(1);
    let mut raw = conn.clone();
    let q = DeadlineQueue::Redis(RedisQueue::new(conn, &settings));
    let id = |i: i64| format!("clock:{}", uuid::Uuid::from_u128(i as u128 * 7_919));
    for part in (0..N).collect::<Vec<_>>().chunks(3_000) {
        let items: Vec<(String, Millis)> = part.iter().map(|i| (id(*i), 10_000 + i)).collect();
        q.schedule(&items).await.unwrap();
    }
    assert_eq!(q.stats().await.unwrap().scheduled, N as u64);
    // Scheduling again changes nothing; an earlier instant moves a clock, a later does not.
    q.schedule(&[(id(5), 10_005), (id(7), 5), (id(9), 99_999)])
        .await
        .unwrap();
    q.cancel(&[id(11), id(12), "never-scheduled".into()])
        .await
        .unwrap();
    assert_eq!(q.stats().await.unwrap().scheduled, N as u64 - 2);
    assert_eq!(q.next_due().await.unwrap(), Some(5));

    let chunk_prefix = format!("{}sla:{{sla-0}}:c:", settings.key_prefix);
    let chunks: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{chunk_prefix}*"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(chunks.len() >= N as usize / 128, "{} chunks", chunks.len());
    for chunk in &chunks {
        let encoding: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(chunk)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(encoding, "listpack", "{chunk}");
    }

    let early = q.claim(10_000 + N / 2, N as usize, 60_000).await.unwrap();
    let mut expected: Vec<String> = (0..=N / 2)
        .filter(|i| ![11, 12].contains(i))
        .map(id)
        .collect();
    expected.sort();
    assert_eq!(ids(&early), expected);
    for claim in &early {
        let i = (0..N).find(|i| id(*i) == claim.id).unwrap();
        let due = if i == 7 { 5 } else { 10_000 + i };
        assert_eq!(claim.due_ms, due, "{}", claim.id);
    }
    let rest = q.claim(10_000 + N, N as usize, 60_000).await.unwrap();
    assert_eq!(rest.len() as i64, N - 1 - N / 2);
    assert_eq!(q.stats().await.unwrap().scheduled, 0);
    assert_eq!(q.next_due().await.unwrap(), Some(60_000 + 10_000 + N / 2));
}

/// A shard written by the layout before chunks (one `due` sorted set) has no marker of
/// the new layout: the first check reports lost data, so the worker rebuilds the
/// schedule from the database, and the old set is gone so nothing fires from it.
async fn a_shard_in_the_layout_before_chunks_is_rebuilt_once(conn: RedisConn) {
    let settings = settings(1);
    let mut raw = conn.clone();
    let legacy = format!("{}sla:{{sla-0}}:due", settings.key_prefix);
    redis::cmd("ZADD")
        .arg(&legacy)
        .arg(100)
        .arg("old-clock")
        .query_async::<()>(&mut raw)
        .await
        .unwrap();
    let q = DeadlineQueue::Redis(RedisQueue::new(conn, &settings));
    assert!(q.check_lost().await.unwrap());
    assert!(!q.check_lost().await.unwrap());
    let exists: bool = redis::cmd("EXISTS")
        .arg(&legacy)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(!exists);
    assert!(q.claim(1_000, 10, 1_000).await.unwrap().is_empty());
}

/// A handler that counts what it fires, and when: the queue's view of "exactly once".
#[derive(Default)]
struct Recorder {
    fired: Mutex<HashMap<String, Vec<(Millis, Millis)>>>,
}

impl Deadlines for Recorder {
    type Member = String;
    type Error = String;

    async fn fire(&self, batch: &[Due<String>]) -> Result<(), String> {
        let now = now_ms();
        let mut fired = self.fired.lock().unwrap();
        for due in batch {
            fired
                .entry(due.member.clone())
                .or_default()
                .push((due.due_ms, now));
        }
        Ok(())
    }

    async fn reconcile(&self, _queue: &DeadlineQueue) -> Result<u64, String> {
        Ok(0)
    }
}

/// Schedules `count` clocks due over the next `spread_ms` and runs two workers on `queue`
/// until every clock has fired (or `within` passed), calling `meanwhile` once the first
/// have fired. Returns the recorder.
async fn fire_all<F: std::future::Future<Output = ()>>(
    queue: &DeadlineQueue,
    count: usize,
    spread_ms: Millis,
    within: Duration,
    meanwhile: F,
) -> Arc<Recorder> {
    let start = now_ms() + 300;
    let items: Vec<(String, Millis)> = (0..count)
        .map(|i| {
            (
                format!("clock:{}", uuid::Uuid::new_v4()),
                start + spread_ms * i as Millis / count as Millis,
            )
        })
        .collect();
    queue.schedule(&items).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let shutdown = CancellationToken::new();
    let settings = WorkerSettings {
        batch: 64,
        lease: Duration::from_secs(20),
        max_idle: Duration::from_millis(50),
        reconcile_every: Duration::from_secs(3600),
        lost_check_every: Duration::from_secs(3600),
    };
    let workers: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(worker::run(
                queue.clone(),
                recorder.clone(),
                settings.clone(),
                |_| {},
                shutdown.clone(),
            ))
        })
        .collect();
    let deadline = tokio::time::Instant::now() + within;
    while recorder.fired.lock().unwrap().len() < count / 10
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    meanwhile.await;
    while recorder.fired.lock().unwrap().len() < count && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A moment more, so a second delivery would show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    for w in workers {
        w.await.unwrap();
    }
    let fired = recorder.fired.lock().unwrap().clone();
    let due: HashMap<&String, Millis> = items.iter().map(|(id, due)| (id, *due)).collect();
    let missing = items
        .iter()
        .filter(|(id, _)| !fired.contains_key(id))
        .count();
    assert_eq!(missing, 0, "{missing} of {count} clocks never fired");
    for (id, firings) in fired.iter() {
        assert_eq!(firings.len(), 1, "{id} fired {} times", firings.len());
        let (due_ms, at) = firings[0];
        assert_eq!(due_ms, due[id], "{id} was handed out with another instant");
        assert!(at >= due_ms, "{id} fired {} ms early", due_ms - at);
    }
    assert_eq!(queue.stats().await.unwrap().scheduled, 0);
    assert_eq!(queue.stats().await.unwrap().in_flight, 0);
    recorder
}

async fn competing_workers_fire_every_clock_once(conn: RedisConn) {
    let q = DeadlineQueue::Redis(RedisQueue::new(conn, &settings(8)));
    fire_all(&q, 400, 1_000, Duration::from_secs(20), async {}).await;
}

/// How many keys under `prefix` each master of the test cluster holds.
async fn keys_per_master(prefix: &str) -> Vec<(String, usize)> {
    let mut counts = Vec::new();
    for (addr, mut conn) in aftersales_testkit::redis_cluster_masters().await.unwrap() {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        counts.push((addr, keys.len()));
    }
    counts
}

#[tokio::test]
async fn on_a_cluster_each_shard_keeps_one_slot_and_the_shards_spread_over_the_masters() {
    let conn = cluster().await;
    let settings = settings(16);
    let redis_queue = RedisQueue::new(conn.clone(), &settings);
    let q = DeadlineQueue::Redis(redis_queue.clone());
    assert!(
        q.check_lost().await.unwrap(),
        "fresh prefix: markers are set now"
    );
    let items: Vec<(String, Millis)> = (0..200)
        .map(|i| (format!("clock-{i}"), 1_000 + i))
        .collect();
    q.schedule(&items).await.unwrap();
    assert_eq!(q.claim(1_049, 100, 60_000).await.unwrap().len(), 50);

    let mut conn = conn;
    for shard in redis_queue.keys() {
        let mut slots = Vec::new();
        for key in &shard {
            let slot: u16 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            slots.push(slot);
        }
        assert!(
            slots.iter().all(|s| *s == slots[0]),
            "{shard:?} span slots {slots:?}"
        );
    }
    let counts = keys_per_master(&settings.key_prefix).await;
    let holding = counts.iter().filter(|(_, n)| *n > 0).count();
    assert!(holding >= 2, "the shards sit on one master: {counts:?}");
    // 16 due sets, some lease sets, 16 markers.
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    assert!(total > 32, "{counts:?}");
}

/// Promotes a replica of the master that holds the first shard (`CLUSTER FAILOVER`, the
/// graceful switch an operator makes) while clocks come due: every clock fires, none twice.
#[tokio::test]
async fn a_failover_while_clocks_come_due_loses_and_repeats_nothing() {
    let conn = cluster().await;
    let settings = settings(8);
    let redis_queue = RedisQueue::new(conn.clone(), &settings);
    let q = DeadlineQueue::Redis(redis_queue.clone());
    let first_key = redis_queue.keys()[0][0].clone();
    let failover = async move {
        let mut conn = conn;
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(&first_key)
            .query_async(&mut conn)
            .await
            .unwrap();
        aftersales_testkit::redis_cluster_failover(slot)
            .await
            .unwrap();
    };
    fire_all(&q, 2_000, 3_000, Duration::from_secs(40), failover).await;
}
