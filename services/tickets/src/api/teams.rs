//! The gRPC face of teams and routing: decoding and validating each request (every
//! problem named by its field) into domain values, calling the use case, encoding.

use aftersales_platform::{
    auth::Caller, caller::actor_of, codes::instant, idempotency::Idempotency, paging::page_size,
    status::Violations,
};
use aftersales_protos::{common::v1 as common, tickets::v1 as pb};
use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        DomainError, product,
        routing::RoutingRule,
        team::{self, Agent, AgentRole, MAX_CAPACITY, Shift, SupportGroup},
    },
    proto::{self, teams as encode},
};

use super::TicketsApi;

/// The most skills, groups, agents of a shift or values of a rule's list.
const MAX_LIST: usize = 200;
/// The longest group name.
const MAX_NAME: usize = 200;

/// A list of codes under `field[i]`, in the request's order, without duplicates (`dedup`)
/// or refused when one appears twice. The use case sorts them once checked, so the index
/// a later violation names is the request's.
fn codes(v: &mut Violations, field: &str, values: &[String], dedup: bool) -> Vec<String> {
    v.max_count(field, values, MAX_LIST);
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let name = format!("{field}[{i}]");
        if let Some(code) = v.check(&name, team::code(value)) {
            if out.contains(&code) {
                if !dedup {
                    v.add(name, "appears twice");
                }
                continue;
            }
            out.push(code);
        }
    }
    out
}

fn code(v: &mut Violations, field: &str, value: &str) -> String {
    v.check(field, team::code(value)).unwrap_or_default()
}

fn optional_code(v: &mut Violations, field: &str, value: &str) -> Option<String> {
    if value.trim().is_empty() {
        return None;
    }
    v.check(field, team::code(value))
}

/// A timestamp field: required or not, and within range.
pub(super) fn at(
    v: &mut Violations,
    field: &str,
    t: Option<&prost_types::Timestamp>,
    required: bool,
) -> Option<DateTime<Utc>> {
    match t {
        None => {
            if required {
                v.add(field, "is required");
            }
            None
        }
        Some(t) => {
            let parsed = instant(t);
            if parsed.is_none() {
                v.add(field, "is not a valid instant");
            }
            parsed
        }
    }
}

fn missing(v: &mut Violations, field: &str) -> Result<(), Status> {
    v.add(field, "is required");
    std::mem::take(v).finish()
}

fn group(r: &pb::UpsertSupportGroupRequest) -> Result<(SupportGroup, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    let Some(g) = r.group.as_ref() else {
        missing(&mut v, "group")?;
        return Err(Status::internal("unreachable"));
    };
    let id = code(&mut v, "group.id", &g.id);
    v.text("group.name", &g.name, MAX_NAME);
    let group = SupportGroup {
        name: if g.name.trim().is_empty() {
            id.clone()
        } else {
            g.name.trim().to_owned()
        },
        skills: codes(&mut v, "group.skills", &g.skills, true),
        calendar_id: optional_code(&mut v, "group.calendar_id", &g.calendar_id),
        round_robin: g.round_robin,
        id,
    };
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.finish()?;
    Ok((group, idem))
}

fn agent(r: &pb::UpsertAgentRequest) -> Result<(Agent, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    let Some(a) = r.agent.as_ref() else {
        missing(&mut v, "agent")?;
        return Err(Status::internal("unreachable"));
    };
    let group_ids = codes(&mut v, "agent.group_ids", &a.group_ids, true);
    if a.group_ids.is_empty() {
        v.add("agent.group_ids", "at least one group");
    }
    if !(1..=MAX_CAPACITY).contains(&a.capacity) {
        v.add("agent.capacity", format!("must be 1 to {MAX_CAPACITY}"));
    }
    let agent = Agent {
        id: code(&mut v, "agent.id", &a.id),
        group_ids,
        skills: codes(&mut v, "agent.skills", &a.skills, true),
        capacity: a.capacity,
        role: v
            .optional_enum("agent.role", a.role)
            .unwrap_or(AgentRole::Agent),
    };
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.finish()?;
    Ok((agent, idem))
}

