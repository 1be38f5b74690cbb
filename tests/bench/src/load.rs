//! Load generators: a closed loop (`concurrency` tasks each issue one request at a time
//! for a fixed duration, recording every latency) and an open loop (calls issued at a
//! steady rate whatever the answers take).

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

/// What an open-loop run gave back: the answers of the measured calls, in issue order,
/// and how long they took from the first measured tick to the last answer.
pub struct Paced<T> {
    pub results: Vec<T>,
    pub span: Duration,
}

impl<T> Paced<T> {
    /// Calls of the measured window answered per second.
    pub fn per_sec(&self) -> f64 {
        self.results.len() as f64 / self.span.as_secs_f64().max(0.001)
    }
}

/// Issues `request` at a steady `per_sec`, `warmup` (answers dropped) then `duration`
/// (answers kept), each call on its own task so a slow answer does not delay the next one
/// (an open loop). `request` gets a sequence number.
///
/// Ticks use [`MissedTickBehavior::Burst`](tokio::time::MissedTickBehavior::Burst): a
/// tick the loop could not take on time (the runtime busy, the timer's millisecond
/// granularity) is taken at once afterwards, so exactly `per_sec` × the run's seconds
/// calls are issued and the offered rate is the target; `Delay` would push every later
/// tick back and offer less than the target without saying so. The price is short bursts
/// after a stall, which a service sees in production too.
pub async fn paced<F, Fut, T>(
    per_sec: u32,
    warmup: Duration,
    duration: Duration,
    request: F,
) -> Paced<T>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let per_sec = per_sec.max(1);
    let calls_in = |d: Duration| (d.as_secs_f64() * f64::from(per_sec)).round() as u64;
    let (warm, measured) = (calls_in(warmup), calls_in(duration));
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(per_sec)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut calls = Vec::with_capacity(measured as usize);
    let mut first = Instant::now();
    for seq in 0..warm + measured {
        ticks.tick().await;
        if seq == warm {
            first = Instant::now();
        }
        let call = request(seq);
        let call = tokio::spawn(async move {
            let answer = call.await;
            (answer, Instant::now())
        });
        if seq >= warm {
            calls.push(call);
        }
    }
    let mut results = Vec::with_capacity(calls.len());
    let mut last = first;
    for call in calls {
        if let Ok((answer, at)) = call.await {
            results.push(answer);
            last = last.max(at);
        }
    }
    Paced {
        results,
        span: last - first,
    }
}
