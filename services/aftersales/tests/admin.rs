//! `aftersales admin` against a running `serve dispatch` on PostgreSQL and Redis: partner
//! keys issued, listed and revoked from the command line; queue stats and a rebuild the
//! worker acts on; an event replayed through the relay; a configuration check.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::{
    process::{Command, Output, Stdio},
    time::Duration,
};

use aftersales_protos::dispatch::v1::{
    self as pb, dispatch_service_client::DispatchServiceClient,
    partner_key_service_client::PartnerKeyServiceClient,
};
use sea_orm::{ConnectionTrait, Database, Statement};

const BIN: &str = env!("CARGO_BIN_EXE_aftersales");

struct Env {
    database_url: String,
    prefix: String,
    dispatch_url: String,
}

impl Env {
    fn admin(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("admin")
            .args(args)
            .env("DISPATCH_DATABASE_URL", &self.database_url)
            .env(
                "DISPATCH_ENCRYPTION_KEYS",
                "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            )
            .env("REDIS_URL", aftersales_testkit::redis_url())
            .env("REDIS_KEY_PREFIX", &self.prefix)
            .env("AFTERSALES_DISPATCH_URL", &self.dispatch_url)
            .output()
            .expect("admin runs")
    }

    fn admin_ok(&self, args: &[&str]) -> String {
        let out = self.admin(args);
        assert!(
            out.status.success(),
            "admin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

#[tokio::test]
async fn operators_manage_keys_queues_and_events_from_the_command_line() {
    let database_url = aftersales_testkit::fresh_postgres_url().await.unwrap();
    let port = support::free_port();
    let env = Env {
        database_url: database_url.clone(),
        prefix: aftersales_testkit::unique_prefix(),
        dispatch_url: format!("http://127.0.0.1:{port}"),
    };
    let mut child = support::KillOnDrop(
        Command::new(BIN)
            .args(["serve", "dispatch"])
            .env("AUTH_MODE", "disabled")
            .env("DISPATCH_DATABASE_URL", &database_url)
            .env(
                "DISPATCH_ENCRYPTION_KEYS",
                "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            )
            .env("REDIS_URL", aftersales_testkit::redis_url())
            .env("REDIS_KEY_PREFIX", &env.prefix)
            .env("DISPATCH_GRPC_ADDR", format!("127.0.0.1:{port}"))
            .env("METRICS_ADDR", "off")
            .env("SLA_LOST_CHECK_INTERVAL_MS", "200")
            .env("SHUTDOWN_HEALTH_GRACE_MS", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let channel = support::connect(&env.dispatch_url, &mut child).await;
    let mut dispatch = DispatchServiceClient::new(channel.clone());
    let mut keys = PartnerKeyServiceClient::new(channel);
    let partner = dispatch
        .register_partner(pb::RegisterPartnerRequest {
            spec: Some(pb::PartnerSpec {
                name: "Outlet".into(),
                coverage: vec![pb::Coverage {
                    region_code: "310104".into(),
                    area: pb::AreaKind::Urban as i32,
                }],
                skills: vec!["appliance".into()],
                daily_capacity: 5,
                active: true,
                insured: true,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    // Keys: issue prints the secret once; it authenticates until revoked.
    let issued = env.admin_ok(&["keys", "issue", "--partner", &partner.id, "--label", "main"]);
    let secret = issued
        .lines()
        .find_map(|l| l.strip_prefix("secret (shown once): "))
        .expect("the secret is printed")
        .to_owned();
    let key_id = issued
        .split_whitespace()
        .next()
        .expect("the key id")
        .to_owned();
    let auth = pb::AuthenticatePartnerKeyRequest {
        secret: secret.clone(),
    };
    keys.authenticate_partner_key(auth.clone())
        .await
        .expect("the issued key works");
    assert!(env.admin_ok(&["keys", "list"]).contains(&key_id));
    env.admin_ok(&["keys", "revoke", &key_id]);
    let refused = keys.authenticate_partner_key(auth).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    // Queue: a job's acceptance deadline is scheduled; a rebuild request is acted on.
    dispatch
        .create_job(pb::CreateJobRequest {
            ticket_id: "T-1".into(),
            customer_id: "C-1".into(),
            location: Some(pb::CustomerLocation {
                region_code: "310104".into(),
                point: None,
            }),
            product_line: "appliance".into(),
            fault_description: "no power".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let stats = env.admin_ok(&["sla", "stats", "--service", "dispatch"]);
    assert!(stats.contains("1 scheduled"), "{stats}");
    let mut redis = aftersales_testkit::redis_connection().await.unwrap();
    // One marker per shard; the rebuild request deletes them all, the worker sets them again.
    let marker = format!("{}dispatch:{{dispatch-0}}:ready", env.prefix);
    env.admin_ok(&["sla", "rebuild", "--service", "dispatch"]);
    let mut rebuilt = false;
    for _ in 0..50 {
        let exists: bool = redis::cmd("EXISTS")
            .arg(&marker)
            .query_async(&mut redis)
            .await
            .unwrap();
        if exists {
            rebuilt = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rebuilt, "the worker noticed the request and rebuilt");
    let stats = env.admin_ok(&["sla", "stats", "--service", "dispatch"]);
    assert!(stats.contains("1 scheduled"), "{stats}");

    // Events: a published event goes out again.
    let db = Database::connect(&database_url).await.unwrap();
    let published = |sql: &str| Statement::from_string(db.get_database_backend(), sql.to_owned());
    let mut event_id = String::new();
    for _ in 0..50 {
        let row = db
            .query_one_raw(published(
                "SELECT event_id FROM outbox WHERE published_at IS NOT NULL ORDER BY seq LIMIT 1",
            ))
            .await
            .unwrap();
        if let Some(row) = row {
            event_id = row.try_get::<String>("", "event_id").unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!event_id.is_empty(), "the relay published the job's events");
    let published_at = |db: &sea_orm::DatabaseConnection, id: &str| {
        let sql = published(&format!(
            "SELECT CAST(published_at AS TEXT) AS at FROM outbox WHERE event_id = '{id}'"
        ));
        let db = db.clone();
        async move {
            db.query_one_raw(sql)
                .await
                .unwrap()
                .and_then(|row| row.try_get::<Option<String>>("", "at").unwrap())
        }
    };
    let first = published_at(&db, &event_id).await.expect("published");
    let replayed = env.admin_ok(&[
        "events",
        "replay",
        "--service",
        "dispatch",
        "--event-id",
        &event_id,
    ]);
    assert!(replayed.contains(&event_id));
    let mut again = None;
    for _ in 0..50 {
        again = published_at(&db, &event_id).await.filter(|at| *at != first);
        if again.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "the relay published {event_id} again");
    let missing = env.admin(&[
        "events",
        "replay",
        "--service",
        "dispatch",
        "--event-id",
        "nope",
    ]);
    assert!(!missing.status.success());

    // Configuration: valid, then a bad variable named.
    let checked = env.admin_ok(&["check-config", "dispatch"]);
    assert!(
        checked.contains("configuration valid") && checked.contains("Redis answers"),
        "{checked}"
    );
    assert!(!checked.contains("postgres@") || !checked.contains(":postgres@"));
    let bad = Command::new(BIN)
        .args(["admin", "check-config", "dispatch"])
        .env("DISPATCH_DATABASE_URL", &database_url)
        .env(
            "DISPATCH_ENCRYPTION_KEYS",
            "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .env("DISPATCH_OFFER_TIMEOUT_SECS", "soon")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("DISPATCH_OFFER_TIMEOUT_SECS"));

    let exit = support::terminate(&mut child, Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit}");
}
