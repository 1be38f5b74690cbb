//! Budgets at the door: the rate limit of each API key, and the failed key attempts of
//! each client address. With Redis every gateway replica shares one budget per key or
//! address: a Lua script runs the generic cell rate algorithm (GCRA) atomically on Redis's
//! clock, storing one "theoretical arrival time" that expires once the key is idle.
//! Without Redis (`aftersales dev`) the same algorithm runs in process.

use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use aftersales_platform::metrics;
use aftersales_platform::redis_conn::RedisConn;
use governor::{DefaultKeyedRateLimiter, clock::Clock};
use moka::sync::Cache;

/// A sustained rate with room for bursts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Quota {
    fn cell(self) -> Cell {
        Cell::new(1_000_000 / u64::from(self.per_second.get()), self.burst)
    }
}

/// Failed key attempts a client address may make: `per_minute` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptQuota {
    pub per_minute: NonZeroU32,
    pub burst: NonZeroU32,
}

impl AttemptQuota {
    fn cell(self) -> Cell {
        Cell::new(60_000_000 / u64::from(self.per_minute.get()), self.burst)
    }
}

/// GCRA parameters: microseconds between two cells at the sustained rate (at least one),
/// and how far ahead of now the budget may be spent (`burst` cells).
#[derive(Debug, Clone, Copy)]
struct Cell {
    interval_us: u64,
    tolerance_us: u64,
}

impl Cell {
    fn new(interval_us: u64, burst: NonZeroU32) -> Self {
        let interval_us = interval_us.max(1);
        Self {
            interval_us,
            tolerance_us: interval_us.saturating_mul(u64::from(burst.get())),
        }
    }
}

/// Admitted, or refused until `retry_after` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Limited { retry_after: Duration },
}

/// GCRA on Redis. ARGV: interval and burst tolerance in µs, then `1` to spend a cell or `0`
/// only to ask whether one is free. Returns {allowed, wait µs}. Time comes from Redis so
/// replicas with skewed clocks agree; the state is written as an integer string because
/// Lua's default number format would round it.
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
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now_us) / 1000))
end
return {1, 0}
"#;

/// The budget of every API key.
#[derive(Clone)]
pub enum RateLimiter {
    Redis(RedisLimiter),
    Local(Arc<DefaultKeyedRateLimiter<String>>),
}

/// One GCRA budget per key under a Redis key prefix.
#[derive(Clone)]
pub struct RedisLimiter {
    conn: RedisConn,
    prefix: String,
    script: Arc<redis::Script>,
    cell: Cell,
}

