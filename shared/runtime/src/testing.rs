//! The event bus and deadline queue a service test runs on: Redis under a key prefix of
//! its own next to PostgreSQL, the in-process pair next to SQLite.

use aftersales_deadlines::{DeadlineQueue, MemoryQueue, RedisQueue, RedisQueueSettings};
use aftersales_eventbus::{EventBus, MemoryBus, RedisBus};
use aftersales_testkit::Backend;

/// The bus and the queue named `queue` for a test on `backend`.
pub async fn backbone(backend: Backend, queue: &str) -> anyhow::Result<(EventBus, DeadlineQueue)> {
    Ok(match backend {
        Backend::Postgres => {
            let prefix = aftersales_testkit::unique_prefix();
            let conn = aftersales_testkit::redis_connection().await?;
            let reader = aftersales_testkit::redis_connection().await?;
            let settings = RedisQueueSettings {
                key_prefix: prefix.clone(),
                name: queue.into(),
                shards: 4,
            };
            (
                EventBus::Redis(RedisBus::new(conn.clone(), reader, prefix)),
                DeadlineQueue::Redis(RedisQueue::new(conn, &settings)),
            )
        }
        Backend::Sqlite => (
            EventBus::Memory(MemoryBus::new()),
            DeadlineQueue::Memory(MemoryQueue::new()),
        ),
    })
}
