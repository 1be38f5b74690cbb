//! Unit tests of the compensation rules: the limits per role, approval by the next
//! level only, the four-eyes rule, payment once, and fields named.

use super::*;

const NET: Duration = Duration::seconds(30);

fn now() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

fn who(id: &str, roles: &[DeskRole]) -> Decider {
    Decider {
        actor_id: id.into(),
        subject: id.into(),
        authority: ApprovalLimits::default().authority(roles),
    }
}

fn new(kind: CompensationKind, minor: i64) -> NewCompensation {
    NewCompensation {
        ticket_id: "t-1".into(),
        customer_id: "c-1".into(),
        order_id: None,
        kind,
        amount: Money::new(minor, "CNY"),
        warranty_months: if kind == CompensationKind::ExtendedWarranty {
            12
        } else {
            0
        },
        reason: "late delivery".into(),
    }
}

fn request(kind: CompensationKind, minor: i64, by: &Decider) -> Compensation {
    let limits = ApprovalLimits::default();
    Compensation::request(new(kind, minor), by, &limits, NET, now())
        .unwrap()
        .0
}

fn rule(err: DomainError) -> (String, String) {
    match err {
        DomainError::Refused { rule, detail } => (rule, detail),
        other => panic!("not a refusal: {other:?}"),
    }
}

#[test]
fn each_role_approves_up_to_its_limit_at_once() {
    let limits = ApprovalLimits::default();
    for (role, limit) in [
        (DeskRole::Agent, 5_000),
        (DeskRole::Supervisor, 50_000),
        (DeskRole::Manager, 500_000),
    ] {
        let by = who("u", &[role]);
        let (within, events) =
            Compensation::request(new(CompensationKind::Cash, limit), &by, &limits, NET, now())
                .unwrap();
        assert_eq!(within.status, CompensationStatus::Approved, "{role}");
        assert_eq!(events, [CompensationEvent::Approved]);
        assert_eq!(within.next_attempt_at, Some(now() + NET));
        assert_eq!(within.decided_role, Some(role));
        let over = Compensation::request(
            new(CompensationKind::Cash, limit + 1),
            &by,
            &limits,
            NET,
            now(),
        );
        if role == DeskRole::Manager {
            assert_eq!(rule(over.unwrap_err()).0, "compensation_over_every_limit");
            continue;
        }
        let (over, events) = over.unwrap();
        assert_eq!(over.status, CompensationStatus::PendingApproval, "{role}");
        assert_eq!(over.requester_limit, limit);
        assert_eq!(events, [CompensationEvent::Requested]);
        assert_eq!(over.next_attempt_at, None, "nothing to pay yet");
    }
}

#[test]
fn the_most_senior_limit_a_caller_holds_counts() {
    let limits = ApprovalLimits::default();
    let both = limits
        .authority(&[DeskRole::Agent, DeskRole::Manager])
        .unwrap();
    assert_eq!((both.role, both.limit), (DeskRole::Manager, 500_000));
    assert_eq!(limits.authority(&[]), None);
    let flat = ApprovalLimits {
        agent: 100,
        supervisor: 100,
        manager: 100,
    };
    assert_eq!(
        flat.authority(&[DeskRole::Agent, DeskRole::Supervisor])
            .unwrap()
            .role,
        DeskRole::Supervisor,
        "equal limits: the more senior role is recorded"
    );
}

#[test]
fn above_the_limit_waits_for_the_next_level_not_a_lower_one_nor_the_requester() {
    let agent = who("agent-1", &[DeskRole::Agent]);
    let mut waiting = request(CompensationKind::Cash, 20_000, &agent);
    let other_agent = who("agent-2", &[DeskRole::Agent]);
    let (rule_name, detail) = rule(waiting.approve(&other_agent, NET, now()).unwrap_err());
    assert_eq!(rule_name, OVER_LIMIT);
    assert!(detail.contains("agent approval limit of 5000"), "{detail}");

    let supervisor = who("sup-1", &[DeskRole::Supervisor]);
    let mut own = request(CompensationKind::Cash, 60_000, &supervisor);
    let (rule_name, _) = rule(own.approve(&supervisor, NET, now()).unwrap_err());
    assert_eq!(rule_name, "compensation_self_approval");
    let manager = who("mgr-1", &[DeskRole::Manager]);
    // Acting for the requester is being the requester.
    let via = Decider {
        actor_id: "someone-else".into(),
        subject: "sup-1".into(),
        authority: manager.authority,
    };
    assert_eq!(
        rule(own.approve(&via, NET, now()).unwrap_err()).0,
        "compensation_self_approval"
    );

    let events = waiting.approve(&supervisor, NET, now()).unwrap();
    assert_eq!(events, [CompensationEvent::Approved]);
    assert_eq!(waiting.status, CompensationStatus::Approved);
    assert_eq!(waiting.decided_by.as_deref(), Some("sup-1"));
    assert_eq!(waiting.decided_role, Some(DeskRole::Supervisor));
    assert!(matches!(
        waiting.approve(&manager, NET, now()),
        Err(DomainError::Precondition(_))
    ));
}

