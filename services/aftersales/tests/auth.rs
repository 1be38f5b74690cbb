#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test
//! Every RPC of every service behind its permission table, through the real binary
//! (`serve tickets returns dispatch care webhooks` on PostgreSQL and Redis) against a real OpenID
//! provider (oauth2-mock-server on loopback): each RPC is called with no token, an expired
//! one, one for another audience, one from another issuer and one signed by a foreign
//! key (all `UNAUTHENTICATED`), then with a token for each of the suite's roles
//! (`PERMISSION_DENIED` naming the role exactly when its row does not list it). Care
//! reaches tickets with its own client-credentials token, and a key rotation at the
//! provider keeps the suite working.

mod support;

use std::{process::Stdio, time::Duration};

use aftersales_platform::auth::{DevIssuer, roles};
use aftersales_testkit::oidc::Provider;
use serde_json::{Value, json};
use tonic::{Code, Request, client::Grpc, codegen::http::uri::PathAndQuery, transport::Channel};
use tonic_prost::ProstCodec;

const BIN: &str = env!("CARGO_BIN_EXE_aftersales");
const AUDIENCE: &str = "aftersales";
const TEST_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// Every role a permission table may name: one client of the provider each.
const ROLES: &[&str] = &[
    roles::AGENT,
    roles::SUPERVISOR,
    roles::MANAGER,
    roles::ANALYST,
    roles::PII_READ,
    roles::REFUNDS,
    roles::ADMIN,
    roles::STOREFRONT,
    roles::CARE,
    roles::RETURNS,
    roles::GATEWAY,
];

fn client_id(role: &str) -> String {
    format!("as-{}", role.replace(':', "-"))
}

fn clients() -> Value {
    let mut clients = serde_json::Map::new();
    for role in ROLES {
        let id = client_id(role);
        clients.insert(
            id.clone(),
            json!({"secret": format!("{id}-secret"), "roles": [role]}),
        );
    }
    clients.insert(
        "care".into(),
        json!({"secret": "care-secret", "roles": [roles::CARE]}),
    );
    Value::Object(clients)
}

struct Suite {
    _child: support::KillOnDrop,
    ports: Vec<(&'static str, u16)>,
}

async fn start(provider: &Provider) -> Suite {
    let names = ["tickets", "returns", "dispatch", "care", "webhooks"];
    let mut ports = Vec::new();
    let mut command = std::process::Command::new(BIN);
    command
        .arg("serve")
        .args(names)
        .env_remove("AUTH_MODE")
        .env_remove("DATABASE_URL")
        .env("AUTH_ISSUER", &provider.issuer)
        .env("AUTH_AUDIENCE", AUDIENCE)
        .env("CARE_CLIENT_ID", "care")
        .env("CARE_CLIENT_SECRET", "care-secret")
        .env("REDIS_URL", aftersales_testkit::redis_url())
        .env("REDIS_KEY_PREFIX", aftersales_testkit::unique_prefix())
        .env(
            "METRICS_ADDR",
            format!("127.0.0.1:{}", support::free_port()),
        )
        .env("SHUTDOWN_HEALTH_GRACE_MS", "0")
        // Care seals personal data on PostgreSQL: a test key (32 bytes, base64).
        .env("CARE_ENCRYPTION_KEYS", format!("k1:{TEST_KEY}"))
        .env("CARE_SEARCH_KEY", TEST_KEY)
        // So does dispatch (the customer contact on jobs).
        .env("DISPATCH_ENCRYPTION_KEYS", format!("k1:{TEST_KEY}"))
        // And webhooks (endpoint signing secrets).
        .env("WEBHOOKS_ENCRYPTION_KEYS", format!("k1:{TEST_KEY}"))
        .env("RUST_LOG", "error")
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    for name in names {
        let upper = name.to_uppercase();
        let port = support::free_port();
        ports.push((name, port));
        command
            .env(
                format!("{upper}_DATABASE_URL"),
                aftersales_testkit::fresh_postgres_url().await.unwrap(),
            )
            .env(format!("{upper}_GRPC_ADDR"), format!("127.0.0.1:{port}"));
        if name == "tickets" {
            command.env("CARE_TICKETS_URL", format!("http://127.0.0.1:{port}"));
        }
    }
    Suite {
        _child: support::KillOnDrop(command.spawn().unwrap()),
        ports,
    }
}

async fn channel(port: u16) -> Channel {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(channel) = Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
        {
            return channel;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "port {port} never answered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Calls `path` with an empty request (whatever it is, it decodes) and `token`; the code
/// and message of the answer.
async fn call(channel: &Channel, path: &str, token: Option<&str>) -> (Code, String) {
    let mut grpc = Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let mut request = Request::new(());
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let codec: ProstCodec<(), ()> = ProstCodec::default();
    match grpc
        .unary(request, path.parse::<PathAndQuery>().unwrap(), codec)
        .await
    {
        Ok(_) => (Code::Ok, String::new()),
        Err(status) => (status.code(), status.message().to_owned()),
    }
}

/// A service's permission table: RPC path → roles.
type Table = &'static [(&'static str, &'static [&'static str])];

fn tables() -> Vec<(&'static str, Table)> {
    vec![
        ("tickets", aftersales_tickets::api::permissions::PERMISSIONS),
        ("returns", aftersales_returns::api::permissions::PERMISSIONS),
        (
            "dispatch",
            aftersales_dispatch::api::permissions::PERMISSIONS,
        ),
        ("care", aftersales_care::api::permissions::PERMISSIONS),
        (
            "webhooks",
            aftersales_webhooks::api::permissions::PERMISSIONS,
        ),
    ]
}

