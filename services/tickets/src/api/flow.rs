//! The gRPC face of the complaint flow (record, propose and decide a solution, schedule
//! the remedy) and of the milestone parts of a policy: decoding and validating each
//! request (every problem named by its field), calling the use case, encoding.

use aftersales_platform::{
    auth::Caller, caller::actor_of, idempotency::Idempotency, status::Violations,
};
use aftersales_protos::{common::v1 as common, tickets::v1 as pb};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        Actor,
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

/// What every step's request has: the ticket, an idempotency key, who acts.
trait StepRequest: prost::Message + Clone + Default {
    fn ticket_id(&self) -> &str;
    fn key(&self) -> &str;
    fn clear_key(&mut self);
    fn actor(&self) -> Option<&common::Actor>;
}

macro_rules! step_request {
    ($($request:ty),+ $(,)?) => {$(
        impl StepRequest for $request {
            fn ticket_id(&self) -> &str {
                &self.ticket_id
            }
            fn key(&self) -> &str {
                &self.idempotency_key
            }
            fn clear_key(&mut self) {
                self.idempotency_key.clear();
            }
            fn actor(&self) -> Option<&common::Actor> {
                self.actor.as_ref()
            }
        }
    )+};
}

step_request!(
    pb::RecordComplaintRequest,
    pb::ProposeSolutionRequest,
    pb::DecideSolutionRequest,
    pb::ScheduleRemedyRequest,
);

/// A step's request decoded: who acts, the request, what `read` took from it (`None`
/// only beside a violation) and its key; every problem named by its field.
fn decode<R: StepRequest, T>(
    request: Request<R>,
    read: impl FnOnce(&mut Violations, &R) -> Option<T>,
) -> Result<(Actor, R, T, Option<Idempotency>), Status> {
    let caller = Caller::of(&request)?.clone();
    let r = request.into_inner();
    let mut v = Violations::new();
    v.id("ticket_id", r.ticket_id());
    let value = read(&mut v, &r);
    let idem = v.idempotency(r.key(), &r, R::clear_key);
    v.finish()?;
    let value = value.ok_or_else(|| Status::internal("a validated field is missing"))?;
    let actor = actor_of(&caller, r.actor())?;
    Ok((actor, r, value, idem))
}

impl TicketsApi {
    pub(super) async fn record_complaint_step(
        &self,
        request: Request<pb::RecordComplaintRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let (actor, r, quality, idem) =
            decode(request, |v, r| v.required_enum("quality", r.quality))?;
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
        let (actor, r, kind, idem) = decode(request, |v, r| v.required_enum("kind", r.kind))?;
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
        let (actor, r, accepted, idem) = decode(request, |_, r| Some(r.accepted))?;
        let ticket = self
            .core
            .decide_solution(&r.ticket_id, accepted, &actor, idem.as_ref())
            .await?;
        Ok(Response::new(proto::ticket(&ticket)))
    }

    pub(super) async fn schedule_remedy_step(
        &self,
        request: Request<pb::ScheduleRemedyRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let (actor, r, (reference, planned_for), idem) = decode(request, |v, r| {
            let reference = v
                .check("reference", product::product_code(&r.reference))
                .flatten();
            let planned_for = at(v, "planned_for", r.planned_for.as_ref(), false);
            Some((reference, planned_for))
        })?;
        let ticket = self
            .core
            .schedule_remedy(&r.ticket_id, reference, planned_for, &actor, idem.as_ref())
            .await?;
        Ok(Response::new(proto::ticket(&ticket)))
    }
}
