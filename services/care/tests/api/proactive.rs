//! Proactive care: warranty reminders and emergency notices to customers with open work.

use aftersales_platform::codes::timestamp;
use aftersales_protos::{
    care::v1 as pb,
    events::v1::{self as ev, event_envelope::Payload},
    tickets::v1 as tickets,
};
use chrono::Utc;

use crate::helpers::*;

#[tokio::test]
async fn a_notice_reaches_each_customer_of_the_region_with_open_work_once() {
    let mut app = spawn(Backend::Sqlite).await;
    for (id, region) in [("busy", "310104"), ("idle", "310104"), ("far", "110000")] {
        let mut c = customer(id);
        c.region_code = region.into();
        app.upsert(c).await;
    }
    let now = Utc::now();
    let open_ticket = |id: &str, customer: &str| {
        envelope(
            id,
            now,
            Payload::TicketCreated(ev::TicketCreated {
                ticket: Some(tickets::Ticket {
                    id: id.into(),
                    customer_id: customer.into(),
                    channel: tickets::Channel::Hotline as i32,
                    category: tickets::Category::Repair as i32,
                    created_at: Some(timestamp(now)),
                    ..Default::default()
                }),
            }),
        )
    };
    let script = vec![
        open_ticket("t1", "busy"),
        open_ticket("t2", "busy"),
        open_ticket("t3", "far"),
    ];
    app.publish(&script).await;
    app.wait_for_events(3).await;

    let request = pb::BroadcastNoticeRequest {
        idempotency_key: "storm-1".into(),
        region_code: "310104".into(),
        reason: "storm".into(),
        message: "visits may be late today".into(),
        actor: Some(agent()),
    };
    let sent = app
        .client
        .broadcast_notice(request.clone())
        .await
        .expect("notice")
        .into_inner();
    assert_eq!(sent.customer_ids, ["busy"]);
    assert_eq!(sent.tasks_created, 1);
    let again = app
        .client
        .broadcast_notice(request)
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(again.notice_id, sent.notice_id);
    let tasks = app
        .client
        .list_care_tasks(pb::ListCareTasksRequest {
            kind: pb::CareTaskKind::Notice as i32,
            ..Default::default()
        })
        .await
        .expect("tasks")
        .into_inner()
        .tasks;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].customer_id, "busy");
    app.stop().await;
}

#[tokio::test]
async fn warranties_leave_reminders_and_bad_dates_are_named() {
    let mut app = spawn(Backend::Sqlite).await;
    let mut regular = customer("c-2");
    regular.purchases = None;
    app.upsert(regular).await;
    let bad = app
        .client
        .upsert_warranty(pb::UpsertWarrantyRequest {
            customer_id: "c-2".into(),
            product: "tv".into(),
            purchase_date: "2026-13-01".into(),
            months: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    let fields: Vec<String> = aftersales_platform::status::field_violations(&bad)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["purchase_date", "months"]);
    let w = app
        .client
        .upsert_warranty(pb::UpsertWarrantyRequest {
            customer_id: "c-2".into(),
            product: "tv".into(),
            product_line: "tv".into(),
            purchase_date: "2026-06-01".into(),
            months: 24,
            ..Default::default()
        })
        .await
        .expect("warranty")
        .into_inner();
    assert_eq!(w.expires_on, "2028-06-01");
    let tasks = app
        .client
        .list_care_tasks(pb::ListCareTasksRequest {
            customer_id: "c-2".into(),
            ..Default::default()
        })
        .await
        .expect("tasks")
        .into_inner()
        .tasks;
    let mut kinds: Vec<i32> = tasks.iter().map(|t| t.kind).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            pb::CareTaskKind::WarrantyExpiry as i32,
            pb::CareTaskKind::PurchaseAnniversary as i32
        ]
    );
    assert!(
        tasks.iter().all(|t| !t.offer_extended_warranty),
        "no offer for a regular customer"
    );
    app.stop().await;
}
