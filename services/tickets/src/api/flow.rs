//! The gRPC face of the complaint flow (record, propose and decide a solution, schedule
//! the remedy) and of the milestone parts of a policy: decoding and validating each
//! request (every problem named by its field), calling the use case, encoding.

use aftersales_platform::{auth::Caller, caller::actor_of, status::Violations};
use aftersales_protos::tickets::v1 as pb;
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        policy::{HandOff, Milestones, WarningAction, WarningThreshold},
        product,
        team::AgentRole,
    },
    proto,
};

use super::{TicketsApi, request::target, teams::at};

/// The milestones of a policy being stored, each checked under `policy.<name>`.
pub fn milestones(v: &mut Violations, p: &pb::SlaPolicy) -> Milestones {
    let optional = |v: &mut Violations, name: &str, t: Option<&pb::SlaTarget>| {
        target(v, &format!("policy.{name}"), t, false)
    };
    let hand_off = p.hand_off.as_ref().and_then(|h| {
        let within = target(v, "policy.hand_off.within", h.within.as_ref(), true)?;
        let role = v.required_enum::<AgentRole>("policy.hand_off.role", h.role)?;
        Some(HandOff { within, role })
    });
    Milestones {
        record: optional(v, "record", p.record.as_ref()),
        hand_off,
        agreement: optional(v, "agreement", p.agreement.as_ref()),
        remedy: optional(v, "remedy", p.remedy.as_ref()),
        feedback: optional(v, "feedback", p.feedback.as_ref()),
        next_reply: optional(v, "next_reply", p.next_reply.as_ref()),
    }
}

/// The warning thresholds of a policy being stored, each under `policy.warnings[i]`.
pub fn warnings(v: &mut Violations, given: &[pb::WarningThreshold]) -> Vec<WarningThreshold> {
    given
        .iter()
        .enumerate()
        .filter_map(|(i, w)| {
            let percent = match u8::try_from(w.percent) {
                Ok(p @ 1..=99) => p,
                _ => {
                    v.add(
                        format!("policy.warnings[{i}].percent"),
                        "must be between 1 and 99",
                    );
                    return None;
                }
            };
            let action = v
                .optional_enum(&format!("policy.warnings[{i}].action"), w.action)
                .unwrap_or(WarningAction::Notify);
            Some(WarningThreshold { percent, action })
        })
        .collect()
}

impl TicketsApi {
    pub(super) async fn record_complaint_step(
        &self,
        request: Request<pb::RecordComplaintRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let mut v = Violations::new();
        v.id("ticket_id", &r.ticket_id);
        let quality = v.required_enum("quality", r.quality);
        let idem = v.idempotency(&r.idempotency_key, &r, |m| m.idempotency_key.clear());
        v.finish()?;
        let quality = quality.ok_or_else(|| Status::internal("validated quality missing"))?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let ticket = self
            .core
            .record_complaint(&r.ticket_id, quality, &actor, idem.as_ref())
            .await?;
        Ok(Response::new(proto::ticket(&ticket)))
    }

    pub(super) async fn propose_solution_step(
        &self,
        request: Request<pb::ProposeSolutionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let mut v = Violations::new();
        v.id("ticket_id", &r.ticket_id);
        let kind = v.required_enum("kind", r.kind);
        let idem = v.idempotency(&r.idempotency_key, &r, |m| m.idempotency_key.clear());
        v.finish()?;
        let kind = kind.ok_or_else(|| Status::internal("validated kind missing"))?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let ticket = self
            .core
            .propose_solution(&r.ticket_id, kind, &actor, idem.as_ref())
            .await?;
        Ok(Response::new(proto::ticket(&ticket)))
    }

    pub(super) async fn decide_solution_step(
        &self,
        request: Request<pb::DecideSolutionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let mut v = Violations::new();
        v.id("ticket_id", &r.ticket_id);
        let idem = v.idempotency(&r.idempotency_key, &r, |m| m.idempotency_key.clear());
        v.finish()?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let ticket = self
            .core
            .decide_solution(&r.ticket_id, r.accepted, &actor, idem.as_ref())
            .await?;
        Ok(Response::new(proto::ticket(&ticket)))
    }

    pub(super) async fn schedule_remedy_step(
        &self,
        request: Request<pb::ScheduleRemedyRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let mut v = Violations::new();
        v.id("ticket_id", &r.ticket_id);
        let reference = v
            .check("reference", product::product_code(&r.reference))
            .flatten();
        let planned_for = at(&mut v, "planned_for", r.planned_for.as_ref(), false);
        let idem = v.idempotency(&r.idempotency_key, &r, |m| m.idempotency_key.clear());
        v.finish()?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let ticket = self
            .core
            .schedule_remedy(&r.ticket_id, reference, planned_for, &actor, idem.as_ref())
            .await?;
        Ok(Response::new(proto::ticket(&ticket)))
    }
}
