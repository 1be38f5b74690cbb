//! The in-process schedule for the embedded default (`aftersales dev`): same semantics as
//! the Redis queue, nothing shared across processes, nothing kept across restarts (the
//! worker rebuilds it from the database on start).

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::Notify;

use crate::{Claim, Millis, QueueStats};

#[derive(Clone, Debug, Default)]
pub struct MemoryQueue {
    state: Arc<Mutex<State>>,
    pub(crate) wakeup: Arc<Notify>,
}

/// One ordered set with a member index, like a Redis sorted set.
#[derive(Debug, Default)]
struct SortedSet {
    by_score: BTreeSet<(Millis, String)>,
    score_of: HashMap<String, Millis>,
}

impl SortedSet {
    fn set(&mut self, id: &str, score: Millis) {
        if let Some(old) = self.score_of.insert(id.to_owned(), score) {
            self.by_score.remove(&(old, id.to_owned()));
        }
        self.by_score.insert((score, id.to_owned()));
    }

    fn set_if_lower(&mut self, id: &str, score: Millis) {
        match self.score_of.get(id) {
            Some(&old) if old <= score => {}
            _ => self.set(id, score),
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some(old) = self.score_of.remove(id) {
            self.by_score.remove(&(old, id.to_owned()));
        }
    }

    fn due(&self, now: Millis, limit: usize) -> Vec<(Millis, String)> {
        self.by_score
            .iter()
            .take_while(|(score, _)| *score <= now)
            .take(limit)
            .cloned()
            .collect()
    }

    fn first(&self) -> Option<Millis> {
        self.by_score.first().map(|(score, _)| *score)
    }
}

#[derive(Debug, Default)]
struct State {
    due: SortedSet,
    leases: SortedSet,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves consistent sets behind, so keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn schedule(&self, items: &[(String, Millis)]) {
        let mut state = self.state();
        for (id, due) in items {
            state.due.set_if_lower(id, *due);
        }
    }

    pub(crate) fn cancel(&self, ids: &[String]) {
        let mut state = self.state();
        for id in ids {
            state.due.remove(id);
        }
    }

    pub(crate) fn claim(&self, now: Millis, limit: usize, lease_ms: Millis) -> Vec<Claim> {
        let mut state = self.state();
        let lease_until = now + lease_ms;
        let mut claims = Vec::new();
        for (expired_at, id) in state.leases.due(now, limit) {
            state.leases.set(&id, lease_until);
            claims.push(Claim {
                id,
                due_ms: expired_at,
                reclaimed: true,
            });
        }
        for (due, id) in state.due.due(now, limit - claims.len()) {
            state.due.remove(&id);
            state.leases.set(&id, lease_until);
            claims.push(Claim {
                id,
                due_ms: due,
                reclaimed: false,
            });
        }
        claims
    }

    pub(crate) fn ack(&self, ids: &[String]) {
        let mut state = self.state();
        for id in ids {
            state.leases.remove(id);
        }
    }

    pub(crate) fn next_due(&self) -> Option<Millis> {
        let state = self.state();
        match (state.due.first(), state.leases.first()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn check_lost(&self) -> bool {
        false
    }

    pub(crate) fn stats(&self) -> QueueStats {
        let state = self.state();
        QueueStats {
            scheduled: state.due.score_of.len() as u64,
            in_flight: state.leases.score_of.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(claims: &[Claim]) -> Vec<&str> {
        claims.iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn claims_only_what_is_due_in_order_and_never_early() {
        let q = MemoryQueue::new();
        q.schedule(&[("b".into(), 200), ("a".into(), 100), ("c".into(), 300)]);
        assert!(q.claim(99, 10, 1000).is_empty());
        assert_eq!(ids(&q.claim(200, 10, 1000)), ["a", "b"]);
        assert_eq!(q.next_due(), Some(300));
    }

    #[test]
    fn keeps_the_earlier_instant() {
        let q = MemoryQueue::new();
        q.schedule(&[("a".into(), 100)]);
        q.schedule(&[("a".into(), 500)]);
        assert_eq!(q.next_due(), Some(100));
        q.schedule(&[("a".into(), 50)]);
        assert_eq!(q.next_due(), Some(50));
    }

    #[test]
    fn an_unacknowledged_claim_comes_back_after_its_lease() {
        let q = MemoryQueue::new();
        q.schedule(&[("a".into(), 100)]);
        assert_eq!(ids(&q.claim(100, 10, 1000)), ["a"]);
        assert!(q.claim(1099, 10, 1000).is_empty());
        let again = q.claim(1100, 10, 1000);
        assert_eq!(ids(&again), ["a"]);
        assert!(again[0].reclaimed);
        q.ack(&["a".into()]);
        assert!(q.claim(10_000, 10, 1000).is_empty());
        assert_eq!(q.stats(), QueueStats::default());
    }
}
