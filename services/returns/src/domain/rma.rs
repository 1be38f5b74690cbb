//! A return (RMA) and its lifecycle: requested → approved | rejected → pickup_booked →
//! in_transit → received → inspected → refunded | exchanged | sent_to_repair |
//! rejected_after_inspection → closed, cancellable by the customer until pickup; a return
//! sent to repair settles on the repair job's outcome (see `repair`): repaired | refunded |
//! exchanged. Each step
//! has a deadline; every operation records who did what and returns the events it caused.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Condition, DeadlineState, Disposition, DomainError, Money, Outcome, Reason, RefundKind,
    Resolution, Status, Step, TrackingKind, Verdict, eligibility::Decision,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnLine {
    pub sku: String,
    pub product_line: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub delivered_at: DateTime<Utc>,
}

impl ReturnLine {
    pub fn total(&self) -> i64 {
        self.unit_price.minor * i64::from(self.quantity)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub from: Option<Status>,
    pub to: Status,
    pub actor_id: String,
    pub actor_role: String,
    pub note: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub carrier: String,
    pub tracking_number: String,
    pub label_ref: String,
    pub fee: Money,
    pub booked_at: DateTime<Utc>,
    pub last_event: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionLine {
    pub sku: String,
    pub condition: Condition,
    pub quality_defect: bool,
    pub disposition: Disposition,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub id: String,
    pub return_id: String,
    pub step: Step,
    pub due_at: DateTime<Utc>,
    pub state: DeadlineState,
}

impl Deadline {
    /// When the worker must look at it; `None` once it cannot be missed any more.
    pub fn next_fire_at(&self) -> Option<DateTime<Utc>> {
        (self.state == DeadlineState::Running).then_some(self.due_at)
    }
}

pub use steps::{StepTargets, can_move};

/// Who acts, for the history.
pub use aftersales_platform::caller::Actor;

/// The role of the service itself in the history (eligibility rules, payments).
const SYSTEM_ROLE: &str = "system";

/// What happened to a return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnEvent {
    Requested,
    Approved {
        rule: String,
    },
    Rejected {
        reason: String,
        after_inspection: bool,
    },
    Received,
    Inspected,
    StepOverdue {
        step: Step,
        due_at: DateTime<Utc>,
    },
    ExchangeRequested,
    RepairRequested,
    /// A carrier pickup was booked (its fee is a logistics cost).
    PickupBooked,
    RefundSucceeded {
        refund_id: String,
        kind: RefundKind,
        amount: Money,
        reference: String,
    },
    RefundFailed {
        refund_id: String,
        kind: RefundKind,
        error: String,
    },
    ThirdPartyRequested {
        lab: String,
        due_at: DateTime<Utc>,
    },
    ThirdPartyResult {
        verdict: Verdict,
        lab_reference: String,
    },
}

/// A stock movement for the after-sales ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockMovement {
    pub sku: String,
    pub quantity: u32,
    /// `received`, or the disposition it went to.
    pub movement: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rma {
    pub id: String,
    pub order_id: String,
    pub customer_id: String,
    pub ticket_id: Option<String>,
    pub lines: Vec<ReturnLine>,
    pub reason: Reason,
    pub evidence: Vec<String>,
    pub desired: Outcome,
    pub status: Status,
    pub eligibility_rule: String,
    pub rejection_reason: Option<String>,
    pub customer_time_zone: String,
    pub shipment: Option<Shipment>,
    pub inspection: Vec<InspectionLine>,
    pub refund_id: Option<String>,
    /// Sent to repair: the region the goods are repaired in, and dispatch's job for it.
    #[serde(default)]
    pub repair: repair::RepairState,
    #[serde(default)]
    pub third_party: Option<third_party::ThirdParty>,
    /// Asked for as refund-only: no goods come back.
    #[serde(default)]
    pub refund_only: bool,
    /// A partial refund agreed with the customer, who keeps the goods.
    #[serde(default)]
    pub agreement: Option<variants::Agreement>,
    pub history: Vec<StepRecord>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new request as intake knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReturn {
    pub order_id: String,
    pub customer_id: String,
    pub ticket_id: Option<String>,
    pub lines: Vec<ReturnLine>,
    pub reason: Reason,
    pub evidence: Vec<String>,
    pub desired: Outcome,
    pub customer_time_zone: String,
    pub refund_only: bool,
}

/// A return with its step deadlines, changed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnAggregate {
    pub rma: Rma,
    pub deadlines: Vec<Deadline>,
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The steps of the lifecycle: each checks that its move is legal, records who made it,
/// and returns the events (and stock movements) it caused.
impl ReturnAggregate {
    /// Records a request as the eligibility decision has it: approved, waiting for
    /// review, or rejected with the rule named.
    pub fn request(
        new: NewReturn,
        decision: &Decision,
        targets: &StepTargets,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> (Self, Vec<ReturnEvent>) {
        let rma = Rma {
            id: new_id(),
            order_id: new.order_id,
            customer_id: new.customer_id,
            ticket_id: new.ticket_id,
            lines: new.lines,
            reason: new.reason,
            evidence: new.evidence,
            desired: new.desired,
            status: Status::Requested,
            eligibility_rule: decision.rule().to_owned(),
            rejection_reason: None,
            customer_time_zone: new.customer_time_zone,
            shipment: None,
            inspection: Vec::new(),
            refund_id: None,
            repair: repair::RepairState::default(),
            third_party: None,
            refund_only: new.refund_only,
            agreement: None,
            history: vec![StepRecord {
                from: None,
                to: Status::Requested,
                actor_id: actor.id.clone(),
                actor_role: actor.role.clone(),
                note: decision.rule().to_owned(),
                at: now,
            }],
            created_at: now,
            updated_at: now,
        };
        let mut agg = Self {
            rma,
            deadlines: Vec::new(),
        };
        let mut events = vec![ReturnEvent::Requested];
        let system = Actor::new("returns", SYSTEM_ROLE);
        let outcome = match decision {
            Decision::Approve { rule } => agg.approve(rule, targets, &system, now),
            Decision::Refuse { rule } => agg.reject(rule, &system, now),
            Decision::Review { .. } => {
                agg.start(Step::Review, targets, now);
                Ok(Vec::new())
            }
        };
        // A fresh request can always be approved or rejected.
        events.extend(outcome.unwrap_or_default());
        (agg, events)
    }

    pub fn approve(
        &mut self,
        rule: &str,
        targets: &StepTargets,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<ReturnEvent>, DomainError> {
        self.move_to(Status::Approved, actor, rule, now)?;
        self.complete(Step::Review);
        // Refund-only: nothing is picked up, the refund is the next step.
        let next = if self.rma.refund_only {
            Step::Refund
        } else {
            Step::Pickup
        };
        self.start(next, targets, now);
        Ok(vec![ReturnEvent::Approved {
            rule: rule.to_owned(),
        }])
    }

    pub fn reject(
        &mut self,
        reason: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<ReturnEvent>, DomainError> {
        self.move_to(Status::Rejected, actor, reason, now)?;
        self.rma.rejection_reason = Some(reason.to_owned());
        self.complete(Step::Review);
        self.cancel_deadlines();
        Ok(vec![ReturnEvent::Rejected {
            reason: reason.to_owned(),
            after_inspection: false,
        }])
    }

    /// The customer withdraws, which they may until the goods are picked up.
    pub fn cancel(
        &mut self,
        reason: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<ReturnEvent>, DomainError> {
        self.move_to(Status::Cancelled, actor, reason, now)?;
        self.cancel_deadlines();
        Ok(Vec::new())
    }

    pub fn book_pickup(
        &mut self,
        shipment: Shipment,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<ReturnEvent>, DomainError> {
        let note = format!("{} {}", shipment.carrier, shipment.tracking_number);
        self.move_to(Status::PickupBooked, actor, &note, now)?;
        self.rma.shipment = Some(shipment);
        Ok(vec![ReturnEvent::PickupBooked])
    }

    /// A carrier's tracking event moves the return forward; late or repeated events only
    /// leave a note.
    pub fn track(
        &mut self,
        kind: TrackingKind,
        detail: &str,
        targets: &StepTargets,
        now: DateTime<Utc>,
    ) -> Result<(Vec<ReturnEvent>, Vec<StockMovement>), DomainError> {
        let carrier = Actor::new(
            self.rma
                .shipment
                .as_ref()
                .map(|s| s.carrier.clone())
                .unwrap_or_default(),
            "carrier",
        );
        if let Some(shipment) = self.rma.shipment.as_mut() {
            shipment.last_event = if detail.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}: {detail}")
            };
        }
        self.rma.updated_at = now;
        match (kind, self.rma.status) {
            (TrackingKind::PickedUp | TrackingKind::InTransit, Status::PickupBooked) => {
                self.move_to(Status::InTransit, &carrier, detail, now)?;
                self.complete(Step::Pickup);
                Ok((Vec::new(), Vec::new()))
            }
            (TrackingKind::DeliveredToWarehouse, Status::PickupBooked | Status::InTransit) => {
                self.receive(&carrier, detail, targets, now)
            }
            _ => Ok((Vec::new(), Vec::new())),
        }
    }

    /// The goods arrived at the warehouse (a carrier's event or a warehouse scan).
    pub fn receive(
        &mut self,
        actor: &Actor,
        note: &str,
        targets: &StepTargets,
        now: DateTime<Utc>,
    ) -> Result<(Vec<ReturnEvent>, Vec<StockMovement>), DomainError> {
        self.move_to(Status::Received, actor, note, now)?;
        self.complete(Step::Pickup);
        self.start(Step::Inspection, targets, now);
        let movements = self
            .rma
            .lines
            .iter()
            .map(|l| StockMovement {
                sku: l.sku.clone(),
                quantity: l.quantity,
                movement: "received".into(),
            })
            .collect();
        Ok((vec![ReturnEvent::Received], movements))
    }

    /// Inspection of every line; each line's goods move to their disposition.
    pub fn inspect(
        &mut self,
        lines: Vec<InspectionLine>,
        actor: &Actor,
        targets: &StepTargets,
        now: DateTime<Utc>,
    ) -> Result<(Vec<ReturnEvent>, Vec<StockMovement>), DomainError> {
        for (i, line) in self.rma.lines.iter().enumerate() {
            let found = lines.iter().filter(|l| l.sku == line.sku).count();
            if found != 1 {
                return Err(DomainError::invalid(
                    "lines",
                    format!(
                        "line {i} (sku {}) must be inspected exactly once, found {found}",
                        line.sku
                    ),
                ));
            }
        }
        if let Some(extra) = lines
            .iter()
            .find(|l| !self.rma.lines.iter().any(|r| r.sku == l.sku))
        {
            return Err(DomainError::invalid(
                "lines",
                format!("sku {} is not part of this return", extra.sku),
            ));
        }
        self.move_to(Status::Inspected, actor, "", now)?;
        self.complete(Step::Inspection);
        self.start(Step::Refund, targets, now);
        let movements = lines
            .iter()
            .filter_map(|inspected| {
                let returned = self.rma.lines.iter().find(|l| l.sku == inspected.sku)?;
                Some(StockMovement {
                    sku: inspected.sku.clone(),
                    quantity: returned.quantity,
                    movement: inspected.disposition.to_string(),
                })
            })
            .collect();
        self.rma.inspection = lines;
        Ok((vec![ReturnEvent::Inspected], movements))
    }

    /// Settles an inspected return. A refund only starts here (`refund_id` is set): the
    /// return becomes `refunded` once the payment succeeds, see [`Self::refunded`].
    pub fn resolve(
        &mut self,
        resolution: Resolution,
        reason: &str,
        refund_id: Option<String>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<ReturnEvent>, DomainError> {
        match resolution {
            Resolution::Refund => {
                if self.rma.status != Status::Inspected {
                    return Err(DomainError::IllegalTransition {
                        from: self.rma.status,
                        to: Status::Refunded,
                    });
                }
                self.rma.refund_id = refund_id;
                self.rma.updated_at = now;
                Ok(Vec::new())
            }
            Resolution::Exchange => {
                self.move_to(Status::Exchanged, actor, reason, now)?;
                self.complete(Step::Refund);
                Ok(vec![ReturnEvent::ExchangeRequested])
            }
            Resolution::Repair => {
                self.move_to(Status::SentToRepair, actor, reason, now)?;
                self.complete(Step::Refund);
                Ok(vec![ReturnEvent::RepairRequested])
            }
            Resolution::Reject => {
                self.move_to(Status::RejectedAfterInspection, actor, reason, now)?;
                self.rma.rejection_reason = Some(reason.to_owned());
                self.complete(Step::Refund);
                Ok(vec![ReturnEvent::Rejected {
                    reason: reason.to_owned(),
                    after_inspection: true,
                }])
            }
        }
    }

    /// The refund went out.
    pub fn refunded(&mut self, reference: &str, now: DateTime<Utc>) -> Result<(), DomainError> {
        let payments = Actor::new("payments", SYSTEM_ROLE);
        self.move_to(Status::Refunded, &payments, reference, now)?;
        self.complete(Step::Refund);
        Ok(())
    }

    pub fn close(&mut self, actor: &Actor, now: DateTime<Utc>) -> Result<(), DomainError> {
        self.move_to(Status::Closed, actor, "", now)
    }
}

/// What every step shares: moving the status, starting and settling step deadlines,
/// and firing a deadline.
impl ReturnAggregate {
    fn move_to(
        &mut self,
        to: Status,
        actor: &Actor,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let from = self.rma.status;
        if self.refund_without_goods_under_way() && !matches!(to, Status::Refunded | Status::Closed)
        {
            return Err(DomainError::Precondition(format!(
                "a refund without returned goods is under way: the return cannot become {to}"
            )));
        }
        if !can_move(from, to) {
            return Err(DomainError::IllegalTransition { from, to });
        }
        self.rma.status = to;
        self.rma.updated_at = now;
        self.rma.history.push(StepRecord {
            from: Some(from),
            to,
            actor_id: actor.id.clone(),
            actor_role: actor.role.clone(),
            note: note.to_owned(),
            at: now,
        });
        Ok(())
    }

    fn start(&mut self, step: Step, targets: &StepTargets, now: DateTime<Utc>) {
        self.deadlines.push(Deadline {
            id: new_id(),
            return_id: self.rma.id.clone(),
            step,
            due_at: now + targets.of(step),
            state: DeadlineState::Running,
        });
    }

    /// The step happened: its deadline is met (or met late, if it was already missed).
    fn complete(&mut self, step: Step) {
        for d in self.deadlines.iter_mut().filter(|d| d.step == step) {
            d.state = match d.state {
                DeadlineState::Running => DeadlineState::Met,
                DeadlineState::Missed => DeadlineState::MetLate,
                other => other,
            };
        }
    }

    fn cancel_deadlines(&mut self) {
        for d in self
            .deadlines
            .iter_mut()
            .filter(|d| d.state == DeadlineState::Running)
        {
            d.state = DeadlineState::Cancelled;
        }
    }

    /// True while a missed step has not happened yet.
    pub fn overdue(&self) -> bool {
        self.deadlines
            .iter()
            .any(|d| d.state == DeadlineState::Missed)
    }

    /// Fires one deadline at `now`: a missed step makes the return overdue, once.
    pub fn fire_deadline(&mut self, deadline_id: &str, now: DateTime<Utc>) -> Vec<ReturnEvent> {
        let Some(d) = self.deadlines.iter_mut().find(|d| d.id == deadline_id) else {
            return Vec::new();
        };
        if d.state != DeadlineState::Running || now < d.due_at {
            return Vec::new();
        }
        d.state = DeadlineState::Missed;
        self.rma.updated_at = now;
        vec![ReturnEvent::StepOverdue {
            step: d.step,
            due_at: d.due_at,
        }]
    }
}

mod erasure;
pub mod repair;
mod steps;
#[cfg(test)]
pub(crate) mod tests;
pub mod third_party;
pub mod variants;
