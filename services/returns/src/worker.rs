//! The returns worker: step deadlines and refund retries, both fired by the core.

use aftersales_deadlines::DeadlineQueue;
use aftersales_runtime::firing::Fires;

use crate::{error::ReturnsError, service::ReturnsCore};

impl Fires for ReturnsCore {
    type Error = ReturnsError;

    async fn fire(&self, member: &str) -> Result<(), ReturnsError> {
        self.fire(member).await
    }

    async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, ReturnsError> {
        ReturnsCore::reconcile(self, queue).await
    }
}
