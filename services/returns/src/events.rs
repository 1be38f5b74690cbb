//! The events the returns service publishes on the `returns` stream.

use aftersales_eventbus::{envelope::new_event, outbox::NewEvent};
use aftersales_platform::codes::timestamp;
use aftersales_protos::events::v1::{self as ev, event_envelope::Payload};
use chrono::{DateTime, Utc};

use crate::{
    domain::rma::{ReturnAggregate, ReturnEvent},
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
            r#return: Some(proto::rma(agg)),
        }),
        ReturnEvent::Approved { rule } => Payload::ReturnApproved(ev::ReturnApproved {
            return_id,
            order_id: r.order_id.clone(),
            rule: rule.clone(),
        }),
        ReturnEvent::Rejected {
            reason,
            after_inspection,
        } => Payload::ReturnRejected(ev::ReturnRejected {
            return_id,
            order_id: r.order_id.clone(),
            reason: reason.clone(),
            after_inspection: *after_inspection,
        }),
        ReturnEvent::Received => Payload::ReturnReceived(ev::ReturnReceived {
            return_id,
            order_id: r.order_id.clone(),
        }),
        ReturnEvent::Inspected => Payload::ReturnInspected(ev::ReturnInspected {
            return_id,
            lines: r.inspection.iter().map(proto::inspection).collect(),
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
        ReturnEvent::RepairRequested => Payload::RepairJobRequested(ev::RepairJobRequested {
            return_id,
            ticket_id: r.ticket_id.clone().unwrap_or_default(),
            customer_id: r.customer_id.clone(),
            lines: r.lines.iter().map(proto::line).collect(),
        }),
        ReturnEvent::RefundSucceeded {
            refund_id,
            amount,
            reference,
        } => Payload::RefundSucceeded(ev::RefundSucceeded {
            return_id,
            refund_id: refund_id.clone(),
            amount: Some(proto::money(amount)),
            provider_reference: reference.clone(),
        }),
        ReturnEvent::RefundFailed { refund_id, error } => Payload::RefundFailed(ev::RefundFailed {
            return_id,
            refund_id: refund_id.clone(),
            error: error.clone(),
        }),
    }
}
