//! The Redis schedule, laid out so a pending clock costs about 30 bytes. Per shard, all
//! under the shard's hash tag (`{sla-3}`) so every script touches one cluster slot while
//! the shards' tags spread them over a Redis Cluster's masters:
//!
//! - **chunks**: small sorted sets (member = id, score = due instant) of at most
//!   `chunk_size` members, which Redis keeps in its compact listpack encoding (a large
//!   sorted set costs four times as much per member). A member's chunk follows from a hash
//!   of the member through the directory, so scheduling and cancelling find it in O(1).
//! - **directory** (`dir`): extendible hashing. One byte per slot of the hash's low bits,
//!   holding the depth of the chunk that serves the slot. A chunk that fills up splits in
//!   two on the next bit of the hash, and the directory doubles when a chunk outgrows it.
//! - **index** (`idx`): one entry per chunk, scored by the chunk's earliest instant, so a
//!   claim reads only chunks that hold due members and `next_due` is one lookup.
//! - **lease**: claimed members by lease expiry, **count**: the members scheduled, and the
//!   **marker** whose absence tells that Redis lost the shard's data (on a cluster a
//!   master can lose its slots alone).
//!
//! Every change to a chunk keeps its index entry exact, inside one script.
//!
//! Ids ending in a UUID are stored with that UUID as 16 raw bytes instead of 36 characters
//! of text: a pending clock then costs about a fifth less Redis memory.

use std::sync::Arc;

use aftersales_platform::redis_conn::RedisConn;
use futures::future::try_join_all;
use redis::{FromRedisValue, Pipeline, Script};
use tokio::sync::Notify;

use crate::{Claim, Millis, QueueStats};

/// What every script shares: keys are `KEYS[1]` idx, `KEYS[2]` dir, `KEYS[3]` lease,
/// `KEYS[4]` count; `ARGV[1]` is the prefix of the shard's chunk keys (it carries the
/// shard's hash tag, so a chunk lives in the shard's slot).
const LAYOUT_LUA: &str = r#"
local idx, dir, lease, count, chunk_prefix = KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1]
-- A member's hash. Ids that end in a UUID (stored as `~` and 16 raw bytes) take the
-- UUID's last four bytes, which are random in v4 and v7 UUIDs: reading them is a fraction
-- of hashing every byte in Lua, and a split rehashes a chunk's members. Other ids take
-- FNV-1a, 32 bits: h * 16777619 = (h << 24) + h * 403, kept exact in Lua's doubles and
-- wrapped to 32 bits by bit.tobit.
local function hash(member)
  local n = #member
  if n >= 17 and string.byte(member, n - 16) == 126 then
    local a, b, c, d = string.byte(member, n - 3, n)
    return bit.tobit(a * 16777216 + b * 65536 + c * 256 + d)
  end
  local h = bit.tobit(2166136261)
  local bytes = { string.byte(member, 1, -1) }
  for i = 1, #bytes do
    h = bit.bxor(h, bytes[i])
    h = bit.tobit(bit.lshift(h, 24) + h * 403)
  end
  return h
