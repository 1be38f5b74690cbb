//! The deadline engine at scale on the real Redis schedule and worker loop: lateness
//! (handler start − due time) and early firings with a million or ten million clocks
//! pending, Redis memory per pending clock, and the catch-up after the worker was stopped.
//! The handler records and acknowledges; firing through the services' databases is
//! measured by the handlers and soak runs, not here.

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

use crate::{
    load::percentile,
    report::{Row, row},
};

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

/// One run of the engine at a scale.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Clocks pending throughout, due long after the run.
    pub pending: u64,
    /// Clocks that come due while the worker runs, spread evenly over `window`.
    pub fired: u64,
    pub window: Duration,
    /// Clocks that come due while the worker is stopped for `stop`.
    pub backlog: u64,
    pub stop: Duration,
    pub limits: Limits,
}

/// What a run at a scale is held to.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Limits {
    pub p99_ms: i64,
    pub p999_ms: i64,
    pub bytes_per_clock: f64,
    pub catch_up_per_sec: f64,
}

impl Limits {
    pub const MILLION: Self = Self {
        p99_ms: 20,
        p999_ms: 50,
        bytes_per_clock: 40.0,
        catch_up_per_sec: 300_000.0,
    };
    pub const TEN_MILLION: Self = Self {
        p99_ms: 50,
        p999_ms: 100,
        bytes_per_clock: 40.0,
        catch_up_per_sec: 300_000.0,
    };
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SlaReport {
    pub pending: u64,
    pub firing: Firing,
    pub bytes_per_clock: f64,
    pub catch_up: Firing,
    pub stopped_for_s: f64,
    pub limits: Limits,
}

impl SlaReport {
    pub fn rows(&self, judged: bool) -> Vec<Row> {
        let judge = |met: bool| judged.then_some(met);
        let at = format!("at {} pending", self.pending);
        let (f, c, l) = (&self.firing, &self.catch_up, &self.limits);
        vec![
            row(
                &format!("SLA lateness p50/max, {at}"),
                format!("{} / {} ms ({} fired)", f.p50_ms, f.max_ms, f.clocks),
                "",
                None,
            ),
            row(
                &format!("SLA lateness p99/p99.9, {at}"),
                format!("{} / {} ms", f.p99_ms, f.p999_ms),
                &format!("<= {} / {} ms", l.p99_ms, l.p999_ms),
                judge(f.p99_ms <= l.p99_ms && f.p999_ms <= l.p999_ms),
            ),
            row(
                &format!("SLA fired early, {at}"),
                format!("{}", f.early + c.early),
                "= 0",
                Some(f.early + c.early == 0),
            ),
            row(
                &format!("Redis bytes per pending clock, {at}"),
                format!("{:.1} B", self.bytes_per_clock),
                &format!("<= {:.0} B", l.bytes_per_clock),
                judge(self.bytes_per_clock <= l.bytes_per_clock),
            ),
            row(
                &format!("Catch-up after a {:.0} s stop, {at}", self.stopped_for_s),
                format!("{:.0} clocks/s ({} fired)", c.fired_per_sec, c.clocks),
                &format!(">= {:.0}/s", l.catch_up_per_sec),
                judge(c.fired_per_sec >= l.catch_up_per_sec),
            ),
            row(
                &format!("Catch-up lateness p50/p99/max, {at}"),
                format!("{} / {} / {} ms", c.p50_ms, c.p99_ms, c.max_ms),
                "",
                None,
            ),
        ]
    }
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

/// `plan.pending` clocks pending throughout, due an hour after the run (Redis memory per
/// clock is measured on them); `plan.fired` more come due
/// over `plan.window` with the worker running; then `plan.backlog` more come due while the worker is stopped for
/// `plan.stop`, and how fast it catches up.
pub async fn run(plan: &Plan, settings: WorkerSettings) -> anyhow::Result<SlaReport> {
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

    // The pending clocks, due an hour on: memory per clock is measured on them.
    let before = used_memory(&mut conn).await?;
    let later = now_ms() + 3_600_000;
    schedule(&queue, plan.pending, later, Duration::from_secs(3_600)).await?;
    let bytes_per_clock =
        (used_memory(&mut conn).await? - before) as f64 / plan.pending.max(1) as f64;

    // Firing at the due time: while the worker runs, clocks are scheduled about a second
    // before their instants, `plan.fired` of them evenly over the window, as a service
    // schedules them.
    let recorder = Arc::new(Recorder::default());
    let stop_worker = CancellationToken::new();
    let running = tokio::spawn(worker::run(
        queue.clone(),
        recorder.clone(),
        settings.clone(),
        |_| {},
        stop_worker.clone(),
    ));
    let start_at = now_ms() + 1_000;
    let step = plan.window.as_millis() as f64 / plan.fired.max(1) as f64;
    let mut scheduled = 0;
    while scheduled < plan.fired {
        let ahead = now_ms() + 1_000;
        let mut batch = Vec::new();
        while scheduled < plan.fired && start_at + (scheduled as f64 * step) as i64 <= ahead {
            batch.push((
                uuid::Uuid::now_v7().to_string(),
                start_at + (scheduled as f64 * step) as i64,
            ));
            scheduled += 1;
        }
        queue.schedule(&batch).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for(&recorder, plan.fired, Duration::from_secs(120)).await;
    stop_worker.cancel();
    running.await?;
    let firing = summarize(&recorder, plan.window);

    // Catch-up: a backlog comes due while no worker runs.
    let backlog_from = now_ms() + 500;
    schedule(&queue, plan.backlog, backlog_from, plan.stop).await?;
    let resume_at = backlog_from + plan.stop.as_millis() as i64;
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
    wait_for(&recorder, plan.backlog, Duration::from_secs(300)).await;
    let drained = began.elapsed();
    stop_worker.cancel();
    running.await?;
    let catch_up = summarize(&recorder, drained);

    // Leave nothing behind in the shared Redis.
    forget(&mut conn, &prefix).await?;
    Ok(SlaReport {
        pending: plan.pending,
        firing,
        bytes_per_clock,
        catch_up,
        stopped_for_s: plan.stop.as_secs_f64(),
        limits: plan.limits,
    })
}

/// Unlinks every key under `prefix`, a page at a time.
async fn forget(conn: &mut redis::aio::ConnectionManager, prefix: &str) -> anyhow::Result<()> {
    let mut cursor = 0_u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(10_000)
            .query_async(conn)
            .await?;
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(keys)
                .query_async::<()>(conn)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
