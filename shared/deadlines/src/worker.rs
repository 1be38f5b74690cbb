//! The loop that fires deadlines: claim what is due, hand it to the handler, acknowledge
//! what was handled, then sleep exactly until the next due instant (or until this process
//! schedules something earlier, or `max_idle` for schedules made by other processes).
//! It rebuilds the schedule from the handler's source of truth on start, periodically,
//! and as soon as the queue reports lost data.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

use crate::{Claim, DeadlineQueue, now_ms};

/// The side that knows what a deadline means.
pub trait DeadlineHandler: Send + Sync + 'static {
    /// Handles claimed items and returns the ids that are done. Ids left out stay leased
    /// and are handed out again once their lease runs out.
    fn fire(&self, claims: Vec<Claim>) -> impl Future<Output = Vec<String>> + Send;

    /// Schedules every pending item from the source of truth; returns how many.
    fn reconcile(&self, queue: &DeadlineQueue) -> impl Future<Output = Result<u64, String>> + Send;
}

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Most items claimed per round trip.
    pub batch: usize,
    /// How long a claim is held before another worker may take it.
    pub lease: Duration,
    /// Longest sleep while idle: bounds how late an item scheduled by another process fires.
    pub max_idle: Duration,
    /// How often the schedule is rebuilt from the source of truth anyway.
    pub reconcile_every: Duration,
    /// How often the queue is asked whether it lost its data.
    pub lost_check_every: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            batch: 256,
            lease: Duration::from_secs(30),
            max_idle: Duration::from_millis(500),
            reconcile_every: Duration::from_secs(300),
            lost_check_every: Duration::from_secs(1),
        }
    }
}

/// Runs until `shutdown`; a claim in progress is finished first, so nothing is left
/// leased by a clean stop.
pub async fn run<H: DeadlineHandler>(
    queue: DeadlineQueue,
    handler: Arc<H>,
    settings: WorkerSettings,
    shutdown: CancellationToken,
) {
    let wakeup = queue.wakeup();
    let lease_ms = settings.lease.as_millis() as i64;
    let mut last_reconcile: Option<Instant> = None;
    let mut last_lost_check: Option<Instant> = None;
    let retry = Duration::from_millis(250);

    while !shutdown.is_cancelled() {
        let lost_check_due =
            last_lost_check.is_none_or(|t| t.elapsed() >= settings.lost_check_every);
        if lost_check_due {
            let lost = match queue.check_lost().await {
                Ok(lost) => lost,
                Err(err) => {
                    tracing::warn!(error = %err, "deadline queue unreachable");
                    pause(retry, &shutdown).await;
                    continue;
                }
            };
            last_lost_check = Some(Instant::now());
            let periodic = last_reconcile.is_none_or(|t| t.elapsed() >= settings.reconcile_every);
            if lost || periodic {
                match handler.reconcile(&queue).await {
                    Ok(count) => {
                        tracing::info!(count, lost, "deadline schedule rebuilt from the database");
                        last_reconcile = Some(Instant::now());
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "rebuilding the deadline schedule failed");
                        // Ask again next round: the marker is set, so force the rebuild.
                        last_reconcile = None;
                        pause(retry, &shutdown).await;
                        continue;
                    }
                }
            }
        }

        match queue.claim(now_ms(), settings.batch, lease_ms).await {
            Ok(claims) if !claims.is_empty() => {
                let done = handler.fire(claims).await;
                if let Err(err) = queue.ack(&done).await {
                    // Unacknowledged claims come back after the lease; handling is idempotent.
                    tracing::warn!(error = %err, "acknowledging deadlines failed");
                }
                continue;
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "claiming deadlines failed");
                pause(retry, &shutdown).await;
                continue;
            }
        }

        let wait = match queue.next_due().await {
            Ok(Some(due)) => {
                let ms = (due - now_ms()).clamp(1, settings.max_idle.as_millis() as i64);
                Duration::from_millis(ms as u64)
            }
            Ok(None) => settings.max_idle,
            Err(err) => {
                tracing::warn!(error = %err, "reading the next deadline failed");
                retry
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = wakeup.notified() => {}
            () = shutdown.cancelled() => {}
        }
    }
}

async fn pause(duration: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        () = shutdown.cancelled() => {}
    }
}
