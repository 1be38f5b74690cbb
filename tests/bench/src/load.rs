//! A closed-loop load generator: `concurrency` tasks each issue one request at a time for
//! a fixed duration, recording every latency.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

/// Throughput and latency of one measured run.
#[derive(Debug, Clone)]
pub struct Stats {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Sorted latencies in microseconds.
    pub micros: Vec<u64>,
}

impl Stats {
    pub fn per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p`-th percentile latency in milliseconds (`p` in 0..=100).
    pub fn pct_ms(&self, p: f64) -> f64 {
        percentile(&self.micros, p) as f64 / 1000.0
    }
}

/// The `p`-th percentile of sorted values.
pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Runs `request` from `concurrency` tasks for `warmup` (not recorded) then `duration`.
/// `request` gets a sequence number and answers whether the call succeeded.
pub async fn closed_loop<F, Fut>(
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    request: F,
) -> Stats
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let request = request.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut micros) = (0u64, 0u64, Vec::new());
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                let seq = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let success = request(seq).await;
                if began < start {
                    continue;
                }
                if success {
                    ok += 1;
                    micros.push(began.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
            }
            (ok, errors, micros)
        }));
    }
    let mut stats = Stats {
        ok: 0,
        errors: 0,
        elapsed: duration,
        micros: Vec::new(),
    };
    for task in tasks {
        if let Ok((ok, errors, micros)) = task.await {
            stats.ok += ok;
            stats.errors += errors;
            stats.micros.extend(micros);
        }
    }
    stats.micros.sort_unstable();
    stats
}

/// Issues `request` at a steady `per_sec` for `duration`, each call on its own task so
/// a slow answer does not delay the next one (an open loop). Answers how many succeeded
/// and how many failed.
pub async fn paced<F, Fut>(per_sec: u32, duration: Duration, request: F) -> (u64, u64)
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = bool> + Send + 'static,
{
    let period = Duration::from_secs_f64(1.0 / f64::from(per_sec.max(1)));
    let mut ticks = tokio::time::interval(period);
    let end = Instant::now() + duration;
    let mut calls = Vec::new();
    let mut seq = 0;
    while Instant::now() < end {
        ticks.tick().await;
        calls.push(tokio::spawn(request(seq)));
        seq += 1;
    }
    let (mut ok, mut errors) = (0, 0);
    for call in calls {
        match call.await {
            Ok(true) => ok += 1,
            _ => errors += 1,
        }
    }
    (ok, errors)
}
