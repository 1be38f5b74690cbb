//! Services working together through events, through the real binary on PostgreSQL and
//! Redis: a repair job no partner can take escalates its ticket to a supervisor, once
//! (dispatch → tickets); a customer care ranks VIP gets VIP tickets (care → tickets).
//! The same escalation on the embedded backends `make run` uses (an SQLite file with one
//! pooled connection per service, the in-process bus); and an API-only tickets replica
//! leaves the events to the replicas that run the worker.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::time::{Duration, Instant};

use aftersales_protos::{
    care::v1::{self as cpb, care_service_client::CareServiceClient},
    common::v1 as common,
    dispatch::v1::{self as dpb, dispatch_service_client::DispatchServiceClient},
    tickets::v1::{self as tpb, ticket_service_client::TicketServiceClient},
};
use support::suite::{DataDir, Launch};

#[tokio::test]
async fn an_unplaceable_repair_job_escalates_its_ticket_once() {
    let metrics_port = support::free_port();
    let mut suite = Launch::postgres(&["tickets", "dispatch"])
        .await
        .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
        .spawn();
    let mut tickets = TicketServiceClient::new(suite.channel("tickets").await);
    let mut dispatch = DispatchServiceClient::new(suite.channel("dispatch").await);

    let ticket = tickets
        .create_ticket(tpb::CreateTicketRequest {
            customer_id: "cust-1".into(),
            channel: tpb::Channel::Hotline as i32,
            category: tpb::Category::Complaint as i32,
            severity: tpb::Severity::General as i32,
            subject: "washer broken".into(),
            description: "needs a technician".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ticket.escalation_level, tpb::EscalationLevel::Agent as i32);
    let request = dpb::CreateJobRequest {
        ticket_id: ticket.id.clone(),
        customer_id: "cust-1".into(),
        location: Some(dpb::CustomerLocation {
            region_code: "999999".into(),
            point: None,
        }),
        product_line: "washer".into(),
        fault_description: "does not spin".into(),
        ..Default::default()
    };
    let job = dispatch
        .create_job(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        job.status,
        dpb::JobStatus::Unassigned as i32,
        "no partner covers the region"
    );

    let mut level = 0;
    for _ in 0..100 {
        let current = tickets
            .get_ticket(tpb::GetTicketRequest {
                id: ticket.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        level = current.escalation_level;
        if level == tpb::EscalationLevel::Supervisor as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        level,
        tpb::EscalationLevel::Supervisor as i32,
        "the ticket was escalated"
    );

    // A second unplaceable job for the same ticket leaves it where it is.
    dispatch.create_job(request).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let current = tickets
        .get_ticket(tpb::GetTicketRequest {
            id: ticket.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        current.escalation_level,
        tpb::EscalationLevel::Supervisor as i32
    );

    // The tickets group reports its standing on the dispatch stream.
    let page = support::scrape(metrics_port).await;
    for line in [
        r#"event_consumer_lag{group="dispatch:tickets"} 0"#,
        r#"event_consumer_pending{group="dispatch:tickets"} 0"#,
    ] {
        assert!(page.contains(line), "{line} missing from\n{page}");
    }

    let exit = support::terminate(&mut suite.child, Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit}");
}

#[tokio::test]
async fn a_tier_care_publishes_is_the_tier_of_the_customers_next_ticket() {
    let mut suite = Launch::postgres(&["tickets", "care"]).await.spawn();
    let mut tickets = TicketServiceClient::new(suite.channel("tickets").await);
    let mut care = CareServiceClient::new(suite.channel("care").await);
    let ticket = |n: u32| tpb::CreateTicketRequest {
        idempotency_key: format!("vip-{n}"),
        customer_id: "cust-vip".into(),
        channel: tpb::Channel::App as i32,
        category: tpb::Category::Complaint as i32,
        severity: tpb::Severity::General as i32,
        subject: "late delivery".into(),
        description: "again".into(),
        ..Default::default()
    };
    let first = tickets.create_ticket(ticket(0)).await.unwrap().into_inner();
    assert_eq!(
        first.customer_tier,
        tpb::CustomerTier::Regular as i32,
        "nothing known yet"
    );

    care.upsert_customer(cpb::UpsertCustomerRequest {
        customer_id: "cust-vip".into(),
        name: "Han Meimei".into(),
        purchases: Some(cpb::PurchaseStats {
            order_count: 40,
            order_value: Some(common::Money {
                minor_units: 50_000_000,
                currency: "CNY".into(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();

    let mut tier = 0;
    for n in 1..60 {
        tier = tickets
            .create_ticket(ticket(n))
            .await
            .unwrap()
            .into_inner()
            .customer_tier;
        if tier == tpb::CustomerTier::Vip as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        tier,
        tpb::CustomerTier::Vip as i32,
        "tickets learned the tier from care"
    );
    let explicit = tpb::CreateTicketRequest {
        customer_tier: tpb::CustomerTier::Potential as i32,
        ..ticket(100)
    };
    let given = tickets.create_ticket(explicit).await.unwrap().into_inner();
    assert_eq!(
        given.customer_tier,
        tpb::CustomerTier::Potential as i32,
        "a given tier wins"
    );

    let exit = support::terminate(&mut suite.child, Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit}");
}

fn ticket_request(customer_id: &str) -> tpb::CreateTicketRequest {
    tpb::CreateTicketRequest {
        customer_id: customer_id.into(),
        channel: tpb::Channel::Hotline as i32,
        category: tpb::Category::Complaint as i32,
        severity: tpb::Severity::General as i32,
        subject: "washer broken".into(),
        description: "needs a technician".into(),
        ..Default::default()
    }
}

/// A repair job in a region no partner covers: dispatch publishes `JobUnassigned`.
fn unplaceable_job(ticket: &tpb::Ticket) -> dpb::CreateJobRequest {
    dpb::CreateJobRequest {
        ticket_id: ticket.id.clone(),
        customer_id: ticket.customer_id.clone(),
        location: Some(dpb::CustomerLocation {
            region_code: "999999".into(),
            point: None,
        }),
        product_line: "washer".into(),
        fault_description: "does not spin".into(),
        ..Default::default()
    }
}

/// `make run`'s wiring, on ports of its own: `aftersales dev` puts each service on an
/// SQLite file (one pooled connection) and, without `REDIS_URL`, the queue and the bus
/// in-process; `serve` with SQLite URLs and no `REDIS_URL` builds exactly that.
#[tokio::test]
async fn on_the_embedded_backends_an_unplaceable_job_escalates_promptly_while_tickets_answers() {
    let data_dir = DataDir::new("embedded");
    let mut suite = Launch::on(&["tickets", "dispatch"], &data_dir.backends())
        .await
        .spawn();
    let mut tickets = TicketServiceClient::new(suite.channel("tickets").await);
    let mut dispatch = DispatchServiceClient::new(suite.channel("dispatch").await);
    let ticket = tickets
        .create_ticket(ticket_request("cust-embedded"))
        .await
        .unwrap()
        .into_inner();
    let job = dispatch
        .create_job(unplaceable_job(&ticket))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.status, dpb::JobStatus::Unassigned as i32);

    // PostgreSQL escalates within a tenth of a second; allow a busy machine far more,
    // but not the seconds a consumer waiting on its own connection takes.
    let created = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut escalated_after = None;
    while created.elapsed() < Duration::from_secs(3) {
        let asked = Instant::now();
        let answer = tickets
            .get_ticket(tpb::GetTicketRequest {
                id: ticket.id.clone(),
            })
            .await;
        slowest = slowest.max(asked.elapsed());
        let current = answer.expect("GetTicket answers").into_inner();
        if current.escalation_level == tpb::EscalationLevel::Supervisor as i32 {
            escalated_after = Some(created.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        escalated_after.is_some(),
        "the ticket was not escalated within 3 s of the unplaceable job"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "a GetTicket during the escalation took {slowest:?}"
    );
    // A write goes through too, once the event has been applied.
    let asked = Instant::now();
    tickets
        .create_ticket(ticket_request("cust-embedded-2"))
        .await
        .expect("CreateTicket answers");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "CreateTicket took {:?}",
        asked.elapsed()
    );

    let exit = support::terminate(&mut suite.child, Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit}");
}

/// `TICKETS_WORKER_ENABLED=false` (an API-only replica): tickets serves its API but reads
/// no events, so dispatch's `JobUnassigned` waits on the stream for a replica that runs
/// the worker, which then applies it.
#[tokio::test]
async fn an_api_only_tickets_replica_leaves_events_to_the_worker_replicas() {
    let prefix = aftersales_testkit::unique_prefix();
    let metrics_port = support::free_port();
    let mut api_only = Launch::postgres(&["tickets", "dispatch"])
        .await
        .env("TICKETS_WORKER_ENABLED", "false")
        .redis_prefix(&prefix)
        .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
        .spawn();
    let tickets_db = api_only.database_url("tickets");
    let mut tickets = TicketServiceClient::new(api_only.channel("tickets").await);
    let mut dispatch = DispatchServiceClient::new(api_only.channel("dispatch").await);
    let ticket = tickets
        .create_ticket(ticket_request("cust-api-only"))
        .await
        .unwrap()
        .into_inner();
    dispatch.create_job(unplaceable_job(&ticket)).await.unwrap();

    // A consuming replica escalates within a tenth of a second (the test above).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let level = |t: tpb::Ticket| t.escalation_level;
    let get = tpb::GetTicketRequest {
        id: ticket.id.clone(),
    };
    assert_eq!(
        level(tickets.get_ticket(get.clone()).await.unwrap().into_inner()),
        tpb::EscalationLevel::Agent as i32,
        "an API-only replica applied an event"
    );
    let page = support::scrape(metrics_port).await;
    assert!(
        !page.contains(r#"group="dispatch:tickets""#),
        "an API-only replica runs a tickets consumer:\n{page}"
    );

    // A worker replica of tickets on the same database and bus picks the event up.
    let mut worker = Launch::postgres(&["tickets"])
        .await
        .database("tickets", &tickets_db)
        .redis_prefix(&prefix)
        .spawn();
    worker.channel("tickets").await;
    let mut escalated = false;
    for _ in 0..100 {
        let current = tickets.get_ticket(get.clone()).await.unwrap().into_inner();
        if level(current) == tpb::EscalationLevel::Supervisor as i32 {
            escalated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(escalated, "the worker replica applied the waiting event");

    for child in [&mut worker.child, &mut api_only.child] {
        let exit = support::terminate(child, Duration::from_secs(20)).await;
        assert!(exit.success(), "{exit}");
    }
}
