//! Redis Streams as the bus: `XADD` (trimmed to an approximate length), consumer groups
//! read with `XREADGROUP`, stale deliveries taken over with `XAUTOCLAIM`. Every command
//! names one stream, so on a Redis Cluster each goes to the master of that stream's slot;
//! a stream's "intact" marker shares its slot. On a cluster a publish also waits (`WAIT`,
//! bounded) for a replica to hold the entries before the relay marks them published: a
//! master that dies right after acknowledging would otherwise take them with it, and the
//! promoted replica's marker would not show the loss.

use std::{collections::HashMap, time::Duration};

/// How often an idle consumer asks for new entries: the most an event waits once
/// published.
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

/// On a cluster, how long a publish waits for one replica to confirm its entries. With no
/// replica answering in time (a master without a live replica) it goes on, with a
/// warning: there is nothing to fail over to, and holding the outbox back would stop
/// every event for the sake of a failover that cannot happen.
const REPLICA_WAIT_MS: u64 = 500;

use aftersales_platform::redis_conn::RedisConn;
use redis::{
    Value,
    streams::{StreamAutoClaimReply, StreamId, StreamInfoGroupsReply, StreamReadReply},
};

use crate::{BusError, BusMessage, Delivery};

#[derive(Clone)]
pub struct RedisBus {
    /// For writes and short commands.
    conn: RedisConn,
    /// For blocking reads, so they never hold up publishing.
    reader: RedisConn,
    key_prefix: String,
    max_len: usize,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

const HEADER_FIELD: &str = "h:";

impl RedisBus {
    /// `reader` must have a response timeout longer than the longest `block` of a read.
    pub fn new(
        conn: impl Into<RedisConn>,
        reader: impl Into<RedisConn>,
        key_prefix: impl Into<String>,
    ) -> Self {
        Self {
            conn: conn.into(),
            reader: reader.into(),
            key_prefix: key_prefix.into(),
            max_len: 1_000_000,
        }
    }

    pub fn stream_key(&self, stream: &str) -> String {
        format!("{}events:{stream}", self.key_prefix)
    }

    pub(crate) async fn publish(
        &self,
        stream: &str,
        messages: &[BusMessage],
    ) -> Result<(), BusError> {
        let key = self.stream_key(stream);
        let mut pipe = redis::pipe();
        for m in messages {
            let cmd = pipe
                .cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.max_len)
                .arg("*")
                .arg("id")
                .arg(&m.event_id)
                .arg("type")
                .arg(&m.event_type)
                .arg("subject")
                .arg(&m.subject_id)
                .arg("payload")
                .arg(&m.payload);
            for (name, value) in &m.headers {
                cmd.arg(format!("{HEADER_FIELD}{name}")).arg(value);
            }
            cmd.ignore();
        }
        if !matches!(self.conn, RedisConn::Cluster(_)) {
            pipe.query_async::<()>(&mut self.conn.clone()).await?;
            return Ok(());
        }
        // WAIT names no key, so it goes with the pipeline to the stream's master.
        pipe.cmd("WAIT").arg(1).arg(REPLICA_WAIT_MS);
        let (replicas,): (i64,) = pipe.query_async(&mut self.conn.clone()).await?;
        if replicas < 1 {
            tracing::warn!(
                stream,
                wait_ms = REPLICA_WAIT_MS,
                "no replica confirmed published events in time; a failover of this stream's master now could lose them"
            );
        }
        Ok(())
    }

    /// True when Redis has lost its data since the last call (flushed or restarted
    /// without persistence); only one caller sees each loss.
    pub(crate) async fn check_lost(&self, owner: &str) -> Result<bool, BusError> {
        // The owner publishes the stream of its name. A key without braces hashes whole,
        // so `{<stream key>}:intact` lives in the stream's slot: on a cluster the marker
        // goes with the stream when a master loses its data. (The marker used to be
        // `<prefix>events:<owner>:intact`; after the upgrade the first check finds none and
        // the owner publishes its replay window once more, which consumers deduplicate.)
        let set: Option<String> = redis::cmd("SET")
            .arg(format!("{{{}}}:intact", self.stream_key(owner)))
            .arg("1")
            .arg("NX")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(set.is_some())
    }

