//! Personal data across the suite, through the real binary on PostgreSQL and Redis: a run
//! that writes a customer's name, phone, e-mail, ID number and address through every
//! service (care's profile, a ticket and its reply, a return, a repair job) leaves none of
//! them in clear in any table of any database, any Redis key of the suite or the logs;
//! after `EraseCustomer`, none of that customer's values — the name typed into free text
//! included — remain anywhere.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::{path::Path, time::Duration};

use aftersales_protos::{
    care::v1::{self as cpb, care_service_client::CareServiceClient},
    common::v1 as common,
    dispatch::v1::{self as dpb, dispatch_service_client::DispatchServiceClient},
    returns::v1::{self as rpb, return_service_client::ReturnServiceClient},
    tickets::v1::{self as tpb, ticket_service_client::TicketServiceClient},
};
use redis::AsyncCommands;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use support::suite::Launch;

/// One customer's values, unique to this run.
struct Person {
    name: String,
    phone: String,
    email: String,
    id_number: &'static str,
    address: String,
}

impl Person {
    fn new() -> Self {
        let n = uuid::Uuid::new_v4().as_u128();
        let letters: String = (0..10)
            .map(|i| char::from(b'a' + ((n >> (i * 5)) % 26) as u8))
            .collect();
        Self {
            name: format!("Qiao Zhen{letters}"),
            phone: format!("139{:08}", n % 100_000_000),
            email: format!("zhen.{letters}@example.org"),
            // A valid resident ID (check digit X); fixed, which the scan does not mind:
            // it reads only this run's databases, keys and log.
            id_number: "11010519491231002X",
            address: format!("77 {letters} Lane, Xuhui"),
        }
    }

    /// What the suite may never hold in clear, even before erasure.
    fn sealed_values(&self) -> Vec<&str> {
        vec![&self.phone, &self.email, self.id_number, &self.address]
    }

    /// Everything of the customer's, the name typed into free text included.
    fn all_values(&self) -> Vec<&str> {
        let mut all = self.sealed_values();
        all.push(&self.name);
        all
    }
}

/// Where the suite's data and output end up.
struct Suite {
    databases: Vec<(&'static str, String)>,
    redis_prefix: String,
    log: std::path::PathBuf,
}

/// Where any of `values` is found in clear: `<place>: <value>` for each finding.
async fn findings(suite: &Suite, values: &[&str]) -> Vec<String> {
    let needles: Vec<(String, Vec<u8>, String)> = values
        .iter()
        .map(|v| ((*v).to_owned(), v.as_bytes().to_vec(), hex::encode(v)))
        .collect();
    let mut found = Vec::new();
    for (service, url) in &suite.databases {
        let db = Database::connect(url.as_str()).await.unwrap();
        for table in tables(&db).await {
            // A row as JSON shows text as text and bytea as hex; both are searched.
            let rows = db
                .query_all_raw(Statement::from_string(
                    db.get_database_backend(),
                    format!("SELECT row_to_json(t)::text AS r FROM \"{table}\" t"),
                ))
                .await
                .unwrap();
            for row in rows {
                let text: String = row.try_get("", "r").unwrap();
                for (value, _, hexed) in &needles {
                    if text.contains(value.as_str()) || text.contains(hexed.as_str()) {
                        found.push(format!("{service}.{table}: {value} in {text}"));
                    }
                }
            }
        }
        db.close().await.unwrap();
    }
    let client = redis::Client::open(aftersales_testkit::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis
        .keys(format!("{}*", suite.redis_prefix))
        .await
        .unwrap();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        let dump: Vec<u8> = match kind.as_str() {
            "stream" => {
                let entries: redis::Value = redis::cmd("XRANGE")
                    .arg(&key)
                    .arg("-")
                    .arg("+")
                    .query_async(&mut redis)
                    .await
                    .unwrap();
                let mut bytes = Vec::new();
                raw_bytes(&entries, &mut bytes);
                bytes
            }
            "zset" => {
                let members: Vec<Vec<u8>> = redis.zrange(&key, 0, -1).await.unwrap();
                members.concat()
            }
            "hash" => {
                let all: Vec<Vec<u8>> = redis.hgetall(&key).await.unwrap();
                all.concat()
            }
            "string" => redis.get(&key).await.unwrap(),
            "set" => {
                let all: Vec<Vec<u8>> = redis.smembers(&key).await.unwrap();
                all.concat()
            }
            "list" => {
                let all: Vec<Vec<u8>> = redis.lrange(&key, 0, -1).await.unwrap();
                all.concat()
            }
            _ => Vec::new(),
        };
        for (value, bytes, _) in &needles {
            if contains(&dump, bytes) {
                found.push(format!("redis {key} ({kind}): {value}"));
            }
        }
    }
    let log = std::fs::read(&suite.log).unwrap();
    assert!(
        contains(&log, b"tickets"),
        "the suite's log is captured (it names its services)"
    );
    for (value, bytes, _) in &needles {
        if contains(&log, bytes) {
            found.push(format!("log: {value}"));
        }
    }
    found
}

/// Every string in a Redis reply, as the bytes stored (stream fields and values).
fn raw_bytes(value: &redis::Value, out: &mut Vec<u8>) {
    match value {
        redis::Value::BulkString(bytes) => {
            out.extend_from_slice(bytes);
            out.push(0);
        }
        redis::Value::SimpleString(text) => {
            out.extend_from_slice(text.as_bytes());
            out.push(0);
        }
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().for_each(|item| raw_bytes(item, out));
        }
        redis::Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            raw_bytes(k, out);
            raw_bytes(v, out);
        }),
        _ => {}
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

