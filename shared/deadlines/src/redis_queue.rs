//! The Redis schedule: per shard a `due` sorted set (score = due instant), a `lease`
//! sorted set (score = lease expiry) and an "intact" marker, all three under the shard's
//! hash tag (`{sla-3}`), so the claim script and every pipeline touch one cluster slot,
//! while the shards' tags spread them over a Redis Cluster's masters. A missing marker
//! tells that Redis lost the shard's data (on a cluster a master can lose its slots
//! alone).
//!
//! Ids ending in a UUID are stored with that UUID as 16 raw bytes instead of 36 characters
//! of text: a pending clock then costs about a fifth less Redis memory.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use aftersales_platform::redis_conn::RedisConn;
use futures::future::try_join_all;
use redis::{FromRedisValue, Pipeline, Script};
use tokio::sync::Notify;

use crate::{Claim, Millis, QueueStats};

/// Moves due members (and members whose lease ran out) into the lease set, atomically.
/// Returns flat triples: member, score, reclaimed flag.
const CLAIM_LUA: &str = r#"
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local lease_until = ARGV[3]
local out = {}
-- Variadic ZADD/ZREM in chunks: one command per chunk instead of one per member, and
-- small enough for Lua's unpack limit.
local function move(from, members)
  for i = 1, #members, 500 do
    local chunk, scored = {}, {}
    for j = i, math.min(i + 499, #members) do
      chunk[#chunk + 1] = members[j]
      scored[#scored + 1] = lease_until
      scored[#scored + 1] = members[j]
    end
    if from then redis.call('ZREM', from, unpack(chunk)) end
    redis.call('ZADD', KEYS[2], unpack(scored))
  end
end
local function take(key, max, flag)
  local found = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'WITHSCORES', 'LIMIT', 0, max)
  local members = {}
  for i = 1, #found, 2 do
    members[#members + 1] = found[i]
    out[#out + 1] = found[i]; out[#out + 1] = found[i + 1]; out[#out + 1] = flag
  end
  return members
end
local expired = take(KEYS[2], limit, '1')
if #expired > 0 then move(nil, expired) end
local room = limit - #expired
if room > 0 then
  local due = take(KEYS[1], room, '0')
  if #due > 0 then move(KEYS[1], due) end
end
return out
"#;

/// Where the schedule lives in Redis.
#[derive(Debug, Clone)]
pub struct RedisQueueSettings {
    /// Prepended to every key, e.g. `aftersales:` (tests use a unique prefix each).
    pub key_prefix: String,
    /// The queue's name, e.g. `sla`.
    pub name: String,
    /// How many sorted-set pairs to spread members over.
    pub shards: usize,
}

struct ShardKeys {
    due: String,
    lease: String,
    marker: String,
}

#[derive(Clone)]
pub struct RedisQueue {
    conn: RedisConn,
    shards: Arc<Vec<ShardKeys>>,
    claim_script: Arc<Script>,
    next_shard: Arc<AtomicUsize>,
    pub(crate) wakeup: Arc<Notify>,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("shards", &self.shards.len())
            .field("conn", &self.conn)
            .finish()
    }
}

/// An id as stored: a trailing canonical UUID becomes `~` and its 16 bytes.
fn compact(id: &str) -> Vec<u8> {
    let split = id.len().saturating_sub(36);
    match (id.get(..split), id.get(split..).map(uuid::Uuid::try_parse)) {
        (Some(head), Some(Ok(uuid))) if id.len() >= 36 => {
            let mut member = Vec::with_capacity(head.len() + 17);
            member.extend_from_slice(head.as_bytes());
            member.push(b'~');
            member.extend_from_slice(uuid.as_bytes());
            member
        }
        _ => id.as_bytes().to_vec(),
    }
}

/// The id a stored member stands for.
fn expand(member: &[u8]) -> String {
    if member.len() >= 17 && member[member.len() - 17] == b'~' {
        let (head, tail) = member.split_at(member.len() - 17);
        if let (Ok(head), Ok(uuid)) = (
            std::str::from_utf8(head),
            uuid::Uuid::from_slice(&tail[1..]),
        ) {
            return format!("{head}{uuid}");
        }
    }
    String::from_utf8_lossy(member).into_owned()
}

impl RedisQueue {
    /// On one Redis or a Redis Cluster (`conn`).
    pub fn new(conn: impl Into<RedisConn>, settings: &RedisQueueSettings) -> Self {
        let RedisQueueSettings {
            key_prefix,
            name,
            shards,
        } = settings;
        let shards = (0..(*shards).max(1))
            .map(|i| ShardKeys {
                due: format!("{key_prefix}{name}:{{{name}-{i}}}:due"),
                lease: format!("{key_prefix}{name}:{{{name}-{i}}}:lease"),
                // One marker per shard, beside its sets: a cluster master that restarts
                // empty loses some shards only. (Before the cluster layout one marker
                // `{key_prefix}{name}:intact` served all shards; after the upgrade the
                // first check finds no shard markers and rebuilds the schedule once.)
                marker: format!("{key_prefix}{name}:{{{name}-{i}}}:intact"),
            })
            .collect();
        Self {
            conn: conn.into(),
            shards: Arc::new(shards),
            claim_script: Arc::new(Script::new(CLAIM_LUA)),
            next_shard: Arc::new(AtomicUsize::new(0)),
            wakeup: Arc::new(Notify::new()),
        }
    }

    fn shard_of(&self, id: &str) -> &ShardKeys {
        // FNV-1a: stable across processes and releases, unlike the std hasher.
        let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        &self.shards[(hash % self.shards.len() as u64) as usize]
    }

    /// Groups ids by the shard that holds them.
    fn by_shard<'a, T>(
        &'a self,
        items: &'a [T],
        id: impl Fn(&T) -> &str,
    ) -> Vec<(&'a ShardKeys, Vec<&'a T>)> {
        let mut groups: Vec<(&ShardKeys, Vec<&T>)> = Vec::new();
        for item in items {
            let keys = self.shard_of(id(item));
            match groups.iter_mut().find(|(k, _)| std::ptr::eq(*k, keys)) {
                Some((_, members)) => members.push(item),
                None => groups.push((keys, vec![item])),
            }
        }
        groups
    }

    /// Runs one pipeline per shard, concurrently: a pipeline may not span cluster slots,
    /// and each shard's keys share one.
    async fn per_shard<T: FromRedisValue>(
        &self,
        pipes: Vec<Pipeline>,
    ) -> redis::RedisResult<Vec<T>> {
        try_join_all(pipes.into_iter().map(|pipe| {
            let mut conn = self.conn.clone();
            async move { pipe.query_async::<T>(&mut conn).await }
        }))
        .await
    }

    pub(crate) async fn schedule(&self, items: &[(String, Millis)]) -> redis::RedisResult<()> {
        let pipes = self
            .by_shard(items, |(id, _)| id)
            .into_iter()
            .map(|(keys, members)| {
                let mut pipe = redis::pipe();
                let cmd = pipe.cmd("ZADD").arg(&keys.due).arg("LT");
                for (id, due) in members {
                    cmd.arg(*due).arg(compact(id));
                }
                cmd.ignore();
                pipe
            })
            .collect();
        self.per_shard::<()>(pipes).await.map(drop)
    }

    /// ZREM of `ids` from the `due` or the `lease` set of their shards.
    async fn remove(
        &self,
        ids: &[String],
        set: fn(&ShardKeys) -> &String,
    ) -> redis::RedisResult<()> {
        let pipes = self
            .by_shard(ids, |id| id)
            .into_iter()
            .map(|(keys, members)| {
                let members: Vec<Vec<u8>> = members.iter().map(|id| compact(id)).collect();
                let mut pipe = redis::pipe();
                pipe.cmd("ZREM").arg(set(keys)).arg(members).ignore();
                pipe
            })
            .collect();
        self.per_shard::<()>(pipes).await.map(drop)
    }

    pub(crate) async fn cancel(&self, ids: &[String]) -> redis::RedisResult<()> {
        self.remove(ids, |keys| &keys.due).await
    }

    pub(crate) async fn claim(
        &self,
        now: Millis,
        limit: usize,
        lease_ms: Millis,
    ) -> redis::RedisResult<Vec<Claim>> {
        let mut conn = self.conn.clone();
        let mut claims = Vec::new();
        let start = self.next_shard.fetch_add(1, Ordering::Relaxed);
        for offset in 0..self.shards.len() {
            if claims.len() >= limit {
                break;
            }
            let keys = &self.shards[(start + offset) % self.shards.len()];
            let flat: Vec<Vec<u8>> = self
                .claim_script
                .key(&keys.due)
                .key(&keys.lease)
                .arg(now)
                .arg(limit - claims.len())
                .arg(now + lease_ms)
                .invoke_async(&mut conn)
                .await?;
            for triple in flat.chunks_exact(3) {
                let score = std::str::from_utf8(&triple[1])
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok());
                claims.push(Claim {
                    id: expand(&triple[0]),
                    due_ms: score.map_or(now, |s| s as Millis),
                    reclaimed: triple[2] == b"1",
                });
            }
        }
        Ok(claims)
    }

    pub(crate) async fn ack(&self, ids: &[String]) -> redis::RedisResult<()> {
        self.remove(ids, |keys| &keys.lease).await
    }

    pub(crate) async fn next_due(&self) -> redis::RedisResult<Option<Millis>> {
        let pipes = self
            .shards
            .iter()
            .map(|keys| {
                let mut pipe = redis::pipe();
                for set in [&keys.due, &keys.lease] {
                    pipe.cmd("ZRANGE").arg(set).arg(0).arg(0).arg("WITHSCORES");
                }
                pipe
            })
            .collect();
        // Per shard: the first (member, score) of `due` and of `lease`, if any.
        type Firsts = Vec<Vec<(Vec<u8>, f64)>>;
        let firsts: Vec<Firsts> = self.per_shard(pipes).await?;
        Ok(firsts
            .iter()
            .flatten()
            .flatten()
            .map(|(_, score)| *score as Millis)
            .min())
    }

    pub(crate) async fn check_lost(&self) -> redis::RedisResult<bool> {
        // SET NX succeeds only when a marker is gone: first start or lost data.
        let pipes = self
            .shards
            .iter()
            .map(|keys| {
                let mut pipe = redis::pipe();
                pipe.cmd("SET").arg(&keys.marker).arg("1").arg("NX");
                pipe
            })
            .collect();
        let set: Vec<(Option<String>,)> = self.per_shard(pipes).await?;
        Ok(set.iter().any(|(set,)| set.is_some()))
    }

    /// Deletes the markers, so the next loss check rebuilds the schedule.
    pub(crate) async fn forget_marker(&self) -> redis::RedisResult<bool> {
        let pipes = self
            .shards
            .iter()
            .map(|keys| {
                let mut pipe = redis::pipe();
                pipe.cmd("DEL").arg(&keys.marker);
                pipe
            })
            .collect();
        let deleted: Vec<(u64,)> = self.per_shard(pipes).await?;
        Ok(deleted.iter().any(|(n,)| *n == 1))
    }

    pub(crate) async fn stats(&self) -> redis::RedisResult<QueueStats> {
        let pipes = self
            .shards
            .iter()
            .map(|keys| {
                let mut pipe = redis::pipe();
                pipe.cmd("ZCARD").arg(&keys.due);
                pipe.cmd("ZCARD").arg(&keys.lease);
                pipe
            })
            .collect();
        let counts: Vec<(u64, u64)> = self.per_shard(pipes).await?;
        Ok(QueueStats {
            scheduled: counts.iter().map(|(due, _)| due).sum(),
            in_flight: counts.iter().map(|(_, lease)| lease).sum(),
        })
    }

    /// The key names of every shard (due, lease, marker): for tests and tools that look
    /// at where the schedule lives.
    pub fn keys(&self) -> Vec<[String; 3]> {
        self.shards
            .iter()
            .map(|k| [k.due.clone(), k.lease.clone(), k.marker.clone()])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_stored_in_16_bytes_and_come_back_unchanged() {
        let id = "0195f0a2-7c1e-7000-8000-000000000001";
        assert_eq!(compact(id).len(), 17);
        assert_eq!(expand(&compact(id)), id);
        let member = format!("step:{id}");
        assert_eq!(compact(&member).len(), 22);
        assert_eq!(expand(&compact(&member)), member);
        for plain in ["clock-01", "a", "", "not-a-uuid-but-exactly-36-characters"] {
            assert_eq!(expand(&compact(plain)), plain);
        }
    }
}
