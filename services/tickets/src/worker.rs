//! The SLA worker: firing ticket clocks is the service core's `fire_clock`.

use aftersales_deadlines::DeadlineQueue;
use aftersales_runtime::firing::Fires;

use crate::{error::TicketsError, service::TicketsCore};

impl Fires for TicketsCore {
    type Error = TicketsError;

    async fn fire(&self, member: &str) -> Result<(), TicketsError> {
        self.fire_clock(member).await
    }

    async fn fire_batch(&self, members: &[String]) -> Result<(), TicketsError> {
        self.fire_clocks(members).await
    }

    async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, TicketsError> {
        TicketsCore::reconcile(self, queue).await
    }
}
