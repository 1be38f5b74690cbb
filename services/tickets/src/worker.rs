//! The SLA worker: the deadline queue's handler for ticket clocks.

use std::sync::Arc;

use aftersales_deadlines::{Claim, DeadlineQueue, worker::DeadlineHandler};
use futures::StreamExt;

use crate::service::TicketsCore;

/// Deadlines fired at once; below the database pool size, so API calls still get connections.
const CONCURRENCY: usize = 8;

pub struct SlaFiring {
    core: Arc<TicketsCore>,
}

impl SlaFiring {
    pub fn new(core: Arc<TicketsCore>) -> Self {
        Self { core }
    }
}

impl DeadlineHandler for SlaFiring {
    /// Fires claims [`CONCURRENCY`] at a time: each is its own transaction, and two clocks
    /// of one ticket serialise on the ticket's row lock.
    async fn fire(&self, claims: Vec<Claim>) -> Vec<String> {
        futures::stream::iter(claims)
            .map(|claim| async move {
                match self.core.fire_clock(&claim.id).await {
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
        self.core.reconcile(queue).await.map_err(|e| e.to_string())
    }
}
