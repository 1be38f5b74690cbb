//! The major-incident RPCs of the care service: requests decoded and checked field by
//! field, the use case called, the incident encoded.

use aftersales_platform::{
    auth::Caller,
    caller::actor_of,
    codes::{ProtoEnum, instant, timestamp},
    paging::{decode_cursor, page_size},
    proto_enum,
    status::Violations,
    validate::non_empty,
};
use aftersales_protos::care::v1 as pb;
use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};

use super::{CareApi, next_token};
use crate::domain::{
    Severity,
    incident::{
        EscalationLevel, Incident, IncidentAction, IncidentKind, IncidentStatus, MilestoneKind,
        Scope,
    },
};
use crate::usecases::incidents::NewIncident;

const MAX_TITLE: usize = 200;
const MAX_NOTE: usize = 4_000;
/// Most tickets one LinkIncidentTickets call names.
const MAX_LINKED_AT_ONCE: usize = 500;

proto_enum!(IncidentKind => pb::IncidentKind {
    Safety => Safety,
    Quality => Quality,
    ServiceOutage => ServiceOutage,
    RegionalEmergency => RegionalEmergency,
});

proto_enum!(IncidentStatus => pb::IncidentStatus {
    Proposed => Proposed,
    Active => Active,
    Closed => Closed,
});

proto_enum!(MilestoneKind => pb::IncidentMilestoneKind {
    Statement => Statement,
    Recall => Recall,
});

proto_enum!(IncidentAction => pb::IncidentActionKind {
    Statement => Statement,
    Recall => Recall,
    Compensation => Compensation,
    Assistance => Assistance,
    TicketsUpdated => TicketsUpdated,
});

fn incident(i: &Incident) -> pb::Incident {
    let part = |p: &Option<String>| p.clone().unwrap_or_default();
    pb::Incident {
        id: i.id.clone(),
        kind: i.kind.to_proto(),
        status: i.status.to_proto(),
        scope: Some(pb::IncidentScope {
            sku: part(&i.scope.sku),
            batch: part(&i.scope.batch),
            region_code: part(&i.scope.region),
        }),
        title: i.title.clone(),
        proposed_because: i.proposed_because.clone(),
        opened_at: Some(timestamp(i.opened_at)),
        declared_at: i.declared_at.map(timestamp),
        closed_at: i.closed_at.map(timestamp),
        milestones: i
            .milestones
            .iter()
            .map(|m| pb::IncidentMilestone {
                kind: m.kind.to_proto(),
                due_at: Some(timestamp(m.due_at)),
                warn_at: Some(timestamp(m.warn_at)),
                met_at: m.met_at.map(timestamp),
                warned: m.warned,
                breached: m.breached,
            })
            .collect(),
        escalation_level: i.escalation_level,
        actions: i
            .actions
            .iter()
            .map(|a| pb::IncidentActionRecord {
                action: a.action.to_proto(),
                note: a.note.clone(),
                reference: a.reference.clone(),
                actor_id: a.actor_id.clone(),
                at: Some(timestamp(a.at)),
            })
            .collect(),
        linked_tickets: i.linked_tickets,
        ends_at: i.ends_at.map(timestamp),
    }
}

fn scope(v: &mut Violations, s: Option<&pb::IncidentScope>) -> Scope {
    let s = s.cloned().unwrap_or_default();
    v.optional_id("scope.sku", &s.sku);
    v.optional_id("scope.batch", &s.batch);
    v.optional_id("scope.region_code", &s.region_code);
    Scope {
        sku: non_empty(&s.sku),
        batch: non_empty(&s.batch),
        region: non_empty(&s.region_code),
    }
}

impl CareApi {
    pub(super) async fn declare(
        &self,
        request: Request<pb::DeclareIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let r = request.get_ref();
        let mut v = Violations::new();
        let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
        v.optional_id("incident_id", &r.incident_id);
        let proposal = non_empty(&r.incident_id);
        let new = if proposal.is_some() {
            NewIncident {
                kind: IncidentKind::Quality,
                scope: Scope::default(),
                title: String::new(),
                until: None,
            }
        } else {
            let kind = v.required_enum("kind", r.kind);
            let scope = scope(&mut v, r.scope.as_ref());
            if scope.is_empty() {
                v.add("scope", "name the SKU, the batch or the region it concerns");
            }
            v.required_text("title", &r.title, MAX_TITLE);
            let until = r.until.as_ref().map(|t| {
                instant(t).unwrap_or_else(|| {
                    v.add("until", "not a valid instant");
                    DateTime::<Utc>::MIN_UTC
                })
            });
            NewIncident {
                kind: kind.unwrap_or(IncidentKind::Quality),
                scope,
                title: r.title.trim().to_owned(),
                until,
            }
        };
        v.finish()?;
        let declared = self
            .core
            .declare_incident(proposal.as_deref(), new, idem.as_ref())
            .await?;
        Ok(Response::new(incident(&declared)))
    }

