//! Deliveries: an event becomes one delivery per endpoint that takes it (in the
//! consumer's transaction, so a redelivered event adds none); the deadline worker makes
//! each attempt when it is due, several at once, and records the outcomes in one
//! command — delivered, or retried on the back-off schedule, or, for an endpoint failing
//! longer than allowed, the endpoint disabled (its event published once) and its pending
//! deliveries given up. Owners read the log and replay a delivery.

use std::collections::HashMap;

use aftersales_deadlines::{
    DeadlineQueue,
    worker::{Deadlines, Due, Member},
};
use aftersales_protos::events::v1::EventEnvelope;
use aftersales_runtime::{
    command::{Begun, Remembered},
    firing::due_millis,
};
use chrono::Duration;
use sea_orm::DatabaseTransaction;

use super::{NextAttempt, WebhooksCore, attempt_of, delivery, delivery_row, paged};
use crate::{
    domain::{AfterFailure, Delivery, DeliveryState, Endpoint, EndpointState, Owner, receives},
    error::{WebhooksError, not_found},
    events::{self, Outgoing},
    sender::Outbound,
    store,
};

const ATTEMPT_SCOPE: &str = "webhooks.Attempt";
const REPLAY_SCOPE: &str = "webhooks.ReplayDelivery";
/// How soon an attempt that found no free lane of its endpoint is tried again.
const LANE_BUSY_RETRY: Duration = Duration::milliseconds(50);

/// What one event owes: its deliveries, to be written with the rest of its read, and
/// their first attempts, to be made once that is committed.
#[derive(Debug, Default)]
pub struct Intaken {
    pub deliveries: NewDeliveries,
    pub first_attempts: Vec<NextAttempt>,
}

/// Deliveries made by [`WebhooksCore::intake`] and not yet written.
#[derive(Debug, Default)]
pub struct NewDeliveries(Vec<store::DeliveryRow>);

impl NewDeliveries {
    pub fn append(&mut self, mut more: NewDeliveries) {
        self.0.append(&mut more.0);
    }
}

/// An enabled endpoint as an event is matched against it.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub endpoint_id: String,
    pub owner: Owner,
    pub event_types: Vec<String>,
}

/// What the worker does with one claimed attempt.
enum Step {
    Send(Box<(Delivery, Endpoint)>),
    /// Not due yet, or its endpoint is busy: back on the schedule for then.
    Later(NextAttempt, chrono::DateTime<chrono::Utc>),
    /// Its endpoint is gone or disabled.
    GiveUp(Delivery),
}

impl WebhooksCore {
    /// The enabled endpoints, as events are matched against them.
    pub async fn subscribers(
        &self,
        txn: &DatabaseTransaction,
    ) -> Result<Vec<Subscriber>, WebhooksError> {
        store::enabled_endpoints(txn)
            .await?
            .into_iter()
            .map(|row| {
                Ok(Subscriber {
                    owner: Owner::from_partner_id(&row.partner_id),
                    event_types: aftersales_platform::db::from_json("endpoints", &row.event_types)?,
                    endpoint_id: row.id,
                })
            })
            .collect()
    }