async fn tables(db: &DatabaseConnection) -> Vec<String> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT table_name::text AS t FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            .to_owned(),
    ))
    .await
    .unwrap()
    .iter()
    .map(|row| row.try_get::<String>("", "t").unwrap())
    .collect()
}

/// Waits until every service has published its outbox, so the streams hold everything.
async fn outboxes_published(suite: &Suite) {
    for _ in 0..200 {
        let mut pending = 0;
        for (_, url) in &suite.databases {
            let db = Database::connect(url.as_str()).await.unwrap();
            let row = db
                .query_one_raw(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL".to_owned(),
                ))
                .await
                .unwrap()
                .unwrap();
            pending += row.try_get::<i64>("", "n").unwrap();
            db.close().await.unwrap();
        }
        if pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the outboxes were not published within 20 s");
}

fn ts(at: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

#[tokio::test]
async fn no_personal_data_in_clear_anywhere_and_none_after_erasure() {
    let person = Person::new();
    let log_dir = std::env::temp_dir().join(format!("aftersales-pii-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&log_dir).unwrap();
    let log = log_dir.join("suite.log");
    let services = ["tickets", "returns", "dispatch", "care"];
    let mut running = Launch::postgres(&services)
        .await
        // What production logs, plus the suite's own debug lines.
        .env("RUST_LOG", "info,aftersales=debug")
        .log_to(&log)
        .spawn();
    let suite = Suite {
        databases: services
            .iter()
            .map(|s| (*s, running.database_url(s)))
            .collect(),
        redis_prefix: running.redis_prefix().unwrap().to_owned(),
        log,
    };
    let mut care = CareServiceClient::new(running.channel("care").await);
    let mut tickets = TicketServiceClient::new(running.channel("tickets").await);
    let mut returns = ReturnServiceClient::new(running.channel("returns").await);
    let mut dispatch = DispatchServiceClient::new(running.channel("dispatch").await);
    let customer_id = format!("cust-{}", uuid::Uuid::new_v4().simple());

    care.upsert_customer(cpb::UpsertCustomerRequest {
        idempotency_key: "profile-1".into(),
        customer_id: customer_id.clone(),
        name: person.name.clone(),
        phone: person.phone.clone(),
        email: person.email.clone(),
        address: person.address.clone(),
        region_code: "310104".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let ticket = tickets
        .create_ticket(tpb::CreateTicketRequest {
            idempotency_key: "ticket-1".into(),
            customer_id: customer_id.clone(),
            channel: tpb::Channel::Hotline as i32,
            category: tpb::Category::Complaint as i32,
            severity: tpb::Severity::General as i32,
            subject: format!("kettle leaks, call {}", person.phone),
            description: format!(
                "mail {} or call +86 {}; ID {}",
                person.email, person.phone, person.id_number
            ),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    tickets
        .add_reply(tpb::AddReplyRequest {
            idempotency_key: "reply-1".into(),
            ticket_id: ticket.id.clone(),
            author: tpb::ReplyAuthor::Customer as i32,
            author_id: customer_id.clone(),
            body: format!("This is {}, my number is {}", person.name, person.phone),
            ..Default::default()
        })
        .await
        .unwrap();
    returns
        .request_return(rpb::RequestReturnRequest {
            idempotency_key: "return-1".into(),
            order_id: "order-1".into(),
            customer_id: customer_id.clone(),
            ticket_id: ticket.id.clone(),
            lines: vec![rpb::ReturnLine {
                sku: "KETTLE-1".into(),
                product_line: "kettle".into(),
                quantity: 1,
                unit_price: Some(common::Money {
                    minor_units: 19_900,
                    currency: "CNY".into(),
                }),
                delivered_at: Some(ts(chrono::Utc::now() - chrono::Duration::days(1))),
            }],
            reason: rpb::ReturnReason::QualityDefect as i32,
            evidence: vec![format!(
                "{} says: reach me at {}",
                person.name, person.email
            )],
            desired_outcome: rpb::Outcome::Refund as i32,
            customer_time_zone: "Asia/Shanghai".into(),
            actor: None,
            refund_only: false,
        })
        .await
        .unwrap();
    dispatch
        .create_job(dpb::CreateJobRequest {
            idempotency_key: "job-1".into(),
            ticket_id: ticket.id.clone(),
            customer_id: customer_id.clone(),
            location: Some(dpb::CustomerLocation {
                region_code: "999999".into(),
                point: None,
            }),
            contact: Some(dpb::CustomerContact {
                name: person.name.clone(),
                phone: person.phone.clone(),
                address: person.address.clone(),
            }),
            product_line: "kettle".into(),
            fault_description: format!("leaks; the customer asks for a call on {}", person.phone),
            ..Default::default()
        })
        .await
        .unwrap();

    outboxes_published(&suite).await;
    let found = findings(&suite, &person.sealed_values()).await;
    assert!(
        found.is_empty(),
        "personal data in clear:\n{}",
        found.join("\n")
    );

    care.erase_customer(cpb::EraseCustomerRequest {
        idempotency_key: "erase-1".into(),
        customer_id: customer_id.clone(),
    })
    .await
    .unwrap();
    // Tickets, returns and dispatch erase their copies when the event reaches them.
    let mut found = Vec::new();
    for _ in 0..100 {
        found = findings(&suite, &person.all_values()).await;
        if found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        found.is_empty(),
        "the erased customer's data remains:\n{}",
        found.join("\n")
    );
    let erased = care
        .get_customer(cpb::GetCustomerRequest {
            customer_id: customer_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(erased.anonymised);
    // Erasing again changes nothing and publishes nothing new.
    care.erase_customer(cpb::EraseCustomerRequest {
        idempotency_key: "erase-2".into(),
        customer_id: customer_id.clone(),
    })
    .await
    .unwrap();
    let db = Database::connect(running.database_url("care").as_str())
        .await
        .unwrap();
    let published = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM outbox WHERE event_type = 'care.CustomerAnonymised'"
                .to_owned(),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(published, 1);
    let _ = std::fs::remove_dir_all(Path::new(&log_dir));
}
