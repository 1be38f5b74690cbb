//! SLA clock firing at scale on the real Redis schedule and worker loop: lateness (handler
//! start − due time), early firings, throughput, Redis memory per pending clock, and the
//! catch-up after the worker was stopped. The handler records and acknowledges; the
//! database side of firing is measured by the CreateTicket and fault runs, not here.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use aftersales_deadlines::{
    DeadlineQueue, RedisQueue, RedisQueueSettings, now_ms,
    worker::{self, Deadlines, Due, WorkerSettings},
};
use aftersales_platform::CancellationToken;

use crate::load::percentile;

#[derive(Default)]
struct Recorder {
    lateness_ms: Mutex<Vec<i64>>,
    fired: AtomicU64,
}

impl Deadlines for Recorder {
    type Member = String;
    type Error = std::convert::Infallible;

    async fn fire(&self, batch: &[Due<String>]) -> Result<(), Self::Error> {
        let now = now_ms();
        if let Ok(mut lateness) = self.lateness_ms.lock() {
            lateness.extend(batch.iter().map(|d| now - d.due_ms));
        }
        self.fired.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    async fn reconcile(&self, _queue: &DeadlineQueue) -> Result<u64, Self::Error> {
        Ok(0)
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Firing {
    pub clocks: u64,
    pub p50_ms: i64,
    pub p99_ms: i64,
    pub p999_ms: i64,
    pub max_ms: i64,
    pub early: u64,
    pub fired_per_sec: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SlaReport {
    pub firing: Firing,
    pub bytes_per_clock: f64,
    pub catch_up: Firing,
    pub stopped_for_s: f64,
}

async fn used_memory(conn: &mut redis::aio::ConnectionManager) -> anyhow::Result<i64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("INFO memory has no used_memory"))
}

/// Schedules `n` clocks with due times spread evenly over `[from, from + window)`.
async fn schedule(
    queue: &DeadlineQueue,
    n: u64,
    from: i64,
    window: Duration,
) -> anyhow::Result<()> {
    let step = window.as_millis() as f64 / n as f64;
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        batch.push((
            uuid::Uuid::now_v7().to_string(),
            from + (i as f64 * step) as i64,
        ));
        if batch.len() == 10_000 {
            queue.schedule(&batch).await?;
            batch.clear();
        }
    }
    queue.schedule(&batch).await?;
    Ok(())
}

impl Firing {
    /// The summary of the lateness (ms, negative = early) of clocks that fired over
    /// `elapsed`.
    pub fn of(mut lateness: Vec<i64>, elapsed: Duration) -> Self {
        lateness.sort_unstable();
        Firing {
            clocks: lateness.len() as u64,
            p50_ms: percentile(&lateness, 50.0),
            p99_ms: percentile(&lateness, 99.0),
            p999_ms: percentile(&lateness, 99.9),
            max_ms: lateness.last().copied().unwrap_or_default(),
            early: lateness.iter().filter(|l| **l < 0).count() as u64,
            fired_per_sec: lateness.len() as f64 / elapsed.as_secs_f64().max(0.001),
        }
    }
}

fn summarize(recorder: &Recorder, elapsed: Duration) -> Firing {
    let lateness = recorder
        .lateness_ms
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    Firing::of(lateness, elapsed)
}

async fn wait_for(recorder: &Recorder, n: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    while recorder.fired.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `n` clocks over `window` with the worker running; then `n` more that come due while
/// the worker is stopped for `stop`, and how fast it catches up.
pub async fn run(
    n: u64,
    window: Duration,
    stop: Duration,
    settings: WorkerSettings,
) -> anyhow::Result<SlaReport> {
    let mut conn = aftersales_testkit::redis_connection().await?;
    let prefix = aftersales_testkit::unique_prefix();
    let queue = DeadlineQueue::Redis(RedisQueue::new(
        conn.clone(),
        &RedisQueueSettings {
            key_prefix: prefix.clone(),
            name: "sla".into(),
            shards: 16,
        },
    ));

    // Firing at the due time, with everything pending from the start.
    let before = used_memory(&mut conn).await?;
    let start_at = now_ms() + 1_000;
    schedule(&queue, n, start_at + 2_000, window).await?;
    let bytes_per_clock = (used_memory(&mut conn).await? - before) as f64 / n as f64;
    let recorder = Arc::new(Recorder::default());
    let stop_worker = CancellationToken::new();
    let running = tokio::spawn(worker::run(
        queue.clone(),
        recorder.clone(),
        settings.clone(),
        |_| {},
        stop_worker.clone(),
    ));
    wait_for(&recorder, n, window + Duration::from_secs(120)).await;
    stop_worker.cancel();
    running.await?;
    let firing = summarize(&recorder, window);

    // Catch-up: the same number come due while no worker runs.
    let backlog_from = now_ms() + 500;
    schedule(&queue, n, backlog_from, stop).await?;
    let resume_at = backlog_from + stop.as_millis() as i64;
    tokio::time::sleep(Duration::from_millis((resume_at - now_ms()).max(0) as u64)).await;
    let recorder = Arc::new(Recorder::default());
    let stop_worker = CancellationToken::new();
    let began = Instant::now();
    let running = tokio::spawn(worker::run(
        queue.clone(),
        recorder.clone(),
        settings,
        |_| {},
        stop_worker.clone(),
    ));
    wait_for(&recorder, n, Duration::from_secs(300)).await;
    let drained = began.elapsed();
    stop_worker.cancel();
    running.await?;
    let catch_up = summarize(&recorder, drained);

    // Leave nothing behind in the shared Redis.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await?;
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(SlaReport {
        firing,
        bytes_per_clock,
        catch_up,
        stopped_for_s: stop.as_secs_f64(),
    })
}
