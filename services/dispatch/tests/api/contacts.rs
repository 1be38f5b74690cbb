//! The customer's contact on a job: sealed at rest (and in nothing the job publishes),
//! masked for the desk, clear for a `pii:read` token and for the partner on its accepted
//! open job (each clear read in the audit trail), keys rotated, old clear-text rows sealed at start-up, and erased once when
//! care anonymises the customer.

use std::time::Duration as StdDuration;

use aftersales_dispatch::app::settings_from_env;
use aftersales_eventbus::BusMessage;
use aftersales_platform::{
    CancellationToken,
    auth::{AuthSettings, DevIssuer, roles},
    config::Env,
    seal::{DEV_KEY_ID, Vault},
};
use aftersales_protos::{
    audit::v1 as audit,
    dispatch::v1 as pb,
    events::v1::{CustomerAnonymised, EventEnvelope, event_envelope::Payload, type_name},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use prost::Message;
use sea_orm::ConnectionTrait;
use tokio::net::TcpListener;
use tonic::{Code, Request};

use crate::helpers::*;

// Whole values only: a short piece ("Lei") turns up in random base64 now and then.
const CLEAR: [&str; 5] = [
    "Li Lei",
    "13800000000",
    "0000000",
    "Huaihai",
    "1 Huaihai Road",
];

/// The job's row (body and key id) and every remembered idempotent response, as text.
async fn stored(app: &TestApp, job_id: &str) -> String {
    let db = app.core.db();
    let query = |sql: String| async move {
        db.query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await
        .expect("rows")
    };
    let mut out = Vec::new();
    for row in query(format!(
        "SELECT body, contact_key_id FROM jobs WHERE id = '{job_id}'"
    ))
    .await
    {
        out.push(row.try_get::<String>("", "body").expect("body"));
        let key: Option<String> = row.try_get("", "contact_key_id").expect("key id");
        out.push(key.unwrap_or_default());
    }
    for row in query("SELECT response FROM idempotency_keys".into()).await {
        let response: Vec<u8> = row.try_get("", "response").expect("response");
        out.push(String::from_utf8_lossy(&response).into_owned());
    }
    out.join("|")
}

/// Personal data a caller typed into the fault description: masked before storage.
const TYPED: [&str; 2] = ["13912345678", "li.lei@example.com"];

fn assert_sealed(stored: &str) {
    for clear in CLEAR.iter().chain(TYPED.iter()) {
        assert!(
            !stored.contains(clear),
            "{clear} is stored in clear text: {stored}"
        );
    }
}

async fn contact_key_id(app: &TestApp, job_id: &str) -> String {
    let db = app.core.db();
    db.query_one_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        format!("SELECT contact_key_id FROM jobs WHERE id = '{job_id}'"),
    ))
    .await
    .expect("query")
    .expect("a row")
    .try_get::<Option<String>>("", "contact_key_id")
    .expect("a key id")
    .unwrap_or_default()
}

async fn the_contact_at_rest_is_sealed(backend: Backend) {
    let mut app = spawn(backend).await;
    app.register(spec("A", 31.201, 121.451)).await;
    let mut keyed = job_request("T-1", true);
    keyed.idempotency_key = "create-1".into();
    keyed.fault_description = "no power; call 139 1234 5678 or li.lei@example.com".into();
    let job = app.create(keyed).await;
    assert_eq!(
        job.fault_description, "no power; call 139****5678 or l***@***",
        "typed personal data is masked before storage"
    );
    assert_sealed(&stored(&app, &job.id).await);
    assert_eq!(contact_key_id(&app, &job.id).await, DEV_KEY_ID);
    // Nothing the job publishes names the customer.
    let outbox = app
        .core
        .db()
        .query_all_raw(sea_orm::Statement::from_string(
            app.core.db().get_database_backend(),
            format!("SELECT payload FROM outbox WHERE subject_id = '{}'", job.id),
        ))
        .await
        .expect("outbox");
    assert!(!outbox.is_empty());
    for row in outbox {
        let payload: Vec<u8> = row.try_get("", "payload").expect("payload");
        let text = String::from_utf8_lossy(&payload);
        assert_sealed(&text);
    }
    app.stop().await;
}

