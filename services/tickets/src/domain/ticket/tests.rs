//! The ticket rules, case by case.

use chrono::Duration;

use super::*;
use crate::domain::{Author, ClockState, policy::default_policies};

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(1_800_000_000 + seconds)
}

fn new_ticket(severity: Severity) -> NewTicket {
    NewTicket {
        customer_id: "c1".into(),
        order_id: "o1".into(),
        channel: Channel::Hotline,
        category: Category::Complaint,
        severity,
        complexity: Complexity::Simple,
        subject: "Broken".into(),
        description: "It broke".into(),
        evidence: vec![],
        tier: Tier::Regular,
        product: Default::default(),
        reported_at: None,
    }
}

fn policy(id: &str) -> SlaPolicy {
    default_policies(t(0))
        .into_iter()
        .find(|p| p.id == id)
        .unwrap()
}

fn general_policy() -> SlaPolicy {
    policy("default")
}

fn open(severity: Severity, policy: &SlaPolicy) -> (TicketAggregate, Vec<TicketEvent>) {
    TicketAggregate::open(new_ticket(severity), policy, &Schedules::default(), t(0))
}

fn clock(a: &TicketAggregate, kind: ClockKind) -> &SlaClock {
    a.clocks.iter().find(|c| c.kind == kind).unwrap()
}

#[test]
fn urgent_tickets_start_with_a_supervisor() {
    let urgent = policy("urgent");
    let (a, events) = open(Severity::Urgent, &urgent);
    assert_eq!(a.ticket.level, Level::Supervisor);
    assert!(matches!(
        events[1],
        TicketEvent::Escalated {
            from: Level::Agent,
            to: Level::Supervisor,
            ..
        }
    ));
}

#[test]
fn the_first_agent_reply_meets_first_response_and_opens_the_ticket() {
    let p = general_policy();
    let (mut a, _) = open(Severity::General, &p);
    let s = Schedules::default();
    assert!(
        a.add_reply(Author::Customer, &p, &s, t(10))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        clock(&a, ClockKind::FirstResponse).state,
        ClockState::Running
    );
    let events = a.add_reply(Author::Agent, &p, &s, t(20)).unwrap();
    assert_eq!(a.ticket.status, Status::Open);
    assert!(matches!(
        &events[0],
        TicketEvent::ClockMet { clock, actual_minus_standard_ms: -3_580_000 }
            if clock.kind == ClockKind::FirstResponse
    ));
    assert!(matches!(
        events[1],
        TicketEvent::StatusChanged {
            from: Status::New,
            to: Status::Open,
            ..
        }
    ));
    assert_eq!(clock(&a, ClockKind::FirstResponse).state, ClockState::Met);
    assert_eq!(a.ticket.first_response_at, Some(t(20)));
}

#[test]
fn illegal_transitions_name_both_states() {
    let p = general_policy();
    let (mut a, _) = open(Severity::General, &p);
    let err = a
        .change_status(Status::Closed, "", &p, &Schedules::default(), t(1))
        .unwrap_err();
    assert_eq!(
        err,
        DomainError::IllegalTransition {
            from: Status::New,
            to: Status::Closed
        }
    );
    let err = a.reopen("", &p, &Schedules::default(), t(1)).unwrap_err();
    assert_eq!(
        err,
        DomainError::IllegalTransition {
            from: Status::New,
            to: Status::Reopened
        }
    );
}

#[test]
fn waiting_on_the_customer_pauses_and_their_reply_resumes() {
    let p = general_policy();
    let s = Schedules::default();
    let (mut a, _) = open(Severity::General, &p);
    let due = clock(&a, ClockKind::Resolution).due_at;
    a.change_status(Status::PendingCustomer, "asked for photos", &p, &s, t(100))
        .unwrap();
    assert_eq!(clock(&a, ClockKind::Resolution).state, ClockState::Paused);
    a.add_reply(Author::Customer, &p, &s, t(400)).unwrap();
    assert_eq!(a.ticket.status, Status::Open);
    assert_eq!(
        clock(&a, ClockKind::Resolution).due_at,
        due + Duration::seconds(300)
    );
}

