//! The events the returns service publishes on the `returns` stream.
//!
//! Events carry ids, not personal data: no free text leaves in an event (a compensation's
//! reason stays on the compensation). `ReturnRequested`
//! carries the return without its evidence, notes, reasons and carrier details; a
//! rejection names the eligibility rule that refused it, never a person's reason, and an
//! approval the rule that granted it; inspection lines go without their notes.

use aftersales_eventbus::{envelope::new_event, outbox::NewEvent};
use aftersales_platform::codes::timestamp;
use aftersales_protos::{
    events::v1::{self as ev, event_envelope::Payload},
    returns::v1 as pb,
};
use chrono::{DateTime, Utc};

use crate::{
    domain::{
        RefundState,
        compensation::{Compensation, CompensationEvent},
        refund::Refund,
        rma::{ReturnAggregate, ReturnEvent},
    },
    proto::{self, ProtoEnum},
};

pub const STREAM: &str = "returns";

pub fn encode(agg: &ReturnAggregate, events: &[ReturnEvent], now: DateTime<Utc>) -> Vec<NewEvent> {
    events
        .iter()
        .map(|event| new_event(STREAM, "returns", &agg.rma.id, payload(agg, event), now))
        .collect()
}

fn payload(agg: &ReturnAggregate, event: &ReturnEvent) -> Payload {
    let r = &agg.rma;
    let return_id = r.id.clone();
    match event {
        ReturnEvent::Requested => Payload::ReturnRequested(ev::ReturnRequested {
            r#return: Some(without_free_text(proto::rma(agg))),
        }),
        ReturnEvent::Approved { rule } => Payload::ReturnApproved(ev::ReturnApproved {
            return_id,
            order_id: r.order_id.clone(),
            rule: rule_only(rule, &r.eligibility_rule),
        }),
        ReturnEvent::Rejected {
            reason,
            after_inspection,
        } => Payload::ReturnRejected(ev::ReturnRejected {
            return_id,
            order_id: r.order_id.clone(),
            reason: rule_only(reason, &r.eligibility_rule),
            after_inspection: *after_inspection,
        }),
        ReturnEvent::Received => Payload::ReturnReceived(ev::ReturnReceived {
            return_id,
            order_id: r.order_id.clone(),
        }),
        ReturnEvent::Inspected => Payload::ReturnInspected(ev::ReturnInspected {
            return_id,
            lines: r
                .inspection
                .iter()
                .map(|line| pb::InspectionLine {
                    note: String::new(),
                    ..proto::inspection(line)
                })
                .collect(),
        }),
        ReturnEvent::StepOverdue { step, due_at } => {
            Payload::ReturnStepOverdue(ev::ReturnStepOverdue {
                return_id,
                step: step.to_proto(),
                due_at: Some(timestamp(*due_at)),
            })
        }
        ReturnEvent::ExchangeRequested => {
            Payload::ExchangeShipmentRequested(ev::ExchangeShipmentRequested {
                return_id,
                order_id: r.order_id.clone(),
                customer_id: r.customer_id.clone(),
                lines: r.lines.iter().map(proto::line).collect(),
            })
        }
        ReturnEvent::RepairRequested => Payload::RepairJobRequested(repair_requested(agg)),
        ReturnEvent::RefundSucceeded {
            refund_id,
            kind,
            amount,
            reference,
        } => Payload::RefundSucceeded(ev::RefundSucceeded {
            return_id,
            refund_id: refund_id.clone(),
            amount: Some(proto::money(amount)),
            provider_reference: reference.clone(),
            kind: kind.to_proto(),
            order_id: r.order_id.clone(),
        }),
        ReturnEvent::RefundFailed {
            refund_id,
            kind,
            error,
        } => Payload::RefundFailed(ev::RefundFailed {
            return_id,
            refund_id: refund_id.clone(),
            error: error.clone(),
            kind: kind.to_proto(),
            order_id: r.order_id.clone(),
        }),
        ReturnEvent::ThirdPartyRequested { lab, due_at } => {
            Payload::ThirdPartyInspectionRequested(ev::ThirdPartyInspectionRequested {
                return_id,
                order_id: r.order_id.clone(),
                lab: lab.clone(),
                due_at: Some(timestamp(*due_at)),
            })
        }
        ReturnEvent::ThirdPartyResult {
            verdict,
            lab_reference,
        } => Payload::ThirdPartyResultRecorded(ev::ThirdPartyResultRecorded {
            return_id,
            verdict: verdict.to_proto(),
            lab_reference: lab_reference.clone(),
        }),
        // The fee only: the carrier and tracking number stay on the return.
        ReturnEvent::PickupBooked => Payload::PickupBooked(ev::PickupBooked {
            return_id,
            ticket_id: r.ticket_id.clone().unwrap_or_default(),
            order_id: r.order_id.clone(),
            // A pickup booked without a fee is no cost.
            fee: r
                .shipment
                .as_ref()
                .map(|s| &s.fee)
                .filter(|fee| fee.minor != 0)
                .map(proto::money),
            booked_at: r.shipment.as_ref().map(|s| timestamp(s.booked_at)),
        }),
    }
}

