//! The in-process bus for the embedded default: streams as vectors, consumer groups as a
//! cursor plus a pending list, the same at-least-once contract as Redis Streams. Like a
//! Redis that keeps nothing on disk, it starts empty: whatever was published before the
//! process started (and perhaps not yet consumed when it stopped) is gone, so it tells
//! each relay once that it lost its data, and the relay publishes its replay window again
//! (consumers dedupe on the event id).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use tokio::sync::Notify;

use crate::{BusMessage, Delivery};

#[derive(Clone, Debug, Default)]
pub struct MemoryBus {
    streams: Arc<Mutex<HashMap<String, StreamState>>>,
    appended: Arc<Notify>,
    /// The relays (by owner) already told that this bus started empty.
    told_lost: Arc<Mutex<HashSet<String>>>,
}

#[derive(Debug, Default)]
struct StreamState {
    log: Vec<BusMessage>,
    groups: HashMap<String, GroupState>,
}

#[derive(Debug, Default)]
struct GroupState {
    next: usize,
    /// Log index → when it was last delivered.
    pending: BTreeMap<usize, Instant>,
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }

    fn streams(&self) -> MutexGuard<'_, HashMap<String, StreamState>> {
        self.streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True the first time it is asked for `owner`: the bus began empty with this
    /// process, so anything the owner published before is not on it.
    pub(crate) fn check_lost(&self, owner: &str) -> bool {
        self.told_lost
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(owner.to_owned())
    }

    pub(crate) fn publish(&self, stream: &str, messages: &[BusMessage]) {
        self.streams()
            .entry(stream.to_owned())
            .or_default()
            .log
            .extend_from_slice(messages);
        self.appended.notify_waiters();
    }

    pub(crate) fn ensure_group(&self, stream: &str, group: &str) {
        self.streams()
            .entry(stream.to_owned())
            .or_default()
            .groups
            .entry(group.to_owned())
            .or_default();
    }

    fn take_new(&self, stream: &str, group: &str, count: usize) -> Vec<Delivery> {
        let mut streams = self.streams();
        let state = streams.entry(stream.to_owned()).or_default();
        let group = state.groups.entry(group.to_owned()).or_default();
        let end = (group.next + count).min(state.log.len());
        let now = Instant::now();
        let deliveries = (group.next..end)
            .map(|index| {
                group.pending.insert(index, now);
                Delivery {
                    delivery_id: index.to_string(),
                    message: state.log[index].clone(),
                }
            })
            .collect();
        group.next = end;
        deliveries
    }

    pub(crate) async fn read(
        &self,
        stream: &str,
        group: &str,
        _consumer: &str,
        count: usize,
        block: Duration,
    ) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + block;
        loop {
            let appended = self.appended.notified();
            let deliveries = self.take_new(stream, group, count);
            if !deliveries.is_empty() {
                return deliveries;
            }
            if tokio::time::timeout_at(deadline, appended).await.is_err() {
                return Vec::new();
            }
        }
    }

    /// `(not yet delivered, delivered and unacknowledged)` for a group.
    pub(crate) fn group_stats(&self, stream: &str, group: &str) -> (u64, u64) {
        let streams = self.streams();
        let Some(state) = streams.get(stream) else {
            return (0, 0);
        };
        state.groups.get(group).map_or((0, 0), |g| {
            (
                state.log.len().saturating_sub(g.next) as u64,
                g.pending.len() as u64,
            )
        })
    }

    pub(crate) fn ack(&self, stream: &str, group: &str, delivery_ids: &[String]) {
        let mut streams = self.streams();
        if let Some(group) = streams
            .get_mut(stream)
            .and_then(|s| s.groups.get_mut(group))
        {
            for id in delivery_ids {
                if let Ok(index) = id.parse::<usize>() {
                    group.pending.remove(&index);
                }
            }
        }
    }

    pub(crate) fn claim_stale(
        &self,
        stream: &str,
        group: &str,
        _consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Vec<Delivery> {
        let mut streams = self.streams();
        let Some(state) = streams.get_mut(stream) else {
            return Vec::new();
        };
        let Some(group) = state.groups.get_mut(group) else {
            return Vec::new();
        };
        let now = Instant::now();
        let mut deliveries = Vec::new();
        for (index, delivered_at) in group.pending.iter_mut() {
            if deliveries.len() >= count {
                break;
            }
            if now.duration_since(*delivered_at) >= min_idle {
                *delivered_at = now;
                deliveries.push(Delivery {
                    delivery_id: index.to_string(),
                    message: state.log[*index].clone(),
                });
            }
        }
        deliveries
    }
}