    /// Turns one event into a delivery for each of `subscribers` that takes it; the
    /// consumer writes them with the rest of its read ([`Self::insert_intaken`]) in the
    /// transaction that records the events processed, so a redelivered event adds none.
    /// The first attempts are made once that transaction has committed; they are not put
    /// on the schedule: a process that dies before making them leaves them pending in
    /// the database, and the schedule's periodic rebuild (on any replica) puts them
    /// there. An event this build cannot read is logged and skipped (never a poison
    /// event).
    pub fn intake(
        &self,
        envelope: &EventEnvelope,
        subscribers: &[Subscriber],
    ) -> Result<Intaken, WebhooksError> {
        let out: Outgoing = match events::outgoing(envelope) {
            Ok(out) => out,
            Err(reason) => {
                tracing::warn!(event_id = %envelope.id, event_type = %envelope.r#type, %reason, "event not delivered by webhooks");
                return Ok(Intaken::default());
            }
        };
        let now = self.pipeline.now();
        let mut intaken = Intaken::default();
        for s in subscribers {
            if !receives(
                &s.owner,
                &s.event_types,
                &out.event_type,
                out.partner_id.as_deref(),
            ) {
                continue;
            }
            let d = Delivery {
                id: out.id.clone(),
                endpoint_id: s.endpoint_id.clone(),
                event_type: out.event_type.clone(),
                body: out.body.clone(),
                state: DeliveryState::Pending,
                attempts: Vec::new(),
                created_at: now,
                next_attempt_at: Some(now),
                delivered_at: None,
            };
            intaken
                .first_attempts
                .push(attempt_of(&s.endpoint_id, &out.id));
            intaken.deliveries.0.push(delivery_row(&d)?);
        }
        Ok(intaken)
    }

    /// Writes the deliveries of a read's events, gathered by [`Self::intake`], in `txn`.
    pub async fn insert_intaken(
        &self,
        txn: &DatabaseTransaction,
        deliveries: NewDeliveries,
    ) -> Result<(), WebhooksError> {
        store::insert_deliveries(txn, deliveries.0).await?;
        Ok(())
    }

    /// Decides what to do with each claimed attempt, reading without locks.
    async fn plan(&self, batch: &[Due<NextAttempt>]) -> Result<Vec<Step>, WebhooksError> {
        let now = self.pipeline.now();
        let mut endpoints: HashMap<String, Option<Endpoint>> = HashMap::new();
        let mut steps = Vec::with_capacity(batch.len());
        let keys: Vec<(&str, &str)> = batch
            .iter()
            .map(|due| {
                (
                    due.member.endpoint_id.as_str(),
                    due.member.delivery_id.as_str(),
                )
            })
            .collect();
        let mut rows = keyed(store::get_deliveries(self.db(), &keys, false).await?);
        for due in batch {
            let m = &due.member;
            let Some(row) = rows.remove(&(m.endpoint_id.clone(), m.delivery_id.clone())) else {
                continue;
            };
            let d = delivery(row)?;
            let Some(next) = d
                .next_attempt_at
                .filter(|_| d.state == DeliveryState::Pending)
            else {
                continue;
            };
            if next > now {
                steps.push(Step::Later(m.clone(), next));
                continue;
            }
            if !endpoints.contains_key(&m.endpoint_id) {
                let endpoint = match store::get_endpoint(self.db(), &m.endpoint_id, false).await? {
                    Some(row) => Some(self.endpoint(row)?),
                    None => None,
                };
                endpoints.insert(m.endpoint_id.clone(), endpoint);
            }
            match endpoints.get(&m.endpoint_id).cloned().flatten() {
                Some(e) if e.state == EndpointState::Enabled => {
                    steps.push(Step::Send(Box::new((d, e))));
                }
                // Paused: its deliveries wait; enabling it schedules them again.
                Some(e) if e.state == EndpointState::Paused => {}
                _ => steps.push(Step::GiveUp(d)),
            }
        }
        Ok(steps)
    }

    /// Makes the attempts of a claimed batch at once and records them in one command.
    pub(super) async fn attempt(&self, batch: &[Due<NextAttempt>]) -> Result<(), WebhooksError> {
        let now = self.pipeline.now();
        let mut later = Vec::new();
        let mut give_up = Vec::new();
        let mut sends = Vec::new();
        for step in self.plan(batch).await? {
            match step {
                Step::Later(m, at) => later.push((m, at)),
                Step::GiveUp(d) => give_up.push(d),
                Step::Send(work) => sends.push(*work),
            }
        }
        // Locks are taken in (endpoint, delivery) order, so concurrent batches cannot
        // deadlock on an endpoint's failure record.
        sends.sort_by(|a, b| (&a.1.id, &a.0.id).cmp(&(&b.1.id, &b.0.id)));
        let attempts = futures::future::join_all(sends.iter().map(|(d, e)| {
            let out = Outbound {
                endpoint_id: &e.id,
                url: &e.url,
                id: &d.id,
                body: &d.body,
                secrets: e.signing_secrets(now),
            };
            let number = d.attempts.len() as u32 + 1;
            async move { self.sender.send_in_lane(&out, number, now).await }
        }))
        .await;

        let mut cmd = self.pipeline.begin_unkeyed(ATTEMPT_SCOPE).await?;
        let done = cmd.now();
        // The rows as they are now, locked: a replay may have rescheduled one meanwhile.
        let tried: Vec<(&str, &str)> = sends
            .iter()
            .zip(&attempts)
            .filter(|(_, attempt)| attempt.is_some())
            .map(|((d, e), _)| (e.id.as_str(), d.id.as_str()))
            .collect();
        let mut current = keyed(store::get_deliveries(cmd.txn(), &tried, true).await?);
        for ((planned, e), attempt) in sends.iter().zip(attempts) {
            let member = attempt_of(&e.id, &planned.id);
            let Some(attempt) = attempt else {
                // No lane came free: put off, not counted as an attempt.
                cmd.schedule(member, done + LANE_BUSY_RETRY);
                continue;
            };
            let Some(row) = current.remove(&(e.id.clone(), planned.id.clone())) else {
                continue;
            };
            let mut d = delivery(row)?;
            let ok = attempt.succeeded();
            let failures = d.attempts.len() as u32 + 1;
            d.attempts.push(attempt);
            if d.state != DeliveryState::Pending || d.next_attempt_at != planned.next_attempt_at {
                // Replayed (or otherwise rescheduled) while this attempt ran: the attempt
                // is logged, and what was scheduled since decides what comes next.
            } else if ok {
                d.state = DeliveryState::Delivered;
                d.delivered_at = Some(done);
                d.next_attempt_at = None;
                if e.failing_since.is_some() {
                    store::mark_succeeding(cmd.txn(), &e.id).await?;
                }
            } else {
                let since = store::mark_failing(cmd.txn(), &e.id, done)
                    .await?
                    .unwrap_or(done);
                match self.policy.after_failure(failures, since, done) {
                    AfterFailure::RetryAt(at) => {
                        d.next_attempt_at = Some(at);
                        cmd.schedule(member, at);
                    }
                    AfterFailure::Disable => {
                        let reason = format!(
                            "every attempt failed since {}",
                            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        );
                        if store::disable(cmd.txn(), &e.id, &reason, done).await? {
                            let mut disabled = e.clone();
                            disabled.failing_since = Some(since);
                            tracing::warn!(endpoint_id = %e.id, %reason, "webhook endpoint disabled");
                            aftersales_platform::metrics::webhook_endpoint_disabled();
                            cmd.publish(vec![events::endpoint_disabled(&disabled, &reason, done)])
                                .await?;
                            store::fail_pending_of(cmd.txn(), &e.id).await?;
                        }
                        d.state = DeliveryState::Failed;
                        d.next_attempt_at = None;
                    }
                }
            }
            store::update_delivery(cmd.txn(), delivery_row(&d)?).await?;
        }
        for mut d in give_up {
            d.state = DeliveryState::Failed;
            d.next_attempt_at = None;
            store::update_delivery(cmd.txn(), delivery_row(&d)?).await?;
        }
        for (member, at) in later {
            cmd.schedule(member, at);
        }
        cmd.commit(&self.pipeline, &Remembered::ids(Vec::<String>::new()))
            .await?;
        Ok(())
    }

    /// A page of an endpoint's deliveries, newest first.
    pub async fn list_deliveries(
        &self,
        owner: &Owner,
        endpoint_id: &str,
        state: Option<DeliveryState>,
        before: Option<&str>,
        size: u64,
    ) -> Result<(Vec<Delivery>, Option<String>), WebhooksError> {
        self.get_endpoint(owner, endpoint_id).await?;
        let rows = store::list_deliveries(self.db(), endpoint_id, state, before, size + 1).await?;
        let (rows, next) = paged(rows, size, |r| r.id.clone());
        let deliveries = rows.into_iter().map(delivery).collect::<Result<_, _>>()?;
        Ok((deliveries, next))
    }

    /// Sends a delivery again now, whatever its state, with the same id and body.
    pub async fn replay_delivery(
        &self,
        owner: &Owner,
        endpoint_id: &str,
        delivery_id: &str,
        idem: Option<&aftersales_platform::idempotency::Idempotency>,
    ) -> Result<Delivery, WebhooksError> {
        self.pipeline
            .keyed(idem, || async {
                let mut cmd = match self.pipeline.begin(REPLAY_SCOPE, idem).await? {
                    Begun::Replay(_) => {
                        return self.get_delivery(owner, endpoint_id, delivery_id).await;
                    }
                    Begun::Fresh(cmd) => cmd,
                };
                let endpoint = self
                    .owned_endpoint(cmd.txn(), owner, endpoint_id, true)
                    .await?;
                if endpoint.state != EndpointState::Enabled {
                    return Err(WebhooksError::Precondition(format!(
                        "endpoint {endpoint_id} is {}: enable it to replay",
                        endpoint.state.code()
                    )));
                }
                let row = store::get_delivery(cmd.txn(), endpoint_id, delivery_id, true)
                    .await?
                    .ok_or_else(|| not_found("delivery", delivery_id))?;
                let mut d = delivery(row)?;
                let now = cmd.now();
                d.state = DeliveryState::Pending;
                d.next_attempt_at = Some(now);
                d.delivered_at = None;
                cmd.schedule(attempt_of(endpoint_id, delivery_id), now);
                store::update_delivery(cmd.txn(), delivery_row(&d)?).await?;
                cmd.commit(&self.pipeline, &Remembered::ids([endpoint_id, delivery_id]))
                    .await?;
                Ok(d)
            })
            .await
    }

    pub async fn get_delivery(
        &self,
        owner: &Owner,
        endpoint_id: &str,
        delivery_id: &str,
    ) -> Result<Delivery, WebhooksError> {
        self.get_endpoint(owner, endpoint_id).await?;
        let row = store::get_delivery(self.db(), endpoint_id, delivery_id, false)
            .await?
            .ok_or_else(|| not_found("delivery", delivery_id))?;
        delivery(row)
    }
}

/// Rows by their (endpoint, delivery) key.
fn keyed(rows: Vec<store::DeliveryRow>) -> HashMap<(String, String), store::DeliveryRow> {
    rows.into_iter()
        .map(|row| ((row.endpoint_id.clone(), row.id.clone()), row))
        .collect()
}

impl Deadlines for WebhooksCore {
    type Member = NextAttempt;
    type Error = WebhooksError;

