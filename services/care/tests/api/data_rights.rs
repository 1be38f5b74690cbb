//! Data rights: an export holds every record care keeps about a customer; retention
//! anonymises inactive customers and leaves the KPI figures as they were.

use aftersales_platform::codes::timestamp;
use aftersales_protos::{
    care::v1::{self as pb, KpiDimension},
    events::v1::{self as ev, event_envelope::Payload},
    returns::v1 as returns,
    tickets::v1 as tickets,
};
use chrono::{Duration, SubsecRound, Utc};
use tonic::Code;

use crate::helpers::*;

/// A ticket of `customer` created and resolved, a repair job and a return for it.
async fn history_of(app: &TestApp, customer: &str, ticket: &str) -> usize {
    let now = Utc::now().trunc_subsecs(0);
    let created = now - Duration::hours(5);
    let script = vec![
        envelope(
            ticket,
            created,
            Payload::TicketCreated(ev::TicketCreated {
                ticket: Some(tickets::Ticket {
                    id: ticket.into(),
                    customer_id: customer.into(),
                    order_id: "o-1".into(),
                    channel: tickets::Channel::App as i32,
                    category: tickets::Category::Repair as i32,
                    severity: tickets::Severity::General as i32,
                    created_at: Some(timestamp(created)),
                    ..Default::default()
                }),
            }),
        ),
        envelope(
            &format!("job-{ticket}"),
            created + Duration::hours(1),
            Payload::JobCreated(ev::JobCreated {
                job_id: format!("job-{ticket}"),
                ticket_id: ticket.into(),
                customer_id: customer.into(),
                product_line: "washer".into(),
                region_code: "310104".into(),
                ..Default::default()
            }),
        ),
        envelope(
            &format!("ret-{ticket}"),
            created + Duration::hours(2),
            Payload::ReturnRequested(ev::ReturnRequested {
                r#return: Some(returns::Return {
                    id: format!("ret-{ticket}"),
                    order_id: "o-1".into(),
                    customer_id: customer.into(),
                    ticket_id: ticket.into(),
                    ..Default::default()
                }),
            }),
        ),
        envelope(
            ticket,
            now - Duration::hours(1),
            Payload::TicketResolved(ev::TicketResolved {
                ticket_id: ticket.into(),
                customer_id: customer.into(),
                resolved_at: Some(timestamp(now - Duration::hours(1))),
                ..Default::default()
            }),
        ),
    ];
    app.publish(&script).await;
    script.len()
}

async fn record_care(app: &mut TestApp, customer: &str, ticket: &str) {
    let follow_up = app.follow_ups(ticket).await.pop().expect("a follow-up");
    app.client
        .record_follow_up(pb::RecordFollowUpRequest {
            follow_up_id: follow_up.id,
            reached: true,
            solved: true,
            satisfied: true,
            csat: 5,
            comment: "call me on 13800138000 next time".into(),
            actor: Some(agent()),
            ..Default::default()
        })
        .await
        .expect("follow-up");
    app.client
        .record_survey(pb::RecordSurveyRequest {
            customer_id: customer.into(),
            subject: pb::SurveySubject::Ticket as i32,
            subject_id: ticket.into(),
            csat: 4,
            comment: "kind technician".into(),
            ..Default::default()
        })
        .await
        .expect("survey");
}

#[tokio::test]
async fn an_export_contains_every_record_of_the_customer() {
    let mut app = spawn(Backend::Postgres).await;
    app.upsert(customer("c-1")).await;
    app.upsert(customer("c-other")).await;
    let n = history_of(&app, "c-1", "T-1").await;
    let m = history_of(&app, "c-other", "T-2").await;
    app.wait_for_events((n + m) as i64).await;
    record_care(&mut app, "c-1", "T-1").await;
    app.client
        .upsert_warranty(pb::UpsertWarrantyRequest {
            customer_id: "c-1".into(),
            product: "washer W-9".into(),
            product_line: "washer".into(),
            purchase_date: Utc::now().date_naive().to_string(),
            months: 24,
            ..Default::default()
        })
        .await
        .expect("warranty");
    app.read("c-1", reader(true)).await;

    let refused = app
        .client
        .export_customer_data(pb::ExportCustomerDataRequest {
            customer_id: "c-1".into(),
            reader: Some(reader(false)),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    let export = app
        .client
        .export_customer_data(pb::ExportCustomerDataRequest {
            customer_id: "c-1".into(),
            reader: Some(reader(true)),
        })
        .await
        .expect("export")
        .into_inner();
    let customer = export.customer.expect("the profile");
    assert_eq!(customer.phone, "+86 138-0013-8000");
    assert!(customer.contact_unmasked);
    let mut kinds: Vec<i32> = export.timeline.iter().map(|e| e.kind).collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            pb::TimelineKind::Ticket as i32,
            pb::TimelineKind::Return as i32,
            pb::TimelineKind::RepairJob as i32,
            pb::TimelineKind::FollowUp as i32,
            pb::TimelineKind::Survey as i32,
        ]
    );
    assert_eq!(
        export.timeline.len(),
        6,
        "4 events, the follow-up and the survey"
    );
    assert_eq!(export.follow_ups.len(), 1);
    assert_eq!(
        export.follow_ups[0].comment,
        "call me on 13800138000 next time"
    );
    assert_eq!(export.surveys.len(), 1);
    assert_eq!(export.warranties.len(), 1);
    assert_eq!(export.tasks.len(), 2, "expiry and anniversary reminders");
    assert!(
        export.tasks.iter().all(|t| t.offer_extended_warranty),
        "c-1 is a VIP"
    );
    let operations: Vec<&str> = export
        .access_log
        .iter()
        .map(|a| a.operation.as_str())
        .collect();
    assert_eq!(operations, ["GetCustomer", "ExportCustomerData"]);
    assert!(
        export
            .timeline
            .iter()
            .all(|e| !e.subject_id.contains("T-2"))
    );
    app.stop().await;
}