impl RateLimiter {
    /// Shared by every replica that uses the same Redis and `prefix`.
    pub fn redis(conn: impl Into<RedisConn>, prefix: &str, quota: Quota) -> Self {
        RateLimiter::Redis(RedisLimiter::new(
            conn.into(),
            format!("{prefix}gateway:ratelimit:"),
            quota.cell(),
        ))
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
            RateLimiter::Redis(limiter) => limiter.decide(key, true).await,
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
    fn new(conn: RedisConn, prefix: String, cell: Cell) -> Self {
        Self {
            conn,
            prefix,
            script: Arc::new(redis::Script::new(GCRA)),
            cell,
        }
    }

    /// Spends a cell of `key` (`spend`) or only asks whether one is free. A Redis failure
    /// admits: losing enforcement for a moment is better than refusing every partner.
    async fn decide(&self, key: &str, spend: bool) -> Decision {
        match self.run(key, spend).await {
            Ok(decision) => {
                metrics::redis_command("gateway", true);
                decision
            }
            Err(err) => {
                metrics::redis_command("gateway", false);
                tracing::warn!(error = %err, "rate limiter: Redis failed; request admitted");
                Decision::Allowed
            }
        }
    }

    async fn run(&self, key: &str, spend: bool) -> redis::RedisResult<Decision> {
        let mut conn = self.conn.clone();
        let (allowed, wait_us): (i64, i64) = self
            .script
            .key(format!("{}{key}", self.prefix))
            .arg(self.cell.interval_us)
            .arg(self.cell.tolerance_us)
            .arg(u8::from(spend))
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

/// The failed key attempts of every client address. Asking costs nothing: an attempt is
/// checked before its key is looked up ([`admit`](Self::admit)) and charged only once the
/// key turns out bad ([`failed`](Self::failed)), so callers with good keys never spend it.
#[derive(Clone)]
pub enum FailedAttempts {
    Redis(RedisLimiter),
    Local(LocalCells),
}

impl FailedAttempts {
    /// Shared by every replica that uses the same Redis and `prefix`.
    pub fn redis(conn: impl Into<RedisConn>, prefix: &str, quota: AttemptQuota) -> Self {
        FailedAttempts::Redis(RedisLimiter::new(
            conn.into(),
            format!("{prefix}gateway:failedauth:"),
            quota.cell(),
        ))
    }

    /// This process only.
    pub fn local(quota: AttemptQuota) -> Self {
        FailedAttempts::Local(LocalCells::new(quota.cell()))
    }

    /// Whether `client` may have another key looked up, without spending anything.
    pub async fn admit(&self, client: IpAddr) -> Decision {
        match self {
            FailedAttempts::Redis(limiter) => limiter.decide(&client.to_string(), false).await,
            FailedAttempts::Local(cells) => cells.decide(client, false),
        }
    }

    /// Charges `client` one failed attempt.
    pub async fn failed(&self, client: IpAddr) {
        match self {
            FailedAttempts::Redis(limiter) => {
                limiter.decide(&client.to_string(), true).await;
            }
            FailedAttempts::Local(cells) => {
                cells.decide(client, true);
            }
        }
    }
}

/// The script's GCRA in process, for [`FailedAttempts`] without Redis: governor cannot
/// tell whether a cell is free without spending it. An address idle for the burst
/// tolerance has its whole budget back, so its entry is forgotten then.
#[derive(Clone)]
pub struct LocalCells {
    /// The theoretical arrival time of each address.
    arrivals: Cache<IpAddr, Arc<Mutex<Instant>>>,
    interval: Duration,
    tolerance: Duration,
}

/// Addresses tracked at most; the least recently seen make room.
const LOCAL_ADDRESSES: u64 = 100_000;

impl LocalCells {
    fn new(cell: Cell) -> Self {
        let tolerance = Duration::from_micros(cell.tolerance_us);
        Self {
            arrivals: Cache::builder()
                .max_capacity(LOCAL_ADDRESSES)
                .time_to_idle(tolerance.max(Duration::from_secs(1)))
                .build(),
            interval: Duration::from_micros(cell.interval_us),
            tolerance,
        }
    }

    fn decide(&self, client: IpAddr, spend: bool) -> Decision {
        let now = Instant::now();
        let arrival = self.arrivals.get_with(client, || Arc::new(Mutex::new(now)));
        let mut tat = arrival.lock().unwrap_or_else(PoisonError::into_inner);
        let next = (*tat).max(now) + self.interval;
        let allow_from = now + self.tolerance;
        if next > allow_from {
            return Decision::Limited {
                retry_after: next.duration_since(allow_from),
            };
        }
        if spend {
            *tat = next;
        }
        Decision::Allowed
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

    fn attempts(per_minute: u32, burst: u32) -> AttemptQuota {
        AttemptQuota {
            per_minute: NonZeroU32::new(per_minute).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    /// Asking is free, each failure spends, and the burst spent refuses with the wait for
    /// the next cell; another address is untouched.
    async fn failed_attempts_are_charged_only_when_they_fail(limiter: FailedAttempts) {
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..10 {
            assert_eq!(
                limiter.admit(a).await,
                Decision::Allowed,
                "asking spends nothing"
            );
        }
        for _ in 0..3 {
            assert_eq!(limiter.admit(a).await, Decision::Allowed);
            limiter.failed(a).await;
        }
        let Decision::Limited { retry_after } = limiter.admit(a).await else {
            panic!("a fourth attempt after a burst of three failures");
        };
        // At 6 a minute, the next cell is at most 10 s away.
        assert!(
            retry_after > Duration::ZERO && retry_after <= Duration::from_secs(10),
            "{retry_after:?}"
        );
        assert_eq!(limiter.admit(b).await, Decision::Allowed);
    }

    #[tokio::test]
    async fn failed_attempts_in_process() {
        failed_attempts_are_charged_only_when_they_fail(FailedAttempts::local(attempts(6, 3)))
            .await;
    }

    #[tokio::test]
    async fn failed_attempts_on_redis() {
        let conn = aftersales_testkit::redis_connection().await.unwrap();
        let prefix = aftersales_testkit::unique_prefix();
        failed_attempts_are_charged_only_when_they_fail(FailedAttempts::redis(
            conn,
            &prefix,
            attempts(6, 3),
        ))
        .await;
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