end
-- The directory, read once per script and again after a split changed it. None yet
-- means one chunk of depth 0.
local directory = nil
local function chunk_of(h)
  if not directory then directory = redis.call('GET', dir) or '\0' end
  local depth = string.byte(directory, bit.band(h, #directory - 1) + 1)
  local number = bit.band(h, bit.lshift(1, depth) - 1)
  return tostring(bit.lshift(1, depth) + number), depth
end
-- Sets a chunk's index entry to its earliest instant, or removes it when empty.
local function reindex(name)
  local first = redis.call('ZRANGE', chunk_prefix .. name, 0, 0, 'WITHSCORES')
  if #first == 0 then redis.call('ZREM', idx, name)
  else redis.call('ZADD', idx, first[2], name) end
end
"#;

/// Adds or moves members, keeping the earlier instant (`ZADD LT`); a chunk that reaches
/// the chunk size splits, so none ever holds more. `ARGV[2]` is the chunk size, then
/// pairs of instant and member.
const SCHEDULE_LUA: &str = r#"
local size = tonumber(ARGV[2])
-- The earliest instant this call added per chunk, indexed once at the end.
local earliest = {}
-- Splits chunk (depth, number) on hash bit `depth`: members with the bit set move to
-- chunk (depth + 1, number + 2^depth), the rest to (depth + 1, number). The directory doubles
-- first when the chunk is as deep as it; then the slots that served the chunk learn
-- their new depth (the two halves tell them apart by that bit).
local function split(depth, number)
  local old_name = tostring(bit.lshift(1, depth) + number)
  local old = chunk_prefix .. old_name
  local low = tostring(bit.lshift(2, depth) + number)
  local high = tostring(bit.lshift(2, depth) + number + bit.lshift(1, depth))
  local members = redis.call('ZRANGE', old, 0, -1, 'WITHSCORES')
  local moving, names = {}, {}
  for i = 1, #members, 2 do
    if bit.band(hash(members[i]), bit.lshift(1, depth)) ~= 0 then
      moving[#moving + 1] = members[i + 1]
      moving[#moving + 1] = members[i]
      names[#names + 1] = members[i]
    end
  end
  redis.call('ZREM', idx, old_name)
  earliest[old_name] = nil
  redis.call('RENAME', old, chunk_prefix .. low)
  if #names > 0 then
    redis.call('ZADD', chunk_prefix .. high, unpack(moving))
    redis.call('ZREM', chunk_prefix .. low, unpack(names))
  end
  local current = redis.call('GET', dir) or '\0'
  if bit.lshift(1, depth) >= #current then
    redis.call('SET', dir, current .. current)
  end
  local slots = math.max(#current, bit.lshift(2, depth))
  for slot = number, slots - 1, bit.lshift(1, depth) do
    redis.call('SETRANGE', dir, slot, string.char(depth + 1))
  end
  directory = nil
  reindex(low)
  reindex(high)
end
local added = 0
for i = 3, #ARGV, 2 do
  -- The instant goes to Redis as the caller's text: a Lua number would be formatted anew.
  local due_text, member = ARGV[i], ARGV[i + 1]
  local due = tonumber(due_text)
  local h = hash(member)
  local name, depth = chunk_of(h)
  local new = redis.call('ZADD', chunk_prefix .. name, 'LT', due_text, member)
  added = added + new
  -- Full: split now (past depth 24 a chunk just grows; that takes 128 members sharing
  -- one 24-bit hash). The split indexes both halves exactly.
  if new == 1 and depth < 24 and redis.call('ZCARD', chunk_prefix .. name) >= size then
    split(depth, bit.band(h, bit.lshift(1, depth) - 1))
  elseif not earliest[name] or due < earliest[name][1] then
    earliest[name] = { due, due_text }
  end
end
for name, due in pairs(earliest) do
  redis.call('ZADD', idx, 'LT', due[2], name)
end
if added > 0 then redis.call('INCRBY', count, added) end
return added
"#;

/// Removes members (`ARGV[2..]`) from their chunks.
const CANCEL_LUA: &str = r#"
local removed, touched = 0, {}
for i = 2, #ARGV do
  local name = chunk_of(hash(ARGV[i]))
  if redis.call('ZREM', chunk_prefix .. name, ARGV[i]) == 1 then
    removed = removed + 1
    touched[name] = true
  end
end
for name in pairs(touched) do reindex(name) end
if removed > 0 then redis.call('DECRBY', count, removed) end
return removed
"#;

/// Moves due members — first those whose lease ran out — into the lease set, at most
/// `ARGV[3]`. Returns how many of them were reclaimed (they come first), then pairs of
/// member and score. `ARGV[2]` is now, `ARGV[4]` the new lease expiry.
const CLAIM_LUA: &str = r#"
local now, limit, lease_until = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local out, leased, claimed = { 0 }, {}, 0
local function take(key, max)
  local found = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'WITHSCORES', 'LIMIT', 0, max)
  local members = {}
  for i = 1, #found, 2 do
    members[#members + 1] = found[i]
    out[#out + 1] = found[i]; out[#out + 1] = found[i + 1]
    leased[#leased + 1] = lease_until; leased[#leased + 1] = found[i]
  end
  claimed = claimed + #members
  return members
end
-- As text: the reply is read as a list of byte strings.
out[1] = tostring(#take(lease, limit))
local taken = 0
while claimed < limit do
  -- A page of chunks at a time: each holds at least one due member.
  local chunks = redis.call('ZRANGEBYSCORE', idx, '-inf', now, 'LIMIT', 0,
    math.min(limit - claimed, 64))
  if #chunks == 0 then break end
  for _, name in ipairs(chunks) do
    if claimed >= limit then break end
    local members = take(chunk_prefix .. name, limit - claimed)
    if #members > 0 then
      redis.call('ZREM', chunk_prefix .. name, unpack(members))
      taken = taken + #members
    end
    reindex(name)
  end
end
for i = 1, #leased, 1000 do
  redis.call('ZADD', lease, unpack(leased, i, math.min(i + 999, #leased)))
end
if taken > 0 then redis.call('DECRBY', count, taken) end
return out
"#;

/// Where the schedule lives in Redis.
#[derive(Debug, Clone)]
pub struct RedisQueueSettings {
    /// Prepended to every key, e.g. `aftersales:` (tests use a unique prefix each).
    pub key_prefix: String,
    /// The queue's name, e.g. `sla`.
    pub name: String,
    /// How many shards to spread members over (each one cluster slot).
    pub shards: usize,
}

/// Members per chunk: Redis keeps a sorted set of up to `zset-max-listpack-entries` (128
/// by default) members in its compact encoding.
const CHUNK_SIZE: usize = 128;

struct ShardKeys {
    idx: String,
    dir: String,
    lease: String,
    count: String,
    marker: String,
    /// The prefix of the shard's chunk keys (a chunk is `<prefix><2^depth + number>`).
    chunks: String,
    /// The one sorted set of the layout before chunks, deleted when a shard is rebuilt.
    legacy_due: String,
}

impl ShardKeys {
    /// A script invocation with the shard's keys and chunk prefix in place.
    fn invoke<'a>(&self, script: &'a Script) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation
            .key(&self.idx)
            .key(&self.dir)
            .key(&self.lease)
            .key(&self.count)
            .arg(&self.chunks);
        invocation
    }
}

struct Scripts {
    schedule: Script,
    cancel: Script,
    claim: Script,
}

#[derive(Clone)]
pub struct RedisQueue {
    conn: RedisConn,
    shards: Arc<Vec<ShardKeys>>,
    scripts: Arc<Scripts>,
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
            .map(|i| {
                let shard = format!("{key_prefix}{name}:{{{name}-{i}}}:");
                ShardKeys {
                    idx: format!("{shard}idx"),
                    dir: format!("{shard}dir"),
                    lease: format!("{shard}lease"),
                    count: format!("{shard}count"),
                    // One marker per shard, beside its sets: a cluster master that
                    // restarts empty loses some shards only. Named anew with the chunked
                    // layout, so the first check after the upgrade finds none and the
                    // worker rebuilds the schedule into chunks.
                    marker: format!("{shard}ready"),
                    chunks: format!("{shard}c:"),
                    legacy_due: format!("{shard}due"),
                }
            })
            .collect();
        let script = |body: &str| Script::new(&format!("{LAYOUT_LUA}{body}"));
        Self {
            conn: conn.into(),
            shards: Arc::new(shards),
            scripts: Arc::new(Scripts {
                schedule: script(SCHEDULE_LUA),
                cancel: script(CANCEL_LUA),
                claim: script(CLAIM_LUA),
            }),
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

    /// Runs one script invocation per shard, concurrently.
    async fn per_shard_script(
        &self,
        invocations: Vec<redis::ScriptInvocation<'_>>,
    ) -> redis::RedisResult<()> {
        try_join_all(invocations.into_iter().map(|invocation| {
            let mut conn = self.conn.clone();
            async move { invocation.invoke_async::<()>(&mut conn).await }
        }))
        .await
        .map(drop)
    }

    pub(crate) async fn schedule(&self, items: &[(String, Millis)]) -> redis::RedisResult<()> {
        let invocations = self
            .by_shard(items, |(id, _)| id)
            .into_iter()
            .map(|(keys, members)| {
                let mut invocation = keys.invoke(&self.scripts.schedule);
                invocation.arg(CHUNK_SIZE);
                for (id, due) in members {
                    invocation.arg(*due).arg(compact(id));
                }
                invocation
            })
            .collect();
        self.per_shard_script(invocations).await
    }

    pub(crate) async fn cancel(&self, ids: &[String]) -> redis::RedisResult<()> {
        let invocations = self
            .by_shard(ids, |id| id)
            .into_iter()
            .map(|(keys, members)| {
                let mut invocation = keys.invoke(&self.scripts.cancel);
                for id in members {
                    invocation.arg(compact(id));
                }
                invocation
            })
            .collect();
        self.per_shard_script(invocations).await
    }

    /// Claims up to `limit` from every shard at once: one round trip's wait instead of one
    /// per shard, which a worker with few clocks due would pay on every round.
    pub(crate) async fn claim(
        &self,
        now: Millis,
        limit: usize,
        lease_ms: Millis,
    ) -> redis::RedisResult<Vec<Claim>> {
        let replies: Vec<Vec<Vec<u8>>> = try_join_all(self.shards.iter().map(|keys| {
            let mut conn = self.conn.clone();
            let mut invocation = keys.invoke(&self.scripts.claim);
            invocation.arg(now).arg(limit).arg(now + lease_ms);
            async move { invocation.invoke_async(&mut conn).await }
        }))
        .await?;
        let mut claims = Vec::new();
        for reply in replies {
            let Some((reclaimed, pairs)) = reply.split_first() else {
                continue;
            };
            let reclaimed: usize = std::str::from_utf8(reclaimed)
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            for (i, pair) in pairs.chunks_exact(2).enumerate() {
                let score = std::str::from_utf8(&pair[1])
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok());
                claims.push(Claim {
                    id: expand(&pair[0]),
                    due_ms: score.map_or(now, |s| s as Millis),
                    reclaimed: i < reclaimed,
                });
            }
        }
        Ok(claims)
    }

    pub(crate) async fn ack(&self, ids: &[String]) -> redis::RedisResult<()> {
        let pipes = self
            .by_shard(ids, |id| id)
            .into_iter()
            .map(|(keys, members)| {
                let members: Vec<Vec<u8>> = members.iter().map(|id| compact(id)).collect();
                let mut pipe = redis::pipe();
                pipe.cmd("ZREM").arg(&keys.lease).arg(members).ignore();
                pipe
            })
            .collect();
        self.per_shard::<()>(pipes).await.map(drop)
    }

    pub(crate) async fn next_due(&self) -> redis::RedisResult<Option<Millis>> {
        let pipes = self
            .shards
            .iter()
            .map(|keys| {
                let mut pipe = redis::pipe();
                for set in [&keys.idx, &keys.lease] {
                    pipe.cmd("ZRANGE").arg(set).arg(0).arg(0).arg("WITHSCORES");
                }
                pipe
            })
            .collect();
        // Per shard: the first (member, score) of the index and of `lease`, if any.
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
        // A shard without its marker is rebuilt: whatever the layout before chunks left
        // in it goes, so it cannot fire a second time.
        let legacy = self
            .shards
            .iter()
            .zip(&set)
            .filter(|(_, (set,))| set.is_some())
            .map(|(keys, _)| {
                let mut pipe = redis::pipe();
                pipe.cmd("UNLINK").arg(&keys.legacy_due).ignore();
                pipe
            })
            .collect();
        self.per_shard::<()>(legacy).await?;
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
                pipe.cmd("GET").arg(&keys.count);
                pipe.cmd("ZCARD").arg(&keys.lease);
                pipe
            })
            .collect();
        let counts: Vec<(Option<u64>, u64)> = self.per_shard(pipes).await?;
        Ok(QueueStats {
            scheduled: counts.iter().filter_map(|(count, _)| *count).sum(),
            in_flight: counts.iter().map(|(_, lease)| lease).sum(),
        })
    }

    /// The fixed key names of every shard (index, lease, marker; chunks share their hash
    /// tag): for tests and tools that look at where the schedule lives.
    pub fn keys(&self) -> Vec<[String; 3]> {
        self.shards
            .iter()
            .map(|k| [k.idx.clone(), k.lease.clone(), k.marker.clone()])
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
