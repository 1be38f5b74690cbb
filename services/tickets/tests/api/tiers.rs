//! The tier care last published: out-of-order and concurrent changes keep the latest.

use std::time::Duration as StdDuration;

use aftersales_platform::db::{DbSettings, connect, migrate};
use aftersales_tickets::{
    domain::Tier,
    store::{self, migration::Migrator},
};
use chrono::{Duration, SubsecRound, Utc};
use sea_orm::{DatabaseConnection, TransactionTrait};

use crate::helpers::Backend;

async fn database(backend: Backend) -> DatabaseConnection {
    let url = backend.fresh_url().await.expect("a fresh database");
    let db = connect(&DbSettings::new(url)).await.expect("connects");
    migrate::<Migrator>(&db).await.expect("migrates");
    db
}

async fn tier_of(db: &DatabaseConnection, customer: &str) -> Option<Tier> {
    store::known_tier(db, customer).await.expect("reads")
}

async fn out_of_order_changes_keep_the_latest(backend: Backend) {
    let db = database(backend).await;
    let t = Utc::now().trunc_subsecs(3);
    store::record_tier(&db, "c-1", Tier::Vip, t + Duration::seconds(2))
        .await
        .expect("records");
    store::record_tier(&db, "c-1", Tier::Regular, t + Duration::seconds(1))
        .await
        .expect("an older change is no error");
    assert_eq!(tier_of(&db, "c-1").await, Some(Tier::Vip));
    store::record_tier(&db, "c-1", Tier::Potential, t + Duration::seconds(3))
        .await
        .expect("records");
    assert_eq!(tier_of(&db, "c-1").await, Some(Tier::Potential));
}

#[tokio::test]
async fn out_of_order_tier_changes_keep_the_latest_postgres() {
    out_of_order_changes_keep_the_latest(Backend::Postgres).await;
}

#[tokio::test]
async fn out_of_order_tier_changes_keep_the_latest_sqlite() {
    out_of_order_changes_keep_the_latest(Backend::Sqlite).await;
}

/// Two consumers record changes of one new customer at once: the later change commits
/// first, the earlier one was read before that commit and writes after it. The earlier
/// change must not win.
#[tokio::test]
async fn a_concurrent_older_tier_change_does_not_overwrite_a_newer_one() {
    let db = database(Backend::Postgres).await;
    let t = Utc::now().trunc_subsecs(3);
    let newer = db.begin().await.expect("begins");
    store::record_tier(&newer, "c-2", Tier::Vip, t + Duration::seconds(2))
        .await
        .expect("records");
    let older = tokio::spawn({
        let db = db.clone();
        async move {
            let txn = db.begin().await.expect("begins");
            store::record_tier(&txn, "c-2", Tier::Regular, t + Duration::seconds(1))
                .await
                .expect("records");
            txn.commit().await.expect("commits");
        }
    });
    // Let the older change read (nothing committed yet) and wait on the newer row.
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    newer.commit().await.expect("commits");
    older.await.expect("the older change ends");
    assert_eq!(tier_of(&db, "c-2").await, Some(Tier::Vip));

    // Many changes at once, in no order: the latest `changed_at` is what stays.
    let tiers = [Tier::Potential, Tier::Regular, Tier::Vip];
    let writers: Vec<_> = (0..24i64)
        .map(|i| {
            let db = db.clone();
            let tier = tiers[(i % 3) as usize];
            let at = t + Duration::milliseconds((i * 7919) % 24 * 10);
            tokio::spawn(async move {
                let txn = db.begin().await.expect("begins");
                store::record_tier(&txn, "c-3", tier, at)
                    .await
                    .expect("records");
                txn.commit().await.expect("commits");
                (at, tier)
            })
        })
        .collect();
    let mut written = Vec::new();
    for w in writers {
        written.push(w.await.expect("a writer ends"));
    }
    let latest = written.iter().max_by_key(|(at, _)| *at).expect("writes").1;
    assert_eq!(tier_of(&db, "c-3").await, Some(latest));
}
