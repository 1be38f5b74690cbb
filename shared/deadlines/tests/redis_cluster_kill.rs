//! The Redis schedule on the test Redis Cluster when a master dies (`SIGKILL`, no graceful
//! hand-over): its replica is promoted by the cluster on its own, and every clock that
//! came due takes effect exactly once and none early. A binary of its own, holding the
//! testkit's cluster fault lock, so no other test sees a node go down under it; the
//! cluster is restored (the dead node rejoins as a replica) before the checks.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use aftersales_deadlines::{
    DeadlineQueue, Millis, RedisQueue, RedisQueueSettings, now_ms,
    worker::{self, Deadlines, Due, WorkerSettings},
};
use aftersales_platform::redis_conn::{self, RedisTarget, RedisTls};
use tokio_util::sync::CancellationToken;

/// A handler as the services write them: the clocks still pending are its source of
/// truth, firing one that already fired changes nothing, and `reconcile` schedules what
/// is pending. It counts deliveries (what the queue handed out) apart from effects.
#[derive(Default)]
struct Clocks {
    pending: Mutex<HashMap<String, Millis>>,
    /// Each clock's effects: when they happened.
    effects: Mutex<HashMap<String, Vec<Millis>>>,
    /// Deliveries before their instant: the queue must never make one.
    early: Mutex<Vec<(String, Millis)>>,
    deliveries: AtomicUsize,
}

impl Deadlines for Clocks {
    type Member = String;
    type Error = String;

    async fn fire(&self, batch: &[Due<String>]) -> Result<(), String> {
        let now = now_ms();
        let mut pending = self.pending.lock().unwrap();
        for due in batch {
            self.deliveries.fetch_add(1, Ordering::Relaxed);
            if now < due.due_ms {
                self.early
                    .lock()
                    .unwrap()
                    .push((due.member.clone(), due.due_ms - now));
                continue;
            }
            // Already fired (a redelivery after a lost acknowledgement): nothing happens.
            if pending.remove(&due.member).is_some() {
                self.effects
                    .lock()
                    .unwrap()
                    .entry(due.member.clone())
                    .or_default()
                    .push(now);
            }
        }
        Ok(())
    }

    async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, String> {
        let items: Vec<(String, Millis)> = self
            .pending
            .lock()
            .unwrap()
            .iter()
            .map(|(id, due)| (id.clone(), *due))
            .collect();
        queue.schedule(&items).await.map_err(|e| e.to_string())?;
        Ok(items.len() as u64)
    }
}

#[tokio::test]
async fn killing_the_master_of_a_shard_while_clocks_come_due_fires_each_once_and_none_early() {
    let _lock = aftersales_testkit::redis_cluster_fault_lock(Duration::from_secs(300)).unwrap();
    // Start from a healthy cluster, whatever an earlier run left.
    aftersales_testkit::redis_cluster_restore().await.unwrap();

    // The client the services use, with their timeouts and retries.
    let nodes = aftersales_testkit::redis_cluster_nodes();
    let target = RedisTarget::Cluster(nodes.split(',').map(str::to_owned).collect());
    let conn = redis_conn::open(&target, &RedisTls::default(), redis_conn::COMMAND_TIMEOUT)
        .await
        .unwrap();
    let settings = RedisQueueSettings {
        key_prefix: aftersales_testkit::unique_prefix(),
        name: "sla".into(),
        shards: 8,
    };
    let redis_queue = RedisQueue::new(conn.clone(), &settings);
    let queue = DeadlineQueue::Redis(redis_queue.clone());

    const COUNT: usize = 2_000;
    let start = now_ms() + 500;
    let spread: Millis = 6_000;
    let items: Vec<(String, Millis)> = (0..COUNT)
        .map(|i| {
            (
                format!("clock:{}", uuid::Uuid::new_v4()),
                start + spread * i as Millis / COUNT as Millis,
            )
        })
        .collect();
    let clocks = Arc::new(Clocks::default());
    clocks.pending.lock().unwrap().extend(items.iter().cloned());
    queue.schedule(&items).await.unwrap();

    let shutdown = CancellationToken::new();
    let worker_settings = WorkerSettings {
        batch: 64,
        // Short, so claims whose replies died with the master come back soon.
        lease: Duration::from_secs(2),
        max_idle: Duration::from_millis(50),
        reconcile_every: Duration::from_secs(3600),
        lost_check_every: Duration::from_secs(1),
    };
    let workers: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(worker::run(
                queue.clone(),
                clocks.clone(),
                worker_settings.clone(),
                |_| {},
                shutdown.clone(),
            ))
        })
        .collect();
    let effects = || clocks.effects.lock().unwrap().len();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);

    // Kill the master of the first shard once a tenth of the clocks fired.
    while effects() < COUNT / 10 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_key = redis_queue.keys()[0][0].clone();
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(&first_key)
        .query_async(&mut conn.clone())
        .await
        .unwrap();
    let fired_before_kill = effects();
    let killed = aftersales_testkit::redis_cluster_kill_master(slot).await;

    while effects() < COUNT && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Past a lease, so a claim or an acknowledgement the dead master took along comes
    // back and shows as a delivery; then the schedule must be empty.
    let settled = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut stats = queue.stats().await;
    tokio::time::sleep(worker_settings.lease + Duration::from_millis(500)).await;
    while tokio::time::Instant::now() < settled {
        stats = queue.stats().await;
        if matches!(&stats, Ok(s) if s.scheduled == 0 && s.in_flight == 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.cancel();
    for w in workers {
        w.await.unwrap();
    }
    // Whatever happened, leave a healthy cluster to the tests after this one.
    let restored = aftersales_testkit::redis_cluster_restore().await;

    let killed = killed.unwrap();
    restored.unwrap();
    let deliveries = clocks.deliveries.load(Ordering::Relaxed);
    eprintln!(
        "killed {} (slot {slot}) after {fired_before_kill} of {COUNT} clocks fired; {} took \
         over; {deliveries} deliveries for {COUNT} clocks",
        killed.addr, killed.promoted
    );
    let early = clocks.early.lock().unwrap().clone();
    assert!(early.is_empty(), "handed out early: {early:?}");
    let effects = clocks.effects.lock().unwrap().clone();
    let due: HashMap<&String, Millis> = items.iter().map(|(id, due)| (id, *due)).collect();
    let missing = items
        .iter()
        .filter(|(id, _)| !effects.contains_key(id))
        .count();
    assert_eq!(missing, 0, "{missing} of {COUNT} clocks never fired");
    for (id, at) in &effects {
        assert_eq!(at.len(), 1, "{id} took effect {} times", at.len());
        assert!(at[0] >= due[id], "{id} fired {} ms early", due[id] - at[0]);
    }
    let stats = stats.unwrap();
    assert_eq!(
        (stats.scheduled, stats.in_flight),
        (0, 0),
        "the schedule still holds clocks"
    );
}
