//! The Redis schedule against a real Redis: ordering, never early, leases, lost data.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use aftersales_deadlines::{Claim, DeadlineQueue, RedisQueue, RedisQueueSettings};

async fn queue(shards: usize) -> DeadlineQueue {
    let conn = aftersales_testkit::redis_connection().await.unwrap();
    DeadlineQueue::Redis(RedisQueue::new(
        conn,
        &RedisQueueSettings {
            key_prefix: aftersales_testkit::unique_prefix(),
            name: "sla".into(),
            shards,
        },
    ))
}

fn ids(claims: &[Claim]) -> Vec<String> {
    let mut ids: Vec<String> = claims.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn claims_due_items_across_shards_and_never_early() {
    let q = queue(4).await;
    let items: Vec<(String, i64)> = (0..20)
        .map(|i| (format!("clock-{i:02}"), 1_000 + i))
        .collect();
    q.schedule(&items).await.unwrap();
    assert_eq!(q.next_due().await.unwrap(), Some(1_000));
    assert!(q.claim(999, 100, 5_000).await.unwrap().is_empty());
    let claimed = q.claim(1_009, 100, 5_000).await.unwrap();
    assert_eq!(
        ids(&claimed),
        (0..10).map(|i| format!("clock-{i:02}")).collect::<Vec<_>>()
    );
    assert!(claimed.iter().all(|c| c.due_ms <= 1_009 && !c.reclaimed));
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.scheduled, stats.in_flight), (10, 10));
}

#[tokio::test]
async fn a_later_write_never_delays_an_item() {
    let q = queue(2).await;
    q.schedule(&[("a".into(), 100)]).await.unwrap();
    q.schedule(&[("a".into(), 900)]).await.unwrap();
    assert_eq!(q.next_due().await.unwrap(), Some(100));
}

#[tokio::test]
async fn an_unacknowledged_claim_is_handed_out_again_after_its_lease() {
    let q = queue(2).await;
    q.schedule(&[("a".into(), 100), ("b".into(), 100)])
        .await
        .unwrap();
    assert_eq!(q.claim(100, 10, 1_000).await.unwrap().len(), 2);
    q.ack(&["b".into()]).await.unwrap();
    assert!(q.claim(1_099, 10, 1_000).await.unwrap().is_empty());
    let again = q.claim(1_100, 10, 1_000).await.unwrap();
    assert_eq!(ids(&again), ["a"]);
    assert!(again[0].reclaimed);
    q.ack(&["a".into()]).await.unwrap();
    assert_eq!(q.next_due().await.unwrap(), None);
}

#[tokio::test]
async fn cancelled_items_do_not_fire() {
    let q = queue(3).await;
    q.schedule(&[("a".into(), 100), ("b".into(), 100)])
        .await
        .unwrap();
    q.cancel(&["a".into()]).await.unwrap();
    assert_eq!(ids(&q.claim(200, 10, 1_000).await.unwrap()), ["b"]);
}

#[tokio::test]
async fn reports_lost_data_once() {
    let q = queue(1).await;
    assert!(
        q.check_lost().await.unwrap(),
        "a fresh prefix has no marker yet"
    );
    assert!(!q.check_lost().await.unwrap());
}
