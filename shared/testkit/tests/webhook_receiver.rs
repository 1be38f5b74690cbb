//! The webhook receiver fixture against deliveries signed here by hand, as Standard
//! Webhooks 1.0 specifies: `v1,` + base64(HMAC-SHA256(key = the base64 after `whsec_`,
//! msg = "{id}.{timestamp}.{body}")). Needs `tests/setup/tools-webhooks.sh` (`make tools`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aftersales_testkit::webhook_receiver::WebhookReceiver;
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::io::AsyncReadExt;

fn new_secret() -> String {
    let mut key = uuid::Uuid::new_v4().as_bytes().to_vec();
    key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!("whsec_{}", STANDARD.encode(key))
}

fn sign(secret: &str, id: &str, timestamp: u64, body: &str) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn event(kind: &str) -> String {
    let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    serde_json::json!({ "type": kind, "timestamp": timestamp, "data": { "ticket_id": "t-1" } })
        .to_string()
}

/// A client that opens a fresh connection per request, so a request after `down` meets the
/// closed port rather than a pooled connection.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// POSTs `body` with the Standard Webhooks headers; `signature` is the whole header value,
/// made over `timestamp`.
async fn deliver(
    url: &str,
    id: &str,
    timestamp: u64,
    signature: &str,
    body: &str,
) -> reqwest::Result<reqwest::StatusCode> {
    let response = client()
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.to_owned())
        .send()
        .await?;
    Ok(response.status())
}

/// Signs with `secret` and delivers.
async fn deliver_signed(
    url: &str,
    secret: &str,
    id: &str,
    body: &str,
) -> reqwest::Result<reqwest::StatusCode> {
    let timestamp = now_secs();
    deliver(url, id, timestamp, &sign(secret, id, timestamp, body), body).await
}

#[tokio::test]
async fn records_each_verified_id_once_and_counts_duplicates() {
    let secret = new_secret();
    let receiver = WebhookReceiver::start(std::slice::from_ref(&secret))
        .await
        .unwrap();
    let url = receiver.url("/hooks/partner-1");
    let body = event("ticket.created");

    assert_eq!(
        deliver_signed(&url, &secret, "msg_1", &body).await.unwrap(),
        204
    );
    assert_eq!(
        deliver_signed(&url, &secret, "msg_1", &body).await.unwrap(),
        204
    );

    let received = receiver.wait_for(1, Duration::from_secs(5)).await.unwrap();
    assert_eq!(received.verified.len(), 1);
    let delivery = &received.verified[0];
    assert_eq!(delivery.id, "msg_1");
    assert_eq!(delivery.event_type, "ticket.created");
    assert_eq!(delivery.path, "/hooks/partner-1");
    assert!(
        (0..10_000).contains(&delivery.latency_ms),
        "{}",
        delivery.latency_ms
    );
    assert!(delivery.received_at_ms > 0);
    assert_eq!(received.duplicates, 1);
    assert_eq!(received.rejected, 0);
    assert_eq!(received.attempts, 2);
}

#[tokio::test]
async fn rejects_other_secrets_and_accepts_any_matching_signature() {
    let (old, new, stranger) = (new_secret(), new_secret(), new_secret());
    let receiver = WebhookReceiver::start(std::slice::from_ref(&new))
        .await
        .unwrap();
    let url = receiver.url("hooks");
    let body = event("ticket.updated");

    assert_eq!(
        deliver_signed(&url, &stranger, "msg_1", &body)
            .await
            .unwrap(),
        401
    );
    let ts = now_secs();
    let both = format!(
        "{} {}",
        sign(&old, "msg_2", ts, &body),
        sign(&new, "msg_2", ts, &body)
    );
    assert_eq!(deliver(&url, "msg_2", ts, &both, &body).await.unwrap(), 204);
    // A signature over another body does not verify this one.
    let tampered = sign(&new, "msg_3", ts, &event("other"));
    assert_eq!(
        deliver(&url, "msg_3", ts, &tampered, &body).await.unwrap(),
        401
    );

    // During a rotation the sender may sign with either secret.
    receiver
        .set_secrets(&[old.clone(), new.clone()])
        .await
        .unwrap();
    assert_eq!(
        deliver_signed(&url, &old, "msg_4", &body).await.unwrap(),
        204
    );
    receiver
        .set_secrets(std::slice::from_ref(&new))
        .await
        .unwrap();
    assert_eq!(
        deliver_signed(&url, &old, "msg_5", &body).await.unwrap(),
        401
    );
    // The library refuses timestamps more than five minutes off, whatever the signature.
    let stale = now_secs() - 600;
    let signature = sign(&new, "msg_6", stale, &body);
    assert_eq!(
        deliver(&url, "msg_6", stale, &signature, &body)
            .await
            .unwrap(),
        401
    );

    let received = receiver.deliveries().await.unwrap();
    let ids: Vec<&str> = received.verified.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["msg_2", "msg_4"]);
    assert_eq!(received.rejected, 4);
    assert_eq!(received.duplicates, 0);
    assert_eq!(received.attempts, 6);
    assert!(receiver.set_secrets(&["whsec_".into()]).await.is_err());
}