/// The outcome of a refund without a return (a price difference), published about the
/// refund itself; nothing while it is still pending.
pub fn standalone_refund(refund: &Refund, now: DateTime<Utc>) -> Option<NewEvent> {
    let payload = match refund.state {
        RefundState::Pending => return None,
        RefundState::Succeeded => Payload::RefundSucceeded(ev::RefundSucceeded {
            return_id: String::new(),
            refund_id: refund.id.clone(),
            amount: Some(proto::money(&refund.amount)),
            provider_reference: refund.provider_reference.clone().unwrap_or_default(),
            kind: refund.kind.to_proto(),
            order_id: refund.order_id.clone(),
        }),
        RefundState::Failed => Payload::RefundFailed(ev::RefundFailed {
            return_id: String::new(),
            refund_id: refund.id.clone(),
            error: refund.last_error.clone().unwrap_or_default(),
            kind: refund.kind.to_proto(),
            order_id: refund.order_id.clone(),
        }),
    };
    Some(new_event(STREAM, "returns", &refund.id, payload, now))
}

/// A compensation's events, about the compensation: ids, kind and amount, never its
/// reason (free text) nor anything about the customer but the id.
pub fn compensation(
    c: &Compensation,
    events: &[CompensationEvent],
    now: DateTime<Utc>,
) -> Vec<NewEvent> {
    events
        .iter()
        .map(|event| {
            new_event(
                STREAM,
                "returns",
                &c.id,
                compensation_payload(c, *event),
                now,
            )
        })
        .collect()
}

fn compensation_payload(c: &Compensation, event: CompensationEvent) -> Payload {
    let compensation_id = c.id.clone();
    let ticket_id = c.ticket_id.clone();
    let customer_id = c.customer_id.clone();
    let kind = c.kind.to_proto();
    let amount = Some(proto::money(&c.amount));
    let order_id = c.order_id.clone().unwrap_or_default();
    let decided_by = c.decided_by.clone().unwrap_or_default();
    match event {
        CompensationEvent::Requested => Payload::CompensationRequested(ev::CompensationRequested {
            compensation_id,
            ticket_id,
            customer_id,
            kind,
            amount,
            requester_limit_minor: c.requester_limit,
        }),
        CompensationEvent::Approved => Payload::CompensationApproved(ev::CompensationApproved {
            compensation_id,
            ticket_id,
            customer_id,
            kind,
            amount,
            approved_by: decided_by,
            order_id,
        }),
        CompensationEvent::Rejected => Payload::CompensationRejected(ev::CompensationRejected {
            compensation_id,
            ticket_id,
            customer_id,
            kind,
            amount,
            rejected_by: decided_by,
        }),
        CompensationEvent::Paid => Payload::CompensationPaid(ev::CompensationPaid {
            compensation_id,
            ticket_id,
            customer_id,
            kind,
            amount,
            provider_reference: c.provider_reference.clone().unwrap_or_default(),
            order_id,
        }),
        CompensationEvent::Granted => Payload::CompensationGranted(ev::CompensationGranted {
            compensation_id,
            ticket_id,
            customer_id,
            kind,
            amount,
            warranty_months: c.warranty_months,
            order_id,
        }),
        CompensationEvent::PaymentFailed => {
            Payload::CompensationPaymentFailed(ev::CompensationPaymentFailed {
                compensation_id,
                ticket_id,
                customer_id,
                kind,
                amount,
            })
        }
    }
}

/// What dispatch needs to create the repair job: ids and codes, no contact (the goods are
/// repaired where they are, at the after-sales warehouse of `region_code`).
fn repair_requested(agg: &ReturnAggregate) -> ev::RepairJobRequested {
    let r = &agg.rma;
    let defective: Vec<String> = r
        .inspection
        .iter()
        .filter(|l| l.quality_defect)
        .map(|l| l.sku.clone())
        .collect();
    let product_line = defective
        .first()
        .and_then(|sku| r.lines.iter().find(|l| &l.sku == sku))
        .or_else(|| r.lines.first())
        .map(|l| l.product_line.clone())
        .unwrap_or_default();
    ev::RepairJobRequested {
        return_id: r.id.clone(),
        ticket_id: r.ticket_id.clone().unwrap_or_default(),
        customer_id: r.customer_id.clone(),
        lines: r.lines.iter().map(proto::line).collect(),
        region_code: r.repair.region_code.clone().unwrap_or_default(),
        product_line,
        reason: r.reason.to_proto(),
        defective_skus: defective,
        warranty: true,
        job_id: r.repair.job_id.clone().unwrap_or_default(),
    }
}

/// `text` when it is the eligibility rule that decided the return, else nothing: what a
/// reviewer wrote stays on the return.
fn rule_only(text: &str, eligibility_rule: &str) -> String {
    if text == eligibility_rule {
        text.to_owned()
    } else {
        String::new()
    }
}

/// The return as an event carries it: ids, lines, codes and times, none of the text people
/// or carriers wrote.
fn without_free_text(r: pb::Return) -> pb::Return {
    pb::Return {
        evidence: Vec::new(),
        rejection_reason: String::new(),
        inspection: r
            .inspection
            .iter()
            .map(|line| pb::InspectionLine {
                note: String::new(),
                ..line.clone()
            })
            .collect(),
        partial_agreement: r.partial_agreement.clone().map(|a| pb::PartialAgreement {
            customer_agreement: String::new(),
            reason: String::new(),
            ..a
        }),
        third_party_inspection: r.third_party_inspection.clone().map(|lab| {
            pb::ThirdPartyInspection {
                notes: String::new(),
                ..lab
            }
        }),
        history: r
            .history
            .iter()
            .map(|step| pb::StepRecord {
                note: String::new(),
                ..step.clone()
            })
            .collect(),
        shipment: r.shipment.clone().map(|s| pb::Shipment {
            last_event: String::new(),
            ..s
        }),
        ..r
    }
}
