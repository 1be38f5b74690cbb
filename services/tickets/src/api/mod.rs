//! The gRPC face of the tickets service: decode and validate (`request`), call the use
//! case, encode (`crate::proto`); errors become statuses in `status`.

mod flow;
mod live;
pub mod permissions;
mod request;
mod status;
mod teams;

use std::sync::Arc;

use aftersales_platform::{
    audit,
    auth::{
        Caller,
        roles::{AGENT, MANAGER, SUPERVISOR},
    },
    caller::actor_of,
};
use aftersales_protos::{
    common::v1 as common,
    tickets::v1::{self as pb, ticket_service_server::TicketService},
};
use tonic::{Request, Response, Status};

use aftersales_platform::paging::encode_cursor;

use crate::{
    domain::{Author, Visibility},
    proto,
    usecases::TicketsCore,
};

/// The roles that read internal notes: the desk's.
const DESK: [&str; 3] = [AGENT, SUPERVISOR, MANAGER];

pub use live::DeskApi;
pub use pb::ticket_service_server::TicketServiceServer;

pub struct TicketsApi {
    core: Arc<TicketsCore>,
}

impl TicketsApi {
    pub fn new(core: Arc<TicketsCore>) -> Self {
        Self { core }
    }

    pub fn into_server(self) -> TicketServiceServer<Self> {
        TicketServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl TicketService for TicketsApi {
    async fn create_ticket(
        &self,
        request: Request<pb::CreateTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (mut new, idem) = request::create_ticket(&r)?;
        // No tier given: the one care last published for the customer, else regular.
        if r.customer_tier == pb::CustomerTier::Unspecified as i32
            && let Some(tier) = self.core.known_tier(&new.customer_id).await?
        {
            new.tier = tier;
        }
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let ticket = self.core.create_ticket(new, idem.as_ref(), &actor).await?;
        Ok(Response::new(proto::ticket(&ticket)))
    }

    async fn get_ticket(
        &self,
        request: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let r = request.into_inner();
        request::ticket_id(&r.id)
            .map_err(|_| aftersales_platform::status::invalid_field("id", "is required"))?;
        let ticket = self.core.get_ticket(&r.id).await?;
        Ok(Response::new(proto::ticket(&ticket)))
    }

    async fn list_tickets(
        &self,
        request: Request<pb::ListTicketsRequest>,
    ) -> Result<Response<pb::ListTicketsResponse>, Status> {
        let (filter, cursor, size) = request::list_tickets(request.get_ref())?;
        let page = self
            .core
            .list_tickets(&filter, cursor.as_deref(), size)
            .await?;
        Ok(Response::new(pb::ListTicketsResponse {
            tickets: page.tickets().iter().map(proto::ticket).collect(),
            next_page_token: page.next.as_deref().map(encode_cursor).unwrap_or_default(),
        }))
    }

    async fn add_reply(
        &self,
        request: Request<pb::AddReplyRequest>,
    ) -> Result<Response<pb::AddReplyResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (entry, idem) = request::add_reply(&r)?;
        // An agent's entry is the caller's: a body naming someone else is believed only as
        // an `actor` is. A customer's reply is entered by the caller for the customer.
        let claimed = match entry.author {
            Author::Agent => entry.claimed_author_id.as_ref().map(|id| common::Actor {
                id: id.clone(),
                role: common::ActorRole::Agent as i32,
            }),
            Author::Customer => None,
        };
        let recorder = actor_of(&caller, claimed.as_ref())?;
        let (reply, ticket) = self
            .core
            .add_reply(&r.ticket_id, entry, &recorder, idem.as_ref())
            .await?;
        Ok(Response::new(pb::AddReplyResponse {
            reply: Some(proto::reply(&reply)),
            ticket: Some(proto::ticket(&ticket)),
        }))
    }

    async fn release_held_reply(
        &self,
        request: Request<pb::ReleaseHeldReplyRequest>,
    ) -> Result<Response<pb::AddReplyResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let idem = request::release_held_reply(&r)?;
        let actor = actor_of(&caller, None)?;
        let (reply, ticket) = self
            .core
            .release_held_reply(&r.ticket_id, &r.reply_id, r.release, &actor, idem.as_ref())
            .await?;
        Ok(Response::new(pb::AddReplyResponse {
            reply: Some(proto::reply(&reply)),
            ticket: Some(proto::ticket(&ticket)),
        }))
    }