#[test]
fn a_breach_escalates_one_level_once() {
    let p = general_policy();
    let (mut a, _) = open(Severity::General, &p);
    let id = clock(&a, ClockKind::FirstResponse).id.clone();
    assert!(
        a.fire_clock(&id, &p, &Schedules::default(), t(3599)).len() == 1,
        "the warning"
    );
    let events = a.fire_clock(&id, &p, &Schedules::default(), t(3600));
    assert!(matches!(events[0], TicketEvent::SlaBreached { .. }));
    assert!(
        matches!(&events[1], TicketEvent::Escalated { to: Level::Supervisor, clock_id: Some(c), .. } if *c == id)
    );
    assert!(
        a.fire_clock(&id, &p, &Schedules::default(), t(3700))
            .is_empty()
    );
    assert_eq!(a.ticket.level, Level::Supervisor);
    assert!(a.ticket.breached);
}

#[test]
fn resolve_then_reopen_restarts_resolution() {
    let p = general_policy();
    let s = Schedules::default();
    let (mut a, _) = open(Severity::General, &p);
    let events = a
        .change_status(Status::Resolved, "fixed", &p, &s, t(50))
        .unwrap();
    assert!(events.contains(&TicketEvent::Resolved));
    assert_eq!(clock(&a, ClockKind::Resolution).state, ClockState::Met);
    a.change_status(Status::Closed, "", &p, &s, t(60)).unwrap();
    a.reopen("not fixed", &p, &s, t(100)).unwrap();
    assert_eq!(a.ticket.reopen_count, 1);
    let r = clock(&a, ClockKind::Resolution);
    assert_eq!(
        (r.state, r.cycle, r.due_at),
        (ClockState::Running, 2, t(100 + 24 * 3600))
    );
}

#[test]
fn escalation_only_goes_up() {
    let p = general_policy();
    let (mut a, _) = open(Severity::General, &p);
    a.escalate(None, "customer disagrees", t(1)).unwrap();
    a.escalate(Some(Level::Manager), "compensation", t(2))
        .unwrap();
    assert_eq!(
        a.escalate(None, "", t(3)).unwrap_err(),
        DomainError::CannotEscalate {
            current: Level::Manager,
            requested: Level::Manager
        }
    );
}

#[test]
fn raising_severity_retargets_live_clocks() {
    let general = general_policy();
    let (mut a, _) = open(Severity::General, &general);
    let tighter = SlaPolicy {
        id: "tight".into(),
        resolution: SlaTarget::always_on(600),
        initial_level: Level::Supervisor,
        ..general.clone()
    };
    let events = a
        .set_severity(
            Severity::Urgent,
            "injury",
            &tighter,
            &Schedules::default(),
            t(100),
        )
        .unwrap();
    assert_eq!(clock(&a, ClockKind::Resolution).due_at, t(600));
    assert_eq!(a.ticket.policy_id, "tight");
    assert_eq!(a.ticket.level, Level::Supervisor);
    assert_eq!(events.len(), 1);
}

#[test]
fn the_lifecycle_table() {
    use Status::*;
    assert!(
        can_move(New, Open)
            && can_move(Open, PendingCustomer)
            && can_move(PendingCustomer, Resolved)
    );
    assert!(can_move(Resolved, Closed) && can_move(Closed, Reopened) && can_move(Reopened, Open));
    assert!(!can_move(Closed, Open) && !can_move(Open, New) && !can_move(New, Closed));
}

fn team(id: &str) -> crate::domain::watchers::Watcher {
    crate::domain::watchers::Watcher {
        kind: crate::domain::WatcherKind::Team,
        id: id.into(),
    }
}

#[test]
fn watchers_stay_sorted_once_each_and_bounded() {
    use crate::domain::watchers::MAX_WATCHERS;
    let p = general_policy();
    let (mut a, _) = open(Severity::General, &p);
    assert_eq!(a.add_watcher(team("product")), Ok(true));
    assert_eq!(a.add_watcher(team("legal")), Ok(true));
    assert_eq!(a.add_watcher(team("legal")), Ok(false), "once each");
    assert_eq!(a.ticket.watchers, [team("legal"), team("product")]);
    assert!(a.remove_watcher(&team("legal")));
    assert!(!a.remove_watcher(&team("legal")));
    for i in 1..MAX_WATCHERS {
        assert_eq!(a.add_watcher(team(&format!("t{i:02}"))), Ok(true));
    }
    assert!(matches!(
        a.add_watcher(team("one-too-many")),
        Err(DomainError::Precondition(_))
    ));
}

