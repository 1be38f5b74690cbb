//! Conversions between domain types and the protobuf contract, shared by the gRPC API and
//! the published events.

use std::collections::BTreeMap;

use aftersales_platform::{codes::timestamp, proto_enum};
use aftersales_protos::{common::v1 as common, returns::v1 as pb};

pub use aftersales_platform::codes::ProtoEnum;

use crate::domain::{
    Condition, Disposition, Money, Outcome, Reason, RefundKind, RefundState, Resolution, Status,
    Step, TrackingKind, Verdict,
    compensation::{Compensation, CompensationKind, CompensationStatus},
    eligibility::ReturnPolicy,
    listing::CarrierLine,
    refund::Refund,
    rma::{InspectionLine, ReturnAggregate, ReturnLine},
};

proto_enum!(Reason => pb::ReturnReason {
    NoReason => NoReason, QualityDefect => QualityDefect, WrongItem => WrongItem,
    DamagedInTransit => DamagedInTransit, NotAsDescribed => NotAsDescribed, NotReceived => NotReceived,
});
proto_enum!(Outcome => pb::Outcome { Refund => Refund, Exchange => Exchange, Repair => Repair });
proto_enum!(Status => pb::ReturnStatus {
    Requested => Requested, Approved => Approved, Rejected => Rejected, PickupBooked => PickupBooked,
    InTransit => InTransit, Received => Received, Inspected => Inspected, Refunded => Refunded,
    Exchanged => Exchanged, SentToRepair => SentToRepair, RejectedAfterInspection => RejectedAfterInspection,
    Closed => Closed, Cancelled => Cancelled, Repaired => Repaired, AwaitingThirdParty => AwaitingThirdParty,
});
proto_enum!(Step => pb::Step {
    Review => Review, Pickup => Pickup, Inspection => Inspection, Refund => Refund,
    ThirdPartyInspection => ThirdPartyInspection,
});
proto_enum!(Verdict => pb::ThirdPartyVerdict {
    DefectConfirmed => DefectConfirmed, NoDefect => NoDefect, CustomerDamage => CustomerDamage,
});
proto_enum!(RefundKind => pb::RefundKind {
    Return => Return, RefundOnly => RefundOnly, NegotiatedPartial => NegotiatedPartial,
    PriceDifference => PriceDifference,
});
proto_enum!(TrackingKind => pb::TrackingKind {
    PickedUp => PickedUp, InTransit => InTransit, DeliveredToWarehouse => DeliveredToWarehouse, Exception => Exception,
});
proto_enum!(Condition => pb::Condition { Unopened => Unopened, LikeNew => LikeNew, Used => Used, Damaged => Damaged });
proto_enum!(Disposition => pb::Disposition {
    Restock => Restock, Refurbish => Refurbish, Repair => Repair, Scrap => Scrap, ReturnToCustomer => ReturnToCustomer,
});
proto_enum!(Resolution => pb::Resolution { Refund => Refund, Exchange => Exchange, Repair => Repair, Reject => Reject });
proto_enum!(CompensationKind => pb::CompensationKind {
    Cash => Cash, Coupon => Coupon, Gift => Gift, ExtendedWarranty => ExtendedWarranty,
});
proto_enum!(CompensationStatus => pb::CompensationStatus {
    PendingApproval => PendingApproval, Approved => Approved, Paid => Paid, Granted => Granted,
    Rejected => Rejected, PaymentFailed => PaymentFailed,
});
proto_enum!(RefundState => pb::RefundState { Pending => Pending, Succeeded => Succeeded, Failed => Failed });

pub fn money(m: &Money) -> common::Money {
    m.to_proto()
}

pub fn line(l: &ReturnLine) -> pb::ReturnLine {
    pb::ReturnLine {
        sku: l.sku.clone(),
        product_line: l.product_line.clone(),
        quantity: l.quantity,
        unit_price: Some(money(&l.unit_price)),
        delivered_at: Some(timestamp(l.delivered_at)),
    }
}

pub fn inspection(i: &InspectionLine) -> pb::InspectionLine {
    pb::InspectionLine {
        sku: i.sku.clone(),
        condition: i.condition.to_proto(),
        quality_defect: i.quality_defect,
        disposition: i.disposition.to_proto(),
        note: i.note.clone(),
    }
}

