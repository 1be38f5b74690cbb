//! Unit tests of the return lifecycle: transitions, deadlines, stock movements.

use chrono::Duration;

use super::*;

fn t(s: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(1_800_000_000 + s)
}

fn actor() -> Actor {
    Actor::new("agent", "agent")
}

fn request(decision: Decision) -> (ReturnAggregate, Vec<ReturnEvent>) {
    let new = NewReturn {
        order_id: "o1".into(),
        customer_id: "c1".into(),
        ticket_id: None,
        lines: vec![ReturnLine {
            sku: "K1".into(),
            product_line: "kettle".into(),
            quantity: 2,
            unit_price: Money::new(10_000, "CNY"),
            delivered_at: t(0),
        }],
        reason: Reason::NoReason,
        evidence: vec![],
        desired: Outcome::Refund,
        customer_time_zone: "Asia/Shanghai".into(),
        refund_only: false,
    };
    ReturnAggregate::request(new, &decision, &StepTargets::handbook(), &actor(), t(0))
}

fn shipment() -> Shipment {
    Shipment {
        carrier: "simulated".into(),
        tracking_number: "SIM1".into(),
        label_ref: "l".into(),
        fee: Money::new(800, "CNY"),
        booked_at: t(10),
        last_event: String::new(),
    }
}

#[test]
fn an_eligible_request_is_approved_with_a_pickup_deadline() {
    let (agg, events) = request(Decision::Approve {
        rule: "no_reason_within_7_days".into(),
    });
    assert_eq!(agg.rma.status, Status::Approved);
    assert_eq!(
        events,
        [
            ReturnEvent::Requested,
            ReturnEvent::Approved {
                rule: "no_reason_within_7_days".into()
            }
        ]
    );
    assert_eq!(agg.deadlines.len(), 1);
    assert_eq!(
        (agg.deadlines[0].step, agg.deadlines[0].due_at),
        (Step::Pickup, t(86_400))
    );
}

#[test]
fn a_refused_request_is_recorded_as_rejected_with_its_rule() {
    let (agg, events) = request(Decision::Refuse {
        rule: "excluded_digital (sku K1)".into(),
    });
    assert_eq!(agg.rma.status, Status::Rejected);
    assert_eq!(
        agg.rma.rejection_reason.as_deref(),
        Some("excluded_digital (sku K1)")
    );
    assert!(matches!(
        events[1],
        ReturnEvent::Rejected {
            after_inspection: false,
            ..
        }
    ));
}

#[test]
fn the_happy_path_moves_through_every_step_and_meets_every_deadline() {
    let targets = StepTargets::handbook();
    let (mut agg, _) = request(Decision::Review { rule: "r".into() });
    assert_eq!(agg.deadlines[0].step, Step::Review);
    agg.approve("looks fine", &targets, &actor(), t(5)).unwrap();
    agg.book_pickup(shipment(), &actor(), t(10)).unwrap();
    agg.track(TrackingKind::PickedUp, "", &targets, t(20))
        .unwrap();
    assert_eq!(agg.rma.status, Status::InTransit);
    let (events, stock) = agg
        .track(TrackingKind::DeliveredToWarehouse, "WH1", &targets, t(30))
        .unwrap();
    assert_eq!(events, [ReturnEvent::Received]);
    assert_eq!(stock[0].movement, "received");
    let inspected = vec![InspectionLine {
        sku: "K1".into(),
        condition: Condition::LikeNew,
        quality_defect: false,
        disposition: Disposition::Restock,
        note: String::new(),
    }];
    let (_, stock) = agg.inspect(inspected, &actor(), &targets, t(40)).unwrap();
    assert_eq!(
        (stock[0].movement.as_str(), stock[0].quantity),
        ("restock", 2)
    );
    agg.resolve(Resolution::Refund, "", Some("R1".into()), &actor(), t(50))
        .unwrap();
    assert_eq!(
        agg.rma.status,
        Status::Inspected,
        "refunded only once the money went out"
    );
    agg.refunded("PAY-1", t(60)).unwrap();
    assert_eq!(agg.rma.status, Status::Refunded);
    assert!(
        agg.deadlines.iter().all(|d| d.state == DeadlineState::Met),
        "{:?}",
        agg.deadlines
    );
    agg.close(&actor(), t(70)).unwrap();
    assert_eq!(agg.rma.history.len(), 8);
}

#[test]
fn customers_may_cancel_until_pickup_only() {
    let targets = StepTargets::handbook();
    let (mut agg, _) = request(Decision::Approve { rule: "r".into() });
    agg.book_pickup(shipment(), &actor(), t(10)).unwrap();
    agg.track(TrackingKind::PickedUp, "", &targets, t(20))
        .unwrap();
    let err = agg.cancel("changed my mind", &actor(), t(30)).unwrap_err();
    assert_eq!(
        err,
        DomainError::IllegalTransition {
            from: Status::InTransit,
            to: Status::Cancelled
        }
    );
}

#[test]
fn a_missed_step_fires_once_and_is_met_late_afterwards() {
    let (mut agg, _) = request(Decision::Approve { rule: "r".into() });
    let id = agg.deadlines[0].id.clone();
    assert!(agg.fire_deadline(&id, t(86_399)).is_empty(), "never early");
    let events = agg.fire_deadline(&id, t(86_400));
    assert_eq!(
        events,
        [ReturnEvent::StepOverdue {
            step: Step::Pickup,
            due_at: t(86_400)
        }]
    );
    assert!(agg.overdue());
    assert!(agg.fire_deadline(&id, t(90_000)).is_empty());
    agg.book_pickup(shipment(), &actor(), t(90_000)).unwrap();
    agg.track(
        TrackingKind::PickedUp,
        "",
        &StepTargets::handbook(),
        t(90_001),
    )
    .unwrap();
    assert_eq!(agg.deadlines[0].state, DeadlineState::MetLate);
    assert!(!agg.overdue());
}

