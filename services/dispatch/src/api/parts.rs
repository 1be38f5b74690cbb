//! The gRPC face of spare parts: each RPC decoded and validated (every problem named by
//! its field), handed to the use case, and its answer encoded. `DispatchApi` delegates
//! here.

use aftersales_platform::{
    audit,
    auth::Caller,
    caller::actor_of,
    codes::{ProtoEnum, instant, timestamp},
    proto_enum,
    status::Violations,
    validate::non_empty,
};
use aftersales_protos::dispatch::v1 as pb;
use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};

use crate::{
    domain::parts::{
        Part, Receipt, Reservation, ReservationStatus, Site, SiteKind, Stock, Stocktake, Transfer,
        TransferStatus,
    },
    proto,
    usecases::{DispatchCore, JobParts, NewSite},
};

proto_enum!(SiteKind => pb::SiteKind {
    CentralWarehouse => CentralWarehouse,
    RegionalCentre => RegionalCentre,
    PartnerOutlet => PartnerOutlet,
});
proto_enum!(TransferStatus => pb::TransferStatus { InTransit => InTransit, Received => Received });
proto_enum!(ReservationStatus => pb::ReservationStatus {
    Open => Open,
    Consumed => Consumed,
    Released => Released,
});

const MAX_NAME: usize = 200;
const MAX_QUANTITY: u32 = 1_000_000;
const MAX_LINES: usize = 200;

type Reply<T> = Result<Response<T>, Status>;

/// Part lines: at least one, each part once, each quantity in [1, MAX_QUANTITY].
fn lines(v: &mut Violations, field: &str, lines: &[pb::PartQuantity]) -> Vec<(String, i64)> {
    if lines.is_empty() {
        v.add(field, "at least one line is required");
    }
    if lines.len() > MAX_LINES {
        v.add(field, format!("at most {MAX_LINES} lines"));
    }
    for (i, l) in lines.iter().enumerate() {
        v.id(&format!("{field}[{i}].part_id"), &l.part_id);
        if lines[..i]
            .iter()
            .any(|earlier| earlier.part_id == l.part_id)
        {
            v.add(format!("{field}[{i}].part_id"), "is listed twice");
        }
        if l.quantity == 0 || l.quantity > MAX_QUANTITY {
            v.add(
                format!("{field}[{i}].quantity"),
                format!("must lie in [1, {MAX_QUANTITY}]"),
            );
        }
    }
    lines
        .iter()
        .map(|l| (l.part_id.clone(), i64::from(l.quantity)))
        .collect()
}

