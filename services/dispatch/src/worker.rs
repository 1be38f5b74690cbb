//! The dispatch worker: offer acceptance deadlines and on-site visit deadlines, both
//! fired by the core.

use aftersales_deadlines::DeadlineQueue;
use aftersales_runtime::firing::Fires;

use crate::{error::DispatchError, service::DispatchCore};

impl Fires for DispatchCore {
    type Error = DispatchError;

    async fn fire(&self, member: &str) -> Result<(), DispatchError> {
        self.fire(member).await
    }

    async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, DispatchError> {
        DispatchCore::reconcile(self, queue).await
    }
}
