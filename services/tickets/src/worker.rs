//! The SLA worker: the deadline queue's handler for ticket clocks.

use std::sync::Arc;

use aftersales_deadlines::{Claim, DeadlineQueue, worker::DeadlineHandler};

use crate::service::TicketsCore;

pub struct SlaFiring {
    core: Arc<TicketsCore>,
}

impl SlaFiring {
    pub fn new(core: Arc<TicketsCore>) -> Self {
        Self { core }
    }
}

impl DeadlineHandler for SlaFiring {
    async fn fire(&self, claims: Vec<Claim>) -> Vec<String> {
        let mut done = Vec::with_capacity(claims.len());
        for claim in claims {
            match self.core.fire_clock(&claim.id).await {
                Ok(()) => done.push(claim.id),
                // Left unacknowledged: handed out again once the lease runs out.
                Err(err) => {
                    tracing::warn!(clock_id = %claim.id, error = %err, "firing an SLA clock failed")
                }
            }
        }
        done
    }

    async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, String> {
        self.core.reconcile(queue).await.map_err(|e| e.to_string())
    }
}
