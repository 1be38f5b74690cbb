//! Point reads by key, coalesced into batched queries: while a few batches are in the
//! database, the requests that arrive meanwhile wait together and go in the next one.
//! There is no timer, so a lone request goes at once; a busy service makes one round trip
//! for many requests instead of one each. Every request is read by a query that starts
//! after it arrived, so a read still sees every write committed before it was asked.

use std::{collections::HashMap, future::Future, hash::Hash, sync::Arc};

use sea_orm::{DbErr, RuntimeErr};
use tokio::sync::{Mutex, mpsc, oneshot};

type Reply<V> = oneshot::Sender<Result<Option<V>, DbErr>>;
/// The requests waiting for a lane, shared by all lanes.
type Waiting<K, V> = Arc<Mutex<mpsc::UnboundedReceiver<(K, Reply<V>)>>>;

/// Reads values by key through `lanes` concurrent batch queries of at most `max_batch`
/// keys each. Cloning shares the lanes.
pub struct Coalescer<K, V> {
    requests: mpsc::UnboundedSender<(K, Reply<V>)>,
}

impl<K, V> Clone for Coalescer<K, V> {
    fn clone(&self) -> Self {
        Self {
            requests: self.requests.clone(),
        }
    }
}

impl<K, V> Coalescer<K, V>
where
    K: Clone + Eq + Hash + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Starts the lanes; they stop when the last clone is dropped. `load` answers the
    /// values found for a batch of distinct keys.
    pub fn spawn<F, Fut>(lanes: usize, max_batch: usize, load: F) -> Self
    where
        F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HashMap<K, V>, DbErr>> + Send + 'static,
    {
        let (requests, queue) = mpsc::unbounded_channel();
        let queue = Arc::new(Mutex::new(queue));
        let load = Arc::new(load);
        for _ in 0..lanes.max(1) {
            tokio::spawn(lane(queue.clone(), load.clone(), max_batch.max(1)));
        }
        Self { requests }
    }

    /// The value under `key`, `None` when there is none.
    pub async fn get(&self, key: K) -> Result<Option<V>, DbErr> {
        let (reply, answer) = oneshot::channel();
        let stopped = || DbErr::Custom("the batched reader has stopped".into());
        self.requests.send((key, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// One lane: takes the requests waiting (at least one), reads them in one query, answers
/// each, and goes back for more.
async fn lane<K, V, F, Fut>(queue: Waiting<K, V>, load: Arc<F>, max_batch: usize)
where
    K: Clone + Eq + Hash,
    V: Clone,
    F: Fn(Vec<K>) -> Fut,
    Fut: Future<Output = Result<HashMap<K, V>, DbErr>>,
{
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        {
            let mut queue = queue.lock().await;
            if queue.recv_many(&mut batch, max_batch).await == 0 {
                return;
            }
        }
        let mut keys: Vec<K> = Vec::with_capacity(batch.len());
        for (key, _) in &batch {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        match load(keys).await {
            Ok(found) => {
                for (key, reply) in batch.drain(..) {
                    let _ = reply.send(Ok(found.get(&key).cloned()));
                }
            }
            Err(err) => {
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(copy_of(&err)));
                }
            }
        }
    }
}

/// The same failure for another waiter: a connection failure stays one (so callers still
/// answer `Unavailable`), anything else carries the message.
fn copy_of(err: &DbErr) -> DbErr {
    match err {
        DbErr::Conn(_) => DbErr::Conn(RuntimeErr::Internal(err.to_string())),
        DbErr::ConnectionAcquire(e) => DbErr::ConnectionAcquire(*e),
        other => DbErr::Custom(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_reads_share_queries_and_each_gets_its_own_answer() {
        let queries = Arc::new(AtomicUsize::new(0));
        let counted = queries.clone();
        let reader = Coalescer::spawn(1, 64, move |keys: Vec<u32>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                Ok(keys
                    .into_iter()
                    .filter(|k| k % 2 == 0)
                    .map(|k| (k, k * 10))
                    .collect())
            }
        });
        let reads: Vec<_> = (0..40u32)
            .map(|k| {
                let reader = reader.clone();
                tokio::spawn(async move { (k, reader.get(k % 20).await) })
            })
            .collect();
        for read in reads {
            let (k, value) = read.await.expect("joined");
            let k = k % 20;
            assert_eq!(value.expect("no error"), (k % 2 == 0).then_some(k * 10));
        }
        let used = queries.load(Ordering::SeqCst);
        assert!(used < 40, "40 reads took {used} queries");
    }

    #[tokio::test]
    async fn a_failed_batch_fails_each_of_its_reads_with_the_same_kind_of_error() {
        let reader = Coalescer::spawn(2, 8, |_keys: Vec<u32>| async {
            Err::<HashMap<u32, u32>, _>(DbErr::Conn(RuntimeErr::Internal("refused".into())))
        });
        let err = reader.get(1).await.expect_err("fails");
        assert!(matches!(err, DbErr::Conn(_)), "{err:?}");
    }
}
