//! The live desk: streams of one ticket's events or of a support group's, read from the
//! outbox in the order events become final (`store::live`), so every replica serves the
//! same stream and a client may resume on any of them after the last cursor it got.
//!
//! One task per process watches the outbox's head (the newest row and, on PostgreSQL,
//! the oldest running transaction) every `HEAD_POLL` while anyone watches; a stream reads
//! the outbox only when the head moved. Each stream holds at most a page of rows and a
//! short channel: a client that reads slowly makes its stream wait, never grow.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration as StdDuration, Instant},
};

use aftersales_platform::CancellationToken;
use chrono::{Duration, Utc};
use sea_orm::{DatabaseConnection, DbBackend, DbErr};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::{
    domain::{
        DomainError,
        live::{Cursor, Token, Watched},
    },
    error::TicketsError,
    store::live::{self as feed, FeedRow, Head},
};

/// How often the head of the outbox is read while anyone watches.
const HEAD_POLL: StdDuration = StdDuration::from_millis(100);
/// Rows read per query.
const PAGE: u64 = 64;
/// Messages a stream holds for a client that reads slowly.
const BUFFER: usize = 16;
/// After this long without a message a stream sends a checkpoint: its client's cursor
/// moves on, and a dead connection is noticed.
const CHECKPOINT_EVERY: StdDuration = StdDuration::from_secs(15);
/// Streams one process serves at once.
const MAX_STREAMS: usize = 1024;
/// Most events a stream opened "from now" remembers as already committed when it opened
/// (see [`LiveDesk::open`]).
const MAX_SEEN: u64 = 10_000;

/// What a stream sends: an event (its encoded envelope) or, without one, a checkpoint.
#[derive(Debug, Clone)]
pub struct Sent {
    pub token: Token,
    pub payload: Option<Vec<u8>>,
}

/// Why a stream ends early.
#[derive(Debug, Clone)]
pub enum Ended {
    ShuttingDown,
    Failed(String),
}

pub type StreamItem = Result<Sent, Ended>;

/// The process's live desk.
#[derive(Clone)]
pub struct LiveDesk {
    db: DatabaseConnection,
    head: Arc<watch::Sender<Head>>,
    streams: Arc<Semaphore>,
    retention: Duration,
    shutdown: CancellationToken,
}

impl LiveDesk {
    /// Starts the head watcher; streams end when `shutdown` is cancelled.
    pub fn start(db: DatabaseConnection, retention: Duration, shutdown: CancellationToken) -> Self {
        let (head, _) = watch::channel(Head::default());
        let desk = Self {
            db,
            head: Arc::new(head),
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
            retention,
            shutdown,
        };
        tokio::spawn(desk.clone().watch_head());
        desk
    }

    async fn watch_head(self) {
        let mut ticker = tokio::time::interval(HEAD_POLL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = self.shutdown.cancelled() => return,
            }
            if self.head.receiver_count() == 0 {
                continue;
            }
            match feed::head(&self.db).await {
                Ok(now) => {
                    self.head.send_if_modified(|head| {
                        let moved = *head != now;
                        *head = now;
                        moved
                    });
                }
                Err(err) => tracing::warn!(error = %err, "reading the outbox head failed"),
            }
        }
    }

    /// Opens a stream of `watched` after `after` (from now on when `None`). `None` when
    /// the process already serves as many streams as it may.
    pub async fn open(
        &self,
        watched: Watched,
        after: Option<Token>,
    ) -> Result<Option<mpsc::Receiver<StreamItem>>, TicketsError> {
        let now = Utc::now();
        let (start, seen) = match after {
            Some(token) if token.expired(self.retention, now) => {
                return Err(DomainError::Precondition(
                    "the cursor is older than the outbox keeps events: read the ticket or \
                     queue again, then watch from now"
                        .into(),
                )
                .into());
            }
            Some(token) => (token.at, HashSet::new()),
            // "Now" on PostgreSQL is the oldest running transaction, and events committed
            // since by younger ones come after it in the stream's order: the stream
            // passes over those it finds already committed as it opens, so it shows only
            // what commits from now on, while a transaction still running that commits
            // later is not missed.
            None => {
                let start = feed::now(&self.db).await?;
                let seen = feed::committed_after(&self.db, &watched, start, MAX_SEEN)
                    .await?
                    .into_iter()
                    .map(|row| row.cursor)
                    .collect();
                (start, seen)
            }
        };
        let Ok(permit) = self.streams.clone().try_acquire_owned() else {
            return Ok(None);
        };
        let (tx, rx) = mpsc::channel(BUFFER);
        let stream = Stream {
            db: self.db.clone(),
            head: self.head.subscribe(),
            watched,
            cursor: start,
            seen,
            tx,
            shutdown: self.shutdown.clone(),
        };
        tokio::spawn(async move {
            let _permit = permit;
            stream.run().await;
        });
        Ok(Some(rx))
    }
}

