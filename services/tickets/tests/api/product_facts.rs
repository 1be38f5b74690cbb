//! Product facts on tickets (SKU, product line, batch, region, order line): set at
//! creation, returned, filterable in ListTickets with the other filters and paging,
//! carried by `TicketCreated` with no free text, and refused field by field when malformed.

use aftersales_platform::status::field_violations;
use aftersales_protos::{events::v1::event_envelope::Payload, tickets::v1 as pb};
use tonic::Code;

use crate::helpers::{Backend, TestApp, create_request, spawn};

fn facts(sku: &str, batch: &str, region: &str) -> pb::ProductFacts {
    pb::ProductFacts {
        sku: sku.into(),
        product_line: "small_appliance".into(),
        batch: batch.into(),
        region_code: region.into(),
        order_line_id: String::new(),
    }
}

async fn create_with(
    app: &mut TestApp,
    key: &str,
    severity: pb::Severity,
    product: pb::ProductFacts,
) -> pb::Ticket {
    let mut request = create_request(pb::Channel::Hotline, key);
    request.severity = severity as i32;
    request.product = Some(product);
    app.client
        .create_ticket(request)
        .await
        .expect("ticket created")
        .into_inner()
}

async fn ids(app: &mut TestApp, request: pb::ListTicketsRequest) -> Vec<String> {
    let mut ids = Vec::new();
    let mut request = request;
    loop {
        let page = app
            .client
            .list_tickets(request.clone())
            .await
            .expect("a page")
            .into_inner();
        ids.extend(page.tickets.into_iter().map(|t| t.id));
        if page.next_page_token.is_empty() {
            return ids;
        }
        request.page_token = page.next_page_token;
    }
}

async fn facts_round_trip_and_filter(backend: Backend) {
    let mut app = spawn(backend).await;
    let mut line = facts(" KT-100 ", "B2026-11", "CN-SH");
    line.order_line_id = "line-2".into();
    let a = create_with(&mut app, "a", pb::Severity::General, line).await;
    let b = create_with(
        &mut app,
        "b",
        pb::Severity::Important,
        facts("KT-100", "B2026-11", "CN-BJ"),
    )
    .await;
    let c = create_with(
        &mut app,
        "c",
        pb::Severity::General,
        facts("KT-100", "B2026-12", "CN-SH"),
    )
    .await;
    let d = create_with(
        &mut app,
        "d",
        pb::Severity::General,
        facts("KT-200", "B2026-11", "CN-SH"),
    )
    .await;
    let bare = app.create(pb::Channel::Email, "bare").await;

    let expected = pb::ProductFacts {
        sku: "KT-100".into(),
        product_line: "small_appliance".into(),
        batch: "B2026-11".into(),
        region_code: "CN-SH".into(),
        order_line_id: "line-2".into(),
    };
    assert_eq!(a.product.as_ref(), Some(&expected), "trimmed and kept");
    assert_eq!(app.ticket(&a.id).await.product, Some(expected.clone()));
    assert_eq!(bare.product, None, "a ticket without facts has none");

    // Newest first, as every listing; each fact alone, together, and with other filters.
    let by_batch = pb::ListTicketsRequest {
        batch: "B2026-11".into(),
        ..Default::default()
    };
    assert_eq!(
        ids(&mut app, by_batch.clone()).await,
        [d.id.as_str(), &b.id, &a.id]
    );
    let by_batch_and_region = pb::ListTicketsRequest {
        region_code: "CN-SH".into(),
        ..by_batch.clone()
    };
    assert_eq!(
        ids(&mut app, by_batch_and_region.clone()).await,
        [d.id.as_str(), &a.id]
    );
    let by_sku_in_region = pb::ListTicketsRequest {
        sku: "KT-100".into(),
        region_code: "CN-SH".into(),
        ..Default::default()
    };
    assert_eq!(
        ids(&mut app, by_sku_in_region).await,
        [c.id.as_str(), &a.id]
    );
    let important = pb::ListTicketsRequest {
        severity: pb::Severity::Important as i32,
        product_line: "small_appliance".into(),
        ..Default::default()
    };
    assert_eq!(ids(&mut app, important).await, [b.id.as_str()]);
    let none = pb::ListTicketsRequest {
        product_line: "tv".into(),
        ..Default::default()
    };
    assert!(ids(&mut app, none).await.is_empty());
    // Paging one by one gives the same tickets, in the same order.
    let paged = pb::ListTicketsRequest {
        page_size: 1,
        ..by_batch
    };
    assert_eq!(ids(&mut app, paged).await, [d.id.as_str(), &b.id, &a.id]);

    // TicketCreated carries the facts, and no free text.
    let envelopes = app.envelopes(&a.id).await;
    let Some(Payload::TicketCreated(created)) = envelopes[0].payload.as_ref() else {
        panic!("the first event is TicketCreated: {envelopes:?}");
    };
    let carried = created.ticket.as_ref().expect("the ticket");
    assert_eq!(carried.product, Some(expected));
    assert_eq!(
        (
            carried.subject.as_str(),
            carried.description.as_str(),
            carried.evidence.len()
        ),
        ("", "", 0)
    );
    app.stop().await;
}

#[tokio::test]
async fn product_facts_round_trip_and_filter_on_postgres() {
    facts_round_trip_and_filter(Backend::Postgres).await;
}

#[tokio::test]
async fn product_facts_round_trip_and_filter_on_sqlite() {
    facts_round_trip_and_filter(Backend::Sqlite).await;
}

async fn bad_facts_are_named(backend: Backend) {
    let mut app = spawn(backend).await;
    let mut request = create_request(pb::Channel::Hotline, "");
    request.order_id = String::new();
    request.product = Some(pb::ProductFacts {
        sku: "kettle 1.7l".into(),
        product_line: "x".repeat(65),
        batch: "13812345678".into(),
        region_code: "CN/SH".into(),
        order_line_id: "line-1".into(),
    });
    let err = app.client.create_ticket(request).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<String> = field_violations(&err)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        [
            "product.sku",
            "product.product_line",
            "product.batch",
            "product.region_code",
            "product.order_line_id",
        ]
    );
    let err = app
        .client
        .list_tickets(pb::ListTicketsRequest {
            region_code: "Shanghai, China".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&err)[0].field, "region_code");
    assert!(ids(&mut app, Default::default()).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn bad_product_facts_are_named_on_postgres() {
    bad_facts_are_named(Backend::Postgres).await;
}

#[tokio::test]
async fn bad_product_facts_are_named_on_sqlite() {
    bad_facts_are_named(Backend::Sqlite).await;
}
