//! Conversions of the teams and routing types to the protobuf contract.

use aftersales_platform::{codes::timestamp, proto_enum};
use aftersales_protos::tickets::v1 as pb;

use super::ProtoEnum;
use crate::{
    domain::{
        routing::RoutingRule,
        team::{Agent, AgentRole, Shift, SupportGroup},
    },
    usecases::{Coverage, Risk},
};

proto_enum!(AgentRole => pb::AgentRole {
    Agent => Agent, Specialist => Specialist, Supervisor => Supervisor, Manager => Manager,
});

pub fn group(g: &SupportGroup) -> pb::SupportGroup {
    pb::SupportGroup {
        id: g.id.clone(),
        name: g.name.clone(),
        skills: g.skills.clone(),
        calendar_id: g.calendar_id.clone().unwrap_or_default(),
        round_robin: g.round_robin,
    }
}

pub fn agent(a: &Agent, open_tickets: u32) -> pb::Agent {
    pb::Agent {
        id: a.id.clone(),
        group_ids: a.group_ids.clone(),
        skills: a.skills.clone(),
        capacity: a.capacity,
        role: a.role.to_proto(),
        open_tickets,
    }
}

pub fn shift(s: &Shift) -> pb::Shift {
    pb::Shift {
        id: s.id.clone(),
        group_id: s.group_id.clone(),
        start: Some(timestamp(s.start)),
        end: Some(timestamp(s.end)),
        agent_ids: s.agent_ids.clone(),
        ended: s.ended,
    }
}

pub fn coverage(c: &Coverage) -> pb::CoverageReport {
    pb::CoverageReport {
        group_id: c.group_id.clone(),
        from: Some(timestamp(c.from)),
        to: Some(timestamp(c.to)),
        gaps: c
            .gaps
            .iter()
            .map(|(from, to)| pb::CoverageGap {
                from: Some(timestamp(*from)),
                to: Some(timestamp(*to)),
            })
            .collect(),
        uncovered_seconds: c
            .gaps
            .iter()
            .map(|(from, to)| u64::try_from((*to - *from).num_seconds()).unwrap_or(0))
            .sum(),
    }
}

pub fn rule(r: &RoutingRule) -> pb::RoutingRule {
    pb::RoutingRule {
        id: r.id.clone(),
        priority: r.priority,
        match_categories: r.match_categories.iter().map(|c| c.to_proto()).collect(),
        match_severities: r.match_severities.iter().map(|s| s.to_proto()).collect(),
        match_channels: r.match_channels.iter().map(|c| c.to_proto()).collect(),
        match_product_lines: r.match_product_lines.clone(),
        match_region_codes: r.match_region_codes.clone(),
        group_id: r.group_id.clone(),
        disabled: r.disabled,
    }
}

pub fn queue_entry(ticket: &crate::domain::ticket::Ticket, risk: Risk) -> pb::QueueEntry {
    pb::QueueEntry {
        ticket: Some(super::ticket(ticket)),
        due_at: risk.map(|(at, _)| timestamp(at)),
        clock_kind: risk.map_or(0, |(_, kind)| kind.to_proto()),
    }
}
