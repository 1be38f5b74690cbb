//! Managing endpoints: URLs that point inside are refused, partners subscribe only to
//! their catalogue, bad input names its field, a keyed create happens once, an owner
//! lists only its own endpoints, a deleted endpoint is gone.

use aftersales_protos::webhooks::v1::{self as pb};
use aftersales_webhooks::app::WebhooksConfig;
use tonic::Code;

use crate::helpers::*;

fn create(partner: &str, url: &str, types: &[&str]) -> pb::CreateEndpointRequest {
    pb::CreateEndpointRequest {
        partner_id: partner.into(),
        url: url.into(),
        event_types: types.iter().map(|t| t.to_string()).collect(),
        description: String::new(),
        idempotency_key: String::new(),
    }
}

/// The field an `InvalidArgument` names.
fn field_of(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_default()
}

async fn urls_that_point_inside_are_refused(backend: Backend) {
    // No allow-list: production's rules.
    let app = spawn_with(backend, |config: &mut WebhooksConfig| {
        config.sender.allow = Default::default();
    })
    .await;
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://localhost:8443/hook",
        "https://10.0.0.8/hook",
        "https://192.168.1.20/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fd00:ec2::254]/hook",
        "https://user:secret@example.com/hook",
        "file:///etc/passwd",
    ] {
        for partner in ["p1", ""] {
            let err = app
                .client
                .clone()
                .create_endpoint(create(partner, url, &["dispatch.JobOffered"]))
                .await
                .unwrap_err();
            assert_eq!(field_of(&err), "url", "{url}: {err:?}");
        }
    }
    // Nothing was created.
    let listed = app
        .client
        .clone()
        .list_endpoints(pb::ListEndpointsRequest {
            partner_id: "p1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.endpoints.is_empty());
    app.stop().await;
}
on_both!(urls_that_point_inside_are_refused);

async fn partners_subscribe_only_to_their_catalogue(backend: Backend) {
    let app = spawn(backend).await;
    let err = app
        .client
        .clone()
        .create_endpoint(create(
            "p1",
            "http://127.0.0.1:9/hook",
            &["tickets.TicketCreated"],
        ))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "event_types");
    for (types, field) in [
        (vec![], "event_types"),
        (vec!["dispatch.Nothing"], "event_types"),
        (
            vec!["dispatch.JobOffered", "dispatch.JobOffered"],
            "event_types",
        ),
    ] {
        let err = app
            .client
            .clone()
            .create_endpoint(create("p1", "http://127.0.0.1:9/hook", &types))
            .await
            .unwrap_err();
        assert_eq!(field_of(&err), field, "{types:?}");
    }
    let err = app
        .client
        .clone()
        .create_endpoint(create("p1", "", &["dispatch.JobOffered"]))
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "url");
    let catalogue = app
        .client
        .clone()
        .list_event_types(pb::ListEventTypesRequest {
            partner_id: "p1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .event_types;
    assert!(catalogue.contains(&"dispatch.JobOffered".to_string()));
    assert!(catalogue.contains(&"dispatch.SettlementIssued".to_string()));
    assert!(catalogue.contains(&"dispatch.JobPartsReady".to_string()));
    assert!(!catalogue.contains(&"tickets.TicketCreated".to_string()));
    let internal = app
        .client
        .clone()
        .list_event_types(pb::ListEventTypesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .event_types;
    assert!(internal.contains(&"tickets.TicketCreated".to_string()));
    assert!(internal.len() > catalogue.len());
    app.stop().await;
}
on_both!(partners_subscribe_only_to_their_catalogue);

async fn endpoints_belong_to_their_owner(backend: Backend) {
    let app = spawn(backend).await;
    let mut keyed = create("p1", "http://127.0.0.1:9/a", &["dispatch.JobOffered"]);
    keyed.idempotency_key = "create-1".into();
    let first = app
        .client
        .clone()
        .create_endpoint(keyed.clone())
        .await
        .unwrap()
        .into_inner();
    let again = app
        .client
        .clone()
        .create_endpoint(keyed.clone())
        .await
        .unwrap()
        .into_inner();
    let id = first.endpoint.as_ref().unwrap().id.clone();
    assert_eq!(
        again.endpoint.as_ref().unwrap().id,
        id,
        "a retry creates nothing new"
    );
    assert_eq!(again.secret, first.secret);
    keyed.url = "http://127.0.0.1:9/b".into();
    let reused = app.client.clone().create_endpoint(keyed).await.unwrap_err();
    assert_eq!(field_of(&reused), "idempotency_key");
    app.endpoint("p2", "http://127.0.0.1:9/c", &["dispatch.JobOffered"])
        .await;
    app.endpoint("", "http://127.0.0.1:9/d", &["tickets.TicketCreated"])
        .await;
    let list = |partner: &str| {
        let mut client = app.client.clone();
        let partner = partner.to_owned();
        async move {
            client
                .list_endpoints(pb::ListEndpointsRequest {
                    partner_id: partner,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .endpoints
        }
    };
    assert_eq!(list("p1").await.len(), 1);
    assert_eq!(list("p2").await.len(), 1);
    assert_eq!(list("").await.len(), 1);
    let err = app
        .client
        .clone()
        .delete_endpoint(pb::DeleteEndpointRequest {
            partner_id: "p2".into(),
            endpoint_id: id.clone(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let delete = pb::DeleteEndpointRequest {
        partner_id: "p1".into(),
        endpoint_id: id.clone(),
        idempotency_key: "delete-1".into(),
    };
    app.client
        .clone()
        .delete_endpoint(delete.clone())
        .await
        .unwrap();
    // A retried delete answers as the first did.
    app.client.clone().delete_endpoint(delete).await.unwrap();
    assert!(list("p1").await.is_empty());
    let err = app
        .client
        .clone()
        .get_endpoint(pb::GetEndpointRequest {
            partner_id: "p1".into(),
            endpoint_id: id,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    app.stop().await;
}
on_both!(endpoints_belong_to_their_owner);

async fn secrets_are_sealed_at_rest(backend: Backend) {
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn(backend).await;
    let (endpoint, secret) = app
        .endpoint("p1", "http://127.0.0.1:9/s", &["dispatch.JobOffered"])
        .await;
    let db = app.core.db();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT secret FROM endpoints",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let stored: String = rows[0].try_get("", "secret").unwrap();
    let key = secret.trim_start_matches("whsec_");
    assert!(!stored.contains(key), "the secret is stored sealed");
    assert!(!endpoint.url.is_empty());
    app.stop().await;
}
on_both!(secrets_are_sealed_at_rest);
