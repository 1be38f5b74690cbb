//! The deadline handler every service uses: fires claimed members a few at a time, each
//! through the service's own `fire`, and acknowledges those that succeeded.

use std::{fmt::Display, future::Future, sync::Arc};

use aftersales_deadlines::{Claim, DeadlineQueue, worker::DeadlineHandler};
use futures::StreamExt;

/// What a service does with one due member of its queue.
pub trait Fires: Send + Sync + 'static {
    type Error: Display + Send;

    /// Handles one member idempotently: firing it twice changes nothing the second time.
    fn fire(&self, member: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Schedules every pending member from the database; returns how many.
    fn reconcile(
        &self,
        queue: &DeadlineQueue,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
}

/// Members fired at once: each is its own transaction, so this stays below the database
/// pool size and API calls still get connections.
const CONCURRENCY: usize = 8;

pub struct ConcurrentFiring<C>(pub Arc<C>);

impl<C: Fires> DeadlineHandler for ConcurrentFiring<C> {
    async fn fire(&self, claims: Vec<Claim>) -> Vec<String> {
        futures::stream::iter(claims)
            .map(|claim| async move {
                match self.0.fire(&claim.id).await {
                    Ok(()) => Some(claim.id),
                    // Left unacknowledged: handed out again once the lease runs out.
                    Err(err) => {
                        tracing::warn!(member = %claim.id, error = %err, "firing a deadline failed");
                        None
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
            .filter_map(std::future::ready)
            .collect()
            .await
    }

    async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, String> {
        self.0.reconcile(queue).await.map_err(|e| e.to_string())
    }
}
