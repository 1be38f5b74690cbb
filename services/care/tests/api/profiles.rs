//! Protected profiles: sealed columns, masked and audited reads, key rotation, phone
//! search, tiers, validation and idempotent upserts.

use aftersales_care::app::settings_from_env;
use aftersales_platform::{
    config::Env,
    seal::{DEV_KEY_ID, Vault},
    status::field_violations,
};
use aftersales_protos::{care::v1 as pb, tickets::v1::CustomerTier};
use base64::{Engine, engine::general_purpose::STANDARD};
use sea_orm::ConnectionTrait;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn encrypted_columns_hold_no_clear_text_on_postgres() {
    encrypted_columns_hold_no_clear_text(Backend::Postgres).await;
}

#[tokio::test]
async fn encrypted_columns_hold_no_clear_text_on_sqlite() {
    encrypted_columns_hold_no_clear_text(Backend::Sqlite).await;
}

async fn encrypted_columns_hold_no_clear_text(backend: Backend) {
    let mut app = spawn(backend).await;
    app.upsert(customer("c-1")).await;
    let rows = app.rows("SELECT * FROM customers WHERE id = 'c-1'").await;
    let row = &rows[0];
    let column = |name: &str| row.try_get::<String>("", name).expect(name);
    assert_eq!(column("name"), "", "no name in clear text");
    let stored = [
        column("name_sealed"),
        column("phone_sealed"),
        column("email_sealed"),
        column("address_sealed"),
        column("phone_hash"),
    ]
    .join("|");
    for clear in [
        // Whole values only: a short piece ("Lei") turns up in random base64 now and then.
        "Li Lei",
        "13800138000",
        "138-0013",
        "lilei",
        "example.com",
        "Huaihai",
        "Shanghai",
    ] {
        assert!(
            !stored.contains(clear),
            "{clear} is stored in clear text: {stored}"
        );
    }
    assert_eq!(column("key_id"), DEV_KEY_ID);
    assert!(!column("phone_sealed").is_empty());
    assert!(!column("name_sealed").is_empty());
    app.stop().await;
}

/// A row as versions before sealed names stored it: the name in clear text in `name`.
async fn store_name_in_clear(app: &TestApp, id: &str, name: &str) {
    let db = app.core.db();
    db.execute_unprepared(&format!(
        "UPDATE customers SET name = '{name}', name_sealed = '' WHERE id = '{id}'"
    ))
    .await
    .expect("an old-style row");
}

#[tokio::test]
async fn names_stored_in_clear_are_sealed_at_start_up_on_postgres() {
    names_stored_in_clear_are_sealed_at_start_up(Backend::Postgres).await;
}

#[tokio::test]
async fn names_stored_in_clear_are_sealed_at_start_up_on_sqlite() {
    names_stored_in_clear_are_sealed_at_start_up(Backend::Sqlite).await;
}

async fn names_stored_in_clear_are_sealed_at_start_up(backend: Backend) {
    let mut app = spawn(backend).await;
    app.upsert(customer("c-1")).await;
    app.upsert(customer("c-2")).await;
    store_name_in_clear(&app, "c-1", "Han Meimei").await;
    // Until start-up seals it, an old row still reads (masked by default).
    assert_eq!(app.read("c-1", reader(false)).await.name, "H**");
    let url = app.url.clone();
    app.stop().await;

    let mut setup = Setup::new(backend);
    setup.url = Some(url);
    let vault = setup.config.vault.clone();
    let mut app = spawn_with(setup).await;
    let rows = app
        .rows("SELECT id, key_id, name, name_sealed FROM customers ORDER BY id")
        .await;
    assert_eq!(rows.len(), 2);
    for (row, name) in rows.iter().zip(["Han Meimei", "Li Lei"]) {
        let column = |column: &str| row.try_get::<String>("", column).expect(column);
        assert_eq!(column("name"), "", "no name left in clear text");
        // Sealed means it opens, for this row and field only. Not "holds no fragment of
        // the name": random base64 holds a two-letter fragment like "Li" in ~2% of runs.
        let sealed = column("name_sealed");
        assert!(!sealed.contains(name));
        assert_eq!(
            vault
                .open(&column("key_id"), &column("id"), "name", &sealed)
                .expect("a sealed name"),
            name
        );
    }
    assert_eq!(app.read("c-1", reader(true)).await.name, "Han Meimei");
    assert_eq!(app.read("c-2", reader(true)).await.name, "Li Lei");
    app.stop().await;
}