    async fn change_status(
        &self,
        request: Request<pb::ChangeStatusRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let to = request::change_status(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let ticket = self
            .core
            .change_status(&r.ticket_id, to, &r.reason, &actor)
            .await?;
        Ok(Response::new(proto::ticket(&ticket)))
    }

    async fn assign(
        &self,
        request: Request<pb::AssignRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        self.assign_ticket(request).await
    }

    async fn set_severity(
        &self,
        request: Request<pb::SetSeverityRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let severity = request::set_severity(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let ticket = self
            .core
            .set_severity(&r.ticket_id, severity, &r.reason, &actor)
            .await?;
        Ok(Response::new(proto::ticket(&ticket)))
    }

    async fn set_complexity(
        &self,
        request: Request<pb::SetComplexityRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (complexity, idem) = request::set_complexity(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let ticket = self
            .core
            .set_complexity(&r.ticket_id, complexity, &r.reason, &actor, idem.as_ref())
            .await?;
        Ok(Response::new(proto::ticket(&ticket)))
    }

    async fn escalate(
        &self,
        request: Request<pb::EscalateRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let to = request::escalate(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let ticket = self
            .core
            .escalate(&r.ticket_id, to, &r.reason, &actor)
            .await?;
        Ok(Response::new(proto::ticket(&ticket)))
    }

    async fn reopen_ticket(
        &self,
        request: Request<pb::ReopenTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        request::reopen(&r)?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let ticket = self.core.reopen(&r.ticket_id, &r.reason, &actor).await?;
        Ok(Response::new(proto::ticket(&ticket)))
    }

    async fn get_sla_status(
        &self,
        request: Request<pb::GetSlaStatusRequest>,
    ) -> Result<Response<pb::SlaStatus>, Status> {
        let r = request.into_inner();
        request::ticket_id(&r.ticket_id)?;
        let (ticket, clocks) = self.core.sla_status(&r.ticket_id).await?;
        let now = self.core.now();
        Ok(Response::new(pb::SlaStatus {
            ticket_id: ticket.id,
            policy_id: ticket.policy_id,
            policy_version: ticket.policy_version,
            clocks: clocks.iter().map(|c| proto::clock(c, now)).collect(),
            breached: ticket.breached,
        }))
    }

    async fn upsert_sla_policy(
        &self,
        request: Request<pb::UpsertSlaPolicyRequest>,
    ) -> Result<Response<pb::SlaPolicy>, Status> {
        let policy = request::policy(request.get_ref())?;
        audit::target(format!("sla_policy:{}", policy.id));
        let stored = self.core.upsert_policy(policy).await?;
        Ok(Response::new(proto::policy(&stored)))
    }

    async fn list_sla_policies(
        &self,
        _request: Request<pb::ListSlaPoliciesRequest>,
    ) -> Result<Response<pb::ListSlaPoliciesResponse>, Status> {
        let policies = self.core.list_policies().await?;
        Ok(Response::new(pb::ListSlaPoliciesResponse {
            policies: policies.iter().map(proto::policy).collect(),
        }))
    }

    async fn list_thread(
        &self,
        request: Request<pb::ListThreadRequest>,
    ) -> Result<Response<pb::ListThreadResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (mut visibility, cursor, size) = request::list_thread(&r)?;
        // Callers outside the desk (a storefront showing the customer the conversation)
        // see the public replies only.
        if !caller.has_any_role(&DESK) {
            visibility = Some(Visibility::Public);
        }
        let page = self
            .core
            .thread(&r.ticket_id, visibility, cursor.as_deref(), size)
            .await?;
        Ok(Response::new(pb::ListThreadResponse {
            entries: page.items.iter().map(proto::reply).collect(),
            next_page_token: page.next.as_deref().map(encode_cursor).unwrap_or_default(),
        }))
    }

    async fn list_activity(
        &self,
        request: Request<pb::ListActivityRequest>,
    ) -> Result<Response<pb::ListActivityResponse>, Status> {
        let r = request.into_inner();
        let (after_seq, size) = request::list_activity(&r)?;
        let page = self.core.activity(&r.ticket_id, after_seq, size).await?;
        Ok(Response::new(pb::ListActivityResponse {
            entries: page.items.iter().map(proto::activity).collect(),
            next_page_token: page
                .next
                .map(request::activity_page_token)
                .unwrap_or_default(),
        }))
    }

    async fn add_watcher(
        &self,
        request: Request<pb::AddWatcherRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (watcher, idem) = request::watcher(
            &r,
            &r.idempotency_key,
            &r.ticket_id,
            r.watcher.as_ref(),
            |m| m.idempotency_key.clear(),
        )?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let ticket = self
            .core
            .add_watcher(&r.ticket_id, watcher, &actor, idem.as_ref())
            .await?;
        Ok(Response::new(proto::ticket(&ticket)))
    }

    async fn remove_watcher(
        &self,
        request: Request<pb::RemoveWatcherRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let (watcher, idem) = request::watcher(
            &r,
            &r.idempotency_key,
            &r.ticket_id,
            r.watcher.as_ref(),
            |m| m.idempotency_key.clear(),
        )?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let ticket = self
            .core
            .remove_watcher(&r.ticket_id, watcher, &actor, idem.as_ref())
            .await?;
        Ok(Response::new(proto::ticket(&ticket)))
    }

    async fn upsert_business_calendar(
        &self,
        request: Request<pb::UpsertBusinessCalendarRequest>,
    ) -> Result<Response<pb::BusinessCalendar>, Status> {
        let calendar = request::calendar(request.get_ref())?;
        audit::target(format!("calendar:{}", calendar.id));
        let stored = self.core.upsert_calendar(calendar).await?;
        Ok(Response::new(proto::calendar(&stored)))
    }

    async fn upsert_support_group(
        &self,
        request: Request<pb::UpsertSupportGroupRequest>,
    ) -> Result<Response<pb::SupportGroup>, Status> {
        self.upsert_group(request.get_ref())
            .await
            .map(Response::new)
    }

    async fn list_support_groups(
        &self,
        _request: Request<pb::ListSupportGroupsRequest>,
    ) -> Result<Response<pb::ListSupportGroupsResponse>, Status> {
        self.list_groups().await.map(Response::new)
    }

    async fn upsert_agent(
        &self,
        request: Request<pb::UpsertAgentRequest>,
    ) -> Result<Response<pb::Agent>, Status> {
        self.upsert_agent(request.get_ref())
            .await
            .map(Response::new)
    }

    async fn list_agents(
        &self,
        request: Request<pb::ListAgentsRequest>,
    ) -> Result<Response<pb::ListAgentsResponse>, Status> {
        self.list_agents(request.get_ref()).await.map(Response::new)
    }

    async fn upsert_shift(
        &self,
        request: Request<pb::UpsertShiftRequest>,
    ) -> Result<Response<pb::Shift>, Status> {
        self.upsert_shift(request.get_ref())
            .await
            .map(Response::new)
    }

    async fn list_shifts(
        &self,
        request: Request<pb::ListShiftsRequest>,
    ) -> Result<Response<pb::ListShiftsResponse>, Status> {
        self.list_shifts(request.get_ref()).await.map(Response::new)
    }

    async fn check_coverage(
        &self,
        request: Request<pb::CheckCoverageRequest>,
    ) -> Result<Response<pb::CoverageReport>, Status> {
        self.check_coverage(request.get_ref())
            .await
            .map(Response::new)
    }

    async fn upsert_routing_rule(
        &self,
        request: Request<pb::UpsertRoutingRuleRequest>,
    ) -> Result<Response<pb::RoutingRule>, Status> {
        self.upsert_rule(request.get_ref()).await.map(Response::new)
    }

    async fn list_routing_rules(
        &self,
        _request: Request<pb::ListRoutingRulesRequest>,
    ) -> Result<Response<pb::ListRoutingRulesResponse>, Status> {
        self.list_rules().await.map(Response::new)
    }

    async fn list_queue(
        &self,
        request: Request<pb::ListQueueRequest>,
    ) -> Result<Response<pb::ListQueueResponse>, Status> {
        self.list_queue(request.get_ref()).await.map(Response::new)
    }

    async fn claim_next(
        &self,
        request: Request<pb::ClaimNextRequest>,
    ) -> Result<Response<pb::ClaimNextResponse>, Status> {
        TicketsApi::claim_next(self, request).await
    }
    async fn record_complaint(
        &self,
        request: Request<pb::RecordComplaintRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        self.record_complaint_step(request).await
    }

    async fn propose_solution(
        &self,
        request: Request<pb::ProposeSolutionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        self.propose_solution_step(request).await
    }

    async fn decide_solution(
        &self,
        request: Request<pb::DecideSolutionRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        self.decide_solution_step(request).await
    }

    async fn schedule_remedy(
        &self,
        request: Request<pb::ScheduleRemedyRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        self.schedule_remedy_step(request).await
    }
}
