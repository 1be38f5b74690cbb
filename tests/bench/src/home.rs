//! A service's home in the benchmark: a fresh database and Redis keys of its own, and the
//! settings every service under measurement runs with.

use std::time::Duration;

use aftersales_deadlines::{DeadlineQueue, RedisQueue, RedisQueueSettings};
use aftersales_eventbus::{EventBus, RedisBus};
use aftersales_runtime::ServiceSettings;

/// Where a service under measurement keeps its state (across a restart, too): a fresh
/// PostgreSQL database and its own Redis key prefixes.
pub struct Home {
    database_url: String,
    queue_prefix: String,
    bus_prefix: String,
}

impl Home {
    pub async fn fresh() -> anyhow::Result<Self> {
        Ok(Self {
            database_url: aftersales_testkit::fresh_postgres_url().await?,
            queue_prefix: aftersales_testkit::unique_prefix(),
            bus_prefix: aftersales_testkit::unique_prefix(),
        })
    }

    pub async fn queue(&self, name: &str) -> anyhow::Result<DeadlineQueue> {
        Ok(DeadlineQueue::Redis(RedisQueue::new(
            aftersales_testkit::redis_connection().await?,
            &RedisQueueSettings {
                key_prefix: self.queue_prefix.clone(),
                name: name.into(),
                shards: 16,
            },
        )))
    }

    pub async fn bus(&self) -> anyhow::Result<EventBus> {
        Ok(EventBus::Redis(RedisBus::new(
            aftersales_testkit::redis_connection().await?,
            aftersales_testkit::redis_connection().await?,
            self.bus_prefix.clone(),
        )))
    }

    pub fn settings(&self) -> ServiceSettings {
        let mut settings =
            ServiceSettings::for_tests(self.database_url.clone(), Duration::from_secs(30));
        settings.server.concurrency_per_connection = 1024;
        settings
    }
}
