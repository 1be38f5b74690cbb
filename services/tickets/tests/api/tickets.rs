//! Tickets: creation, idempotency, validation, the lifecycle and listing, on both backends.

use std::time::Duration;

use aftersales_platform::status::field_violations;
use aftersales_protos::tickets::v1 as pb;
use tonic::Code;

use crate::helpers::{Backend, create_request, spawn};

async fn lifecycle(backend: Backend) {
    let mut app = spawn(backend).await;
    let t = app.create(pb::Channel::Hotline, "").await;
    assert_eq!(t.status, pb::TicketStatus::New as i32);
    assert_eq!(t.escalation_level, pb::EscalationLevel::Agent as i32);
    assert_eq!(t.sla_policy_id, "default");

    let reply = app
        .client
        .add_reply(pb::AddReplyRequest {
            idempotency_key: "r1".into(),
            ticket_id: t.id.clone(),
            author: pb::ReplyAuthor::Agent as i32,
            author_id: "agent-7".into(),
            body: "Sorry to hear that; please send a photo".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ticket = reply.ticket.unwrap();
    assert_eq!(
        ticket.status,
        pb::TicketStatus::Open as i32,
        "the first agent reply opens the ticket"
    );
    let sla = app.sla(&t.id).await;
    let first = crate::helpers::clock(&sla, pb::ClockKind::FirstResponse);
    assert_eq!(first.state, pb::ClockState::Met as i32);

    for status in [
        pb::TicketStatus::PendingCustomer,
        pb::TicketStatus::Open,
        pb::TicketStatus::Resolved,
        pb::TicketStatus::Closed,
    ] {
        let changed = app
            .client
            .change_status(pb::ChangeStatusRequest {
                ticket_id: t.id.clone(),
                status: status as i32,
                reason: "test".into(),
                actor: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(changed.status, status as i32);
    }
    let reopened = app
        .client
        .reopen_ticket(pb::ReopenTicketRequest {
            ticket_id: t.id.clone(),
            reason: "still leaks".into(),
            actor: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (reopened.status, reopened.reopen_count),
        (pb::TicketStatus::Reopened as i32, 1)
    );
    assert_eq!(app.events(&t.id, "tickets.TicketResolved").await, 1);
    assert_eq!(app.events(&t.id, "tickets.TicketReopened").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn lifecycle_on_postgres() {
    lifecycle(Backend::Postgres).await;
}

#[tokio::test]
async fn lifecycle_on_sqlite() {
    lifecycle(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_retried_create_returns_the_first_ticket_and_creates_nothing() {
    let mut app = spawn(Backend::Postgres).await;
    let first = app.create(pb::Channel::Email, "order-1-complaint").await;
    let again = app.create(pb::Channel::Email, "order-1-complaint").await;
    assert_eq!(first, again);

    // Concurrent retries race on the same key: still one ticket.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut client = app.client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .create_ticket(create_request(pb::Channel::Chat, "racing-key"))
                .await
                .map(|r| r.into_inner().id)
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().expect("every retry succeeds"));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "all retries see the same ticket");

    let all = app
        .client
        .list_tickets(pb::ListTicketsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.tickets.len(), 2);

    let mut different = create_request(pb::Channel::Email, "order-1-complaint");
    different.subject = "Something else".into();
    let err = app.client.create_ticket(different).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&err)[0].field, "idempotency_key");
    app.stop().await;
}

#[tokio::test]
async fn bad_input_names_every_field_and_stores_nothing() {
    let mut app = spawn(Backend::Postgres).await;
    let mut request = create_request(pb::Channel::Unspecified, "");
    request.customer_id = String::new();
    request.subject = "x".repeat(500);
    request.category = 99;
    let err = app.client.create_ticket(request).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<String> = field_violations(&err)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["customer_id", "channel", "category", "subject"]);
    let all = app
        .client
        .list_tickets(pb::ListTicketsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(all.tickets.is_empty());

    let err = app
        .client
        .get_ticket(pb::GetTicketRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = app
        .client
        .list_tickets(pb::ListTicketsRequest {
            page_token: "garbage!".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_violations(&err)[0].field, "page_token");
    let err = app
        .client
        .upsert_business_calendar(pb::UpsertBusinessCalendarRequest {
            calendar: Some(pb::BusinessCalendar {
                id: "bad".into(),
                time_zone: "Nowhere/Land".into(),
                working_days: vec![pb::WorkingDay {
                    weekday: 1,
                    slots: vec![pb::TimeSlot {
                        start: "09:00".into(),
                        end: "25:00".into(),
                    }],
                }],
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        field_violations(&err)[0].field,
        "calendar.working_days[0].slots[0].end"
    );
    app.stop().await;
}

#[tokio::test]
async fn illegal_transitions_are_failed_preconditions_naming_the_state() {
    let mut app = spawn(Backend::Postgres).await;
    let t = app.create(pb::Channel::App, "").await;
    let err = app
        .client
        .change_status(pb::ChangeStatusRequest {
            ticket_id: t.id.clone(),
            status: pb::TicketStatus::Closed as i32,
            reason: String::new(),
            actor: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("status new"), "{}", err.message());
    let err = app
        .client
        .reopen_ticket(pb::ReopenTicketRequest {
            ticket_id: t.id.clone(),
            reason: String::new(),
            actor: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    app.stop().await;
}

#[tokio::test]
async fn listing_filters_and_pages() {
    let mut app = spawn(Backend::Postgres).await;
    let mut created = Vec::new();
    for i in 0..5 {
        let mut request = create_request(pb::Channel::Store, "");
        request.customer_id = format!("cust-{}", i % 2);
        created.push(
            app.client
                .create_ticket(request)
                .await
                .unwrap()
                .into_inner()
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .client
            .list_tickets(pb::ListTicketsRequest {
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.tickets.into_iter().map(|t| t.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    created.reverse();
    assert_eq!(seen, created, "newest first, every ticket once");

    let mine = app
        .client
        .list_tickets(pb::ListTicketsRequest {
            customer_id: "cust-0".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.tickets.len(), 3);
    let breached = app
        .client
        .list_tickets(pb::ListTicketsRequest {
            breached: Some(true),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(breached.tickets.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn policies_are_versioned_and_the_catch_all_stays() {
    let mut app = spawn(Backend::Postgres).await;
    let listed = app
        .client
        .list_sla_policies(pb::ListSlaPoliciesRequest {})
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = listed.policies.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "online-important",
            "online-urgent",
            "online",
            "urgent-complex",
            "urgent",
            "important",
            "important-simple",
            "complex",
            "default"
        ]
    );

    let t = app.create(pb::Channel::Hotline, "").await;
    assert_eq!(
        (t.sla_policy_id.as_str(), t.sla_policy_version),
        ("default", 1)
    );
    let mut default = listed.policies.last().unwrap().clone();
    default.first_response = Some(pb::SlaTarget {
        seconds: 1800,
        calendar_id: String::new(),
    });
    let v2 = app
        .client
        .upsert_sla_policy(pb::UpsertSlaPolicyRequest {
            policy: Some(default.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v2.version, 2);
    let same = app
        .client
        .upsert_sla_policy(pb::UpsertSlaPolicyRequest {
            policy: Some(default.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same.version, 2, "the same content again changes nothing");
    assert_eq!(
        app.ticket(&t.id).await.sla_policy_version,
        1,
        "a ticket keeps its version"
    );

    default.match_channels = vec![pb::Channel::Email as i32];
    let err = app
        .client
        .upsert_sla_policy(pb::UpsertSlaPolicyRequest {
            policy: Some(default),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    app.stop().await;
}

#[tokio::test]
async fn raising_severity_to_urgent_rematches_and_goes_to_a_supervisor() {
    let mut app = spawn(Backend::Sqlite).await;
    let t = app.create(pb::Channel::Hotline, "").await;
    let urgent = app
        .client
        .set_severity(pb::SetSeverityRequest {
            ticket_id: t.id.clone(),
            severity: pb::Severity::Urgent as i32,
            reason: "customer reports smoke".into(),
            actor: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(urgent.sla_policy_id, "urgent");
    assert_eq!(
        urgent.escalation_level,
        pb::EscalationLevel::Supervisor as i32
    );
    let sla = app.sla(&t.id).await;
    let resolution = crate::helpers::clock(&sla, pb::ClockKind::Resolution);
    assert_eq!(
        (resolution.target_seconds, resolution.calendar_id.as_str()),
        (86_400, ""),
        "a simple problem is solved within 24 hours around the clock, however urgent"
    );
    assert_eq!(app.events(&t.id, "tickets.TicketEscalated").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn housekeeping_forgets_old_idempotency_keys_and_published_events() {
    let mut app = spawn(Backend::Sqlite).await;
    let first = app.create(pb::Channel::Email, "old-key").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.unpublished().await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay never published"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut settings =
        aftersales_runtime::ServiceSettings::for_tests(String::new(), Duration::from_secs(1));
    settings.idempotency_retention = Duration::ZERO;
    settings.outbox_retention = Duration::ZERO;
    let (keys, events) = aftersales_runtime::trim(app.core.db(), &settings)
        .await
        .unwrap();
    assert_eq!(keys, 1);
    assert!(events >= 1);
    assert_eq!(app.events(&first.id, "tickets.TicketCreated").await, 0);
    let second = app.create(pb::Channel::Email, "old-key").await;
    assert_ne!(first.id, second.id, "an expired key no longer replays");
    app.stop().await;
}

#[tokio::test]
async fn control_characters_are_a_field_violation_not_an_internal_error() {
    let mut app = spawn(Backend::Postgres).await;
    let err = app
        .client
        .get_ticket(pb::GetTicketRequest { id: "a\0b".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(field_violations(&err)[0].field, "id");

    let mut request = create_request(pb::Channel::Email, "nul-key");
    request.evidence = vec!["https://img.example/1.jpg".into(), "x\u{1}".into()];
    let err = app.client.create_ticket(request).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(field_violations(&err)[0].field, "evidence[1]");
    let all = app
        .client
        .list_tickets(pb::ListTicketsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(all.tickets.is_empty(), "nothing was stored");
    app.stop().await;
}

/// A calendar's rule violations name the entry of the caller's `working_days` list,
/// not the weekday it stands for.
#[tokio::test]
async fn calendar_violations_name_the_entry_of_the_list() {
    let mut app = spawn(Backend::Postgres).await;
    let slot = |start: &str, end: &str| pb::TimeSlot {
        start: start.into(),
        end: end.into(),
    };
    let err = app
        .client
        .upsert_business_calendar(pb::UpsertBusinessCalendarRequest {
            calendar: Some(pb::BusinessCalendar {
                id: "wednesday-first".into(),
                time_zone: "Asia/Shanghai".into(),
                working_days: vec![
                    pb::WorkingDay {
                        weekday: 3,
                        slots: vec![slot("09:00", "12:00")],
                    },
                    pb::WorkingDay {
                        weekday: 1,
                        // Overlapping slots: only the calendar itself can tell.
                        slots: vec![slot("09:00", "12:00"), slot("11:00", "13:00")],
                    },
                ],
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        field_violations(&err)[0].field,
        "calendar.working_days[1].slots",
        "{err:?}"
    );
    app.stop().await;
}