    pub(crate) async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), BusError> {
        let result: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.stream_key(stream))
            .arg(group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn.clone())
            .await;
        match result {
            Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
            other => Ok(other?),
        }
    }

    /// `(not yet delivered, delivered and unacknowledged)` for a group (XINFO GROUPS).
    pub(crate) async fn group_stats(
        &self,
        stream: &str,
        group: &str,
    ) -> Result<(u64, u64), BusError> {
        let reply: StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(self.stream_key(stream))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(reply
            .groups
            .iter()
            .find(|g| g.name == group)
            .map_or((0, 0), |g| (g.lag.unwrap_or(0) as u64, g.pending as u64)))
    }

    /// Reads `>` (new entries) without blocking Redis; waits up to `POLL_INTERVAL` here
    /// when there were none, so the caller's loop polls at that pace.
    pub(crate) async fn read(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, BusError> {
        let key = self.stream_key(stream);
        // No server-side BLOCK: a blocking read holds the whole multiplexed connection,
        // so several consumers sharing it would wait on each other (and past the response
        // timeout, losing what Redis delivered meanwhile to the pending list). Polling
        // every few tens of milliseconds costs Redis next to nothing.
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(&key)
            .arg(">")
            .query_async(&mut self.reader.clone())
            .await?;
        let deliveries: Vec<Delivery> = reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|entry| to_delivery(stream, entry))
            .collect::<Result<_, _>>()?;
        if deliveries.is_empty() {
            tokio::time::sleep(block.min(POLL_INTERVAL)).await;
        }
        Ok(deliveries)
    }

    pub(crate) async fn ack(
        &self,
        stream: &str,
        group: &str,
        delivery_ids: &[String],
    ) -> Result<(), BusError> {
        redis::cmd("XACK")
            .arg(self.stream_key(stream))
            .arg(group)
            .arg(delivery_ids)
            .query_async::<()>(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    pub(crate) async fn claim_stale(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>, BusError> {
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(self.stream_key(stream))
            .arg(group)
            .arg(consumer)
            .arg(min_idle.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn.clone())
            .await?;
        reply
            .claimed
            .into_iter()
            .map(|entry| to_delivery(stream, entry))
            .collect()
    }
}

fn to_delivery(stream: &str, entry: StreamId) -> Result<Delivery, BusError> {
    let malformed = |reason: &str| BusError::Malformed {
        stream: stream.to_owned(),
        delivery_id: entry.id.clone(),
        reason: reason.to_owned(),
    };
    let bytes = |field: &str| -> Result<Vec<u8>, BusError> {
        match entry.map.get(field) {
            Some(Value::BulkString(bytes)) => Ok(bytes.clone()),
            Some(Value::SimpleString(s)) => Ok(s.clone().into_bytes()),
            _ => Err(malformed(&format!("field {field} missing"))),
        }
    };
    let text = |field: &str| -> Result<String, BusError> {
        String::from_utf8(bytes(field)?)
            .map_err(|_| malformed(&format!("field {field} is not UTF-8")))
    };
    let mut headers = HashMap::new();
    for (name, value) in &entry.map {
        if let (Some(header), Value::BulkString(v)) = (name.strip_prefix(HEADER_FIELD), value) {
            headers.insert(header.to_owned(), String::from_utf8_lossy(v).into_owned());
        }
    }
    Ok(Delivery {
        message: BusMessage {
            event_id: text("id")?,
            event_type: text("type")?,
            subject_id: text("subject")?,
            payload: bytes("payload")?,
            headers,
        },
        delivery_id: entry.id.clone(),
    })
}
