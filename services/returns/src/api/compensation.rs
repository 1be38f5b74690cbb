//! Decoding and validating the compensation RPCs, and who calls them: the desk roles that
//! decide the approval limit are read from the verified token (`Caller`), never from the
//! request body; the body's `actor` only names who is recorded, as for every command.

use aftersales_platform::{
    auth::{Caller, roles},
    caller::actor_of,
    idempotency::Idempotency,
    paging::{decode_cursor, page_size},
    status::Violations,
    validate::non_empty,
};
use aftersales_protos::{common::v1 as common, returns::v1 as pb};
use tonic::Status;

use crate::{
    domain::compensation::{DeskRole, NewCompensation},
    usecases::compensations::{CompensationFilter, DeskCaller},
};

const MAX_REASON: usize = 10_000;

/// The caller as the compensation rules see it: the recorded actor, the token's subject
/// and the desk roles the token holds.
pub fn desk_caller(caller: &Caller, claimed: Option<&common::Actor>) -> Result<DeskCaller, Status> {
    let actor = actor_of(caller, claimed)?;
    let roles = [
        (roles::AGENT, DeskRole::Agent),
        (roles::SUPERVISOR, DeskRole::Supervisor),
        (roles::MANAGER, DeskRole::Manager),
    ]
    .into_iter()
    .filter(|(name, _)| caller.has_role(name))
    .map(|(_, role)| role)
    .collect();
    Ok(DeskCaller {
        actor_id: actor.id,
        subject: caller.subject.clone(),
        roles,
    })
}

pub fn request(
    r: &pb::RequestCompensationRequest,
) -> Result<(NewCompensation, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    v.id("ticket_id", &r.ticket_id);
    v.id("customer_id", &r.customer_id);
    v.optional_id("order_id", &r.order_id);
    let kind = v.required_enum("kind", r.kind);
    let amount = v.money("amount", r.amount.as_ref());
    if amount.as_ref().is_some_and(|a| a.minor == 0) {
        v.add("amount.minor_units", "must be positive");
    }
    // The warranty months are the domain's rule (`compensation::check`), named by field.
    v.require("reason", &r.reason);
    v.max_len("reason", &r.reason, MAX_REASON);
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.finish()?;
    let (Some(kind), Some(amount)) = (kind, amount) else {
        return Err(Status::internal("validated fields missing"));
    };
    Ok((
        NewCompensation {
            ticket_id: r.ticket_id.clone(),
            customer_id: r.customer_id.clone(),
            order_id: non_empty(&r.order_id),
            kind,
            amount,
            warranty_months: r.warranty_months,
            reason: r.reason.clone(),
        },
        idem,
    ))
}

pub fn approve(r: &pb::ApproveCompensationRequest) -> Result<Option<Idempotency>, Status> {
    let mut v = Violations::new();
    v.id("compensation_id", &r.compensation_id);
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.finish()?;
    Ok(idem)
}

pub fn reject(r: &pb::RejectCompensationRequest) -> Result<Option<Idempotency>, Status> {
    let mut v = Violations::new();
    v.id("compensation_id", &r.compensation_id);
    v.require("reason", &r.reason);
    v.max_len("reason", &r.reason, MAX_REASON);
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.finish()?;
    Ok(idem)
}

pub fn list(
    r: &pb::ListCompensationsRequest,
) -> Result<(CompensationFilter, Option<String>, u64), Status> {
    let mut v = Violations::new();
    v.optional_id("ticket_id", &r.ticket_id);
    let filter = CompensationFilter {
        ticket_id: non_empty(&r.ticket_id),
        status: v.optional_enum("status", r.status),
    };
    let cursor = decode_cursor(&mut v, &r.page_token);
    v.finish()?;
    Ok((filter, cursor, page_size(r.page_size)))
}
