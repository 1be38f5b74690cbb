//! The Redis schedule: per shard a `due` sorted set (score = due instant) and a `lease`
//! sorted set (score = lease expiry), both under one hash tag so the claim script touches
//! one cluster slot. A marker key tells when Redis has lost its data.
//!
//! Ids ending in a UUID are stored with that UUID as 16 raw bytes instead of 36 characters
//! of text: a pending clock then costs about a fifth less Redis memory.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use redis::{Script, aio::ConnectionManager};
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
}

#[derive(Clone)]
pub struct RedisQueue {
    conn: ConnectionManager,
    shards: Arc<Vec<ShardKeys>>,
    marker: String,
    claim_script: Arc<Script>,
    next_shard: Arc<AtomicUsize>,
    pub(crate) wakeup: Arc<Notify>,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("marker", &self.marker)
            .field("shards", &self.shards.len())
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
    pub fn new(conn: ConnectionManager, settings: &RedisQueueSettings) -> Self {
        let RedisQueueSettings {
            key_prefix,
            name,
            shards,
        } = settings;
        let shards = (0..(*shards).max(1))
            .map(|i| ShardKeys {
                due: format!("{key_prefix}{name}:{{{name}-{i}}}:due"),
                lease: format!("{key_prefix}{name}:{{{name}-{i}}}:lease"),
            })
            .collect();
        Self {
            conn,
            shards: Arc::new(shards),
            marker: format!("{key_prefix}{name}:intact"),
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

    pub(crate) async fn schedule(&self, items: &[(String, Millis)]) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        for (keys, members) in self.by_shard(items, |(id, _)| id) {
            let cmd = pipe.cmd("ZADD").arg(&keys.due).arg("LT");
            for (id, due) in members {
                cmd.arg(*due).arg(compact(id));
            }
            cmd.ignore();
        }
        pipe.query_async::<()>(&mut self.conn.clone()).await
    }

    pub(crate) async fn cancel(&self, ids: &[String]) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        for (keys, members) in self.by_shard(ids, |id| id) {
            let members: Vec<Vec<u8>> = members.iter().map(|id| compact(id)).collect();
            pipe.cmd("ZREM").arg(&keys.due).arg(members).ignore();
        }
        pipe.query_async::<()>(&mut self.conn.clone()).await
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
        let mut pipe = redis::pipe();
        for (keys, members) in self.by_shard(ids, |id| id) {
            let members: Vec<Vec<u8>> = members.iter().map(|id| compact(id)).collect();
            pipe.cmd("ZREM").arg(&keys.lease).arg(members).ignore();
        }
        pipe.query_async::<()>(&mut self.conn.clone()).await
    }

    pub(crate) async fn next_due(&self) -> redis::RedisResult<Option<Millis>> {
        let mut pipe = redis::pipe();
        for keys in self.shards.iter() {
            pipe.cmd("ZRANGE")
                .arg(&keys.due)
                .arg(0)
                .arg(0)
                .arg("WITHSCORES");
            pipe.cmd("ZRANGE")
                .arg(&keys.lease)
                .arg(0)
                .arg(0)
                .arg("WITHSCORES");
        }
        let firsts: Vec<Vec<(Vec<u8>, f64)>> = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(firsts
            .iter()
            .flatten()
            .map(|(_, score)| *score as Millis)
            .min())
    }

    pub(crate) async fn check_lost(&self) -> redis::RedisResult<bool> {
        // SET NX succeeds only when the marker is gone: first start or lost data.
        let set: Option<String> = redis::cmd("SET")
            .arg(&self.marker)
            .arg("1")
            .arg("NX")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(set.is_some())
    }

    /// Deletes the marker, so the next loss check rebuilds the schedule.
    pub(crate) async fn forget_marker(&self) -> redis::RedisResult<bool> {
        let deleted: u64 = redis::cmd("DEL")
            .arg(&self.marker)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(deleted == 1)
    }

    pub(crate) async fn stats(&self) -> redis::RedisResult<QueueStats> {
        let mut pipe = redis::pipe();
        for keys in self.shards.iter() {
            pipe.cmd("ZCARD").arg(&keys.due);
            pipe.cmd("ZCARD").arg(&keys.lease);
        }
        let counts: Vec<u64> = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(QueueStats {
            scheduled: counts.iter().step_by(2).sum(),
            in_flight: counts.iter().skip(1).step_by(2).sum(),
        })
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
