//! The event bus and deadline queue a service test runs on: Redis under a key prefix of
//! its own next to PostgreSQL, the in-process pair next to SQLite.

use aftersales_deadlines::{DeadlineQueue, MemoryQueue, RedisQueue, RedisQueueSettings};
use aftersales_eventbus::{EventBus, MemoryBus, RedisBus};
use aftersales_testkit::Backend;

/// The bus and the queue named `queue` for a test on `backend`.
pub async fn backbone(backend: Backend, queue: &str) -> anyhow::Result<(EventBus, DeadlineQueue)> {
    let (bus, mut queues) = suite(backend, &[queue]).await?;
    let queue = queues.pop().ok_or_else(|| anyhow::anyhow!("no queue"))?;
    Ok((bus, queue))
}

/// One bus shared by several services (so they see each other's events) and one queue
/// per name, for a test running services together on `backend`.
pub async fn suite(
    backend: Backend,
    queues: &[&str],
) -> anyhow::Result<(EventBus, Vec<DeadlineQueue>)> {
    Ok(match backend {
        Backend::Postgres => {
            let prefix = aftersales_testkit::unique_prefix();
            let conn = aftersales_testkit::redis_connection().await?;
            let reader = aftersales_testkit::redis_connection().await?;
            let queues = queues
                .iter()
                .map(|name| {
                    let settings = RedisQueueSettings {
                        key_prefix: prefix.clone(),
                        name: (*name).into(),
                        shards: 4,
                    };
                    DeadlineQueue::Redis(RedisQueue::new(conn.clone(), &settings))
                })
                .collect();
            (EventBus::Redis(RedisBus::new(conn, reader, prefix)), queues)
        }
        Backend::Sqlite => (
            EventBus::Memory(MemoryBus::new()),
            queues
                .iter()
                .map(|_| DeadlineQueue::Memory(MemoryQueue::new()))
                .collect(),
        ),
    })
}
