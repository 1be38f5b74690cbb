//! The deadline handler every service uses: fires claimed members a few at a time, each
//! through the service's own `fire`, and acknowledges those that succeeded.

use std::{fmt::Display, future::Future, sync::Arc};

use aftersales_deadlines::{Claim, DeadlineQueue, worker::DeadlineHandler};
use aftersales_platform::metrics;
use futures::StreamExt;

/// What a service does with one due member of its queue.
pub trait Fires: Send + Sync + 'static {
    type Error: Display + Send;

    /// Handles one member idempotently: firing it twice changes nothing the second time.
    fn fire(&self, member: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Handles several members at once, e.g. in one transaction; by default one by one.
    fn fire_batch(
        &self,
        members: &[String],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async move {
            for member in members {
                self.fire(member).await?;
            }
            Ok(())
        }
    }

    /// Schedules every pending member from the database; returns how many.
    fn reconcile(
        &self,
        queue: &DeadlineQueue,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
}

/// Puts every pending member of one kind back on the schedule, a page at a time:
/// `page(after, limit)` returns `(id, fire_at)` in id order after `after`; members are
/// `prefix` + id. Returns how many were scheduled.
pub async fn schedule_all<E, F, Fut>(
    queue: &DeadlineQueue,
    prefix: &str,
    mut page: F,
) -> Result<u64, E>
where
    E: From<sea_orm::DbErr>,
    F: FnMut(String, u64) -> Fut,
    Fut: Future<Output = Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, E>>,
{
    const PAGE: u64 = 5_000;
    let mut after = String::new();
    let mut count = 0;
    loop {
        let rows = page(after.clone(), PAGE).await?;
        let Some((last, _)) = rows.last() else {
            return Ok(count);
        };
        after = last.clone();
        let items: Vec<(String, i64)> = rows
            .into_iter()
            .map(|(id, at)| (format!("{prefix}{id}"), at.timestamp_millis()))
            .collect();
        queue
            .schedule(&items)
            .await
            .map_err(|e| sea_orm::DbErr::Custom(format!("deadline queue: {e}")))?;
        count += items.len() as u64;
    }
}

/// Batches in flight at once: each holds a database connection, so this stays below the
/// pool size and API calls still get connections.
const CONCURRENCY: usize = 4;
/// Members per batch: one transaction, one commit.
const BATCH: usize = 32;

pub struct ConcurrentFiring<C> {
    core: Arc<C>,
    /// The label its firing metrics carry (the service's name).
    queue: &'static str,
}

impl<C: Fires> ConcurrentFiring<C> {
    pub fn new(core: Arc<C>, queue: &'static str) -> Self {
        Self { core, queue }
    }

    /// Fires members singly; returns those that succeeded. The others stay leased and are
    /// handed out again when the lease runs out.
    async fn fire_each(&self, members: Vec<String>) -> Vec<String> {
        let mut done = Vec::with_capacity(members.len());
        for member in members {
            match self.core.fire(&member).await {
                Ok(()) => done.push(member),
                Err(err) => tracing::warn!(%member, error = %err, "firing a deadline failed"),
            }
        }
        done
    }
}

impl<C: Fires> DeadlineHandler for ConcurrentFiring<C> {
    async fn fire(&self, claims: Vec<Claim>) -> Vec<String> {
        let now = aftersales_deadlines::now_ms();
        for claim in &claims {
            let late_ms = u64::try_from(now - claim.due_ms).unwrap_or(0);
            metrics::clock_fired(self.queue, std::time::Duration::from_millis(late_ms));
        }
        let ids: Vec<String> = claims.into_iter().map(|c| c.id).collect();
        let batches: Vec<Vec<String>> = ids.chunks(BATCH).map(<[String]>::to_vec).collect();
        let done: Vec<Vec<String>> = futures::stream::iter(batches)
            .map(|batch| async move {
                match self.core.fire_batch(&batch).await {
                    Ok(()) => batch,
                    // One bad member must not hold back the rest: retry them one by one.
                    Err(err) => {
                        tracing::warn!(error = %err, size = batch.len(), "firing a batch failed; firing one by one");
                        self.fire_each(batch).await
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        done.into_iter().flatten().collect()
    }

    async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, String> {
        self.core.reconcile(queue).await.map_err(|e| e.to_string())
    }
}
