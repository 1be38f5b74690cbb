//! Spare parts through the API: client helpers (used by `parts_month` too), a job
//! waiting for parts, low-stock warnings once per crossing, stock that never goes
//! negative, retries, bad input and roles.

use std::{sync::Arc, time::Duration as StdDuration};

use aftersales_platform::{
    CancellationToken,
    auth::roles,
    clock::{Clock, ManualClock},
    status::field_violations,
};
use aftersales_protos::dispatch::v1 as pb;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Statement};
use tonic::Code;

use crate::{
    contacts::{bearer, provider},
    flow::ts,
    helpers::*,
};

impl TestApp {
    pub async fn part(&mut self, name: &str, fee_code: &str) -> String {
        self.client
            .register_part(pb::RegisterPartRequest {
                name: name.into(),
                fee_code: fee_code.into(),
                ..Default::default()
            })
            .await
            .expect("registers the part")
            .into_inner()
            .id
    }

    pub async fn site(&mut self, kind: pb::SiteKind, partner_id: &str) -> String {
        self.client
            .register_part_site(pb::RegisterPartSiteRequest {
                name: format!("{kind:?}"),
                kind: kind as i32,
                region_code: REGION.into(),
                partner_id: partner_id.into(),
                ..Default::default()
            })
            .await
            .expect("registers the site")
            .into_inner()
            .id
    }

    pub async fn receive(
        &mut self,
        key: &str,
        site: &str,
        lines: &[(&str, u32)],
    ) -> pb::PartsReceipt {
        self.client
            .receive_parts(pb::ReceivePartsRequest {
                idempotency_key: key.into(),
                site_id: site.into(),
                lines: quantities(lines),
                reference: "DN-1".into(),
                actor: None,
            })
            .await
            .expect("receives")
            .into_inner()
    }