struct Stream {
    db: DatabaseConnection,
    head: watch::Receiver<Head>,
    watched: Watched,
    cursor: Cursor,
    /// Events that had committed when a stream "from now" opened: passed over.
    seen: HashSet<Cursor>,
    tx: mpsc::Sender<StreamItem>,
    shutdown: CancellationToken,
}

impl Stream {
    async fn run(mut self) {
        let mut last_sent = Instant::now();
        loop {
            // Read before the query: everything final at this head is seen by it.
            let head = *self.head.borrow_and_update();
            let rows = match feed::after(&self.db, &self.watched, self.cursor, PAGE).await {
                Ok(rows) => rows,
                Err(err) => return self.fail(&err).await,
            };
            let full = rows.len() as u64 == PAGE;
            for FeedRow { cursor, payload } in rows {
                self.cursor = cursor;
                if self.seen.remove(&cursor) {
                    continue;
                }
                if !self.send(Some(payload)).await {
                    return;
                }
                last_sent = Instant::now();
            }
            if full {
                continue;
            }
            if last_sent.elapsed() >= CHECKPOINT_EVERY {
                self.cursor = self.cursor.max(final_before(&self.db, head));
                if !self.send(None).await {
                    return;
                }
                last_sent = Instant::now();
            }
            let quiet = CHECKPOINT_EVERY.saturating_sub(last_sent.elapsed());
            tokio::select! {
                changed = self.head.changed() => if changed.is_err() { return self.end(Ended::ShuttingDown).await },
                () = tokio::time::sleep(quiet) => {}
                () = self.tx.closed() => return,
                () = self.shutdown.cancelled() => return self.end(Ended::ShuttingDown).await,
            }
        }
    }

    /// False once the client has gone.
    async fn send(&self, payload: Option<Vec<u8>>) -> bool {
        let token = Token {
            at: self.cursor,
            issued: Utc::now(),
        };
        tokio::select! {
            sent = self.tx.send(Ok(Sent { token, payload })) => sent.is_ok(),
            () = self.shutdown.cancelled() => false,
        }
    }

    async fn fail(&self, err: &DbErr) {
        tracing::warn!(error = %err, "a live desk stream failed");
        self.end(Ended::Failed(
            "reading the desk's events failed; reconnect with the last cursor".into(),
        ))
        .await;
    }

    async fn end(&self, why: Ended) {
        let _ = self.tx.try_send(Err(why));
    }
}

/// The last position every row final at `head` lies at or before: what a stream that
/// found nothing of its own up to `head` may move its cursor to.
fn final_before(db: &DatabaseConnection, head: Head) -> Cursor {
    match db.get_database_backend() {
        DbBackend::Postgres => Cursor {
            txid: head.horizon.saturating_sub(1),
            seq: i64::MAX,
        },
        _ => Cursor {
            txid: 0,
            seq: head.seq,
        },
    }
}