#[test]
fn tracking_events_out_of_order_only_leave_a_note() {
    let targets = StepTargets::handbook();
    let (mut agg, _) = request(Decision::Approve { rule: "r".into() });
    agg.book_pickup(shipment(), &actor(), t(10)).unwrap();
    agg.track(TrackingKind::DeliveredToWarehouse, "", &targets, t(20))
        .unwrap();
    let (events, stock) = agg
        .track(TrackingKind::InTransit, "late scan", &targets, t(30))
        .unwrap();
    assert!(events.is_empty() && stock.is_empty());
    assert_eq!(agg.rma.status, Status::Received);
    assert_eq!(
        agg.rma.shipment.unwrap().last_event,
        "in_transit: late scan"
    );
}

#[test]
fn every_line_must_be_inspected_once() {
    let targets = StepTargets::handbook();
    let (mut agg, _) = request(Decision::Approve { rule: "r".into() });
    agg.book_pickup(shipment(), &actor(), t(10)).unwrap();
    agg.receive(&actor(), "", &targets, t(20)).unwrap();
    let err = agg.inspect(vec![], &actor(), &targets, t(30)).unwrap_err();
    assert!(matches!(err, DomainError::Invalid { ref field, .. } if field == "lines"));
}

#[test]
fn erasing_free_text_keeps_ids_codes_and_rule_names_and_is_idempotent() {
    let (mut agg, _) = request(Decision::Approve {
        rule: "no_reason_within_7_days".into(),
    });
    agg.rma.evidence = vec!["s3://evidence/1.jpg".into()];
    agg.book_pickup(shipment(), &actor(), t(10)).unwrap();
    agg.track(
        TrackingKind::DeliveredToWarehouse,
        "signed by Wang Li, 5 Garden Road",
        &StepTargets::handbook(),
        t(20),
    )
    .unwrap();
    let lines = vec![InspectionLine {
        sku: "K1".into(),
        condition: Condition::Damaged,
        quality_defect: false,
        disposition: Disposition::Scrap,
        note: "Wang Li dropped it".into(),
    }];
    agg.inspect(lines, &actor(), &StepTargets::handbook(), t(30))
        .unwrap();
    agg.resolve(
        Resolution::Reject,
        "Wang Li admitted dropping it",
        None,
        &actor(),
        t(40),
    )
    .unwrap();

    agg.rma.erase_free_text("[gone]");
    let once = agg.rma.clone();
    agg.rma.erase_free_text("[gone]");
    assert_eq!(agg.rma, once, "erasing again changes nothing");
    let text = format!("{:?}", agg.rma);
    for said in ["Wang", "Garden", "evidence/1.jpg"] {
        assert!(!text.contains(said), "{said} survived: {text}");
    }
    assert_eq!(agg.rma.rejection_reason.as_deref(), Some("[gone]"));
    assert_eq!(agg.rma.inspection[0].note, "[gone]");
    assert_eq!(agg.rma.status, Status::RejectedAfterInspection);
    assert_eq!(agg.rma.eligibility_rule, "no_reason_within_7_days");
    let approval = agg
        .rma
        .history
        .iter()
        .find(|h| h.to == Status::Approved)
        .unwrap();
    assert_eq!(approval.note, "no_reason_within_7_days", "rule names stay");
    assert_eq!(agg.rma.shipment.unwrap().tracking_number, "SIM1");
}

#[test]
fn a_rejection_by_the_rules_keeps_its_rule_name() {
    let (mut agg, _) = request(Decision::Refuse {
        rule: "excluded_category".into(),
    });
    agg.rma.erase_free_text("[gone]");
    assert_eq!(
        agg.rma.rejection_reason.as_deref(),
        Some("excluded_category")
    );
}

/// An approved return, waiting for its pickup.
pub(crate) fn approved() -> ReturnAggregate {
    request(Decision::Approve {
        rule: "no_reason_within_7_days".into(),
    })
    .0
}

/// A return inspected with a defect, waiting to be settled.
pub(crate) fn inspected() -> ReturnAggregate {
    let targets = StepTargets::handbook();
    let (mut agg, _) = request(Decision::Approve {
        rule: "fault_repair_under_warranty".into(),
    });
    agg.book_pickup(shipment(), &actor(), t(10)).unwrap();
    agg.receive(&actor(), "", &targets, t(20)).unwrap();
    let inspected = vec![InspectionLine {
        sku: "K1".into(),
        condition: Condition::Used,
        quality_defect: true,
        disposition: Disposition::Repair,
        note: String::new(),
    }];
    agg.inspect(inspected, &actor(), &targets, t(30)).unwrap();
    agg
}

/// A return inspected with a defect and resolved as repair, waiting for its repair job.
pub(crate) fn sent_to_repair() -> ReturnAggregate {
    let mut agg = inspected();
    let events = agg
        .resolve(Resolution::Repair, "", None, &actor(), t(40))
        .unwrap();
    assert_eq!(events, [ReturnEvent::RepairRequested]);
    agg
}
