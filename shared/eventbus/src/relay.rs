//! Publishes committed outbox rows to the bus in order and marks them published. Woken
//! right after a commit in this process, and polling for rows written by other replicas.
//! On PostgreSQL, rows are locked with SKIP LOCKED so replicas share the work.
//!
//! Redis keeps nothing on disk: when the bus reports that it lost its data, the relay
//! publishes again every row of the replay window, so events that were published but not
//! yet consumed are not lost; consumers dedupe on the event id.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait, sea_query::LockBehavior, sea_query::LockType,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{BusError, BusMessage, EventBus, entity::outbox, outbox::decode_headers};

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("bus: {0}")]
    Bus(#[from] BusError),
}

#[derive(Clone, Debug)]
pub struct Relay {
    /// The publishing service, e.g. `tickets`.
    owner: String,
    db: DatabaseConnection,
    bus: EventBus,
    nudge: Arc<Notify>,
    batch: u64,
    poll_interval: Duration,
    replay_window: Duration,
}

impl Relay {
    pub fn new(owner: &str, db: DatabaseConnection, bus: EventBus) -> Self {
        Self {
            owner: owner.to_owned(),
            db,
            bus,
            nudge: Arc::new(Notify::new()),
            batch: 256,
            poll_interval: Duration::from_millis(200),
            replay_window: Duration::from_secs(24 * 3600),
        }
    }

    /// Marks rows published within the replay window as unpublished again; returns how
    /// many. Called when the bus lost its data.
    pub async fn replay_window(&self) -> Result<u64, DbErr> {
        let since = chrono::Duration::from_std(self.replay_window)
            .ok()
            .and_then(|w| Utc::now().checked_sub_signed(w))
            .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
        let res = outbox::Entity::update_many()
            .col_expr(
                outbox::Column::PublishedAt,
                sea_orm::sea_query::Expr::value(Option::<chrono::DateTime<Utc>>::None),
            )
            .filter(outbox::Column::PublishedAt.gte(since))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected)
    }

    async fn replay_if_lost(&self) -> Result<(), RelayError> {
        if self.bus.check_lost(&self.owner).await? {
            let replayed = self.replay_window().await?;
            if replayed > 0 {
                tracing::warn!(
                    replayed,
                    "the event bus lost its data; publishing the replay window again"
                );
            }
        }
        Ok(())
    }

    /// Notify after committing events so they go out at once.
    pub fn nudge(&self) -> Arc<Notify> {
        self.nudge.clone()
    }

    /// Publishes one batch; returns how many rows went out.
    pub async fn publish_batch(&self) -> Result<usize, RelayError> {
        let txn = self.db.begin().await?;
        let mut query = outbox::Entity::find()
            .filter(outbox::Column::PublishedAt.is_null())
            .order_by_asc(outbox::Column::Seq)
            .limit(self.batch);
        if self.db.get_database_backend() == DbBackend::Postgres {
            query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let rows = query.all(&txn).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        // Publish stream by stream, keeping the outbox order within each stream.
        let mut streams: Vec<(&str, Vec<BusMessage>)> = Vec::new();
        for row in &rows {
            let message = BusMessage {
                event_id: row.event_id.clone(),
                event_type: row.event_type.clone(),
                subject_id: row.subject_id.clone(),
                payload: row.payload.clone(),
                headers: decode_headers(&row.headers),
            };
            match streams.iter_mut().find(|(s, _)| *s == row.stream) {
                Some((_, messages)) => messages.push(message),
                None => streams.push((&row.stream, vec![message])),
            }
        }
        for (stream, messages) in &streams {
            self.bus.publish(stream, messages).await?;
        }
        outbox::Entity::update_many()
            .col_expr(
                outbox::Column::PublishedAt,
                sea_orm::sea_query::Expr::value(Utc::now()),
            )
            .filter(outbox::Column::Seq.is_in(rows.iter().map(|r| r.seq)))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(rows.len())
    }

    /// Runs until `shutdown`, publishing everything committed before it.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut last_loss_check: Option<std::time::Instant> = None;
        loop {
            if last_loss_check.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                match self.replay_if_lost().await {
                    Ok(()) => last_loss_check = Some(std::time::Instant::now()),
                    Err(err) => {
                        tracing::warn!(error = %err, "checking the event bus for lost data failed")
                    }
                }
            }
            match self.publish_batch().await {
                Ok(n) if n as u64 == self.batch => continue,
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "outbox relay failed; retrying"),
            }
            if shutdown.is_cancelled() {
                break;
            }
            tokio::select! {
                () = self.nudge.notified() => {}
                () = tokio::time::sleep(self.poll_interval) => {}
                () = shutdown.cancelled() => {}
            }
        }
    }

    /// Rows not yet published: the outbox backlog.
    pub async fn backlog(&self) -> Result<u64, DbErr> {
        use sea_orm::PaginatorTrait;
        outbox::Entity::find()
            .filter(outbox::Column::PublishedAt.is_null())
            .count(&self.db)
            .await
    }
}