#[tokio::test]
async fn every_rpc_is_guarded_by_token_and_table() {
    let mut provider = Provider::start(AUDIENCE, &clients()).await.unwrap();
    let suite = start(&provider).await;
    let mut channels = Vec::new();
    for (name, port) in &suite.ports {
        channels.push((*name, channel(*port).await));
    }
    let now = chrono::Utc::now().timestamp();
    let someone = client_id(roles::AGENT);
    let bad_tokens = [
        (
            "expired",
            provider
                .token(
                    &someone,
                    &[],
                    json!({"exp": now - 3_600, "iat": now - 7_200, "nbf": now - 7_200}),
                )
                .await
                .unwrap(),
        ),
        (
            "another audience",
            provider
                .token(&someone, &[], json!({"aud": "elsewhere"}))
                .await
                .unwrap(),
        ),
        (
            "another issuer",
            provider
                .token(
                    &someone,
                    &[],
                    json!({"iss": "https://id.elsewhere.example"}),
                )
                .await
                .unwrap(),
        ),
        (
            "a foreign key",
            DevIssuer::generate(&provider.issuer, AUDIENCE)
                .unwrap()
                .mint(
                    &someone,
                    &[roles::ADMIN, roles::AGENT],
                    Duration::from_secs(600),
                )
                .unwrap(),
        ),
        ("garbage", "not.a.token".to_owned()),
    ];
    let mut role_tokens = Vec::new();
    for role in ROLES {
        role_tokens.push((
            *role,
            provider
                .token(&client_id(role), &[], Value::Null)
                .await
                .unwrap(),
        ));
    }

    let mut checked = 0;
    for (service, table) in tables() {
        let channel = &channels.iter().find(|(n, _)| *n == service).unwrap().1;
        for (path, allowed) in table {
            let (code, _) = call(channel, path, None).await;
            assert_eq!(code, Code::Unauthenticated, "{path} without a token");
            for (what, token) in &bad_tokens {
                let (code, message) = call(channel, path, Some(token)).await;
                assert_eq!(code, Code::Unauthenticated, "{path} with {what}: {message}");
            }
            for (role, token) in &role_tokens {
                let (code, message) = call(channel, path, Some(token)).await;
                if allowed.contains(role) {
                    // Let through: whatever the handler then says of an empty request
                    // (AuthenticatePartnerKey's own answer to a missing API key is
                    // Unauthenticated, about the key, not the token).
                    let refused_by_layer = code == Code::PermissionDenied
                        || (code == Code::Unauthenticated && message.contains("token"));
                    assert!(!refused_by_layer, "{path} as {role}: {code:?} {message}");
                } else {
                    assert_eq!(code, Code::PermissionDenied, "{path} as {role}: {message}");
                    assert!(message.contains("requires"), "{path}: {message}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "only {checked} calls were checked");

    // Whether a phone number belongs to a customer is personal data: the lookup by phone
    // needs pii:read even for a role the table lets call GetCustomer.
    let care = &channels.iter().find(|(n, _)| *n == "care").unwrap().1;
    let by_phone = |token: &str| {
        let mut request = Request::new(aftersales_protos::care::v1::GetCustomerRequest {
            phone: "13800138000".into(),
            reader: Some(aftersales_protos::care::v1::Reader {
                purpose: "caller identification".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    };
    let token_of = |role: &str| &role_tokens.iter().find(|(r, _)| *r == role).unwrap().1;
    let mut client =
        aftersales_protos::care::v1::care_service_client::CareServiceClient::new(care.clone());
    let denied = client
        .get_customer(by_phone(token_of(roles::AGENT)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let looked_up = client
        .get_customer(by_phone(token_of(roles::PII_READ)))
        .await
        .unwrap_err();
    assert_eq!(looked_up.code(), Code::NotFound, "{looked_up:?}");

    // Health answers probes without a token.
    let (code, _) = call(&channels[0].1, "/grpc.health.v1.Health/Check", None).await;
    assert_eq!(code, Code::Ok);

    // The provider rotates its key; tokens signed with the new one work without a
    // restart (the services fetch the JWKS again for the unknown key id).
    provider.rotate("ES256").await.unwrap();
    let fresh = provider
        .token(&client_id(roles::AGENT), &[], Value::Null)
        .await
        .unwrap();
    let tickets = &channels[0].1;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (code, message) = call(
            tickets,
            "/aftersales.tickets.v1.TicketService/ListTickets",
            Some(&fresh),
        )
        .await;
        if code == Code::Ok {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a token of the rotated key is still refused: {code:?} {message}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// README's permission table is the code's, row for row.
#[test]
fn the_readme_lists_every_permission_row_as_the_code_has_it() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let documented: Vec<String> = readme
        .lines()
        .filter(|l| l.starts_with("| `") && l.contains("Service/"))
        .map(str::to_owned)
        .collect();
    let mut expected = Vec::new();
    for (_, table) in tables() {
        for (path, roles) in table {
            let method = path.rsplit_once('.').map_or(*path, |(_, m)| m);
            let roles: Vec<String> = roles.iter().map(|r| format!("`{r}`")).collect();
            expected.push(format!("| `{method}` | {} |", roles.join(", ")));
        }
    }
    assert_eq!(documented, expected);
}
