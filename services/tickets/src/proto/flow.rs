//! The complaint flow and the milestone parts of a policy in the protobuf contract.

use aftersales_platform::{codes::timestamp, proto_enum};
use aftersales_protos::tickets::v1 as pb;

use super::{ProtoEnum, target};
use crate::domain::{
    policy::{HandOff, WarningAction, WarningThreshold},
    ticket::{ComplaintFlow, QualityJudgement, SolutionKind, SolutionState},
};

proto_enum!(QualityJudgement => pb::QualityJudgement {
    QualityProblem => QualityProblem, NotQualityProblem => NotQualityProblem,
    ThirdPartyTest => ThirdPartyTest,
});
proto_enum!(SolutionKind => pb::SolutionKind {
    Return => Return, Exchange => Exchange, Compensation => Compensation, Repair => Repair,
});
proto_enum!(SolutionState => pb::SolutionState {
    Proposed => Proposed, Accepted => Accepted, Rejected => Rejected,
});
proto_enum!(WarningAction => pb::WarningAction {
    Notify => Notify, Escalate => Escalate, Reassign => Reassign,
});

/// The ticket's fields that tell its complaint flow; the rest default.
pub fn flow_fields(flow: &ComplaintFlow) -> pb::Ticket {
    let remedy = flow.remedy.as_ref();
    pb::Ticket {
        recorded_at: flow.recorded_at.map(timestamp),
        quality: flow.quality.map_or(0, ProtoEnum::to_proto),
        solution: flow.solution.as_ref().map(|s| pb::Solution {
            kind: s.kind.to_proto(),
            state: s.state.to_proto(),
            proposed_at: Some(timestamp(s.proposed_at)),
            decided_at: s.decided_at.map(timestamp),
            proposals: s.proposals,
            rejections: s.rejections,
        }),
        remedy_scheduled_at: remedy.map(|r| timestamp(r.scheduled_at)),
        remedy_reference: remedy.and_then(|r| r.reference.clone()).unwrap_or_default(),
        remedy_planned_for: remedy.and_then(|r| r.planned_for).map(timestamp),
        ..Default::default()
    }
}

pub fn hand_off(h: &HandOff) -> pb::HandOffTarget {
    pb::HandOffTarget {
        within: Some(target(&h.within)),
        role: h.role.to_proto(),
    }
}

pub fn warnings(thresholds: &[WarningThreshold]) -> Vec<pb::WarningThreshold> {
    thresholds
        .iter()
        .map(|t| pb::WarningThreshold {
            percent: u32::from(t.percent),
            action: t.action.to_proto(),
        })
        .collect()
}
