//! The dispatch worker: offer acceptance deadlines and on-site visit deadlines, both
//! fired by the core.

use aftersales_deadlines::DeadlineQueue;
use aftersales_runtime::firing::Fires;

use futures::StreamExt;

use crate::{error::DispatchError, service::DispatchCore};

/// Members of one batch fired at once (each holds a database connection while it runs).
const BATCH_CONCURRENCY: usize = 4;

impl Fires for DispatchCore {
    type Error = DispatchError;

    async fn fire(&self, member: &str) -> Result<(), DispatchError> {
        self.fire(member).await
    }

    /// Members of a batch belong to different jobs (one transaction each), so they fire
    /// side by side, a few at a time: a lapsed offer is re-dispatched at once, and a
    /// burst of lapses must not wait in line behind each other.
    async fn fire_batch(&self, members: &[String]) -> Result<(), DispatchError> {
        let firings: Vec<_> = members
            .iter()
            .map(|m| DispatchCore::fire(self, m))
            .collect();
        let results: Vec<Result<(), DispatchError>> = futures::stream::iter(firings)
            .buffer_unordered(BATCH_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, DispatchError> {
        DispatchCore::reconcile(self, queue).await
    }
}