fn qty(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

fn part(p: &Part) -> pb::Part {
    pb::Part {
        id: p.id.clone(),
        name: p.name.clone(),
        fee_code: p.fee_code.clone().unwrap_or_default(),
        created_at: Some(timestamp(p.created_at)),
    }
}

fn site(s: &Site) -> pb::PartSite {
    pb::PartSite {
        id: s.id.clone(),
        name: s.name.clone(),
        kind: s.kind.to_proto(),
        region_code: s.region_code.clone(),
        partner_id: s.partner_id.clone().unwrap_or_default(),
        created_at: Some(timestamp(s.created_at)),
    }
}

fn level(s: &Stock) -> pb::StockLevel {
    pb::StockLevel {
        part_id: s.part_id.clone(),
        site_id: s.site_id.clone(),
        on_hand: qty(s.on_hand),
        reserved: qty(s.reserved),
        available: qty(s.available()),
        in_transit: qty(s.in_transit),
        low_stock_threshold: qty(s.threshold),
        low: s.low,
    }
}

fn quantities(lines: &[(String, i64)]) -> Vec<pb::PartQuantity> {
    lines
        .iter()
        .map(|(part_id, n)| pb::PartQuantity {
            part_id: part_id.clone(),
            quantity: u32::try_from(*n).unwrap_or_default(),
        })
        .collect()
}

fn receipt(r: &Receipt) -> pb::PartsReceipt {
    pb::PartsReceipt {
        id: r.id.clone(),
        site_id: r.site_id.clone(),
        lines: quantities(&r.lines),
        reference: r.reference.clone(),
        received_at: Some(timestamp(r.received_at)),
        resumed_job_ids: r.resumed_job_ids.clone(),
    }
}

fn reservation(r: &Reservation) -> pb::PartReservation {
    pb::PartReservation {
        id: r.id.clone(),
        job_id: r.job_id.clone(),
        site_id: r.site_id.clone(),
        part_id: r.part_id.clone(),
        quantity: qty(r.quantity),
        reserved: qty(r.reserved),
        status: r.status.to_proto(),
        created_at: Some(timestamp(r.created_at)),
    }
}

fn transfer((t, resumed): &(Transfer, Vec<String>)) -> pb::Transfer {
    pb::Transfer {
        id: t.id.clone(),
        part_id: t.part_id.clone(),
        from_site_id: t.from_site_id.clone(),
        to_site_id: t.to_site_id.clone(),
        quantity: qty(t.quantity),
        status: t.status.to_proto(),
        shipped_at: Some(timestamp(t.shipped_at)),
        received_at: t.received_at.map(timestamp),
        resumed_job_ids: resumed.clone(),
    }
}

fn stocktake(s: &Stocktake) -> pb::Stocktake {
    pb::Stocktake {
        id: s.id.clone(),
        site_id: s.site_id.clone(),
        lines: s
            .lines
            .iter()
            .map(|l| pb::StocktakeLine {
                part_id: l.part_id.clone(),
                expected: qty(l.expected),
                counted: qty(l.counted),
                discrepancy: l.discrepancy,
            })
            .collect(),
        counted_at: Some(timestamp(s.counted_at)),
        counted_by: s.counted_by.clone(),
    }
}

pub async fn register_part(
    core: &DispatchCore,
    request: Request<pb::RegisterPartRequest>,
) -> Reply<pb::Part> {
    let caller = Caller::of(&request)?.clone();
    let r = request.into_inner();
    let mut v = Violations::new();
    v.require("name", &r.name);
    v.max_len("name", &r.name, MAX_NAME);
    v.optional_id("fee_code", &r.fee_code);
    let idem = v.idempotency(&r.idempotency_key, &r, |r| r.idempotency_key.clear());
    v.finish()?;
    let actor = actor_of(&caller, r.actor.as_ref())?;
    let p = core
        .register_part(&r.name, non_empty(&r.fee_code), idem.as_ref(), &actor)
        .await?;
    audit::target(format!("part:{}", p.id));
    Ok(Response::new(part(&p)))
}

pub async fn register_site(
    core: &DispatchCore,
    request: Request<pb::RegisterPartSiteRequest>,
) -> Reply<pb::PartSite> {
    let caller = Caller::of(&request)?.clone();
    let r = request.into_inner();
    let mut v = Violations::new();
    v.require("name", &r.name);
    v.max_len("name", &r.name, MAX_NAME);
    let kind = v.required_enum::<SiteKind>("kind", r.kind);
    v.id("region_code", &r.region_code);
    v.optional_id("partner_id", &r.partner_id);
    let idem = v.idempotency(&r.idempotency_key, &r, |r| r.idempotency_key.clear());
    v.finish()?;
    let kind = kind.ok_or_else(|| Status::internal("validated kind missing"))?;
    let actor = actor_of(&caller, r.actor.as_ref())?;
    let new = NewSite {
        name: r.name.clone(),
        kind,
        region_code: r.region_code.clone(),
        partner_id: non_empty(&r.partner_id),
    };
    let s = core.register_site(new, idem.as_ref(), &actor).await?;
    audit::target(format!("site:{}", s.id));
    Ok(Response::new(site(&s)))
}

pub async fn receive_parts(
    core: &DispatchCore,
    request: Request<pb::ReceivePartsRequest>,
) -> Reply<pb::PartsReceipt> {
    let caller = Caller::of(&request)?.clone();
    let r = request.into_inner();
    let mut v = Violations::new();
    v.id("site_id", &r.site_id);
    let parts = lines(&mut v, "lines", &r.lines);
    v.max_len("reference", &r.reference, MAX_NAME);
    let idem = v.idempotency(&r.idempotency_key, &r, |r| r.idempotency_key.clear());
    v.finish()?;
    let actor = actor_of(&caller, r.actor.as_ref())?;
    let done = core
        .receive_parts(&r.site_id, parts, &r.reference, idem.as_ref(), &actor)
        .await?;
    Ok(Response::new(receipt(&done)))
}

pub async fn request_parts(
    core: &DispatchCore,
    request: Request<pb::RequestPartsRequest>,
) -> Reply<pb::JobParts> {
    let caller = Caller::of(&request)?.clone();
    let r = request.into_inner();
    let mut v = Violations::new();
    v.id("job_id", &r.job_id);
    v.id("site_id", &r.site_id);
    let parts = lines(&mut v, "lines", &r.lines);
    let idem = v.idempotency(&r.idempotency_key, &r, |r| r.idempotency_key.clear());
    v.finish()?;
    let actor = actor_of(&caller, r.actor.as_ref())?;
    let JobParts { view, reservations } = core
        .request_parts(&r.job_id, &r.site_id, parts, idem.as_ref(), &actor)
        .await?;
    Ok(Response::new(pb::JobParts {
        job: Some(proto::job(&view)),
        reservations: reservations.iter().map(reservation).collect(),
    }))
}

pub async fn ship_transfer(
    core: &DispatchCore,
    request: Request<pb::ShipTransferRequest>,
) -> Reply<pb::Transfer> {
    let caller = Caller::of(&request)?.clone();
    let r = request.into_inner();
    let mut v = Violations::new();
    v.id("part_id", &r.part_id);
    v.id("from_site_id", &r.from_site_id);
    v.id("to_site_id", &r.to_site_id);
    if !r.to_site_id.is_empty() && r.to_site_id == r.from_site_id {
        v.add("to_site_id", "must differ from from_site_id");
    }
    if r.quantity == 0 || r.quantity > MAX_QUANTITY {
        v.add("quantity", format!("must lie in [1, {MAX_QUANTITY}]"));
    }
    let idem = v.idempotency(&r.idempotency_key, &r, |r| r.idempotency_key.clear());
    v.finish()?;
    let actor = actor_of(&caller, r.actor.as_ref())?;
    let shipped = core
        .ship_transfer(
            &r.part_id,
            &r.from_site_id,
            &r.to_site_id,
            i64::from(r.quantity),
            idem.as_ref(),
            &actor,
        )
        .await?;
    Ok(Response::new(transfer(&shipped)))
}

pub async fn receive_transfer(
    core: &DispatchCore,
    request: Request<pb::ReceiveTransferRequest>,
) -> Reply<pb::Transfer> {
    let caller = Caller::of(&request)?.clone();
    let r = request.into_inner();
    let mut v = Violations::new();
    v.id("transfer_id", &r.transfer_id);
    let idem = v.idempotency(&r.idempotency_key, &r, |r| r.idempotency_key.clear());
    v.finish()?;
    let actor = actor_of(&caller, r.actor.as_ref())?;
    let arrived = core
        .receive_transfer(&r.transfer_id, idem.as_ref(), &actor)
        .await?;
    Ok(Response::new(transfer(&arrived)))
}

pub async fn set_threshold(
    core: &DispatchCore,
    request: Request<pb::SetStockThresholdRequest>,
) -> Reply<pb::StockLevel> {
    let caller = Caller::of(&request)?.clone();
    let r = request.into_inner();
    let mut v = Violations::new();
    v.id("part_id", &r.part_id);
    v.id("site_id", &r.site_id);
    if r.threshold > MAX_QUANTITY {
        v.add("threshold", format!("must be at most {MAX_QUANTITY}"));
    }
    v.finish()?;
    audit::target(format!("site:{}", r.site_id));
    audit::note("part_id", r.part_id.as_str());
    audit::note("threshold", r.threshold);
    let actor = actor_of(&caller, r.actor.as_ref())?;
    let stock = core
        .set_threshold(&r.part_id, &r.site_id, i64::from(r.threshold), &actor)
        .await?;
    Ok(Response::new(level(&stock)))
}

pub async fn record_stocktake(
    core: &DispatchCore,
    request: Request<pb::RecordStocktakeRequest>,
) -> Reply<pb::Stocktake> {
    let caller = Caller::of(&request)?.clone();
    let r = request.into_inner();
    let mut v = Violations::new();
    v.id("site_id", &r.site_id);
    if r.counts.is_empty() {
        v.add("counts", "at least one count is required");
    }
    if r.counts.len() > MAX_LINES {
        v.add("counts", format!("at most {MAX_LINES} counts"));
    }
    for (i, c) in r.counts.iter().enumerate() {
        v.id(&format!("counts[{i}].part_id"), &c.part_id);
        if r.counts[..i].iter().any(|e| e.part_id == c.part_id) {
            v.add(format!("counts[{i}].part_id"), "is listed twice");
        }
        if c.counted > MAX_QUANTITY {
            v.add(
                format!("counts[{i}].counted"),
                format!("must be at most {MAX_QUANTITY}"),
            );
        }
    }
    let idem = v.idempotency(&r.idempotency_key, &r, |r| r.idempotency_key.clear());
    v.finish()?;
    audit::target(format!("site:{}", r.site_id));
    let actor = actor_of(&caller, r.actor.as_ref())?;
    let counts = r
        .counts
        .iter()
        .map(|c| (c.part_id.clone(), i64::from(c.counted)))
        .collect();
    let take = core
        .record_stocktake(&r.site_id, counts, idem.as_ref(), &actor)
        .await?;
    audit::note("stocktake_id", take.id.as_str());
    let off = take.lines.iter().filter(|l| l.discrepancy != 0).count();
    audit::note("discrepancies", off);
    Ok(Response::new(stocktake(&take)))
}

pub async fn list_stock(
    core: &DispatchCore,
    request: Request<pb::ListStockRequest>,
) -> Reply<pb::ListStockResponse> {
    let r = request.into_inner();
    let mut v = Violations::new();
    v.optional_id("site_id", &r.site_id);
    v.optional_id("part_id", &r.part_id);
    v.finish()?;
    let site_id = non_empty(&r.site_id);
    let part_id = non_empty(&r.part_id);
    let rows = core
        .list_stock(site_id.as_deref(), part_id.as_deref())
        .await?;
    Ok(Response::new(pb::ListStockResponse {
        levels: rows.iter().map(level).collect(),
    }))
}

fn required_time(
    v: &mut Violations,
    field: &str,
    t: Option<&prost_types::Timestamp>,
) -> Option<DateTime<Utc>> {
    let Some(t) = t else {
        v.add(field, "is required");
        return None;
    };
    let at = instant(t);
    if at.is_none() {
        v.add(field, "is not a valid instant");
    }
    at
}

pub async fn turnover(
    core: &DispatchCore,
    request: Request<pb::GetPartsTurnoverRequest>,
) -> Reply<pb::PartsTurnover> {
    let r = request.into_inner();
    let mut v = Violations::new();
    v.id("part_id", &r.part_id);
    v.optional_id("site_id", &r.site_id);
    let from = required_time(&mut v, "from", r.from.as_ref());
    let to = required_time(&mut v, "to", r.to.as_ref());
    v.finish()?;
    let (Some(from), Some(to)) = (from, to) else {
        return Err(Status::internal("validated period missing"));
    };
    let site_id = non_empty(&r.site_id);
    let figure = core
        .turnover(&r.part_id, site_id.as_deref(), from, to)
        .await?;
    Ok(Response::new(pb::PartsTurnover {
        part_id: r.part_id.clone(),
        site_id: r.site_id.clone(),
        from: r.from,
        to: r.to,
        consumed: qty(figure.consumed),
        average_on_hand: figure.average_on_hand,
        turnover: figure.turnover,
    }))
}