#[tokio::test]
async fn reads_are_masked_without_pii_read_and_unmasked_reads_are_audited() {
    let mut app = spawn(Backend::Postgres).await;
    let stored = app.upsert(customer("c-1")).await;
    assert_eq!(
        stored.phone, "138****8000",
        "the writer gets a masked answer"
    );

    assert_eq!(stored.name, "L**", "the name is masked like the contact");
    let masked = app.read("c-1", reader(false)).await;
    assert!(!masked.contact_unmasked);
    assert_eq!(masked.name, "L**");
    assert_eq!(masked.email, "l***@example.com");
    assert_eq!(masked.address, "Shan***");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM audit_records").await,
        0,
        "a masked read is no privileged act"
    );

    let clear = app.read("c-1", reader(true)).await;
    assert!(clear.contact_unmasked);
    assert_eq!(clear.name, "Li Lei");
    assert_eq!(clear.phone, "+86 138-0013-8000");
    assert_eq!(clear.email, "lilei@example.com");
    // The audit trail, written by the server before the answer left.
    let audit = app
        .rows("SELECT rpc, target, detail FROM audit_records")
        .await;
    assert_eq!(audit.len(), 1);
    let get = |name: &str| audit[0].try_get::<String>("", name).expect(name);
    assert_eq!(get("rpc"), "/aftersales.care.v1.CareService/GetCustomer");
    assert_eq!(get("target"), "customer:c-1");
    let detail: serde_json::Value = serde_json::from_str(&get("detail")).expect("a JSON detail");
    assert_eq!(detail["actor"], "agent-7");
    assert_eq!(detail["purpose"], "callback about ticket T-1");
    assert_eq!(
        detail["fields"],
        serde_json::json!(["name", "phone", "email", "address"])
    );
    assert_eq!(detail["operation"], "GetCustomer");

    // No reason, no clear text.
    let mut no_reason = reader(true);
    no_reason.purpose.clear();
    let err = app
        .client
        .get_customer(pb::GetCustomerRequest {
            customer_id: "c-1".into(),
            phone: String::new(),
            reader: Some(no_reason),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&err)[0].field, "reader.purpose");

    // Search by phone goes through the keyed hash, whatever the formatting.
    let found = app
        .client
        .get_customer(pb::GetCustomerRequest {
            customer_id: String::new(),
            phone: "13800138000".into(),
            reader: Some(reader(false)),
        })
        .await
        .expect("found by phone")
        .into_inner();
    assert_eq!(found.id, "c-1");
    assert_eq!(found.tier, CustomerTier::Vip as i32);
    app.stop().await;
}

fn key(byte: u8) -> String {
    STANDARD.encode([byte; 32])
}

fn vault(keys: &str, active: &str) -> Vault {
    let env = Env::from_pairs([
        ("DATABASE_URL", "postgres://x@localhost/care"),
        ("AUTH_MODE", "disabled"),
        ("CARE_ENCRYPTION_KEYS", keys),
        ("CARE_ACTIVE_KEY_ID", active),
        ("CARE_SEARCH_KEY", &key(9)),
    ]);
    settings_from_env(&env, None).expect("settings").1.vault
}

#[tokio::test]
async fn key_rotation_reads_old_records_and_reseals_on_write() {
    let mut setup = Setup::new(Backend::Postgres);
    setup.config.vault = vault(&format!("k1:{}", key(1)), "k1");
    let mut app = spawn_with(setup).await;
    app.upsert(customer("c-1")).await;
    let url = app.url.clone();
    app.stop().await;

    let mut setup = Setup::new(Backend::Postgres);
    setup.url = Some(url);
    setup.config.vault = vault(&format!("k1:{},k2:{}", key(1), key(2)), "k2");
    let mut app = spawn_with(setup).await;
    let key_of = |rows: Vec<sea_orm::QueryResult>| rows[0].try_get::<String>("", "key_id").unwrap();
    assert_eq!(key_of(app.rows("SELECT key_id FROM customers").await), "k1");
    let old = app.read("c-1", reader(true)).await;
    assert_eq!(
        old.email, "lilei@example.com",
        "a k1 record opens after rotation"
    );
    assert_eq!(old.name, "Li Lei", "its sealed name too");

    let mut changed = customer("c-1");
    changed.email = "li.lei@example.org".into();
    app.upsert(changed).await;
    assert_eq!(key_of(app.rows("SELECT key_id FROM customers").await), "k2");
    assert_eq!(
        app.read("c-1", reader(true)).await.email,
        "li.lei@example.org"
    );
    app.stop().await;
}