#[tokio::test]
async fn the_contact_at_rest_is_sealed_on_postgres() {
    the_contact_at_rest_is_sealed(Backend::Postgres).await;
}

#[tokio::test]
async fn the_contact_at_rest_is_sealed_on_sqlite() {
    the_contact_at_rest_is_sealed(Backend::Sqlite).await;
}

/// A development OpenID provider on loopback, and the settings that trust it.
pub async fn provider(stop: &CancellationToken) -> (DevIssuer, AuthSettings) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let issuer = DevIssuer::generate(&url, DevIssuer::DEFAULT_AUDIENCE).unwrap();
    let router = issuer.router();
    let stop = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    let settings = AuthSettings::oidc(issuer.settings());
    (issuer, settings)
}

pub fn bearer<T>(body: T, token: &str) -> Request<T> {
    let mut request = Request::new(body);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn get_job_shows_the_contact_by_right(backend: Backend) {
    let stop = CancellationToken::new();
    let (issuer, auth) = provider(&stop).await;
    let token = |subject: &str, roles: &[&str]| {
        issuer
            .mint(subject, roles, StdDuration::from_secs(600))
            .unwrap()
    };
    let admin = token("admin-1", &[roles::ADMIN]);
    let agent = token("dispatcher-1", &[roles::AGENT]);
    let reader = token("dispatcher-2", &[roles::AGENT, roles::PII_READ]);
    let gateway = token("gateway", &[roles::GATEWAY, roles::ACT_AS]);
    let url = backend.fresh_url().await.unwrap();
    let mut app = start_on(Start {
        backend,
        url,
        run_worker: true,
        auth: Some(auth),
        configure: Box::new(|_| {}),
    })
    .await;
    let partner = app
        .client
        .register_partner(bearer(
            pb::RegisterPartnerRequest {
                spec: Some(spec("A", 31.201, 121.451)),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("registers")
        .into_inner()
        .id;
    let mut create = job_request("T-2", false);
    create.actor = None;
    let created = app
        .client
        .create_job(bearer(create, &agent))
        .await
        .expect("creates")
        .into_inner();
    assert_eq!(
        created.contact.as_ref().map(|c| c.phone.as_str()),
        Some("138****0000"),
        "the creator's answer is masked"
    );
    let get = |token: &str, actor: Option<aftersales_protos::common::v1::Actor>| {
        bearer(
            pb::GetJobRequest {
                job_id: created.id.clone(),
                actor,
            },
            token,
        )
    };

    let masked = app
        .client
        .get_job(get(&agent, None))
        .await
        .expect("the agent reads")
        .into_inner()
        .contact
        .expect("a masked contact");
    assert_eq!(masked.name, "L**");
    assert_eq!(masked.phone, "138****0000");
    assert_eq!(masked.address, "1 Hu***");

    let clear = app
        .client
        .get_job(get(&reader, None))
        .await
        .expect("the reader reads")
        .into_inner()
        .contact
        .expect("a clear contact");
    assert_eq!(clear.name, "Li Lei");
    assert_eq!(clear.phone, "13800000000");
    assert_eq!(clear.address, "1 Huaihai Road");

    let as_partner = Some(partner_actor(&partner));
    let offered = app
        .client
        .get_job(get(&gateway, as_partner.clone()))
        .await
        .expect("the partner sees its offer")
        .into_inner();
    assert!(offered.contact.is_none(), "no contact before acceptance");
    app.client
        .respond_to_offer(bearer(
            pb::RespondToOfferRequest {
                job_id: created.id.clone(),
                offer_id: open_offer(&offered).id,
                accept: true,
                decline_reason: String::new(),
                actor: as_partner.clone(),
            },
            &gateway,
        ))
        .await
        .expect("accepts");
    let accepted = app
        .client
        .get_job(get(&gateway, as_partner))
        .await
        .expect("the partner's job")
        .into_inner()
        .contact
        .expect("the contact on accepted open work");
    assert_eq!(accepted.phone, "13800000000");

    // Every clear read is in the trail, about the job; masked answers are not.
    let trail = app
        .audit
        .list_audit_records(bearer(
            audit::ListAuditRecordsRequest {
                target: format!("job:{}", created.id),
                page_size: 100,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("the admin lists")
        .into_inner()
        .records;
    let reads: Vec<(&str, &str, &str)> = trail
        .iter()
        .map(|r| (r.subject.as_str(), r.on_behalf_of.as_str(), r.rpc.as_str()))
        .collect();
    let rpc = |method: &str| format!("/aftersales.dispatch.v1.DispatchService/{method}");
    assert_eq!(
        reads,
        [
            ("gateway", partner.as_str(), rpc("GetJob").as_str()),
            ("gateway", partner.as_str(), rpc("RespondToOffer").as_str()),
            ("dispatcher-2", "", rpc("GetJob").as_str()),
        ],
        "newest first: the partner's read, its accept answer, the pii:read reader's read"
    );
    for record in &trail[..2] {
        let detail: serde_json::Value = serde_json::from_str(&record.detail).unwrap();
        assert_eq!(detail["partner"], partner.as_str());
        assert_eq!(detail["contact"], "clear");
    }

    // The gateway's own token (no partner named) is not a reader.
    let own = app
        .client
        .get_job(get(&gateway, None))
        .await
        .expect("the gateway reads")
        .into_inner()
        .contact
        .expect("masked");
    assert_eq!(own.phone, "138****0000");
    app.stop().await;
    stop.cancel();
}

#[tokio::test]
async fn get_job_shows_the_contact_by_right_on_postgres() {
    get_job_shows_the_contact_by_right(Backend::Postgres).await;
}

#[tokio::test]
async fn get_job_shows_the_contact_by_right_on_sqlite() {
    get_job_shows_the_contact_by_right(Backend::Sqlite).await;
}

fn key(byte: u8) -> String {
    STANDARD.encode([byte; 32])
}

/// The vault `DISPATCH_ENCRYPTION_KEYS` and `DISPATCH_ACTIVE_KEY_ID` describe.
fn vault(keys: &str, active: &str) -> Vault {
    let env = Env::from_pairs([
        ("DATABASE_URL", "postgres://x@localhost/dispatch"),
        ("AUTH_MODE", "disabled"),
        ("DISPATCH_ENCRYPTION_KEYS", keys),
        ("DISPATCH_ACTIVE_KEY_ID", active),
    ]);
    settings_from_env(&env, None).expect("settings").1.vault
}

async fn restart(app: TestApp, backend: Backend, vault: Vault) -> TestApp {
    let url = app.url.clone();
    app.stop().await;
    start_on(Start {
        backend,
        url,
        run_worker: true,
        auth: None,
        configure: Box::new(move |config| config.vault = vault),
    })
    .await
}

async fn rotation_opens_old_keys_and_writes_under_the_active_one(backend: Backend) {
    let k1 = format!("k1:{}", key(1));
    let url = backend.fresh_url().await.unwrap();
    let first = vault(&k1, "k1");
    let mut app = start_on(Start {
        backend,
        url,
        run_worker: true,
        auth: None,
        configure: Box::new(move |config| config.vault = first),
    })
    .await;
    app.register(spec("A", 31.201, 121.451)).await;
    let old = app.create(job_request("T-3", false)).await;
    assert_eq!(contact_key_id(&app, &old.id).await, "k1");

    let both = format!("k1:{},k2:{}", key(1), key(2));
    let mut app = restart(app, backend, vault(&both, "k2")).await;
    let read = app.job(&old.id).await.contact.expect("a contact");
    assert_eq!(read.name, "Li Lei", "a k1 contact opens after rotation");
    assert_eq!(
        contact_key_id(&app, &old.id).await,
        "k1",
        "reads write nothing"
    );
    let new = app.create(job_request("T-4", false)).await;
    assert_eq!(contact_key_id(&app, &new.id).await, "k2");
    assert_sealed(&stored(&app, &new.id).await);
    // A command on the old job writes it again, under the active key.
    app.client
        .cancel_job(pb::CancelJobRequest {
            job_id: old.id.clone(),
            reason: "customer called off".into(),
            actor: Some(agent()),
        })
        .await
        .expect("cancels");
    assert_eq!(contact_key_id(&app, &old.id).await, "k2");
    assert_eq!(app.job(&old.id).await.contact.unwrap().name, "Li Lei");

    // Without the key a contact was sealed under, it does not open; nothing leaks.
    let new_id = new.id.clone();
    let mut app = restart(app, backend, vault(&format!("k3:{}", key(3)), "k3")).await;
    let err = app
        .client
        .get_job(pb::GetJobRequest {
            job_id: new_id,
            actor: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    assert!(!err.message().contains("Li Lei"));
    app.stop().await;
}

#[tokio::test]
async fn rotation_opens_old_keys_and_writes_under_the_active_one_on_postgres() {
    rotation_opens_old_keys_and_writes_under_the_active_one(Backend::Postgres).await;
}

#[tokio::test]
async fn rotation_opens_old_keys_and_writes_under_the_active_one_on_sqlite() {
    rotation_opens_old_keys_and_writes_under_the_active_one(Backend::Sqlite).await;
}

async fn clear_contacts_of_older_versions_are_sealed_at_start_up(backend: Backend) {
    let mut app = spawn(backend).await;
    app.register(spec("A", 31.201, 121.451)).await;
    let job = app.create(job_request("T-5", false)).await;
    // Make the row what a version before sealing wrote: the contact in clear text in the
    // body, no key id column.
    let db = app.core.db();
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT body FROM jobs WHERE id = '{}'", job.id),
        ))
        .await
        .unwrap()
        .unwrap();
    let mut body: serde_json::Value =
        serde_json::from_str(&row.try_get::<String>("", "body").unwrap()).unwrap();
    body["contact"] = serde_json::json!({
        "name": "Li Lei", "phone": "13800000000", "address": "1 Huaihai Road"
    });
    let body = body.to_string().replace('\'', "''");
    db.execute_unprepared(&format!(
        "UPDATE jobs SET body = '{body}', contact_key_id = NULL WHERE id = '{}'",
        job.id
    ))
    .await
    .unwrap();
    // Until start-up seals it, the old row still reads.
    assert_eq!(app.job(&job.id).await.contact.unwrap().name, "Li Lei");

    let mut app = restart(
        app,
        backend,
        Vault::development(aftersales_dispatch::usecases::SEAL_CONTEXT),
    )
    .await;
    assert_sealed(&stored(&app, &job.id).await);
    assert_eq!(contact_key_id(&app, &job.id).await, DEV_KEY_ID);
    let read = app.job(&job.id).await.contact.expect("a contact");
    assert_eq!(read.phone, "13800000000");
    app.stop().await;
}

#[tokio::test]
async fn clear_contacts_of_older_versions_are_sealed_at_start_up_on_postgres() {
    clear_contacts_of_older_versions_are_sealed_at_start_up(Backend::Postgres).await;
}

#[tokio::test]
async fn clear_contacts_of_older_versions_are_sealed_at_start_up_on_sqlite() {
    clear_contacts_of_older_versions_are_sealed_at_start_up(Backend::Sqlite).await;
}

/// `CustomerAnonymised` for `customer` as care publishes it, with the id `id`.
fn anonymised(id: &str, customer: &str) -> BusMessage {
    let payload = Payload::CustomerAnonymised(CustomerAnonymised {
        customer_id: customer.into(),
    });
    let envelope = EventEnvelope {
        id: id.into(),
        r#type: type_name(&payload).into(),
        subject_id: customer.into(),
        occurred_at: None,
        source: "care".into(),
        payload: Some(payload),
    };
    BusMessage {
        event_id: id.into(),
        event_type: envelope.r#type.clone(),
        subject_id: customer.into(),
        payload: envelope.encode_to_vec(),
        headers: Default::default(),
    }
}

const FIRST: &str = "0190c0de-0000-7000-8000-000000000001";
const LATER: &str = "0190c0de-0000-7000-8000-000000000002";

async fn anonymisation_erases_the_contact_once(backend: Backend) {
    let mut app = spawn(backend).await;
    app.register(spec("A", 31.201, 121.451)).await;
    let gone = app.create(job_request("T-6", false)).await;
    let also_gone = app.create(job_request("T-7", false)).await;
    let mut other = job_request("T-8", false);
    other.customer_id = "cust-2".into();
    let kept = app.create(other).await;

    let event = anonymised(FIRST, "cust-1");
    app.bus
        .publish("care", std::slice::from_ref(&event))
        .await
        .unwrap();
    let erased = app
        .wait_for(&gone.id, |j| {
            j.contact.as_ref().is_some_and(|c| c.name == "(anonymised)")
        })
        .await;
    let erased_contact = erased.contact.unwrap();
    assert_eq!(erased_contact.phone, "");
    assert_eq!(erased_contact.address, "");
    let other_erased = app.job(&also_gone.id).await.contact.unwrap();
    assert_eq!(other_erased.name, "(anonymised)");
    assert_eq!(app.job(&kept.id).await.contact.unwrap().name, "Li Lei");
    let count = |job_id: &str| {
        format!("SELECT COUNT(*) AS n FROM jobs WHERE id = '{job_id}' AND contact_key_id = ''")
    };
    assert_eq!(app.count(&count(&gone.id)).await, 1);
    let before = stored(&app, &gone.id).await;
    assert_sealed(&before);
    assert!(!before.contains("\"contact\":{"), "{before}");

    // Delivered again (and the same erasure asked for directly): nothing changes. A
    // later event on the stream, once applied, says the redelivery was handled before it.
    app.bus
        .publish("care", &[event, anonymised(LATER, "cust-3")])
        .await
        .unwrap();
    let processed =
        |id: &str| format!("SELECT COUNT(*) AS n FROM processed_events WHERE event_id = '{id}'");
    for _ in 0..100 {
        if app.count(&processed(LATER)).await == 1 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert_eq!(app.count(&processed(LATER)).await, 1, "the later event");
    let processed = processed(FIRST);
    assert_eq!(app.count(&processed).await, 1, "applied once");
    assert_eq!(stored(&app, &gone.id).await, before, "the row is as it was");
    let db = app.core.db().clone();
    assert_eq!(app.core.erase_contacts_of(&db, "cust-1").await.unwrap(), 0);
    app.stop().await;
}

#[tokio::test]
async fn anonymisation_erases_the_contact_once_on_postgres() {
    anonymisation_erases_the_contact_once(Backend::Postgres).await;
}

#[tokio::test]
async fn anonymisation_erases_the_contact_once_on_sqlite() {
    anonymisation_erases_the_contact_once(Backend::Sqlite).await;
}

#[test]
fn production_needs_keys_and_names_the_variable() {
    let env = Env::from_pairs([
        ("DATABASE_URL", "postgres://x@localhost/dispatch"),
        ("AUTH_MODE", "disabled"),
    ]);
    let err = settings_from_env(&env, None).unwrap_err();
    assert_eq!(err.name, "DISPATCH_ENCRYPTION_KEYS");
    let env = Env::from_pairs([
        ("DATABASE_URL", "postgres://x@localhost/dispatch"),
        ("AUTH_MODE", "disabled"),
        (
            "DISPATCH_ENCRYPTION_KEYS",
            &format!("k1:{},k2:{}", key(1), key(2)) as &str,
        ),
    ]);
    assert_eq!(
        settings_from_env(&env, None).unwrap_err().name,
        "DISPATCH_ACTIVE_KEY_ID"
    );
    let env = Env::from_pairs([
        ("DATABASE_URL", "sqlite://dispatch.db?mode=rwc"),
        ("AUTH_MODE", "disabled"),
    ]);
    let (_, config) = settings_from_env(&env, None).expect("dev settings");
    assert_eq!(config.vault.active_key_id(), DEV_KEY_ID);
}
