//! The first attempt of a new delivery without the round trip through the schedule: once
//! the intake's transaction has committed, its deliveries are handed to this process's
//! senders, which attempt them in batches as the worker would; a failed one is put on the
//! schedule for its retry like any other. A process that dies before its first attempts
//! leaves them pending in the database, and the schedule's periodic rebuild
//! (`SLA_RECONCILE_INTERVAL_MS`, on any replica) puts them on the schedule.

use std::sync::{Arc, Mutex, PoisonError};

use aftersales_deadlines::{now_ms, worker::Due};
use aftersales_platform::CancellationToken;
use tokio::{
    sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel},
    task::JoinHandle,
};

use super::{NextAttempt, WebhooksCore};

/// Attempts made together, as in one claimed batch of the worker.
const BATCH: usize = 64;
/// Batches in flight at once.
const SENDERS: usize = 4;

/// The channel from the intake to the senders; the receiving end is taken once, by
/// [`spawn`], on replicas that run the worker.
pub struct Handoff {
    tx: UnboundedSender<NextAttempt>,
    rx: Mutex<Option<UnboundedReceiver<NextAttempt>>>,
}

impl Default for Handoff {
    fn default() -> Self {
        let (tx, rx) = unbounded_channel();
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }
}

impl WebhooksCore {
    /// Hands committed deliveries to the senders; without running senders they wait for
    /// the schedule.
    pub fn attempt_now(&self, members: impl IntoIterator<Item = NextAttempt>) {
        for member in members {
            if self.direct.tx.send(member).is_err() {
                return;
            }
        }
    }
}

/// Starts the senders, until `stop`.
pub fn spawn(core: &Arc<WebhooksCore>, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
    let Some(rx) = core
        .direct
        .rx
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    else {
        return Vec::new();
    };
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    (0..SENDERS)
        .map(|_| {
            let (core, rx, stop) = (core.clone(), rx.clone(), stop.clone());
            tokio::spawn(async move {
                while let Some(batch) = next_batch(&rx, &stop).await {
                    if let Err(err) = core.attempt(&batch).await {
                        tracing::warn!(error = %err, "direct webhook attempts failed; the schedule makes them");
                    }
                }
            })
        })
        .collect()
}

/// Waits for a first member, then takes what else is waiting, up to [`BATCH`]; `None`
/// once stopped.
async fn next_batch(
    rx: &tokio::sync::Mutex<UnboundedReceiver<NextAttempt>>,
    stop: &CancellationToken,
) -> Option<Vec<Due<NextAttempt>>> {
    let mut rx = tokio::select! {
        rx = rx.lock() => rx,
        () = stop.cancelled() => return None,
    };
    let first = tokio::select! {
        member = rx.recv() => member?,
        () = stop.cancelled() => return None,
    };
    let due = |member| Due {
        member,
        due_ms: now_ms(),
    };
    let mut batch = vec![due(first)];
    while batch.len() < BATCH {
        match rx.try_recv() {
            Ok(member) => batch.push(due(member)),
            Err(_) => break,
        }
    }
    Some(batch)
}
