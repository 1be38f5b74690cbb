//! The use cases of the returns service. Each command is one transaction that locks the
//! return, applies a domain rule, and writes the return, its deadlines, stock movements,
//! an outbox event (and the idempotency record) together; after the commit the deadlines
//! go on the deadline queue and the relay is woken. Refund payments run outside any
//! transaction, keyed by the refund id, so a retry from anywhere pays at most once.

use std::sync::Arc;

use aftersales_deadlines::DeadlineQueue;
use aftersales_platform::db::now as db_now;
use aftersales_platform::idempotency::{
    Idempotency, once_more_after_a_twin, recall_json, remember_json,
};
use aftersales_runtime::firing::schedule_all;
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, TransactionTrait};
use tokio::sync::Notify;

use crate::{
    domain::{
        DomainError, Money, RefundState, Resolution, TrackingKind,
        eligibility::{self, DEFAULT_PRODUCT_LINE, Policies, ReturnPolicy},
        refund::{self, Refund},
        rma::{
            Actor, InspectionLine, NewReturn, ReturnAggregate, ReturnEvent, Shipment, StepTargets,
            StockMovement,
        },
    },
    error::ReturnsError,
    events,
    ports::{Carriers, PaymentProvider, PickupRequest},
    store::{self, REFUND_MEMBER, ReturnFilter, STEP_MEMBER, entity::shipment},
};

const REQUEST_SCOPE: &str = "returns.RequestReturn";

/// What a rule produced besides the changed return.
#[derive(Debug, Default)]
struct Effects {
    events: Vec<ReturnEvent>,
    stock: Vec<StockMovement>,
    refund: Option<Refund>,
}

impl From<Vec<ReturnEvent>> for Effects {
    fn from(events: Vec<ReturnEvent>) -> Self {
        Self {
            events,
            ..Self::default()
        }
    }
}

/// A pickup to book.
#[derive(Debug, Clone)]
pub struct PickupOrder {
    pub carrier: String,
    pub tracking_number: Option<String>,
    pub fee: Option<Money>,
}

/// A carrier's tracking event.
#[derive(Debug, Clone)]
pub struct TrackingUpdate {
    pub carrier: String,
    pub event_id: String,
    pub tracking_number: String,
    pub kind: TrackingKind,
    pub occurred_at: DateTime<Utc>,
    pub detail: String,
}

/// One line of a carrier's monthly statement.
#[derive(Debug, Clone)]
pub struct CarrierLine {
    pub shipment: shipment::Model,
    pub status: crate::domain::Status,
}

pub struct ReturnsCore {
    db: DatabaseConnection,
    queue: DeadlineQueue,
    relay_nudge: Arc<Notify>,
    carriers: Carriers,
    payments: PaymentProvider,
    targets: StepTargets,
    /// When the worker pays a refund whose first attempt was never recorded.
    refund_safety_net: Duration,
}