#[test]
fn activity_changes_name_each_field_before_and_after() {
    use crate::domain::activity::{FieldChange, changes};
    let p = general_policy();
    let (mut a, _) = open(Severity::General, &p);
    let before = a.ticket.clone();
    assert!(changes(&before, &a.ticket).is_empty());
    let agent = crate::domain::team::Agent {
        id: "agent-7".into(),
        group_ids: vec!["orders".into()],
        skills: vec![],
        capacity: 5,
        role: crate::domain::team::AgentRole::Agent,
    };
    let none = Schedules::default();
    let events = a
        .route(Some("orders".into()), Some(&agent), "manual", &none, t(5))
        .unwrap();
    assert_eq!(events.len(), 1);
    assert!(
        a.route(Some("orders".into()), Some(&agent), "manual", &none, t(6))
            .unwrap()
            .is_empty(),
        "the same assignment again changes nothing"
    );
    a.add_watcher(team("legal")).unwrap();
    let change = |field: &str, before: &str, after: &str| FieldChange {
        field: field.into(),
        before: before.into(),
        after: after.into(),
    };
    assert_eq!(
        changes(&before, &a.ticket),
        [
            change("group", "", "orders"),
            change("assignee", "", "agent-7"),
            change("watchers", "", "team:legal"),
        ]
    );
}

