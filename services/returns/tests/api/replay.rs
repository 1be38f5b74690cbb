//! The replay rule: a keyed request remembers the id of the return it created, and a
//! retry answers with that return as it is now, whichever version stored the key.

use aftersales_protos::returns::v1 as pb;
use sea_orm::ConnectionTrait;

use crate::helpers::{Backend, request, spawn, yesterday};

#[tokio::test]
async fn a_retry_answers_with_the_return_as_it_is_now_even_for_keys_stored_before() {
    let mut app = spawn(Backend::Postgres).await;
    let mut keyed = request(pb::ReturnReason::NoReason, pb::Outcome::Refund, yesterday());
    keyed.idempotency_key = "order-9-return".into();
    let first = app
        .client
        .request_return(keyed.clone())
        .await
        .unwrap()
        .into_inner();
    app.client
        .cancel_return(pb::CancelReturnRequest {
            return_id: first.id.clone(),
            reason: "changed my mind".into(),
            actor: None,
        })
        .await
        .unwrap();
    let again = app
        .client
        .request_return(keyed.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, first.id);
    assert_eq!(
        again.status,
        pb::ReturnStatus::Cancelled as i32,
        "as it is now"
    );

    // What the previous version stored: the return's id as a JSON string.
    let stored = app
        .core
        .db()
        .execute_unprepared(&format!(
            "UPDATE idempotency_keys SET response = convert_to('\"{}\"', 'UTF8')",
            first.id
        ))
        .await
        .unwrap();
    assert_eq!(stored.rows_affected(), 1);
    let old = app.client.request_return(keyed).await.unwrap().into_inner();
    assert_eq!(old, again);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM returns").await, 1);
    app.stop().await;
}