pub fn rma(agg: &ReturnAggregate) -> pb::Return {
    let r = &agg.rma;
    pb::Return {
        id: r.id.clone(),
        order_id: r.order_id.clone(),
        customer_id: r.customer_id.clone(),
        ticket_id: r.ticket_id.clone().unwrap_or_default(),
        repair_job_id: r.repair.job_id.clone().unwrap_or_default(),
        lines: r.lines.iter().map(line).collect(),
        reason: r.reason.to_proto(),
        evidence: r.evidence.clone(),
        desired_outcome: r.desired.to_proto(),
        status: r.status.to_proto(),
        eligibility_rule: r.eligibility_rule.clone(),
        rejection_reason: r.rejection_reason.clone().unwrap_or_default(),
        shipment: r.shipment.as_ref().map(|s| pb::Shipment {
            carrier: s.carrier.clone(),
            tracking_number: s.tracking_number.clone(),
            label_ref: s.label_ref.clone(),
            fee: Some(money(&s.fee)),
            booked_at: Some(timestamp(s.booked_at)),
            last_event: s.last_event.clone(),
        }),
        inspection: r.inspection.iter().map(inspection).collect(),
        overdue: agg.overdue(),
        deadlines: agg
            .deadlines
            .iter()
            .map(|d| pb::StepDeadline {
                step: d.step.to_proto(),
                due_at: Some(timestamp(d.due_at)),
                state: d.state.to_string(),
            })
            .collect(),
        refund_id: r.refund_id.clone().unwrap_or_default(),
        history: r
            .history
            .iter()
            .map(|h| pb::StepRecord {
                from: h.from.map_or(0, |s| s.to_proto()),
                to: h.to.to_proto(),
                actor_id: h.actor_id.clone(),
                actor_role: h.actor_role.clone(),
                note: h.note.clone(),
                at: Some(timestamp(h.at)),
            })
            .collect(),
        customer_time_zone: r.customer_time_zone.clone(),
        created_at: Some(timestamp(r.created_at)),
        updated_at: Some(timestamp(r.updated_at)),
        third_party_inspection: r.third_party.as_ref().map(|lab| pb::ThirdPartyInspection {
            lab: lab.lab.clone(),
            requested_at: Some(timestamp(lab.requested_at)),
            due_at: Some(timestamp(lab.due_at)),
            verdict: lab.verdict.map_or(0, Verdict::to_proto),
            lab_reference: lab.lab_reference.clone().unwrap_or_default(),
            notes: lab.notes.clone(),
            reported_at: lab.reported_at.map(timestamp),
        }),
        refund_only: r.refund_only,
        partial_agreement: r.agreement.as_ref().map(|a| pb::PartialAgreement {
            amount: Some(money(&a.amount)),
            customer_agreement: a.customer_agreement.clone(),
            agreed_by: a.agreed_by.clone(),
            agreed_at: Some(timestamp(a.agreed_at)),
            reason: a.reason.clone(),
        }),
    }
}

pub fn refund(r: &Refund) -> pb::Refund {
    pb::Refund {
        id: r.id.clone(),
        return_id: r.return_id.clone(),
        amount: Some(money(&r.amount)),
        lines: r
            .lines
            .iter()
            .map(|l| pb::RefundLine {
                kind: l.kind.clone(),
                description: l.description.clone(),
                amount: Some(money(&Money::new(l.amount, &r.amount.currency))),
                rule: l.rule.clone().unwrap_or_default(),
            })
            .collect(),
        state: r.state.to_proto(),
        attempts: r.attempts,
        provider_reference: r.provider_reference.clone().unwrap_or_default(),
        last_error: r.last_error.clone().unwrap_or_default(),
        created_at: Some(timestamp(r.created_at)),
        updated_at: Some(timestamp(r.updated_at)),
        kind: r.kind.to_proto(),
        order_id: r.order_id.clone(),
    }
}

pub fn compensation(c: &Compensation) -> pb::Compensation {
    pb::Compensation {
        id: c.id.clone(),
        ticket_id: c.ticket_id.clone(),
        customer_id: c.customer_id.clone(),
        order_id: c.order_id.clone().unwrap_or_default(),
        kind: c.kind.to_proto(),
        amount: Some(money(&c.amount)),
        warranty_months: c.warranty_months,
        reason: c.reason.clone(),
        status: c.status.to_proto(),
        requested_by: c.requested_by.clone(),
        requested_role: c.requested_role.to_string(),
        requester_limit_minor: c.requester_limit,
        decided_by: c.decided_by.clone().unwrap_or_default(),
        decided_role: c.decided_role.map(|r| r.to_string()).unwrap_or_default(),
        decided_at: c.decided_at.map(timestamp),
        rejection_reason: c.rejection_reason.clone().unwrap_or_default(),
        payment_attempts: c.attempts,
        provider_reference: c.provider_reference.clone().unwrap_or_default(),
        last_error: c.last_error.clone().unwrap_or_default(),
        created_at: Some(timestamp(c.created_at)),
        updated_at: Some(timestamp(c.updated_at)),
    }
}

pub fn policy(p: &ReturnPolicy) -> pb::ReturnPolicy {
    pb::ReturnPolicy {
        product_line: p.product_line.clone(),
        no_reason_days: p.no_reason_days,
        exchange_days: p.exchange_days,
        warranty_months: p.warranty_months,
        exclusion: p.exclusion.map(|e| e.to_string()).unwrap_or_default(),
        auto_approve: p.auto_approve,
        damage_deduction_percent: u32::from(p.damage_deduction_percent),
        refund_only_max_minor: p.refund_only_max_minor,
        partial_refund_max_percent: u32::from(p.partial_refund_max_percent),
        price_protection_days: p.price_protection_days,
        price_protection_max_minor: p.price_protection_max_minor,
    }
}

/// A carrier's statement for a month: its shipments and the fees totalled per currency.
pub fn carrier_statement(
    carrier: String,
    month: String,
    lines: &[CarrierLine],
) -> pb::CarrierReconciliationResponse {
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    for l in lines {
        *totals.entry(l.fee.currency.as_str()).or_default() += l.fee.minor;
    }
    pb::CarrierReconciliationResponse {
        carrier,
        month,
        shipments: lines
            .iter()
            .map(|l| pb::CarrierShipment {
                return_id: l.return_id.clone(),
                tracking_number: l.tracking_number.clone(),
                fee: Some(money(&l.fee)),
                booked_at: Some(timestamp(l.booked_at)),
                status: l.status.to_proto(),
            })
            .collect(),
        totals: totals
            .into_iter()
            .map(|(currency, minor)| money(&Money::new(minor, currency)))
            .collect(),
    }
}