#[test]
fn watcher_ids_are_ids_not_contacts() {
    use crate::domain::watchers::watcher_id;
    assert_eq!(watcher_id(" legal "), Ok("legal".into()));
    assert!(watcher_id("agent-7").is_ok());
    for bad in [
        "",
        "li.wang@example.com",
        "138 1234 5678",
        "13812345678",
        "a b",
    ] {
        assert!(watcher_id(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn an_emergency_hold_and_a_status_pause_each_keep_the_clocks_paused() {
    let p = general_policy();
    let s = Schedules::default();
    let (mut a, _) = open(Severity::General, &p);
    a.change_status(Status::Open, "", &p, &s, t(10)).unwrap();
    a.hold("inc-1", &p, &s, t(100)).unwrap();
    a.hold("inc-1", &p, &s, t(150)).unwrap();
    assert_eq!(a.ticket.holds, ["inc-1"], "held once");
    assert_eq!(clock(&a, ClockKind::Resolution).state, ClockState::Paused);
    // Waiting on the customer meanwhile: releasing the hold does not start the clocks.
    a.change_status(Status::PendingCustomer, "", &p, &s, t(200))
        .unwrap();
    a.release("inc-1", &p, &s, t(300)).unwrap();
    let paused = p.pauses_in(Status::PendingCustomer);
    assert_eq!(
        clock(&a, ClockKind::Resolution).state == ClockState::Paused,
        paused,
        "the status alone decides now"
    );
    // Open again while a second emergency holds it: still paused until that one goes.
    a.hold("inc-2", &p, &s, t(400)).unwrap();
    a.change_status(Status::Open, "", &p, &s, t(500)).unwrap();
    assert_eq!(clock(&a, ClockKind::Resolution).state, ClockState::Paused);
    let due_before = clock(&a, ClockKind::Resolution).due_at;
    a.release("inc-2", &p, &s, t(700)).unwrap();
    let c = clock(&a, ClockKind::Resolution);
    assert_eq!(c.state, ClockState::Running);
    assert!(c.due_at > due_before, "moved on by the time held");
    assert!(a.ticket.holds.is_empty());
}

#[test]
fn a_new_complexity_retargets_live_clocks_on_the_new_calendar_and_the_same_one_is_a_no_op() {
    use crate::domain::calendar::default_calendar;
    let general = general_policy();
    let complex = policy("complex");
    let schedules = Schedules::new([default_calendar()]);
    let (mut a, _) = open(Severity::General, &general);
    let before = a.clone();
    let same = a
        .set_complexity(Complexity::Simple, "as it was", &complex, &schedules, t(50))
        .unwrap();
    assert!(same.is_empty());
    assert_eq!(a, before, "nothing changed, not even the policy version");

    let events = a
        .set_complexity(
            Complexity::Complex,
            "needs a lab test",
            &complex,
            &schedules,
            t(100),
        )
        .unwrap();
    assert!(events.is_empty(), "a general ticket stays with its agent");
    assert_eq!(a.ticket.complexity, Complexity::Complex);
    assert_eq!(
        (a.ticket.policy_id.as_str(), a.ticket.policy_version),
        ("complex", 1)
    );
    let resolution = clock(&a, ClockKind::Resolution);
    let on_calendar = schedules
        .get(Some("cn-workdays"))
        .add(t(0), Duration::hours(24));
    assert_eq!(resolution.due_at, on_calendar, "counted from the start");
    assert_eq!(resolution.calendar_id.as_deref(), Some("cn-workdays"));
    assert_eq!(clock(&a, ClockKind::FirstResponse).due_at, t(3600));

    a.change_status(Status::Resolved, "done", &complex, &schedules, t(200))
        .unwrap();
    a.change_status(Status::Closed, "done", &complex, &schedules, t(300))
        .unwrap();
    assert!(matches!(
        a.set_complexity(Complexity::Simple, "late", &general, &schedules, t(400)),
        Err(DomainError::Precondition(_))
    ));
}

fn desk_agent(id: &str, role: crate::domain::team::AgentRole) -> crate::domain::team::Agent {
    crate::domain::team::Agent {
        id: id.into(),
        group_ids: vec!["desk".into()],
        skills: vec![],
        capacity: 5,
        role,
    }
}

#[test]
fn a_severity_raised_to_urgent_owes_a_hand_off_unless_a_supervisor_has_the_ticket() {
    use crate::domain::team::AgentRole;
    let none = Schedules::default();
    for (role, owed) in [
        (AgentRole::Specialist, true),
        (AgentRole::Supervisor, false),
    ] {
        let (mut a, _) = open(Severity::General, &general_policy());
        assert!(
            a.clock_of(ClockKind::HandOff).is_none(),
            "general: no hand-off"
        );
        a.route(
            Some("desk".into()),
            Some(&desk_agent("x", role)),
            "manual",
            &none,
            t(10),
        )
        .unwrap();
        a.set_severity(Severity::Urgent, "smoke", &policy("urgent"), &none, t(100))
            .unwrap();
        let hand_off = a.clock_of(ClockKind::HandOff);
        if owed {
            let c = hand_off.expect("a hand-off clock");
            assert_eq!((c.state, c.due_at), (ClockState::Running, t(100 + 3_600)));
            assert_eq!(a.awaits_hand_off(), Some(AgentRole::Supervisor));
            // A supervisor taking it over meets it, once.
            let events = a
                .route(
                    Some("desk".into()),
                    Some(&desk_agent("s", AgentRole::Supervisor)),
                    "manual",
                    &none,
                    t(400),
                )
                .unwrap();
            assert!(events.iter().any(|e| matches!(e, TicketEvent::ClockMet { clock, actual_minus_standard_ms: -3_300_000 } if clock.kind == ClockKind::HandOff)));
            assert_eq!(a.awaits_hand_off(), None);
        } else {
            assert!(hand_off.is_none(), "in a supervisor's hands already");
            assert_eq!(a.awaits_hand_off(), None);
        }
    }
}

#[test]
fn the_next_reply_runs_from_the_oldest_unanswered_message() {
    let mut p = general_policy();
    p.milestones.next_reply = Some(SlaTarget::always_on(600));
    let none = Schedules::default();
    let (mut a, _) = open(Severity::General, &p);
    a.add_reply(Author::Customer, &p, &none, t(5)).unwrap();
    assert!(
        a.clock_of(ClockKind::NextReply).is_none(),
        "the first response covers it"
    );
    a.add_reply(Author::Agent, &p, &none, t(10)).unwrap();
    a.add_reply(Author::Customer, &p, &none, t(20)).unwrap();
    a.add_reply(Author::Customer, &p, &none, t(50)).unwrap();
    assert_eq!(a.clock_of(ClockKind::NextReply).unwrap().due_at, t(620));
    let events = a.add_reply(Author::Agent, &p, &none, t(70)).unwrap();
    assert!(events.iter().any(|e| matches!(e, TicketEvent::ClockMet { clock, actual_minus_standard_ms: -550_000 } if clock.kind == ClockKind::NextReply)));
    a.add_reply(Author::Customer, &p, &none, t(80)).unwrap();
    let c = a.clock_of(ClockKind::NextReply).unwrap();
    assert_eq!(
        (c.cycle, c.due_at, c.state),
        (2, t(680), ClockState::Running)
    );
}