    pub(super) async fn get(
        &self,
        request: Request<pb::GetIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let r = request.get_ref();
        let mut v = Violations::new();
        v.id("incident_id", &r.incident_id);
        v.finish()?;
        let found = self.core.get_incident(&r.incident_id).await?;
        Ok(Response::new(incident(&found)))
    }

    pub(super) async fn list(
        &self,
        request: Request<pb::ListIncidentsRequest>,
    ) -> Result<Response<pb::ListIncidentsResponse>, Status> {
        let r = request.get_ref();
        let mut v = Violations::new();
        let status = v.optional_enum("status", r.status);
        let p = r.page.clone().unwrap_or_default();
        let cursor = decode_cursor(&mut v, &p.page_token);
        v.finish()?;
        let (page, next) = self
            .core
            .list_incidents(status, cursor.as_deref(), page_size(p.page_size))
            .await?;
        Ok(Response::new(pb::ListIncidentsResponse {
            incidents: page.iter().map(incident).collect(),
            page: next_token(next),
        }))
    }

    pub(super) async fn tickets(
        &self,
        request: Request<pb::ListIncidentTicketsRequest>,
    ) -> Result<Response<pb::ListIncidentTicketsResponse>, Status> {
        let r = request.get_ref();
        let mut v = Violations::new();
        v.id("incident_id", &r.incident_id);
        let p = r.page.clone().unwrap_or_default();
        let cursor = decode_cursor(&mut v, &p.page_token);
        v.finish()?;
        let (ticket_ids, next) = self
            .core
            .list_incident_tickets(&r.incident_id, cursor.as_deref(), page_size(p.page_size))
            .await?;
        Ok(Response::new(pb::ListIncidentTicketsResponse {
            ticket_ids,
            page: next_token(next),
        }))
    }

    pub(super) async fn link(
        &self,
        request: Request<pb::LinkIncidentTicketsRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let r = request.get_ref();
        let mut v = Violations::new();
        let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
        v.id("incident_id", &r.incident_id);
        if r.ticket_ids.is_empty() {
            v.add("ticket_ids", "name at least one ticket");
        }
        v.max_count("ticket_ids", &r.ticket_ids, MAX_LINKED_AT_ONCE);
        for (n, id) in r.ticket_ids.iter().enumerate() {
            v.id(&format!("ticket_ids[{n}]"), id);
        }
        v.finish()?;
        let ids: Vec<String> = r.ticket_ids.iter().map(|t| t.trim().to_owned()).collect();
        let linked = self
            .core
            .link_incident_tickets(&r.incident_id, &ids, idem.as_ref())
            .await?;
        Ok(Response::new(incident(&linked)))
    }

    pub(super) async fn record(
        &self,
        request: Request<pb::RecordIncidentActionRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.get_ref();
        let mut v = Violations::new();
        let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
        v.id("incident_id", &r.incident_id);
        let action = v.required_enum::<IncidentAction>("action", r.action);
        if action == Some(IncidentAction::TicketsUpdated) {
            v.add("action", "recorded by UpdateIncidentTickets, not by hand");
        }
        v.required_text("note", &r.note, MAX_NOTE);
        v.optional_id("reference", &r.reference);
        v.finish()?;
        let actor = actor_of(&caller, None)?;
        let Some(action) = action else {
            return Err(Status::invalid_argument("action: is required"));
        };
        let recorded = self
            .core
            .record_incident_action(
                &r.incident_id,
                action,
                r.note.trim(),
                r.reference.trim(),
                &actor.id,
                idem.as_ref(),
            )
            .await?;
        Ok(Response::new(incident(&recorded)))
    }

    pub(super) async fn update_tickets(
        &self,
        request: Request<pb::UpdateIncidentTicketsRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.get_ref();
        let mut v = Violations::new();
        let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
        v.id("incident_id", &r.incident_id);
        let escalate_to = v.optional_enum::<EscalationLevel>("escalate_to", r.escalate_to);
        let severity = v.optional_enum::<Severity>("severity", r.severity);
        if r.escalate_to == 0 && r.severity == 0 {
            v.add(
                "escalate_to",
                "name a level to escalate to, a severity, or both",
            );
        }
        v.finish()?;
        let actor = actor_of(&caller, None)?;
        let updated = self
            .core
            .update_incident_tickets(
                &r.incident_id,
                escalate_to,
                severity,
                &actor.id,
                idem.as_ref(),
            )
            .await?;
        Ok(Response::new(incident(&updated)))
    }

    pub(super) async fn close(
        &self,
        request: Request<pb::CloseIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let r = request.get_ref();
        let mut v = Violations::new();
        let idem = v.idempotency(&r.idempotency_key, r, |m| m.idempotency_key.clear());
        v.id("incident_id", &r.incident_id);
        v.finish()?;
        let closed = self
            .core
            .close_incident(&r.incident_id, idem.as_ref())
            .await?;
        Ok(Response::new(incident(&closed)))
    }
}
