//! The producing side of the webhooks benchmark: a service's database holding only the
//! outbox, and the relay that publishes what commits there onto the bus, as a service's
//! pipeline does. Each event is its own transaction.

use std::{collections::HashMap, sync::Arc, time::Instant};

use aftersales_eventbus::{
    envelope::new_event,
    migration::CreateOutbox,
    outbox::{self, NewEvent},
    relay::Relay,
};
use aftersales_platform::{CancellationToken, codes::timestamp, db};
use aftersales_protos::{
    events::v1::{TicketCreated, event_envelope::Payload},
    tickets::v1 as tickets_pb,
};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};
use tokio::sync::Notify;

use crate::home::Home;

/// The stream events are published on and the service that publishes them.
const STREAM: &str = "tickets";
const PRODUCER: &str = "tickets";

/// The schema of the producing service's database: the outbox alone.
struct OutboxSchema;

impl sea_orm_migration::MigratorTrait for OutboxSchema {
    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        vec![Box::new(CreateOutbox)]
    }
}

/// A producing service, as far as the bus sees it: its database with the outbox, and the
/// relay that publishes what commits there.
pub struct Producer {
    db: DatabaseConnection,
    nudge: Arc<Notify>,
}

/// One event committed.
pub struct Committed {
    pub id: String,
    pub at: DateTime<Utc>,
    pub insert_commit: std::time::Duration,
}

impl Producer {
    pub async fn start(home: &Home, stop: &CancellationToken) -> anyhow::Result<Self> {
        let url = aftersales_testkit::fresh_postgres_url().await?;
        let db = db::connect(&db::DbSettings::new(url)).await?;
        db::migrate::<OutboxSchema>(&db).await?;
        let relay = Relay::new(PRODUCER, db.clone(), home.bus().await?);
        let nudge = relay.nudge();
        tokio::spawn(relay.run(stop.clone()));
        Ok(Self { db, nudge })
    }

    /// One event in its own transaction, then the relay woken as a service's pipeline
    /// wakes it after a commit.
    pub async fn commit(&self, seq: u64) -> Result<Committed, sea_orm::DbErr> {
        let txn = self.db.begin().await?;
        // The event's `occurred_at`, which latency is measured from. It is written in the
        // row, so it is taken before the INSERT and the COMMIT, and thus just before the
        // commit returns: the measured latency includes the insert's and the commit's
        // round trips (reported apart as `insert_commit`), so it is never shorter than
        // commit → handler.
        let at = Utc::now();
        let started = Instant::now();
        let event = ticket_created(seq, at);
        let id = event.event_id.clone();
        outbox::enqueue(&txn, vec![event], at).await?;
        txn.commit().await?;
        let insert_commit = started.elapsed();
        self.nudge.notify_one();
        Ok(Committed {
            id,
            at,
            insert_commit,
        })
    }

    /// Every event committed, warm-up included.
    pub async fn committed(&self) -> anyhow::Result<i64> {
        count(&self.db, "SELECT COUNT(*) AS n FROM outbox").await
    }

    /// When the relay published each event (Unix microseconds), by event id.
    pub async fn published(&self) -> anyhow::Result<HashMap<String, i64>> {
        let rows = self
            .db
            .query_all_raw(Statement::from_string(
                self.db.get_database_backend(),
                "SELECT event_id, \
                 CAST(EXTRACT(EPOCH FROM published_at) * 1000000 AS BIGINT) AS published_us \
                 FROM outbox WHERE published_at IS NOT NULL",
            ))
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.try_get("", "event_id").ok()?,
                    r.try_get("", "published_us").ok()?,
                ))
            })
            .collect())
    }
}

pub async fn count(db: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    Ok(db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .and_then(|r| r.try_get("", "n").ok())
        .unwrap_or_default())
}

/// A new ticket as the tickets service publishes it (free text left out, as there).
pub fn ticket_created(seq: u64, at: DateTime<Utc>) -> NewEvent {
    let id = format!("bench-ticket-{seq}-{}", uuid::Uuid::now_v7().simple());
    let ticket = tickets_pb::Ticket {
        id: id.clone(),
        customer_id: format!("cust-{:06}", seq % 1_000),
        order_id: format!("order-{seq:010}"),
        channel: tickets_pb::Channel::Hotline as i32,
        category: tickets_pb::Category::Complaint as i32,
        severity: tickets_pb::Severity::General as i32,
        customer_tier: tickets_pb::CustomerTier::Regular as i32,
        status: tickets_pb::TicketStatus::New as i32,
        created_at: Some(timestamp(at)),
        updated_at: Some(timestamp(at)),
        sla_policy_id: "default".into(),
        sla_policy_version: 1,
        ..Default::default()
    };
    let payload = Payload::TicketCreated(TicketCreated {
        ticket: Some(ticket),
    });
    new_event(STREAM, PRODUCER, &id, payload, at)
}