#[tokio::test]
async fn retention_anonymises_inactive_customers_and_keeps_the_kpis() {
    let mut app = spawn(Backend::Postgres).await;
    app.upsert(customer("c-1")).await;
    let n = history_of(&app, "c-1", "T-1").await;
    app.wait_for_events(n as i64).await;
    record_care(&mut app, "c-1", "T-1").await;
    let from = Utc::now() - Duration::days(1);
    let to = Utc::now() + Duration::days(1);
    let before = app.kpis(from, to, KpiDimension::Channel).await;

    // Active customers stay.
    assert_eq!(
        app.core
            .anonymise_inactive(Utc::now())
            .await
            .expect("retention"),
        0
    );
    // Two years and a day without activity later, they go.
    let later = Utc::now() + Duration::days(731);
    assert_eq!(
        app.core.anonymise_inactive(later).await.expect("retention"),
        1
    );
    assert_eq!(
        app.core.anonymise_inactive(later).await.expect("retention"),
        0
    );

    let profile = app.read("c-1", reader(true)).await;
    assert!(profile.anonymised);
    assert_eq!(profile.name, "(anonymised)");
    assert_eq!(
        (
            profile.phone.as_str(),
            profile.email.as_str(),
            profile.address.as_str()
        ),
        ("", "", "")
    );
    let sealed = app
        .count("SELECT COUNT(*) AS n FROM customers WHERE phone_sealed <> '' OR email_sealed <> '' OR address_sealed <> '' OR phone_hash <> ''")
        .await;
    assert_eq!(sealed, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM surveys WHERE comment <> ''")
            .await,
        0
    );
    let follow_up = app.follow_ups("T-1").await.pop().unwrap();
    assert_eq!(follow_up.comment, "");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM outbox WHERE event_type = 'care.CustomerAnonymised'")
            .await,
        1
    );
    // No longer found by the phone it had.
    let gone = app
        .client
        .get_customer(pb::GetCustomerRequest {
            customer_id: String::new(),
            phone: "13800138000".into(),
            reader: None,
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);

    let after = app.kpis(from, to, KpiDimension::Channel).await;
    assert_eq!(before, after, "aggregate figures are untouched");
    assert_eq!(after[0].tickets, 1, "{after:?}");
    app.stop().await;
}

/// A row sealed under a key no longer configured, one with a mangled field, then a good
/// one: retention skips the two it cannot open and still anonymises the third.
async fn retention_goes_past_rows_it_cannot_open(backend: Backend) {
    let mut app = spawn(backend).await;
    for id in ["c-1", "c-2", "c-3"] {
        app.upsert(customer(id)).await;
    }
    app.rows("UPDATE customers SET key_id = 'retired-key' WHERE id = 'c-1'")
        .await;
    app.rows("UPDATE customers SET phone_sealed = 'bm90IGEgc2VhbGVkIHBob25l' WHERE id = 'c-2'")
        .await;
    let later = Utc::now() + Duration::days(731);
    let run = || {
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            app.core.anonymise_inactive(later),
        )
    };
    assert_eq!(
        run().await.expect("a run ends").expect("retention"),
        1,
        "the good row after the bad ones"
    );
    assert_eq!(run().await.expect("a run ends").expect("retention"), 0);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM customers WHERE anonymised AND id = 'c-3'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM customers WHERE anonymised")
            .await,
        1,
        "the unreadable rows are left for an operator"
    );
    app.stop().await;
}

#[tokio::test]
async fn retention_goes_past_rows_it_cannot_open_postgres() {
    retention_goes_past_rows_it_cannot_open(Backend::Postgres).await;
}

#[tokio::test]
async fn retention_goes_past_rows_it_cannot_open_sqlite() {
    retention_goes_past_rows_it_cannot_open(Backend::Sqlite).await;
}
