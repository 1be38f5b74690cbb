//! The SLA deadline queue: a schedule of instants keyed by an opaque id, either in Redis
//! (sorted sets sharded by hash tag, so it runs on Redis Cluster) or in-process for the
//! embedded default. Due items are claimed atomically with a lease and acknowledged once
//! handled; a claim whose lease runs out is handed out again.
//!
//! The queue is only a schedule: the caller's database holds the truth, so the worker
//! checks every claim against it and [`worker::run`] rebuilds the schedule from it on
//! start, periodically, and whenever Redis is found to have lost its data.
//!
//! Every write that schedules an item keeps the *earlier* of the old and new instants
//! (`ZADD LT`). A stale write can then make an item fire early — the handler sees in the
//! database that it is not due and schedules it again — but never late.

mod memory;
mod redis_queue;
pub mod worker;

/// Declares a service's deadline members: an enum whose variants each hold an id, with a
/// text prefix per variant that is its stable form on the queue (`offer:<id>`). Released
/// versions scheduled these forms, so a variant's prefix never changes. Text with no known
/// prefix, or with nothing after it, is no member.
///
/// ```
/// aftersales_deadlines::deadline_members! {
///     /// A deadline of the example service.
///     pub enum Example {
///         /// An offer's acceptance deadline, by the offer id.
///         Offer = "offer:",
///     }
/// }
/// use aftersales_deadlines::worker::Member;
/// assert_eq!(Example::Offer("o-1".into()).to_text(), "offer:o-1");
/// assert_eq!(Example::from_text("offer:"), None);
/// ```
#[macro_export]
macro_rules! deadline_members {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $prefix:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$variant_meta])* $variant(String) ),+
        }

        impl $crate::worker::Member for $name {
            fn to_text(&self) -> String {
                match self {
                    $( Self::$variant(id) => format!("{}{id}", $prefix) ),+
                }
            }

            fn from_text(text: &str) -> Option<Self> {
                $(
                    if let Some(id) = text.strip_prefix($prefix) {
                        return (!id.is_empty()).then(|| Self::$variant(id.to_owned()));
                    }
                )+
                None
            }
        }
    };
}

use std::sync::Arc;

pub use memory::MemoryQueue;
pub use redis_queue::{RedisQueue, RedisQueueSettings};
use tokio::sync::Notify;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A due item handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub id: String,
    /// The instant it was scheduled for; for a claim re-handed after a lost lease, the
    /// instant that lease ran out.
    pub due_ms: Millis,
    /// True when an earlier claim of this item was never acknowledged.
    pub reclaimed: bool,
}

/// Counts for operators and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub scheduled: u64,
    pub in_flight: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// The queue a service schedules on; cheap to clone.
#[derive(Clone, Debug)]
pub enum DeadlineQueue {
    Redis(RedisQueue),
    Memory(MemoryQueue),
}

impl DeadlineQueue {
    /// Adds or moves items, keeping the earlier instant of a member already scheduled.
    pub async fn schedule(&self, items: &[(String, Millis)]) -> Result<(), QueueError> {
        if items.is_empty() {
            return Ok(());
        }
        match self {
            Self::Redis(q) => q.schedule(items).await?,
            Self::Memory(q) => q.schedule(items),
        }
        self.wakeup().notify_one();
        Ok(())
    }

    /// Removes items that no longer need to fire (met or cancelled clocks).
    pub async fn cancel(&self, ids: &[String]) -> Result<(), QueueError> {
        if ids.is_empty() {
            return Ok(());
        }
        match self {
            Self::Redis(q) => q.cancel(ids).await?,
            Self::Memory(q) => q.cancel(ids),
        }
        Ok(())
    }

    /// Claims up to `limit` items due at `now_ms` (on Redis: from each shard, all shards at once), leased until `now_ms + lease_ms`; items
    /// whose earlier lease ran out are claimed again first.
    pub async fn claim(
        &self,
        now_ms: Millis,
        limit: usize,
        lease_ms: Millis,
    ) -> Result<Vec<Claim>, QueueError> {
        match self {
            Self::Redis(q) => Ok(q.claim(now_ms, limit, lease_ms).await?),
            Self::Memory(q) => Ok(q.claim(now_ms, limit, lease_ms)),
        }
    }

    /// Acknowledges handled claims so they are not handed out again.
    pub async fn ack(&self, ids: &[String]) -> Result<(), QueueError> {
        if ids.is_empty() {
            return Ok(());
        }
        match self {
            Self::Redis(q) => q.ack(ids).await?,
            Self::Memory(q) => q.ack(ids),
        }
        Ok(())
    }

    /// The earliest instant anything becomes claimable: a due time or a lease expiry.
    pub async fn next_due(&self) -> Result<Option<Millis>, QueueError> {
        match self {
            Self::Redis(q) => Ok(q.next_due().await?),
            Self::Memory(q) => Ok(q.next_due()),
        }
    }

    /// Returns true when the schedule has lost its data since the last call (a flushed or
    /// restarted Redis), and marks it as intact again. The caller must then rebuild.
    pub async fn check_lost(&self) -> Result<bool, QueueError> {
        match self {
            Self::Redis(q) => Ok(q.check_lost().await?),
            Self::Memory(q) => Ok(q.check_lost()),
        }
    }

    /// Asks the workers to rebuild the schedule from the database: they treat it as lost
    /// data and one of them rebuilds within its loss-check interval. (In-process queues
    /// live in one process; there is nothing to ask from outside.)
    pub async fn request_rebuild(&self) -> Result<bool, QueueError> {
        match self {
            Self::Redis(q) => Ok(q.forget_marker().await?),
            Self::Memory(_) => Ok(false),
        }
    }

    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        match self {
            Self::Redis(q) => Ok(q.stats().await?),
            Self::Memory(q) => Ok(q.stats()),
        }
    }

    /// Notified when this process schedules something, so an idle worker re-reads the
    /// next due time instead of sleeping past it.
    pub fn wakeup(&self) -> Arc<Notify> {
        match self {
            Self::Redis(q) => q.wakeup.clone(),
            Self::Memory(q) => q.wakeup.clone(),
        }
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}