impl ReturnsCore {
    pub fn new(
        db: DatabaseConnection,
        queue: DeadlineQueue,
        relay_nudge: Arc<Notify>,
        carriers: Carriers,
        payments: PaymentProvider,
        targets: StepTargets,
        refund_safety_net: Duration,
    ) -> Self {
        Self {
            db,
            queue,
            relay_nudge,
            carriers,
            payments,
            targets,
            refund_safety_net,
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Seeds the national default policy into an empty database.
    pub async fn ensure_defaults(&self) -> Result<(), ReturnsError> {
        let default = ReturnPolicy::default_for(DEFAULT_PRODUCT_LINE);
        store::put_policy(&self.db, &default, false, db_now()).await?;
        Ok(())
    }

    pub async fn request_return(
        &self,
        new: NewReturn,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        once_more_after_a_twin(idem, || self.try_request_return(&new, idem, actor)).await
    }

    async fn try_request_return(
        &self,
        new: &NewReturn,
        idem: Option<&Idempotency>,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        let now = db_now();
        let txn = self.db.begin().await?;
        if let Some(id) = recall_json::<_, String>(&txn, REQUEST_SCOPE, idem).await? {
            txn.rollback().await?;
            return self.get_return(&id).await;
        }
        let tz: Tz = new
            .customer_time_zone
            .parse()
            .map_err(|_| DomainError::invalid("customer_time_zone", "is not an IANA time zone"))?;
        let policies = Policies::new(store::policies(&txn).await?);
        let decision = eligibility::decide(
            &new.lines,
            new.reason,
            new.desired,
            !new.evidence.is_empty(),
            &policies,
            now,
            tz,
        );
        let (agg, events) =
            ReturnAggregate::request(new.clone(), &decision, &self.targets, actor, now);
        remember_json(&txn, REQUEST_SCOPE, idem, &agg.rma.id, now).await?;
        self.finish(txn, &agg, Effects::from(events), now).await?;
        Ok(agg)
    }

    pub async fn get_return(&self, id: &str) -> Result<ReturnAggregate, ReturnsError> {
        store::load_aggregate(&self.db, id, false)
            .await?
            .ok_or_else(|| not_found("return", id))
    }

    pub async fn list_returns(
        &self,
        filter: &ReturnFilter,
        before: Option<&str>,
        size: u64,
    ) -> Result<(Vec<ReturnAggregate>, Option<String>), ReturnsError> {
        let mut page = store::list_returns(&self.db, filter, before, size + 1).await?;
        let next = (page.len() as u64 > size).then(|| {
            page.truncate(size as usize);
            page.last().map(|r| r.id.clone())
        });
        let ids: Vec<String> = page.iter().map(|r| r.id.clone()).collect();
        let mut deadlines = store::deadlines_of(&self.db, &ids).await?;
        let page = page
            .into_iter()
            .map(|rma| {
                let (mine, rest) = deadlines.drain(..).partition(|d| d.return_id == rma.id);
                deadlines = rest;
                ReturnAggregate {
                    rma,
                    deadlines: mine,
                }
            })
            .collect();
        Ok((page, next.flatten()))
    }

    pub async fn review(
        &self,
        id: &str,
        approve: bool,
        reason: &str,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        let targets = self.targets;
        self.command(id, |agg, now| {
            if approve {
                agg.approve(reason, &targets, actor, now).map(Effects::from)
            } else {
                agg.reject(reason, actor, now).map(Effects::from)
            }
        })
        .await
    }

    pub async fn cancel(
        &self,
        id: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        self.command(id, |agg, now| {
            agg.cancel(reason, actor, now).map(Effects::from)
        })
        .await
    }

    pub async fn close(&self, id: &str, actor: &Actor) -> Result<ReturnAggregate, ReturnsError> {
        self.command(id, |agg, now| {
            agg.close(actor, now).map(|()| Effects::default())
        })
        .await
    }

    pub async fn book_pickup(
        &self,
        id: &str,
        order: PickupOrder,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        let (txn, mut agg, now) = self.begin(id).await?;
        let currency = agg
            .rma
            .lines
            .first()
            .map(|l| l.unit_price.currency.clone())
            .unwrap_or_default();
        if order
            .fee
            .as_ref()
            .is_some_and(|fee| fee.currency != currency)
        {
            return Err(DomainError::invalid(
                "fee.currency",
                format!("must be {currency}, the currency of the return"),
            )
            .into());
        }
        let booking = self.carriers.book(
            &order.carrier,
            &PickupRequest {
                return_id: id.to_owned(),
                tracking_number: order.tracking_number,
                fee: order.fee,
                currency,
            },
        )?;
        let shipment = Shipment {
            carrier: order.carrier,
            tracking_number: booking.tracking_number,
            label_ref: booking.label_ref,
            fee: booking.fee,
            booked_at: now,
            last_event: String::new(),
        };
        let events = agg.book_pickup(shipment.clone(), actor, now)?;
        store::insert_shipment(&txn, id, &shipment).await?;
        self.finish(txn, &agg, Effects::from(events), now).await?;
        Ok(agg)
    }

    /// Applies a carrier's event once: a redelivery of the same event id changes nothing.
    pub async fn record_tracking(
        &self,
        update: TrackingUpdate,
    ) -> Result<ReturnAggregate, ReturnsError> {
        let id = store::return_by_tracking(&self.db, &update.carrier, &update.tracking_number)
            .await?
            .ok_or_else(|| {
                not_found(
                    "shipment",
                    &format!("{} {}", update.carrier, update.tracking_number),
                )
            })?;
        let (txn, mut agg, now) = self.begin(&id).await?;
        let fresh = store::insert_tracking_event(
            &txn,
            &store::TrackingRow {
                carrier: &update.carrier,
                event_id: &update.event_id,
                return_id: &id,
                kind: update.kind,
                detail: &update.detail,
                occurred_at: update.occurred_at,
            },
            now,
        )
        .await?;
        if !fresh {
            txn.rollback().await?;
            return Ok(agg);
        }
        let (events, stock) = agg.track(update.kind, &update.detail, &self.targets, now)?;
        self.finish(
            txn,
            &agg,
            Effects {
                events,
                stock,
                refund: None,
            },
            now,
        )
        .await?;
        Ok(agg)
    }

    pub async fn receive(
        &self,
        id: &str,
        warehouse: &str,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        let targets = self.targets;
        self.command(id, |agg, now| {
            let (events, stock) = agg.receive(actor, warehouse, &targets, now)?;
            Ok(Effects {
                events,
                stock,
                refund: None,
            })
        })
        .await
    }

    pub async fn inspect(
        &self,
        id: &str,
        lines: Vec<InspectionLine>,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        let targets = self.targets;
        self.command(id, |agg, now| {
            let (events, stock) = agg.inspect(lines, actor, &targets, now)?;
            Ok(Effects {
                events,
                stock,
                refund: None,
            })
        })
        .await
    }

    /// Settles an inspected return. A refund is created and paid at once; asking again
    /// while it is pending or paid changes nothing.
    pub async fn resolve(
        &self,
        id: &str,
        resolution: Resolution,
        reason: &str,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        let (txn, mut agg, now) = self.begin(id).await?;
        let mut effects = Effects::default();
        if resolution == Resolution::Refund {
            if let Some(existing) = &agg.rma.refund_id {
                let state = store::get_refund(&txn, existing).await?.map(|r| r.state);
                if matches!(state, Some(RefundState::Pending | RefundState::Succeeded)) {
                    txn.rollback().await?;
                    return Ok(agg);
                }
            }
            let policies = Policies::new(store::policies(&txn).await?);
            let (amount, lines) = refund::compute(&agg.rma, &policies)?;
            let refund = Refund::start(&agg.rma, amount, lines, self.refund_safety_net, now);
            effects.events =
                agg.resolve(resolution, reason, Some(refund.id.clone()), actor, now)?;
            effects.refund = Some(refund);
        } else {
            effects.events = agg.resolve(resolution, reason, None, actor, now)?;
        }
        let refund_id = effects.refund.as_ref().map(|r| r.id.clone());
        self.finish(txn, &agg, effects, now).await?;
        match refund_id {
            Some(refund_id) => {
                self.pay_refund(&refund_id).await?;
                self.get_return(id).await
            }
            None => Ok(agg),
        }
    }

    /// Tries to pay a pending refund and records the answer. Safe to run any number of
    /// times, concurrently, from any process: the provider dedupes on the refund id and
    /// only a pending refund takes an answer.
    pub async fn pay_refund(&self, refund_id: &str) -> Result<(), ReturnsError> {
        let Some(pending) = store::get_refund(&self.db, refund_id).await? else {
            return Ok(());
        };
        if pending.state != RefundState::Pending {
            return Ok(());
        }
        let outcome = self
            .payments
            .refund(
                pending.idempotency_key(),
                &pending.order_id,
                &pending.amount,
            )
            .await;
        let (txn, mut agg, now) = self.begin(&pending.return_id).await?;
        let Some(mut refund) = store::get_refund(&txn, refund_id).await? else {
            return Ok(());
        };
        if !refund.record(outcome, now) {
            txn.rollback().await?;
            return Ok(());
        }
        let mut effects = Effects::default();
        match refund.state {
            RefundState::Succeeded => {
                let reference = refund.provider_reference.clone().unwrap_or_default();
                agg.refunded(&reference, now)?;
                effects.events.push(ReturnEvent::RefundSucceeded {
                    refund_id: refund.id.clone(),
                    amount: refund.amount.clone(),
                    reference,
                });
            }
            RefundState::Failed => effects.events.push(ReturnEvent::RefundFailed {
                refund_id: refund.id.clone(),
                error: refund.last_error.clone().unwrap_or_default(),
            }),
            RefundState::Pending => {
                tracing::warn!(refund_id, attempts = refund.attempts, error = ?refund.last_error, "refund attempt failed; will retry");
            }
        }
        effects.refund = Some(refund);
        self.finish(txn, &agg, effects, now).await
    }

    pub async fn refund(
        &self,
        refund_id: Option<&str>,
        return_id: Option<&str>,
    ) -> Result<Refund, ReturnsError> {
        let id = match (refund_id, return_id) {
            (Some(id), _) => id.to_owned(),
            (None, Some(return_id)) => self
                .get_return(return_id)
                .await?
                .rma
                .refund_id
                .ok_or_else(|| not_found("refund of return", return_id))?,
            (None, None) => {
                return Err(DomainError::invalid(
                    "refund_id",
                    "refund_id or return_id is required",
                )
                .into());
            }
        };
        store::get_refund(&self.db, &id)
            .await?
            .ok_or_else(|| not_found("refund", &id))
    }

    /// Fires one scheduled member: a step deadline or a refund retry.
    pub async fn fire(&self, member: &str) -> Result<(), ReturnsError> {
        if let Some(refund_id) = member.strip_prefix(REFUND_MEMBER) {
            return self.pay_refund(refund_id).await;
        }
        let Some(deadline_id) = member.strip_prefix(STEP_MEMBER) else {
            tracing::warn!(member, "unknown member on the returns queue; dropping it");
            return Ok(());
        };
        let Some(return_id) = store::deadline_return_id(&self.db, deadline_id).await? else {
            return Ok(());
        };
        let (txn, mut agg, now) = self.begin(&return_id).await?;
        let events = agg.fire_deadline(deadline_id, now);
        if events.is_empty() {
            txn.rollback().await?;
            self.after_commit(&agg, None).await;
            return Ok(());
        }
        self.finish(txn, &agg, Effects::from(events), now).await
    }

    /// Puts every pending deadline and refund retry back on the schedule.
    pub async fn reconcile(&self, queue: &DeadlineQueue) -> Result<u64, ReturnsError> {
        let mut count = 0;
        for (refunds, prefix) in [(false, STEP_MEMBER), (true, REFUND_MEMBER)] {
            count += schedule_all(queue, prefix, |after, limit| async move {
                Ok::<_, ReturnsError>(
                    store::pending_fire_times(&self.db, refunds, &after, limit).await?,
                )
            })
            .await?;
        }
        Ok(count)
    }

    pub async fn upsert_policy(&self, policy: ReturnPolicy) -> Result<ReturnPolicy, ReturnsError> {
        policy.validate()?;
        store::put_policy(&self.db, &policy, true, db_now()).await?;
        Ok(policy)
    }

    /// A carrier's shipments booked in a UTC month (`YYYY-MM`), for reconciling its invoice.
    pub async fn carrier_month(
        &self,
        carrier: &str,
        month: &str,
    ) -> Result<Vec<CarrierLine>, ReturnsError> {
        let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
            .map_err(|_| DomainError::invalid("month", "must be YYYY-MM"))?;
        let next = if first.month() == 12 {
            NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
        }
        .ok_or_else(|| DomainError::invalid("month", "is out of range"))?;
        let start = |d: NaiveDate| Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN));
        let rows = store::carrier_shipments(&self.db, carrier, start(first), start(next)).await?;
        Ok(rows
            .into_iter()
            .map(|(shipment, status)| CarrierLine { shipment, status })
            .collect())
    }

