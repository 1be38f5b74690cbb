//! The loop that fires deadlines: claim what is due, hand it to the handler, acknowledge
//! what was handled, then sleep exactly until the next due instant (or until this process
//! schedules something earlier, or `max_idle` for schedules made by other processes).
//! It rebuilds the schedule from the handler's source of truth on start, periodically,
//! and as soon as the queue reports lost data. A service gives it one thing: its
//! [`Deadlines`], which knows what its typed members mean.

use std::{
    fmt::Display,
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::{Claim, DeadlineQueue, Millis, now_ms};

/// A service's deadline: an enum with a stable text form, which is what the queue keeps.
/// The text form outlives a deploy (members scheduled by the old version are claimed by
/// the new one), so a variant's form never changes once released.
pub trait Member: Sized + Clone + Send + Sync + 'static {
    fn to_text(&self) -> String;
    /// `None` for text that is no member of this service (dropped with a warning).
    fn from_text(text: &str) -> Option<Self>;
}

/// Plain text members, for harnesses that have no meaning to give them.
impl Member for String {
    fn to_text(&self) -> String {
        self.clone()
    }

    fn from_text(text: &str) -> Option<Self> {
        Some(text.to_owned())
    }
}

/// A claimed member and the instant it was due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due<M> {
    pub member: M,
    pub due_ms: Millis,
}

/// What a service does with its due deadlines: the one trait it implements.
pub trait Deadlines: Send + Sync + 'static {
    type Member: Member;
    type Error: Display + Send;

    /// Fires a claimed batch in one transaction, taking its locks in a fixed order so
    /// concurrent batches cannot deadlock. Idempotent: a member that is not due, already
    /// fired or gone changes nothing (one not due yet is scheduled again).
    fn fire(
        &self,
        batch: &[Due<Self::Member>],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Schedules every pending member from the source of truth; returns how many.
    fn reconcile(
        &self,
        queue: &DeadlineQueue,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
}

/// Batches in flight at once: each holds a database connection, so this stays below the
/// pool size and API calls still get connections.
const CONCURRENCY: usize = 4;
/// Members per batch: one transaction, one commit. The services load and save a batch in
/// a few statements whatever its size, so at catch-up the commit's WAL flush is most of a
/// batch's time: 64 halves the flushes per member that 32 made, and a claim of
/// `SLA_BATCH`'s default (256) still fills all [`CONCURRENCY`] lanes at once.
const BATCH: usize = 64;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Most items claimed per round trip from each shard of a Redis queue.
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

/// Runs until `shutdown`; a claim in progress is finished first, so nothing is left
/// leased by a clean stop. `on_fired` hears how late each claimed member was.
pub async fn run<D: Deadlines>(
    queue: DeadlineQueue,
    handler: Arc<D>,
    settings: WorkerSettings,
    on_fired: impl Fn(Duration) + Send + Sync,
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
                let done = fire(&*handler, claims, &on_fired).await;
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

/// Fires claims in batches of [`BATCH`], [`CONCURRENCY`] at a time; a batch that fails
/// is fired again one member at a time, so one bad member cannot hold back the rest.
/// Returns the ids that are done (fired, or no member of this service); the others stay
/// leased and come back when the lease runs out.
async fn fire<D: Deadlines>(
    handler: &D,
    claims: Vec<Claim>,
    on_fired: &(impl Fn(Duration) + Send + Sync),
) -> Vec<String> {
    let now = now_ms();
    let mut done = Vec::new();
    let mut due = Vec::with_capacity(claims.len());
    for claim in claims {
        on_fired(Duration::from_millis(
            u64::try_from(now - claim.due_ms).unwrap_or(0),
        ));
        match D::Member::from_text(&claim.id) {
            Some(member) => due.push((
                claim.id,
                Due {
                    member,
                    due_ms: claim.due_ms,
                },
            )),
            None => {
                tracing::warn!(member = %claim.id, "no member of this queue; dropping it");
                done.push(claim.id);
            }
        }
    }
    let batches: Vec<Vec<(String, Due<D::Member>)>> =
        due.chunks(BATCH).map(<[_]>::to_vec).collect();
    let fired: Vec<Vec<String>> = futures::stream::iter(batches)
        .map(|batch| async move {
            let members: Vec<Due<D::Member>> = batch.iter().map(|(_, d)| d.clone()).collect();
            match handler.fire(&members).await {
                Ok(()) => batch.into_iter().map(|(id, _)| id).collect(),
                Err(err) => {
                    tracing::warn!(error = %err, size = batch.len(), "firing a batch failed; firing one by one");
                    let mut done = Vec::with_capacity(batch.len());
                    for (id, member) in batch {
                        match handler.fire(std::slice::from_ref(&member)).await {
                            Ok(()) => done.push(id),
                            Err(err) => {
                                tracing::warn!(member = %id, error = %err, "firing a deadline failed")
                            }
                        }
                    }
                    done
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    done.extend(fired.into_iter().flatten());
    done
}

async fn pause(duration: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        () = shutdown.cancelled() => {}
    }
}