#[test]
fn rejection_needs_a_covering_limit_unless_the_requester_withdraws() {
    let agent = who("agent-1", &[DeskRole::Agent]);
    let mut waiting = request(CompensationKind::Gift, 20_000, &agent);
    assert_eq!(
        rule(
            waiting
                .reject(&who("agent-2", &[DeskRole::Agent]), "no".into(), now())
                .unwrap_err()
        )
        .0,
        OVER_LIMIT
    );
    let events = waiting.reject(&agent, "withdrawn".into(), now()).unwrap();
    assert_eq!(events, [CompensationEvent::Rejected]);
    assert_eq!(waiting.status, CompensationStatus::Rejected);
    assert!(waiting.reject(&agent, "again".into(), now()).is_err());
}

#[test]
fn other_kinds_are_granted_and_never_paid() {
    let agent = who("agent-1", &[DeskRole::Agent]);
    for kind in [
        CompensationKind::Coupon,
        CompensationKind::Gift,
        CompensationKind::ExtendedWarranty,
    ] {
        let mut granted = request(kind, 3_000, &agent);
        assert_eq!(granted.status, CompensationStatus::Granted, "{kind}");
        assert_eq!(granted.next_attempt_at, None);
        assert!(!granted.awaits_payment());
        let paid = PaymentOutcome::Paid {
            reference: "x".into(),
        };
        assert_eq!(granted.record(paid, now()), None);
    }
}

#[test]
fn cash_is_paid_once_and_late_answers_change_nothing() {
    let agent = who("agent-1", &[DeskRole::Agent]);
    let mut cash = request(CompensationKind::Cash, 3_000, &agent);
    assert_eq!(
        cash.record(PaymentOutcome::Transient("timeout".into()), now()),
        Some(None)
    );
    assert_eq!(cash.next_attempt_at, Some(now() + Duration::seconds(1)));
    let paid = PaymentOutcome::Paid {
        reference: "P-1".into(),
    };
    assert_eq!(
        cash.record(paid.clone(), now()),
        Some(Some(CompensationEvent::Paid))
    );
    assert_eq!(cash.status, CompensationStatus::Paid);
    assert_eq!(cash.record(paid, now()), None, "a twin's answer");
    let mut refused = request(CompensationKind::Cash, 3_000, &agent);
    assert_eq!(
        refused.record(PaymentOutcome::Permanent("closed".into()), now()),
        Some(Some(CompensationEvent::PaymentFailed))
    );
    assert_eq!(refused.status, CompensationStatus::PaymentFailed);
}

#[test]
fn bad_requests_are_named_by_field() {
    let limits = ApprovalLimits::default();
    let agent = who("agent-1", &[DeskRole::Agent]);
    let field = |n: NewCompensation| match Compensation::request(n, &agent, &limits, NET, now()) {
        Err(DomainError::Invalid { field, .. }) => field,
        other => panic!("accepted: {other:?}"),
    };
    assert_eq!(field(new(CompensationKind::Cash, 0)), "amount.minor_units");
    let mut months = new(CompensationKind::Coupon, 100);
    months.warranty_months = 6;
    assert_eq!(field(months), "warranty_months");
    let mut none = new(CompensationKind::ExtendedWarranty, 100);
    none.warranty_months = 0;
    assert_eq!(field(none), "warranty_months");
    let nobody = Decider {
        authority: None,
        ..agent
    };
    let refused =
        Compensation::request(new(CompensationKind::Cash, 1), &nobody, &limits, NET, now());
    assert_eq!(
        rule(refused.unwrap_err()).0,
        "compensation_needs_a_desk_role"
    );
}
