//! Spare parts through both faces: a partner reserves parts for its accepted job at the
//! warehouse; with too few on hand the job waits for parts and resumes when the goods
//! arrive; another partner can neither reserve for that job nor draw on this partner's
//! outlet; a keyed retry reserves nothing more; bad input names the field.

use aftersales_protos::{dispatch::v1 as pb, partner::v1 as partner};
use serde_json::json;
use tonic::Code;

use crate::helpers::{REGION_A, keyed, suite, two_accepted_jobs};

#[tokio::test]
async fn a_partner_reserves_parts_for_its_job_on_both_faces() {
    let mut s = suite(false).await;
    let mut gw = s.gateway(|_| {}).await;
    let (a, b, by_grpc, by_http) = two_accepted_jobs(&mut s, &mut gw, "ticket-parts").await;
    let pump = s
        .dispatch
        .register_part(pb::RegisterPartRequest {
            name: "Pump".into(),
            ..Default::default()
        })
        .await
        .expect("a part")
        .into_inner()
        .id;
    let site = |kind: pb::SiteKind, partner_id: &str| pb::RegisterPartSiteRequest {
        name: format!("{kind:?}"),
        kind: kind as i32,
        region_code: REGION_A.into(),
        partner_id: partner_id.into(),
        ..Default::default()
    };
    let register = |request| {
        let mut dispatch = s.dispatch.clone();
        async move {
            dispatch
                .register_part_site(request)
                .await
                .expect("a site")
                .into_inner()
                .id
        }
    };
    let warehouse = register(site(pb::SiteKind::CentralWarehouse, "")).await;
    let b_outlet = register(site(pb::SiteKind::PartnerOutlet, &b.id)).await;
    let receive = |key: &str, quantity: u32| pb::ReceivePartsRequest {
        idempotency_key: key.into(),
        site_id: warehouse.clone(),
        lines: vec![pb::PartQuantity {
            part_id: pump.clone(),
            quantity,
        }],
        reference: "DN-1".into(),
        actor: None,
    };
    s.dispatch
        .receive_parts(receive("in-1", 2))
        .await
        .expect("two pumps arrive");

    let request =
        |job_id: &str, site_id: &str, key: &str, quantity: u32| partner::RequestJobPartsRequest {
            idempotency_key: key.into(),
            job_id: job_id.into(),
            site_id: site_id.into(),
            lines: vec![pb::PartQuantity {
                part_id: pump.clone(),
                quantity,
            }],
        };
    let stolen = gw
        .grpc
        .request_job_parts(keyed(request(&by_grpc.id, &warehouse, "p-b", 1), &b.secret))
        .await
        .expect_err("B may not reserve for A's job");
    assert_eq!(stolen.code(), Code::NotFound, "{stolen:?}");
    let foreign = gw
        .grpc
        .request_job_parts(keyed(request(&by_grpc.id, &b_outlet, "p-o", 1), &a.secret))
        .await
        .expect_err("A may not draw on B's outlet");
    assert_eq!(foreign.code(), Code::NotFound, "{foreign:?}");

    let waiting = gw
        .grpc
        .request_job_parts(keyed(request(&by_grpc.id, &warehouse, "p-1", 3), &a.secret))
        .await
        .expect("A reserves")
        .into_inner();
    let job = waiting.job.expect("the job");
    assert_eq!(job.status, pb::JobStatus::WaitingForParts as i32);
    assert_eq!(waiting.reservations.len(), 1);
    assert_eq!(
        (
            waiting.reservations[0].quantity,
            waiting.reservations[0].reserved
        ),
        (3, 2),
        "two of three held"
    );
    let again = gw
        .grpc
        .request_job_parts(keyed(request(&by_grpc.id, &warehouse, "p-1", 3), &a.secret))
        .await
        .expect("the retry answers")
        .into_inner();
    assert_eq!(
        again.reservations, waiting.reservations,
        "nothing reserved twice"
    );

    s.dispatch
        .receive_parts(receive("in-2", 2))
        .await
        .expect("two more arrive");
    let resumed = s.admin_job(&by_grpc.id).await;
    assert_eq!(
        resumed.status,
        pb::JobStatus::Accepted as i32,
        "whole again"
    );

    let http = &gw.http;
    let path = format!("/v1/jobs/{}/parts-requests", by_http.id);
    let empty = http
        .post(
            &path,
            Some(&a.secret),
            json!({"site_id": warehouse, "lines": []}),
        )
        .await;
    assert_eq!(empty.status, 400, "{empty:?}");
    assert_eq!(empty.violated_field(), "lines");
    let zero = http
        .post(
            &path,
            Some(&a.secret),
            json!({"site_id": warehouse, "lines": [{"part_id": pump, "quantity": 0}]}),
        )
        .await;
    assert_eq!(zero.status, 400, "{zero:?}");
    assert_eq!(zero.violated_field(), "lines[0].quantity");
    let other = http
        .post(
            &path,
            Some(&b.secret),
            json!({"site_id": warehouse, "lines": [{"part_id": pump, "quantity": 1}]}),
        )
        .await;
    assert_eq!(other.status, 404, "{other:?}");
    let held = http
        .post(
            &path,
            Some(&a.secret),
            json!({"site_id": warehouse, "lines": [{"part_id": pump, "quantity": 1}]}),
        )
        .await;
    assert_eq!(held.status, 200, "{held:?}");
    assert_eq!(held.body["job"]["status"], "accepted");
    assert_eq!(held.body["reservations"][0]["status"], "open");
    assert_eq!(held.body["reservations"][0]["reserved"], 1);
    s.stop().await;
}