#[test]
fn production_needs_keys_and_names_the_variable() {
    let env = Env::from_pairs([
        ("DATABASE_URL", "postgres://x@localhost/care"),
        ("AUTH_MODE", "disabled"),
    ]);
    let err = settings_from_env(&env, None).unwrap_err();
    assert_eq!(err.name, "CARE_ENCRYPTION_KEYS");

    let env = Env::from_pairs([
        ("DATABASE_URL", "postgres://x@localhost/care"),
        ("AUTH_MODE", "disabled"),
        ("CARE_ENCRYPTION_KEYS", "k1:c2hvcnQ="),
    ]);
    let err = settings_from_env(&env, None).unwrap_err();
    assert_eq!(err.name, "CARE_ENCRYPTION_KEYS");
    assert!(
        !err.to_string().contains("c2hvcnQ"),
        "key material is never echoed: {err}"
    );

    let env = Env::from_pairs([
        ("DATABASE_URL", "postgres://x@localhost/care"),
        ("AUTH_MODE", "disabled"),
        (
            "CARE_ENCRYPTION_KEYS",
            &format!("k1:{},k2:{}", key(1), key(2)) as &str,
        ),
        ("CARE_SEARCH_KEY", &key(3)),
    ]);
    assert_eq!(
        settings_from_env(&env, None).unwrap_err().name,
        "CARE_ACTIVE_KEY_ID"
    );

    // Development on SQLite may start on the labelled public key.
    let env = Env::from_pairs([
        ("DATABASE_URL", "sqlite://care.db?mode=rwc"),
        ("AUTH_MODE", "disabled"),
    ]);
    let (_, config) = settings_from_env(&env, None).expect("dev settings");
    assert_eq!(config.vault.active_key_id(), DEV_KEY_ID);
}

#[tokio::test]
async fn bad_input_names_each_field_and_a_retry_returns_the_first_result() {
    let mut app = spawn(Backend::Sqlite).await;
    let mut bad = customer("");
    bad.phone = "call me".into();
    bad.email = "nope".into();
    let err = app.client.upsert_customer(bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<String> = field_violations(&err)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert!(fields.contains(&"customer_id".to_owned()), "{fields:?}");
    assert!(fields.contains(&"phone".to_owned()), "{fields:?}");
    assert!(fields.contains(&"email".to_owned()), "{fields:?}");

    let mut keyed = customer("c-9");
    keyed.idempotency_key = "k-1".into();
    let first = app.upsert(keyed.clone()).await;
    let again = app.upsert(keyed.clone()).await;
    assert_eq!(first.updated_at, again.updated_at);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM outbox WHERE event_type = 'care.CustomerTierChanged'")
            .await,
        1,
        "one tier event for a new VIP, none for the retry"
    );
    keyed.name = "Han Meimei".into();
    let reused = app.client.upsert_customer(keyed).await.unwrap_err();
    assert_eq!(field_violations(&reused)[0].field, "idempotency_key");

    let missing = app
        .client
        .get_customer(pb::GetCustomerRequest {
            customer_id: "nobody".into(),
            phone: String::new(),
            reader: None,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn new_tier_rules_move_customers_and_announce_it() {
    let mut app = spawn(Backend::Sqlite).await;
    app.upsert(customer("c-1")).await;
    let money = |minor_units| {
        Some(aftersales_protos::common::v1::Money {
            minor_units,
            currency: "CNY".into(),
        })
    };
    let rules = app
        .client
        .upsert_tier_rules(pb::UpsertTierRulesRequest {
            rules: Some(pb::TierRules {
                vip_min_value: money(10_000_000),
                vip_min_orders: 10,
                potential_min_value: money(1_000_000),
                version: 0,
            }),
            actor: Some(agent()),
        })
        .await
        .expect("rules")
        .into_inner();
    assert_eq!(rules.version, 1);
    assert_eq!(
        app.read("c-1", reader(false)).await.tier,
        CustomerTier::Potential as i32
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM outbox WHERE event_type = 'care.CustomerTierChanged'")
            .await,
        2
    );
    app.stop().await;
}