    /// One command on one return: lock it, apply `rule`, store the result and its effects.
    async fn command(
        &self,
        id: &str,
        rule: impl FnOnce(&mut ReturnAggregate, DateTime<Utc>) -> Result<Effects, DomainError>,
    ) -> Result<ReturnAggregate, ReturnsError> {
        let (txn, mut agg, now) = self.begin(id).await?;
        let effects = rule(&mut agg, now)?;
        self.finish(txn, &agg, effects, now).await?;
        Ok(agg)
    }

    async fn begin(
        &self,
        id: &str,
    ) -> Result<(DatabaseTransaction, ReturnAggregate, DateTime<Utc>), ReturnsError> {
        let txn = self.db.begin().await?;
        let agg = store::load_aggregate(&txn, id, true)
            .await?
            .ok_or_else(|| not_found("return", id))?;
        Ok((txn, agg, db_now()))
    }

    async fn finish(
        &self,
        txn: DatabaseTransaction,
        agg: &ReturnAggregate,
        effects: Effects,
        now: DateTime<Utc>,
    ) -> Result<(), ReturnsError> {
        store::save_aggregate(&txn, agg).await?;
        store::record_stock(&txn, &agg.rma.id, &effects.stock, now).await?;
        if let Some(refund) = &effects.refund {
            store::save_refund(&txn, refund).await?;
        }
        write_events(&txn, agg, &effects.events, now).await?;
        txn.commit().await?;
        let overdue = effects
            .events
            .iter()
            .filter(|e| matches!(e, ReturnEvent::StepOverdue { .. }))
            .count();
        for _ in 0..overdue {
            aftersales_platform::metrics::breach("returns");
        }
        self.after_commit(agg, effects.refund.as_ref()).await;
        Ok(())
    }