#[tokio::test]
async fn down_refuses_connections_and_cuts_open_ones_until_up() {
    let secret = new_secret();
    let receiver = WebhookReceiver::start(std::slice::from_ref(&secret))
        .await
        .unwrap();
    let url = receiver.url("hooks");
    let body = event("ticket.created");
    assert_eq!(
        deliver_signed(&url, &secret, "msg_1", &body).await.unwrap(),
        204
    );

    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/hooks")
        .to_owned();
    let mut open = tokio::net::TcpStream::connect(&addr).await.unwrap();
    receiver.down().await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), open.read(&mut buf))
        .await
        .expect("the open connection is closed by down");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    let err = deliver_signed(&url, &secret, "msg_2", &body)
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let refused = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
    assert!(refused, "{err:?}");
    // Down twice is still down; the control port keeps answering.
    receiver.down().await.unwrap();
    assert_eq!(receiver.deliveries().await.unwrap().verified.len(), 1);

    receiver.up().await.unwrap();
    receiver.up().await.unwrap();
    assert_eq!(
        deliver_signed(&url, &secret, "msg_2", &body).await.unwrap(),
        204
    );
    let received = receiver.wait_for(2, Duration::from_secs(5)).await.unwrap();
    assert_eq!(received.verified[1].id, "msg_2");
}

#[tokio::test]
async fn answers_a_set_status_without_recording_and_reset_forgets() {
    let secret = new_secret();
    let receiver = WebhookReceiver::start(std::slice::from_ref(&secret))
        .await
        .unwrap();
    let url = receiver.url("");
    let body = event("ticket.created");

    receiver.set_status(500).await.unwrap();
    assert_eq!(
        deliver_signed(&url, &secret, "msg_1", &body).await.unwrap(),
        500
    );
    let received = receiver.deliveries().await.unwrap();
    assert_eq!((received.verified.len(), received.attempts), (0, 1));

    receiver.set_status(0).await.unwrap();
    assert_eq!(
        deliver_signed(&url, &secret, "msg_1", &body).await.unwrap(),
        204
    );
    // Verified, but not the agreed body: counted apart, not recorded.
    assert_eq!(
        deliver_signed(&url, &secret, "msg_2", "[]").await.unwrap(),
        400
    );
    let received = receiver.deliveries().await.unwrap();
    assert_eq!(received.verified.len(), 1);
    assert_eq!((received.malformed, received.attempts), (1, 3));

    receiver.reset().await.unwrap();
    let received = receiver.deliveries().await.unwrap();
    assert!(received.verified.is_empty());
    assert_eq!(
        (
            received.duplicates,
            received.rejected,
            received.malformed,
            received.attempts
        ),
        (0, 0, 0, 0)
    );
    // The ids seen before the reset are forgotten too.
    assert_eq!(
        deliver_signed(&url, &secret, "msg_1", &body).await.unwrap(),
        204
    );
    assert_eq!(receiver.deliveries().await.unwrap().verified.len(), 1);

    let err = receiver
        .wait_for(2, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("verified 1 of 2"), "{err}");
    assert!(receiver.set_status(42).await.is_err());
}
