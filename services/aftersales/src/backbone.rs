//! The shared moving parts every service in a process uses: the deadline queue and the
//! event bus, on Redis when `REDIS_URL` (one server) or `REDIS_CLUSTER_NODES` (a Redis
//! Cluster) is set, and in-process otherwise.

use aftersales_deadlines::{DeadlineQueue, MemoryQueue, RedisQueue, RedisQueueSettings};
use aftersales_eventbus::{EventBus, MemoryBus, RedisBus};
use aftersales_platform::{
    config::Env,
    redis_conn::{self, COMMAND_TIMEOUT, RedisConn, RedisTarget, RedisTls},
};
use anyhow::Context;
use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

pub struct Backbone {
    pub bus: EventBus,
    redis: Option<(RedisConn, String, usize)>,
    /// One in-process queue per name: a service's worker must never claim another's
    /// members.
    memory_queues: Mutex<HashMap<String, MemoryQueue>>,
}

impl Backbone {
    pub fn in_process() -> Self {
        Self {
            bus: EventBus::Memory(MemoryBus::new()),
            redis: None,
            memory_queues: Mutex::default(),
        }
    }

    /// Redis when `REDIS_URL` or `REDIS_CLUSTER_NODES` is set (`REDIS_KEY_PREFIX`,
    /// `SLA_SHARDS`), else in-process.
    pub async fn from_env(env: &Env) -> anyhow::Result<Self> {
        let Some(target) = RedisTarget::from_env(env)? else {
            tracing::warn!(
                "neither REDIS_URL nor REDIS_CLUSTER_NODES is set: deadlines and events stay inside this process"
            );
            return Ok(Self::in_process());
        };
        let prefix = redis_conn::key_prefix(env)?;
        let shards = env.positive("SLA_SHARDS", 16)?;
        let tls = RedisTls::from_env(env)?;
        let conn = redis_conn::open(&target, &tls, COMMAND_TIMEOUT)
            .await
            .with_context(|| format!("{}: cannot connect", target.describe()))?;
        let reader = redis_conn::open(&target, &tls, COMMAND_TIMEOUT * 2)
            .await
            .with_context(|| format!("{}: cannot connect", target.describe()))?;
        Ok(Self {
            bus: EventBus::Redis(RedisBus::new(conn.clone(), reader, prefix.clone())),
            redis: Some((conn, prefix, shards)),
            memory_queues: Mutex::default(),
        })
    }

    /// The deadline queue named `name` (one per kind of deadline: `sla`, …).
    pub fn queue(&self, name: &str) -> DeadlineQueue {
        match &self.redis {
            Some((conn, prefix, shards)) => DeadlineQueue::Redis(RedisQueue::new(
                conn.clone(),
                &RedisQueueSettings {
                    key_prefix: prefix.clone(),
                    name: name.into(),
                    shards: *shards,
                },
            )),
            None => DeadlineQueue::Memory(
                self.memory_queues
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(name.to_owned())
                    .or_default()
                    .clone(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_prefix_with_braces_stops_start_up_naming_the_variable() {
        for target in [
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("REDIS_CLUSTER_NODES", "redis://127.0.0.1:1"),
        ] {
            let env = Env::from_pairs([target, ("REDIS_KEY_PREFIX", "shop}:")]);
            let Err(err) = Backbone::from_env(&env).await else {
                panic!("a braced prefix was accepted with {}", target.0);
            };
            let err = format!("{err:#}");
            assert!(err.contains("REDIS_KEY_PREFIX"), "{err}");
            assert!(err.contains("{ or }"), "{err}");
        }
    }
}
