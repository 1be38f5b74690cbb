//! Services working together through events, through the real binary on PostgreSQL and
//! Redis: a repair job no partner can take escalates its ticket to a supervisor, once
//! (dispatch → tickets); a customer care ranks VIP gets VIP tickets (care → tickets).

mod support;

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use aftersales_protos::{
    care::v1::{self as cpb, care_service_client::CareServiceClient},
    common::v1 as common,
    dispatch::v1::{self as dpb, dispatch_service_client::DispatchServiceClient},
    tickets::v1::{self as tpb, ticket_service_client::TicketServiceClient},
};
use tonic::transport::Channel;

const BIN: &str = env!("CARGO_BIN_EXE_aftersales");

async fn connect(url: String, child: &mut support::KillOnDrop) -> Channel {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match Channel::from_shared(url.clone()).unwrap().connect().await {
            Ok(channel) => return channel,
            Err(err) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no server at {url}: {err}"
                );
                assert!(child.0.try_wait().unwrap().is_none(), "serve exited early");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test]
async fn an_unplaceable_repair_job_escalates_its_ticket_once() {
    let (tickets_port, dispatch_port) = (support::free_port(), support::free_port());
    let metrics_port = support::free_port();
    let mut child = support::KillOnDrop(
        Command::new(BIN)
            .args(["serve", "tickets", "dispatch"])
            .env(
                "TICKETS_DATABASE_URL",
                aftersales_testkit::fresh_postgres_url().await.unwrap(),
            )
            .env(
                "DISPATCH_DATABASE_URL",
                aftersales_testkit::fresh_postgres_url().await.unwrap(),
            )
            .env("REDIS_URL", aftersales_testkit::redis_url())
            .env("REDIS_KEY_PREFIX", aftersales_testkit::unique_prefix())
            .env("TICKETS_GRPC_ADDR", format!("127.0.0.1:{tickets_port}"))
            .env("DISPATCH_GRPC_ADDR", format!("127.0.0.1:{dispatch_port}"))
            .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .env("SHUTDOWN_HEALTH_GRACE_MS", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut tickets = TicketServiceClient::new(
        connect(format!("http://127.0.0.1:{tickets_port}"), &mut child).await,
    );
    let mut dispatch = DispatchServiceClient::new(
        connect(format!("http://127.0.0.1:{dispatch_port}"), &mut child).await,
    );

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

    let exit = support::terminate(&mut child, Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit}");
}

#[tokio::test]
async fn a_tier_care_publishes_is_the_tier_of_the_customers_next_ticket() {
    let (tickets_port, care_port) = (support::free_port(), support::free_port());
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes, tests only
    let mut child = support::KillOnDrop(
        Command::new(BIN)
            .args(["serve", "tickets", "care"])
            .env(
                "TICKETS_DATABASE_URL",
                aftersales_testkit::fresh_postgres_url().await.unwrap(),
            )
            .env(
                "CARE_DATABASE_URL",
                aftersales_testkit::fresh_postgres_url().await.unwrap(),
            )
            .env("CARE_ENCRYPTION_KEYS", format!("k1:{key}"))
            .env("CARE_SEARCH_KEY", key)
            .env(
                "CARE_TICKETS_URL",
                format!("http://127.0.0.1:{tickets_port}"),
            )
            .env("REDIS_URL", aftersales_testkit::redis_url())
            .env("REDIS_KEY_PREFIX", aftersales_testkit::unique_prefix())
            .env("TICKETS_GRPC_ADDR", format!("127.0.0.1:{tickets_port}"))
            .env("CARE_GRPC_ADDR", format!("127.0.0.1:{care_port}"))
            .env("METRICS_ADDR", "off")
            .env("SHUTDOWN_HEALTH_GRACE_MS", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut tickets = TicketServiceClient::new(
        connect(format!("http://127.0.0.1:{tickets_port}"), &mut child).await,
    );
    let mut care =
        CareServiceClient::new(connect(format!("http://127.0.0.1:{care_port}"), &mut child).await);
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

    let exit = support::terminate(&mut child, Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit}");
}