    /// Schedules what can still fire, drops what cannot, wakes the relay.
    async fn after_commit(&self, agg: &ReturnAggregate, refund: Option<&Refund>) {
        let mut items: Vec<(String, i64)> = agg
            .deadlines
            .iter()
            .filter_map(|d| {
                d.next_fire_at()
                    .map(|at| (format!("{STEP_MEMBER}{}", d.id), at.timestamp_millis()))
            })
            .collect();
        let mut done: Vec<String> = agg
            .deadlines
            .iter()
            .filter(|d| d.next_fire_at().is_none())
            .map(|d| format!("{STEP_MEMBER}{}", d.id))
            .collect();
        if let Some(refund) = refund {
            let member = format!("{REFUND_MEMBER}{}", refund.id);
            match refund.next_attempt_at {
                Some(at) => items.push((member, at.timestamp_millis())),
                None => done.push(member),
            }
        }
        if let Err(err) = self.queue.schedule(&items).await {
            tracing::warn!(error = %err, return_id = %agg.rma.id, "scheduling deadlines failed; the next rebuild restores them");
        }
        if let Err(err) = self.queue.cancel(&done).await {
            tracing::debug!(error = %err, "unscheduling finished deadlines failed; the worker skips them");
        }
        self.relay_nudge.notify_one();
    }
}

async fn write_events<C: ConnectionTrait>(
    conn: &C,
    agg: &ReturnAggregate,
    events: &[ReturnEvent],
    now: DateTime<Utc>,
) -> Result<(), ReturnsError> {
    let rows = events::encode(agg, events, now);
    aftersales_eventbus::outbox::enqueue(conn, rows, now).await?;
    Ok(())
}

fn not_found(what: &'static str, id: &str) -> ReturnsError {
    ReturnsError::NotFound {
        what,
        id: id.to_owned(),
    }
}