    pub async fn request_parts(
        &mut self,
        job: &pb::Job,
        site: &str,
        lines: &[(&str, u32)],
    ) -> Result<pb::JobParts, tonic::Status> {
        self.client
            .request_parts(pb::RequestPartsRequest {
                idempotency_key: format!("parts-{}-{}", job.id, lines.len()),
                job_id: job.id.clone(),
                site_id: site.into(),
                lines: quantities(lines),
                actor: Some(partner_actor(&job.partner_id)),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn ship(
        &mut self,
        part: &str,
        from: &str,
        to: &str,
        quantity: u32,
    ) -> Result<pb::Transfer, tonic::Status> {
        self.client
            .ship_transfer(pb::ShipTransferRequest {
                idempotency_key: format!("ship-{part}-{from}-{to}-{quantity}"),
                part_id: part.into(),
                from_site_id: from.into(),
                to_site_id: to.into(),
                quantity,
                actor: None,
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn arrive(&mut self, transfer: &str) -> pb::Transfer {
        self.client
            .receive_transfer(pb::ReceiveTransferRequest {
                idempotency_key: format!("arrive-{transfer}"),
                transfer_id: transfer.into(),
                actor: None,
            })
            .await
            .expect("receives the transfer")
            .into_inner()
    }

    pub async fn threshold(&mut self, part: &str, site: &str, threshold: u32) -> pb::StockLevel {
        self.client
            .set_stock_threshold(pb::SetStockThresholdRequest {
                part_id: part.into(),
                site_id: site.into(),
                threshold,
                actor: None,
            })
            .await
            .expect("sets the threshold")
            .into_inner()
    }

    pub async fn stock(&mut self, part: &str, site: &str) -> (u64, u64, u64) {
        let levels = self
            .client
            .list_stock(pb::ListStockRequest {
                site_id: site.into(),
                part_id: part.into(),
            })
            .await
            .expect("lists stock")
            .into_inner()
            .levels;
        levels
            .first()
            .map_or((0, 0, 0), |l| (l.on_hand, l.reserved, l.in_transit))
    }

    /// A job of the only partner, accepted.
    pub async fn accepted_job(&mut self, ticket: &str) -> pb::Job {
        let job = self.create(job_request(ticket, true)).await;
        self.answer(&job, true).await
    }

    pub async fn finish(&mut self, job: &pb::Job, outcome: pb::CompletionOutcome) -> pb::Job {
        self.client
            .complete_job(pb::CompleteJobRequest {
                idempotency_key: String::new(),
                job_id: job.id.clone(),
                outcome: outcome as i32,
                photos: vec![],
                notes: String::new(),
                actor: Some(partner_actor(&job.partner_id)),
            })
            .await
            .expect("completes")
            .into_inner()
    }

    pub async fn turnover(
        &mut self,
        part: &str,
        site: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> pb::PartsTurnover {
        self.client
            .get_parts_turnover(pb::GetPartsTurnoverRequest {
                part_id: part.into(),
                site_id: site.into(),
                from: Some(ts(from)),
                to: Some(ts(to)),
            })
            .await
            .expect("turnover")
            .into_inner()
    }
}

pub fn quantities(lines: &[(&str, u32)]) -> Vec<pb::PartQuantity> {
    lines
        .iter()
        .map(|(part_id, quantity)| pb::PartQuantity {
            part_id: (*part_id).into(),
            quantity: *quantity,
        })
        .collect()
}

/// The service on a manual clock standing at the real now (so the deadline worker, which
/// runs on real time, never finds an offer of the script lapsed).
pub async fn spawn_at(backend: Backend) -> (TestApp, ManualClock, DateTime<Utc>) {
    let start = Utc::now();
    let clock = ManualClock::at(start);
    let shared = clock.clone();
    let app = spawn_with(backend, move |c| c.clock = Arc::new(shared)).await;
    let start = Clock::now(&clock);
    (app, clock, start)
}

pub const WAITING: i32 = pb::JobStatus::WaitingForParts as i32;
pub const ACCEPTED: i32 = pb::JobStatus::Accepted as i32;

async fn warnings(app: &TestApp, part: &str) -> usize {
    app.published(part, "dispatch.PartLowStock").await.len()
}

async fn low_stock_once_per_crossing(backend: Backend) {
    let mut app = spawn(backend).await;
    let p = app.register(spec("P", 31.201, 121.451)).await.id;
    let part = app.part("Valve", "").await;
    let s = app.site(pb::SiteKind::PartnerOutlet, &p).await;
    let other = app.site(pb::SiteKind::RegionalCentre, "").await;
    app.receive("v-1", &s, &[(&part, 5)]).await;
    let level = app.threshold(&part, &s, 3).await;
    assert!(!level.low, "5 available");
    assert_eq!(warnings(&app, &part).await, 0);
    // 3 held for a job: 2 available < 3.
    let j1 = app.accepted_job("T-1").await;
    app.request_parts(&j1, &s, &[(&part, 3)]).await.unwrap();
    assert_eq!(warnings(&app, &part).await, 1, "crossed");
    // Lower still: no second warning.
    let j2 = app.accepted_job("T-2").await;
    app.request_parts(&j2, &s, &[(&part, 1)]).await.unwrap();
    assert_eq!(warnings(&app, &part).await, 1, "still below");
    // Recovered (11 available), then below again (2): a second crossing.
    app.receive("v-2", &s, &[(&part, 10)]).await;
    assert!(!app.threshold(&part, &s, 3).await.low);
    app.ship(&part, &s, &other, 9).await.expect("ships");
    assert_eq!(warnings(&app, &part).await, 2, "a new crossing");
    let Some(aftersales_protos::events::v1::event_envelope::Payload::PartLowStock(last)) =
        app.published(&part, "dispatch.PartLowStock").await.pop()
    else {
        panic!("a PartLowStock");
    };
    assert_eq!(
        (last.available, last.threshold, last.site_id),
        (2, 3, s.clone())
    );
    assert!(
        aftersales_platform::metrics::render().contains("parts_low_stock_total"),
        "the metric is exported"
    );
    app.stop().await;
}

#[tokio::test]
async fn low_stock_warns_once_per_crossing_postgres() {
    low_stock_once_per_crossing(Backend::Postgres).await;
}

#[tokio::test]
async fn low_stock_warns_once_per_crossing_sqlite() {
    low_stock_once_per_crossing(Backend::Sqlite).await;
}

async fn never_negative_and_retries(backend: Backend) {
    let mut app = spawn(backend).await;
    let p = app.register(spec("P", 31.201, 121.451)).await.id;
    let part = app.part("Seal", "").await;
    let s = app.site(pb::SiteKind::PartnerOutlet, &p).await;
    let other = app.site(pb::SiteKind::CentralWarehouse, "").await;

    // A retried receipt books once; the same key with another request is refused.
    let first = app.receive("k-1", &s, &[(&part, 4)]).await;
    let again = app.receive("k-1", &s, &[(&part, 4)]).await;
    assert_eq!(first.id, again.id);
    assert_eq!(app.stock(&part, &s).await, (4, 0, 0));
    let reused = app
        .client
        .receive_parts(pb::ReceivePartsRequest {
            idempotency_key: "k-1".into(),
            site_id: s.clone(),
            lines: quantities(&[(&part, 5)]),
            reference: String::new(),
            actor: None,
        })
        .await
        .expect_err("another request under the key");
    assert_eq!(field_violations(&reused)[0].field, "idempotency_key");

    // A job holds 3; a retried request holds nothing more.
    let job = app.accepted_job("T-1").await;
    let held = app.request_parts(&job, &s, &[(&part, 3)]).await.unwrap();
    let held_again = app.request_parts(&job, &s, &[(&part, 3)]).await.unwrap();
    assert_eq!(held.reservations, held_again.reservations);
    assert_eq!(app.stock(&part, &s).await, (4, 3, 0));

    // Only 1 is available: shipping 2 is refused and changes nothing; a retried shipment
    // of 1 ships once.
    let refused = app
        .ship(&part, &s, &other, 2)
        .await
        .expect_err("1 available");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let t = app.ship(&part, &s, &other, 1).await.expect("ships");
    let t_again = app.ship(&part, &s, &other, 1).await.expect("a retry");
    assert_eq!(t.id, t_again.id);
    assert_eq!(app.stock(&part, &s).await, (3, 3, 0));
    assert_eq!(app.stock(&part, &other).await, (0, 0, 1));
    app.arrive(&t.id).await;
    let twice = app
        .client
        .receive_transfer(pb::ReceiveTransferRequest {
            idempotency_key: "another".into(),
            transfer_id: t.id.clone(),
            actor: None,
        })
        .await
        .expect_err("received already");
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert_eq!(app.stock(&part, &other).await, (1, 0, 0));

    // A count below what is held for jobs is refused.
    let short = app
        .client
        .record_stocktake(pb::RecordStocktakeRequest {
            idempotency_key: String::new(),
            site_id: s.clone(),
            counts: vec![pb::StocktakeCount {
                part_id: part.clone(),
                counted: 2,
            }],
            actor: None,
        })
        .await
        .expect_err("3 are held");
    assert_eq!(short.code(), Code::FailedPrecondition);
    assert!(short.message().contains("counts[0]"), "{}", short.message());
    assert_eq!(app.stock(&part, &s).await, (3, 3, 0));

    // Behind the rules, the database refuses a negative figure whoever writes it.
    let db = app.core.db();
    let sql = format!(
        "UPDATE part_stock SET on_hand = on_hand - 10 WHERE part_id = '{part}' AND site_id = '{s}'"
    );
    let raw = db
        .execute_raw(Statement::from_string(db.get_database_backend(), sql))
        .await;
    assert!(raw.is_err(), "the CHECK constraint holds");
    assert_eq!(app.stock(&part, &s).await, (3, 3, 0));
    app.stop().await;
}

#[tokio::test]
async fn stock_never_goes_negative_and_retries_change_nothing_postgres() {
    never_negative_and_retries(Backend::Postgres).await;
}

#[tokio::test]
async fn stock_never_goes_negative_and_retries_change_nothing_sqlite() {
    never_negative_and_retries(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_fix_while_waiting_for_parts_is_refused_giving_up_releases_and_outlets_are_private() {
    let mut app = spawn(Backend::Sqlite).await;
    let p = app.register(spec("P", 31.201, 121.451)).await.id;
    let part = app.part("Motor", "").await;
    let s = app.site(pb::SiteKind::PartnerOutlet, &p).await;
    app.receive("m-1", &s, &[(&part, 1)]).await;
    let job = app.accepted_job("T-1").await;
    let waiting = app.request_parts(&job, &s, &[(&part, 2)]).await.unwrap();
    assert_eq!(waiting.job.unwrap().status, WAITING);
    let refused = app
        .client
        .complete_job(pb::CompleteJobRequest {
            idempotency_key: String::new(),
            job_id: job.id.clone(),
            outcome: pb::CompletionOutcome::Fixed as i32,
            photos: vec![],
            notes: String::new(),
            actor: Some(partner_actor(&p)),
        })
        .await
        .expect_err("no fix without the parts");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    // Giving up releases the one held.
    let done = app.finish(&job, pb::CompletionOutcome::NotFixed).await;
    assert_eq!(done.status, pb::JobStatus::CannotComplete as i32);
    assert_eq!(app.stock(&part, &s).await, (1, 0, 0));

    // Another partner's outlet is not P's to draw on.
    let mut elsewhere = spec("Q", 39.9, 116.4);
    elsewhere.coverage[0].region_code = "110101".into();
    let q = app.register(elsewhere).await.id;
    let q_outlet = app.site(pb::SiteKind::PartnerOutlet, &q).await;
    app.receive("m-2", &q_outlet, &[(&part, 5)]).await;
    let other = app.accepted_job("T-2").await;
    let hidden = app
        .request_parts(&other, &q_outlet, &[(&part, 1)])
        .await
        .expect_err("Q's outlet");
    assert_eq!(hidden.code(), Code::NotFound);
    app.stop().await;
}

async fn concurrent_shipments(backend: Backend) {
    let mut app = spawn(backend).await;
    let part = app.part("Fuse", "").await;
    let from = app.site(pb::SiteKind::CentralWarehouse, "").await;
    let to = app.site(pb::SiteKind::RegionalCentre, "").await;
    app.receive("f-1", &from, &[(&part, 5)]).await;
    // Ten shipments of one unit at once, five units: five go, five are refused.
    let shipments = (0..10).map(|i| {
        let mut client = app.client.clone();
        let (part, from, to) = (part.clone(), from.clone(), to.clone());
        tokio::spawn(async move {
            client
                .ship_transfer(pb::ShipTransferRequest {
                    idempotency_key: format!("race-{i}"),
                    part_id: part,
                    from_site_id: from,
                    to_site_id: to,
                    quantity: 1,
                    actor: None,
                })
                .await
        })
    });
    let mut shipped = 0;
    for shipment in futures::future::join_all(shipments).await {
        match shipment.unwrap() {
            Ok(_) => shipped += 1,
            Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
        }
    }
    assert_eq!(shipped, 5);
    assert_eq!(app.stock(&part, &from).await, (0, 0, 0));
    assert_eq!(app.stock(&part, &to).await, (0, 0, 5));
    app.stop().await;
}

#[tokio::test]
async fn concurrent_shipments_never_overdraw_postgres() {
    concurrent_shipments(Backend::Postgres).await;
}

#[tokio::test]
async fn concurrent_shipments_never_overdraw_sqlite() {
    concurrent_shipments(Backend::Sqlite).await;
}

#[tokio::test]
async fn bad_input_is_named_by_field() {
    let mut app = spawn(Backend::Sqlite).await;
    let fields = |status: tonic::Status| -> Vec<String> {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        field_violations(&status)
            .into_iter()
            .map(|f| f.field)
            .collect()
    };
    let bad = app
        .client
        .receive_parts(pb::ReceivePartsRequest {
            lines: vec![
                pb::PartQuantity {
                    part_id: "a".into(),
                    quantity: 0,
                },
                pb::PartQuantity {
                    part_id: "a".into(),
                    quantity: 1,
                },
            ],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        fields(bad),
        ["site_id", "lines[0].quantity", "lines[1].part_id"]
    );
    let bad = app
        .client
        .ship_transfer(pb::ShipTransferRequest {
            part_id: "a".into(),
            from_site_id: "s".into(),
            to_site_id: "s".into(),
            quantity: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(bad), ["to_site_id", "quantity"]);
    let bad = app
        .client
        .register_part_site(pb::RegisterPartSiteRequest {
            name: "x".into(),
            region_code: REGION.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(bad), ["kind"]);
    let bad = app
        .client
        .register_part_site(pb::RegisterPartSiteRequest {
            name: "x".into(),
            kind: pb::SiteKind::PartnerOutlet as i32,
            region_code: REGION.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(bad), ["partner_id"]);
    let bad = app
        .client
        .get_parts_turnover(pb::GetPartsTurnoverRequest {
            part_id: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(bad), ["part_id", "from", "to"]);
    let bad = app
        .client
        .record_stocktake(pb::RecordStocktakeRequest {
            site_id: "s".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(bad), ["counts"]);
    app.stop().await;
}

#[tokio::test]
async fn parts_rpcs_refuse_the_wrong_roles() {
    let stop = CancellationToken::new();
    let (issuer, auth) = provider(&stop).await;
    let token = |subject: &str, roles: &[&str]| {
        issuer
            .mint(subject, roles, StdDuration::from_secs(600))
            .unwrap()
    };
    let agent = token("agent-1", &[roles::AGENT]);
    let analyst = token("analyst-1", &[roles::ANALYST]);
    let admin = token("admin-1", &[roles::ADMIN]);
    let url = Backend::Sqlite.fresh_url().await.unwrap();
    let mut app = start_on(Start {
        backend: Backend::Sqlite,
        url,
        run_worker: false,
        auth: Some(auth),
        configure: Box::new(|_| {}),
    })
    .await;
    let register = || pb::RegisterPartRequest {
        name: "Pump".into(),
        ..Default::default()
    };
    let denied = app
        .client
        .register_part(bearer(register(), &agent))
        .await
        .expect_err("an agent registers no parts");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let part = app
        .client
        .register_part(bearer(register(), &admin))
        .await
        .expect("an admin does")
        .into_inner()
        .id;
    let receive = pb::ReceivePartsRequest {
        site_id: "s".into(),
        lines: quantities(&[(&part, 1)]),
        ..Default::default()
    };
    let denied = app
        .client
        .receive_parts(bearer(receive, &analyst))
        .await
        .expect_err("an analyst books no receipts");
    assert_eq!(denied.code(), Code::PermissionDenied);
    app.client
        .list_stock(bearer(pb::ListStockRequest::default(), &analyst))
        .await
        .expect("an analyst reads stock");
    app.stop().await;
    stop.cancel();
}