    async fn fire(&self, batch: &[Due<NextAttempt>]) -> Result<(), WebhooksError> {
        self.attempt(batch).await
    }

    /// Every pending delivery of an enabled endpoint back on the schedule at its next
    /// attempt.
    async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, WebhooksError> {
        const PAGE: u64 = 5_000;
        let mut after: Option<(String, String)> = None;
        let mut count = 0;
        loop {
            let page = store::pending_page(
                self.db(),
                after.as_ref().map(|(e, d)| (e.as_str(), d.as_str())),
                PAGE,
            )
            .await?;
            let Some(last) = page.last() else {
                return Ok(count);
            };
            after = Some((last.endpoint_id.clone(), last.id.clone()));
            // A first attempt is the committing process's to make (`direct`): left to it
            // for the grace, so the two never make it at once.
            let grace = self.policy.first_attempt_grace;
            let items: Vec<(String, i64)> = page
                .iter()
                .map(|p| {
                    let at = match p.first_attempt_since {
                        Some(created) => p.next_attempt_at.max(created + grace),
                        None => p.next_attempt_at,
                    };
                    (attempt_of(&p.endpoint_id, &p.id).to_text(), due_millis(at))
                })
                .collect();
            queue
                .schedule(&items)
                .await
                .map_err(|e| sea_orm::DbErr::Custom(format!("deadline queue: {e}")))?;
            count += items.len() as u64;
        }
    }
}