fn shift(r: &pb::UpsertShiftRequest) -> Result<(Shift, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    let Some(s) = r.shift.as_ref() else {
        missing(&mut v, "shift")?;
        return Err(Status::internal("unreachable"));
    };
    let start = at(&mut v, "shift.start", s.start.as_ref(), true);
    let end = at(&mut v, "shift.end", s.end.as_ref(), true);
    let shift = Shift {
        id: code(&mut v, "shift.id", &s.id),
        group_id: code(&mut v, "shift.group_id", &s.group_id),
        start: start.unwrap_or_default(),
        end: end.unwrap_or_default(),
        agent_ids: codes(&mut v, "shift.agent_ids", &s.agent_ids, false),
        ended: false,
    };
    if start.is_some()
        && end.is_some()
        && let Err(DomainError::Invalid { field, reason }) = shift.validate()
    {
        v.add(field, reason);
    }
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.finish()?;
    Ok((shift, idem))
}

fn rule(r: &pb::UpsertRoutingRuleRequest) -> Result<(RoutingRule, Option<Idempotency>), Status> {
    let mut v = Violations::new();
    let Some(p) = r.rule.as_ref() else {
        missing(&mut v, "rule")?;
        return Err(Status::internal("unreachable"));
    };
    let mut facts =
        |field: &str, values: &[String], check: fn(&str) -> Result<Option<String>, String>| {
            v.max_count(field, values, MAX_LIST);
            let mut out = Vec::new();
            for (i, value) in values.iter().enumerate() {
                match check(value) {
                    Ok(Some(code)) => out.push(code),
                    Ok(None) => v.add(format!("{field}[{i}]"), "is required"),
                    Err(e) => v.add(format!("{field}[{i}]"), e),
                }
            }
            out
        };
    let match_product_lines = facts(
        "rule.match_product_lines",
        &p.match_product_lines,
        product::product_code,
    );
    let match_region_codes = facts(
        "rule.match_region_codes",
        &p.match_region_codes,
        product::region_code,
    );
    let rule = RoutingRule {
        id: code(&mut v, "rule.id", &p.id),
        priority: p.priority,
        match_categories: v.enum_list("rule.match_categories", &p.match_categories),
        match_severities: v.enum_list("rule.match_severities", &p.match_severities),
        match_channels: v.enum_list("rule.match_channels", &p.match_channels),
        match_product_lines,
        match_region_codes,
        group_id: code(&mut v, "rule.group_id", &p.group_id),
        disabled: p.disabled,
    };
    let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
    v.finish()?;
    Ok((rule, idem))
}

impl TicketsApi {
    pub(super) async fn upsert_group(
        &self,
        r: &pb::UpsertSupportGroupRequest,
    ) -> Result<pb::SupportGroup, Status> {
        let (g, idem) = group(r)?;
        aftersales_platform::audit::target(format!("group:{}", g.id));
        Ok(encode::group(
            &self.core.upsert_group(g, idem.as_ref()).await?,
        ))
    }

    pub(super) async fn list_groups(&self) -> Result<pb::ListSupportGroupsResponse, Status> {
        let groups = self.core.list_groups().await?;
        Ok(pb::ListSupportGroupsResponse {
            groups: groups.iter().map(encode::group).collect(),
        })
    }

    pub(super) async fn upsert_agent(
        &self,
        r: &pb::UpsertAgentRequest,
    ) -> Result<pb::Agent, Status> {
        let (a, idem) = agent(r)?;
        aftersales_platform::audit::target(format!("agent:{}", a.id));
        let (a, load) = self.core.upsert_agent(a, idem.as_ref()).await?;
        Ok(encode::agent(&a, load))
    }

    pub(super) async fn list_agents(
        &self,
        r: &pb::ListAgentsRequest,
    ) -> Result<pb::ListAgentsResponse, Status> {
        let mut v = Violations::new();
        let group_id = optional_code(&mut v, "group_id", &r.group_id);
        v.finish()?;
        let agents = self.core.list_agents(group_id.as_deref()).await?;
        Ok(pb::ListAgentsResponse {
            agents: agents
                .iter()
                .map(|(a, load)| encode::agent(a, *load))
                .collect(),
        })
    }

    pub(super) async fn upsert_shift(
        &self,
        r: &pb::UpsertShiftRequest,
    ) -> Result<pb::Shift, Status> {
        let (s, idem) = shift(r)?;
        aftersales_platform::audit::target(format!("shift:{}", s.id));
        Ok(encode::shift(
            &self.core.upsert_shift(s, idem.as_ref()).await?,
        ))
    }

