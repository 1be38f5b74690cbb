//! Per-key rate limits. With Redis every gateway replica shares one budget per API key:
//! a Lua script runs the generic cell rate algorithm (GCRA) atomically on Redis's clock,
//! storing one "theoretical arrival time" per key that expires once the key is idle.
//! Without Redis (`aftersales dev`) the same algorithm runs in process (governor).

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use aftersales_platform::metrics;
use governor::{DefaultKeyedRateLimiter, clock::Clock};
use redis::aio::ConnectionManager;

/// A sustained rate with room for bursts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Quota {
    /// Microseconds between two requests at the sustained rate (at least one).
    fn interval_us(self) -> u64 {
        (1_000_000 / u64::from(self.per_second.get())).max(1)
    }
}

/// Admitted, or refused until `retry_after` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Limited { retry_after: Duration },
}

/// GCRA on Redis. ARGV: interval and burst tolerance in µs. Returns {allowed, wait µs}.
/// Time comes from Redis so replicas with skewed clocks agree; the state is written as an
/// integer string because Lua's default number format would round it.
const GCRA: &str = r#"
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local stored = redis.call('GET', KEYS[1])
local tat = now_us
if stored then
  tat = math.max(tonumber(stored), now_us)
end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if allow_at > now_us then
  return {0, allow_at - now_us}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now_us) / 1000))
return {1, 0}
"#;

/// The budget of every API key.
#[derive(Clone)]
pub enum RateLimiter {
    Redis(RedisLimiter),
    Local(Arc<DefaultKeyedRateLimiter<String>>),
}

#[derive(Clone)]
pub struct RedisLimiter {
    conn: ConnectionManager,
    prefix: String,
    script: Arc<redis::Script>,
    quota: Quota,
}

impl RateLimiter {
    /// Shared by every replica that uses the same Redis and `prefix`.
    pub fn redis(conn: ConnectionManager, prefix: &str, quota: Quota) -> Self {
        RateLimiter::Redis(RedisLimiter {
            conn,
            prefix: format!("{prefix}gateway:ratelimit:"),
            script: Arc::new(redis::Script::new(GCRA)),
            quota,
        })
    }

    /// This process only.
    pub fn local(quota: Quota) -> Self {
        let quota = governor::Quota::per_second(quota.per_second).allow_burst(quota.burst);
        RateLimiter::Local(Arc::new(governor::RateLimiter::keyed(quota)))
    }

    /// Spends one request of `key`'s budget. A Redis failure lets the request through:
    /// losing quota enforcement for a moment is better than refusing every partner.
    pub async fn check(&self, key: &str) -> Decision {
        match self {
            RateLimiter::Redis(limiter) => match limiter.check(key).await {
                Ok(decision) => {
                    metrics::redis_command("gateway", true);
                    decision
                }
                Err(err) => {
                    metrics::redis_command("gateway", false);
                    tracing::warn!(error = %err, "rate limiter: Redis failed; request admitted");
                    Decision::Allowed
                }
            },
            RateLimiter::Local(limiter) => match limiter.check_key(&key.to_owned()) {
                Ok(()) => Decision::Allowed,
                Err(not_until) => Decision::Limited {
                    retry_after: not_until
                        .wait_time_from(governor::clock::DefaultClock::default().now()),
                },
            },
        }
    }

    /// Forgets idle keys of the in-process limiter (Redis expires its own).
    pub fn housekeeping(&self) {
        if let RateLimiter::Local(limiter) = self {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

impl RedisLimiter {
    async fn check(&self, key: &str) -> redis::RedisResult<Decision> {
        let interval = self.quota.interval_us();
        let tolerance = interval * u64::from(self.quota.burst.get());
        let mut conn = self.conn.clone();
        let (allowed, wait_us): (i64, i64) = self
            .script
            .key(format!("{}{key}", self.prefix))
            .arg(interval)
            .arg(tolerance)
            .invoke_async(&mut conn)
            .await?;
        Ok(if allowed == 1 {
            Decision::Allowed
        } else {
            Decision::Limited {
                retry_after: Duration::from_micros(u64::try_from(wait_us).unwrap_or(0).max(1)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(per_second: u32, burst: u32) -> Quota {
        Quota {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    async fn redis_limiter(q: Quota) -> (RateLimiter, String) {
        let conn = aftersales_testkit::redis_connection().await.unwrap();
        let prefix = aftersales_testkit::unique_prefix();
        (RateLimiter::redis(conn, &prefix, q), prefix)
    }

    async fn spend(limiter: &RateLimiter, key: &str, n: usize) -> Vec<Decision> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(limiter.check(key).await);
        }
        out
    }

    #[tokio::test]
    async fn redis_admits_the_burst_then_refuses_with_the_wait() {
        let (limiter, _) = redis_limiter(quota(2, 3)).await;
        let decisions = spend(&limiter, "key-a", 4).await;
        assert!(
            decisions[..3].iter().all(|d| *d == Decision::Allowed),
            "{decisions:?}"
        );
        let Decision::Limited { retry_after } = decisions[3] else {
            panic!("the fourth request passed: {decisions:?}");
        };
        // At 2/s the next cell frees up within half a second.
        assert!(retry_after <= Duration::from_millis(500), "{retry_after:?}");
        assert!(retry_after > Duration::ZERO);
        // Another key has its own budget.
        assert_eq!(limiter.check("key-b").await, Decision::Allowed);
    }

    #[tokio::test]
    async fn redis_budget_refills_at_the_sustained_rate() {
        let (limiter, _) = redis_limiter(quota(20, 1)).await;
        assert_eq!(limiter.check("k").await, Decision::Allowed);
        let Decision::Limited { retry_after } = limiter.check("k").await else {
            panic!("a burst of one admitted two");
        };
        tokio::time::sleep(retry_after + Duration::from_millis(5)).await;
        assert_eq!(limiter.check("k").await, Decision::Allowed);
    }

    #[tokio::test]
    async fn two_limiters_on_one_redis_share_the_budget_and_the_key_expires() {
        let q = quota(1, 2);
        let conn = aftersales_testkit::redis_connection().await.unwrap();
        let prefix = aftersales_testkit::unique_prefix();
        let one = RateLimiter::redis(conn.clone(), &prefix, q);
        let two = RateLimiter::redis(conn.clone(), &prefix, q);
        assert_eq!(one.check("shared").await, Decision::Allowed);
        assert_eq!(two.check("shared").await, Decision::Allowed);
        assert!(matches!(
            one.check("shared").await,
            Decision::Limited { .. }
        ));
        assert!(matches!(
            two.check("shared").await,
            Decision::Limited { .. }
        ));

        let mut conn = conn;
        let ttl: i64 = redis::cmd("PTTL")
            .arg(format!("{prefix}gateway:ratelimit:shared"))
            .query_async(&mut conn)
            .await
            .unwrap();
        // Idle keys leave Redis within burst × interval.
        assert!(ttl > 0 && ttl <= 2_000, "{ttl}");
    }

    #[tokio::test]
    async fn in_process_limiter_behaves_alike() {
        let limiter = RateLimiter::local(quota(2, 3));
        let decisions = spend(&limiter, "key-a", 4).await;
        assert!(
            decisions[..3].iter().all(|d| *d == Decision::Allowed),
            "{decisions:?}"
        );
        let Decision::Limited { retry_after } = decisions[3] else {
            panic!("the fourth request passed: {decisions:?}");
        };
        assert!(retry_after <= Duration::from_millis(500), "{retry_after:?}");
        assert_eq!(limiter.check("key-b").await, Decision::Allowed);
        limiter.housekeeping();
    }
}
