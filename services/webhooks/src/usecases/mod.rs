//! The use cases of the webhooks service: endpoints managed by their owners (`endpoints`),
//! events turned into deliveries and deliveries attempted, retried, logged and replayed
//! (`deliveries`). Every command runs through the suite's command pipeline. Secrets are
//! sealed at rest here and opened only to sign or to hand the owner its new secret.
//!
//! May depend on `domain`, `store`, `events` and `sender`; never on `api` or protobuf.

mod deliveries;
pub mod direct;
mod endpoints;

use aftersales_deadlines::worker::Member;
use aftersales_platform::{db::corrupt, seal::Vault};
use aftersales_runtime::command::Pipeline;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

pub use deliveries::{Intaken, NewDeliveries, Subscriber};
pub use endpoints::EndpointChange;

use crate::{
    domain::{Attempt, Delivery, DeliveryState, Endpoint, EndpointState, FailurePolicy, Owner},
    error::{WebhooksError, not_found},
    sender::Sender,
    store::{DeliveryRow, EndpointRow},
};

/// What endpoint secrets are sealed under (the vault's associated-data context).
pub const SEAL_CONTEXT: &str = "aftersales.webhooks";

/// The one deadline kind: the next attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextAttempt {
    pub endpoint_id: String,
    pub delivery_id: String,
}

impl Member for NextAttempt {
    fn to_text(&self) -> String {
        format!("attempt:{}:{}", self.endpoint_id, self.delivery_id)
    }

    fn from_text(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("attempt:")?;
        let (endpoint_id, delivery_id) = rest.split_once(':')?;
        Some(Self {
            endpoint_id: endpoint_id.to_owned(),
            delivery_id: delivery_id.to_owned(),
        })
    }
}

pub struct WebhooksCore {
    pipeline: Pipeline<NextAttempt>,
    vault: Vault,
    sender: Sender,
    policy: FailurePolicy,
    /// First attempts handed straight to this process's senders (see `direct`).
    direct: direct::Handoff,
}

impl WebhooksCore {
    pub fn new(
        pipeline: Pipeline<NextAttempt>,
        vault: Vault,
        sender: Sender,
        policy: FailurePolicy,
    ) -> Self {
        Self {
            pipeline,
            vault,
            sender,
            policy,
            direct: direct::Handoff::default(),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        self.pipeline.db()
    }

    pub fn pipeline(&self) -> &Pipeline<NextAttempt> {
        &self.pipeline
    }

    fn seal(&self, endpoint_id: &str, field: &str, clear: &str) -> Result<String, WebhooksError> {
        let sealed = self.vault.seal(endpoint_id, field, clear)?;
        Ok(format!("{}:{sealed}", self.vault.active_key_id()))
    }

    fn open(&self, endpoint_id: &str, field: &str, stored: &str) -> Result<String, WebhooksError> {
        let (key_id, sealed) = stored
            .split_once(':')
            .ok_or_else(|| corrupt("endpoints", format!("{field} without its key id")))?;
        Ok(self.vault.open(key_id, endpoint_id, field, sealed)?)
    }

    fn endpoint_row(&self, e: &Endpoint) -> Result<EndpointRow, WebhooksError> {
        let previous = match &e.previous_secret {
            Some((secret, until)) => Some((self.seal(&e.id, "previous_secret", secret)?, *until)),
            None => None,
        };
        Ok(EndpointRow {
            id: e.id.clone(),
            partner_id: e.owner.partner_id().to_owned(),
            url: e.url.clone(),
            event_types: aftersales_platform::db::to_json(&e.event_types)?,
            state: e.state.code().to_owned(),
            description: e.description.clone(),
            secret: self.seal(&e.id, "secret", &e.secret)?,
            previous_secret: previous.as_ref().map(|(s, _)| s.clone()),
            previous_secret_expires_at: previous.map(|(_, until)| until),
            failing_since: e.failing_since,
            disabled_reason: e.disabled_reason.clone(),
            created_at: e.created_at,
            updated_at: e.updated_at,
        })
    }

    fn endpoint(&self, row: EndpointRow) -> Result<Endpoint, WebhooksError> {
        let previous_secret = match (&row.previous_secret, row.previous_secret_expires_at) {
            (Some(sealed), Some(until)) => {
                Some((self.open(&row.id, "previous_secret", sealed)?, until))
            }
            _ => None,
        };
        Ok(Endpoint {
            secret: self.open(&row.id, "secret", &row.secret)?,
            previous_secret,
            owner: Owner::from_partner_id(&row.partner_id),
            event_types: aftersales_platform::db::from_json("endpoints", &row.event_types)?,
            state: EndpointState::parse(&row.state)
                .ok_or_else(|| corrupt("endpoints", format!("state {:?}", row.state)))?,
            id: row.id,
            url: row.url,
            description: row.description,
            failing_since: row.failing_since,
            disabled_reason: row.disabled_reason,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    /// The endpoint `id` of `owner`; another owner's is not found.
    async fn owned_endpoint(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        owner: &Owner,
        id: &str,
        lock: bool,
    ) -> Result<Endpoint, WebhooksError> {
        let row = crate::store::get_endpoint(conn, id, lock)
            .await?
            .filter(|row| row.partner_id == owner.partner_id())
            .ok_or_else(|| not_found("endpoint", id))?;
        self.endpoint(row)
    }
}

fn delivery(row: DeliveryRow) -> Result<Delivery, WebhooksError> {
    let attempts: Vec<Attempt> = aftersales_platform::db::from_json("deliveries", &row.attempts)?;
    Ok(Delivery {
        state: DeliveryState::parse(&row.state)
            .ok_or_else(|| corrupt("deliveries", format!("state {:?}", row.state)))?,
        id: row.id,
        endpoint_id: row.endpoint_id,
        event_type: row.event_type,
        body: row.body,
        attempts,
        created_at: row.created_at,
        next_attempt_at: row.next_attempt_at,
        delivered_at: row.delivered_at,
    })
}

fn delivery_row(d: &Delivery) -> Result<DeliveryRow, WebhooksError> {
    Ok(DeliveryRow {
        endpoint_id: d.endpoint_id.clone(),
        id: d.id.clone(),
        event_type: d.event_type.clone(),
        body: d.body.clone(),
        state: d.state.code().to_owned(),
        attempts: aftersales_platform::db::to_json(&d.attempts)?,
        next_attempt_at: d.next_attempt_at,
        created_at: d.created_at,
        delivered_at: d.delivered_at,
    })
}

/// A page of `size` from `rows` fetched with one extra, and the cursor of the next page.
fn paged<T>(mut rows: Vec<T>, size: u64, id: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
    let more = rows.len() as u64 > size;
    rows.truncate(size as usize);
    let next = more.then(|| rows.last().map(&id)).flatten();
    (rows, next)
}

/// The member of a delivery's next attempt.
fn attempt_of(endpoint_id: &str, delivery_id: &str) -> NextAttempt {
    NextAttempt {
        endpoint_id: endpoint_id.to_owned(),
        delivery_id: delivery_id.to_owned(),
    }
}

/// `at`, or now when that is earlier: a pending attempt is never scheduled in the past.
fn not_before(at: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    at.max(now)
}
