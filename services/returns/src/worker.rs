//! The returns worker: the deadline queue's handler for step deadlines and refund retries.

use std::sync::Arc;

use aftersales_deadlines::{Claim, DeadlineQueue, worker::DeadlineHandler};

use crate::service::ReturnsCore;

pub struct ReturnsFiring {
    core: Arc<ReturnsCore>,
}

impl ReturnsFiring {
    pub fn new(core: Arc<ReturnsCore>) -> Self {
        Self { core }
    }
}

impl DeadlineHandler for ReturnsFiring {
    async fn fire(&self, claims: Vec<Claim>) -> Vec<String> {
        let mut done = Vec::with_capacity(claims.len());
        for claim in claims {
            match self.core.fire(&claim.id).await {
                Ok(()) => done.push(claim.id),
                // Left unacknowledged: handed out again once the lease runs out.
                Err(err) => {
                    tracing::warn!(member = %claim.id, error = %err, "firing a returns deadline failed")
                }
            }
        }
        done
    }

    async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, String> {
        self.core.reconcile(queue).await.map_err(|e| e.to_string())
    }
}