    pub(super) async fn list_shifts(
        &self,
        r: &pb::ListShiftsRequest,
    ) -> Result<pb::ListShiftsResponse, Status> {
        let mut v = Violations::new();
        let group_id = code(&mut v, "group_id", &r.group_id);
        let from = at(&mut v, "from", r.from.as_ref(), false);
        let to = at(&mut v, "to", r.to.as_ref(), false);
        v.finish()?;
        let shifts = self.core.list_shifts(&group_id, from, to).await?;
        Ok(pb::ListShiftsResponse {
            shifts: shifts.iter().map(encode::shift).collect(),
        })
    }

    pub(super) async fn check_coverage(
        &self,
        r: &pb::CheckCoverageRequest,
    ) -> Result<pb::CoverageReport, Status> {
        let mut v = Violations::new();
        let group_id = code(&mut v, "group_id", &r.group_id);
        let from = at(&mut v, "from", r.from.as_ref(), false);
        if from.is_some_and(|f| f.timestamp_subsec_nanos() != 0) {
            v.add("from", "must be a whole second");
        }
        v.finish()?;
        Ok(encode::coverage(
            &self.core.coverage(&group_id, from).await?,
        ))
    }

    pub(super) async fn upsert_rule(
        &self,
        r: &pb::UpsertRoutingRuleRequest,
    ) -> Result<pb::RoutingRule, Status> {
        let (rule, idem) = rule(r)?;
        aftersales_platform::audit::target(format!("routing_rule:{}", rule.id));
        Ok(encode::rule(
            &self.core.upsert_rule(rule, idem.as_ref()).await?,
        ))
    }

    pub(super) async fn list_rules(&self) -> Result<pb::ListRoutingRulesResponse, Status> {
        let rules = self.core.list_rules().await?;
        Ok(pb::ListRoutingRulesResponse {
            rules: rules.iter().map(encode::rule).collect(),
        })
    }

    pub(super) async fn claim_next(
        &self,
        request: Request<pb::ClaimNextRequest>,
    ) -> Result<Response<pb::ClaimNextResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let mut v = Violations::new();
        let group_id = code(&mut v, "group_id", &r.group_id);
        let agent_id = code(&mut v, "agent_id", &r.agent_id);
        let idem = v.idempotency(&r.idempotency_key, &r, |m| m.idempotency_key.clear());
        v.finish()?;
        // The agent claims for themself; only a caller with act-as claims for another.
        let claimed = common::Actor {
            id: agent_id,
            role: common::ActorRole::Agent as i32,
        };
        let actor = actor_of(&caller, Some(&claimed))?;
        let ticket = self
            .core
            .claim_next(&group_id, &actor, idem.as_ref())
            .await?;
        Ok(Response::new(pb::ClaimNextResponse {
            ticket: ticket.as_ref().map(proto::ticket),
        }))
    }

    pub(super) async fn list_queue(
        &self,
        r: &pb::ListQueueRequest,
    ) -> Result<pb::ListQueueResponse, Status> {
        let mut v = Violations::new();
        let group_id = code(&mut v, "group_id", &r.group_id);
        v.finish()?;
        let (entries, total) = self
            .core
            .list_queue(&group_id, page_size(r.page_size))
            .await?;
        Ok(pb::ListQueueResponse {
            entries: entries
                .iter()
                .map(|(t, risk)| encode::queue_entry(t, *risk))
                .collect(),
            total: u32::try_from(total).unwrap_or(u32::MAX),
        })
    }

    pub(super) async fn assign_ticket(
        &self,
        request: Request<pb::AssignRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        let mut v = Violations::new();
        v.id("ticket_id", &r.ticket_id);
        let assignee = code(&mut v, "assignee", &r.assignee);
        let group_id = optional_code(&mut v, "group_id", &r.group_id);
        let idem = v.idempotency(&r.idempotency_key, &r, |m| m.idempotency_key.clear());
        v.finish()?;
        let actor = actor_of(&caller, r.actor.as_ref())?;
        let ticket = self
            .core
            .assign(
                &r.ticket_id,
                &assignee,
                group_id.as_deref(),
                &actor,
                idem.as_ref(),
            )
            .await?;
        Ok(Response::new(proto::ticket(&ticket)))
    }
}
