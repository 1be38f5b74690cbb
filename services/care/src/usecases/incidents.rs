//! Major incidents: declaring one (or a proposal the suite made), linking tickets by hand
//! and as they arrive, recording what was done, closing, and firing the incident's
//! clocks. The suite proposes an incident from the tickets stream, inside the consumer's
//! transaction: when complaints naming one batch pass the threshold within the window,
//! or at once for an urgent complaint naming a batch or SKU. One open incident covers a
//! scope (a unique key in the store), so two consumers proposing at once make one.

use aftersales_deadlines::{DeadlineQueue, worker::Due};
use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::{
    command::{Begun, InCommand, Remembered},
    firing::schedule_all,
};
use chrono::{DateTime, Duration, Utc};
use sea_orm::DbErr;

use crate::{
    domain::{
        DomainError, Severity,
        facts::TicketFact,
        incident::{
            ActionRecord, EscalationLevel, Incident, IncidentAction, IncidentKind, IncidentStatus,
            Scope,
        },
        new_id,
    },
    error::{CareError, not_found},
    events, store,
};

use super::{CareCore, CareDeadline, paged, proactive::notify_region, replayed};

const DECLARE_SCOPE: &str = "care.DeclareIncident";
const LINK_SCOPE: &str = "care.LinkIncidentTickets";
const RECORD_SCOPE: &str = "care.RecordIncidentAction";
const CLOSE_SCOPE: &str = "care.CloseIncident";
const UPDATE_SCOPE: &str = "care.UpdateIncidentTickets";
const FIRE_SCOPE: &str = "care.FireIncidentClocks";

/// What a keyed command does to one incident.
enum Change<'a> {
    Link(&'a [String]),
    Record {
        action: IncidentAction,
        note: &'a str,
        reference: &'a str,
        actor_id: &'a str,
    },
    Close,
    UpdateTickets {
        escalate_to: Option<EscalationLevel>,
        severity: Option<Severity>,
        actor_id: &'a str,
    },
}

/// A new incident declared by hand (when no proposal is named).
#[derive(Debug, Clone)]
pub struct NewIncident {
    pub kind: IncidentKind,
    pub scope: Scope,
    pub title: String,
    /// A regional emergency's planned end.
    pub until: Option<DateTime<Utc>>,
}

impl CareCore {
    pub async fn get_incident(&self, id: &str) -> Result<Incident, CareError> {
        store::load_incident(self.db(), id, false)
            .await?
            .ok_or_else(|| not_found("incident", id))
    }

    pub async fn list_incidents(
        &self,
        status: Option<IncidentStatus>,
        before: Option<&str>,
        size: u64,
    ) -> Result<(Vec<Incident>, Option<String>), CareError> {
        let page = store::list_incidents(self.db(), status, before, size + 1).await?;
        Ok(paged(page, size, |i| i.id.clone()))
    }

    pub async fn list_incident_tickets(
        &self,
        id: &str,
        after: Option<&str>,
        size: u64,
    ) -> Result<(Vec<String>, Option<String>), CareError> {
        self.get_incident(id).await?;
        let page = store::incident_tickets(self.db(), id, after, size + 1).await?;
        Ok(paged(page, size, Clone::clone))
    }

    /// Declares the proposal `proposal`, or a new incident; its clocks start now and the
    /// open tickets already within its scope are linked.
    pub async fn declare_incident(
        &self,
        proposal: Option<&str>,
        new: NewIncident,
        idem: Option<&Idempotency>,
    ) -> Result<Incident, CareError> {
        self.pipeline
            .keyed(idem, || self.try_declare(proposal, &new, idem))
            .await
    }

    async fn try_declare(
        &self,
        proposal: Option<&str>,
        new: &NewIncident,
        idem: Option<&Idempotency>,
    ) -> Result<Incident, CareError> {
        let mut cmd = match self.pipeline.begin(DECLARE_SCOPE, idem).await? {
            Begun::Replay(remembered) => return self.get_incident(replayed(&remembered)?).await,
            Begun::Fresh(cmd) => cmd,
        };
        let now = cmd.now();
        let mut incident = match proposal {
            Some(id) => {
                let Some(mut incident) = store::load_incident(cmd.txn(), id, true).await? else {
                    cmd.abandon().await?;
                    return Err(not_found("incident", id));
                };
                if let Err(e) = incident.declare(now, None, &self.rules.incidents) {
                    cmd.abandon().await?;
                    return Err(e.into());
                }
                incident
            }
            None => {
                let mut incident = Incident::propose(
                    new_id(),
                    new.kind,
                    new.scope.clone(),
                    new.title.clone(),
                    String::new(),
                    now,
                );
                if let Err(e) = incident.declare(now, new.until, &self.rules.incidents) {
                    cmd.abandon().await?;
                    return Err(e.into());
                }
                if !store::insert_incident(cmd.txn(), &incident).await? {
                    let holder = store::open_incident_of_scope(cmd.txn(), &incident.scope.key())
                        .await?
                        .map(|i| i.id)
                        .unwrap_or_default();
                    cmd.abandon().await?;
                    return Err(DomainError::Precondition(format!(
                        "incident {holder} is open for this scope: declare or close it"
                    ))
                    .into());
                }
                cmd.publish(vec![events::incident_opened(&incident, now)])
                    .await?;
                incident
            }
        };
        let within: Vec<String> = store::open_tickets_within(cmd.txn(), &incident.scope)
            .await?
            .into_iter()
            .filter(|t| incident.scope.matches(&t.dims))
            .map(|t| t.ticket_id)
            .collect();
        link(&mut cmd, &mut incident, &within).await?;
        store::save_incident(cmd.txn(), &incident).await?;
        if let (IncidentKind::RegionalEmergency, Some(region)) =
            (incident.kind, &incident.scope.region)
        {
            // Once: the notice is the incident's, and its declaration happens once.
            notify_region(
                cmd.txn(),
                &incident.id,
                region,
                "regional emergency",
                &incident.title,
                now,
            )
            .await?;
        }
        cmd.publish(vec![events::incident_declared(&incident, now)])
            .await?;
        cmd.reschedule(
            CareDeadline::Incident(incident.id.clone()),
            incident.next_instant(),
        );
        cmd.commit(&self.pipeline, &Remembered::id(&incident.id))
            .await?;
        Ok(incident)
    }

    /// Links tickets by hand to an open incident.
    pub async fn link_incident_tickets(
        &self,
        id: &str,
        ticket_ids: &[String],
        idem: Option<&Idempotency>,
    ) -> Result<Incident, CareError> {
        self.change_incident(LINK_SCOPE, id, Change::Link(ticket_ids), idem)
            .await
    }

    /// Records the statement, the recall, compensation or assistance given.
    pub async fn record_incident_action(
        &self,
        id: &str,
        action: IncidentAction,
        note: &str,
        reference: &str,
        actor_id: &str,
        idem: Option<&Idempotency>,
    ) -> Result<Incident, CareError> {
        let change = Change::Record {
            action,
            note,
            reference,
            actor_id,
        };
        self.change_incident(RECORD_SCOPE, id, change, idem).await
    }

    /// Asks tickets to update every ticket linked to the (active) incident together.
    pub async fn update_incident_tickets(
        &self,
        id: &str,
        escalate_to: Option<EscalationLevel>,
        severity: Option<Severity>,
        actor_id: &str,
        idem: Option<&Idempotency>,
    ) -> Result<Incident, CareError> {
        let change = Change::UpdateTickets {
            escalate_to,
            severity,
            actor_id,
        };
        self.change_incident(UPDATE_SCOPE, id, change, idem).await
    }

    pub async fn close_incident(
        &self,
        id: &str,
        idem: Option<&Idempotency>,
    ) -> Result<Incident, CareError> {
        self.change_incident(CLOSE_SCOPE, id, Change::Close, idem)
            .await
    }

    /// One keyed command on one incident: loaded and locked, changed, saved, its clock
    /// rescheduled to what is next (or taken off).
    async fn change_incident(
        &self,
        scope: &'static str,
        id: &str,
        change: Change<'_>,
        idem: Option<&Idempotency>,
    ) -> Result<Incident, CareError> {
        self.pipeline
            .keyed(idem, || self.try_change_incident(scope, id, &change, idem))
            .await
    }

    async fn try_change_incident(
        &self,
        scope: &'static str,
        id: &str,
        change: &Change<'_>,
        idem: Option<&Idempotency>,
    ) -> Result<Incident, CareError> {
        let mut cmd = match self.pipeline.begin(scope, idem).await? {
            Begun::Replay(remembered) => return self.get_incident(replayed(&remembered)?).await,
            Begun::Fresh(cmd) => cmd,
        };
        let now = cmd.now();
        let Some(mut incident) = store::load_incident(cmd.txn(), id, true).await? else {
            cmd.abandon().await?;
            return Err(not_found("incident", id));
        };
        let changed = match change {
            Change::Link(ticket_ids) => {
                if incident.is_open() {
                    link(&mut cmd, &mut incident, ticket_ids).await?;
                    Ok(())
                } else {
                    Err(DomainError::Precondition(format!(
                        "incident {id} is closed: nothing more is linked to it"
                    )))
                }
            }
            Change::Record {
                action,
                note,
                reference,
                actor_id,
            } => incident.record(ActionRecord {
                action: *action,
                note: (*note).to_owned(),
                reference: (*reference).to_owned(),
                actor_id: (*actor_id).to_owned(),
                at: now,
            }),
            Change::Close => incident.close(now),
            Change::UpdateTickets {
                escalate_to,
                severity,
                actor_id,
            } => {
                let asked: Vec<String> = escalate_to
                    .map(|l| format!("escalate to {}", l.as_str()))
                    .into_iter()
                    .chain(severity.map(|s| format!("severity {}", s.as_str())))
                    .collect();
                incident.record(ActionRecord {
                    action: IncidentAction::TicketsUpdated,
                    note: asked.join("; "),
                    reference: String::new(),
                    actor_id: (*actor_id).to_owned(),
                    at: now,
                })
            }
        };
        if let Err(e) = changed {
            cmd.abandon().await?;
            return Err(e.into());
        }
        match change {
            Change::Close => cmd.publish(vec![events::incident_closed(id, now)]).await?,
            Change::UpdateTickets {
                escalate_to,
                severity,
                ..
            } => {
                let asked = events::incident_tickets_updated(id, *escalate_to, *severity, now);
                cmd.publish(vec![asked]).await?;
            }
            Change::Link(_) | Change::Record { .. } => {}
        }
        store::save_incident(cmd.txn(), &incident).await?;
        cmd.reschedule(
            CareDeadline::Incident(incident.id.clone()),
            incident.next_instant(),
        );
        cmd.commit(&self.pipeline, &Remembered::id(&incident.id))
            .await?;
        Ok(incident)
    }

    /// Fires the clocks of due incidents in one command, locked in id order; one fired
    /// early (a clock skew) acts on nothing and goes back on the schedule.
    pub(super) async fn fire_incidents(&self, mut ids: Vec<String>) -> Result<(), CareError> {
        if ids.is_empty() {
            return Ok(());
        }
        ids.sort();
        ids.dedup();
        let mut cmd = self.pipeline.begin_unkeyed(FIRE_SCOPE).await?;
        let now = cmd.now();
        for id in &ids {
            let Some(mut incident) = store::load_incident(cmd.txn(), id, true).await? else {
                continue;
            };
            let outcomes = incident.fire(now);
            if !outcomes.is_empty() {
                let fired = outcomes
                    .iter()
                    .map(|o| events::incident_clock(&incident, o, now))
                    .collect();
                cmd.publish(fired).await?;
                store::save_incident(cmd.txn(), &incident).await?;
            }
            cmd.reschedule(CareDeadline::Incident(id.clone()), incident.next_instant());
        }
        cmd.commit(&self.pipeline, &Remembered::ids(ids)).await?;
        Ok(())
    }

    /// Puts every incident whose clocks will act back on the schedule.
    pub(super) async fn reconcile_incidents(
        &self,
        queue: &DeadlineQueue,
    ) -> Result<u64, CareError> {
        let db = self.db();
        schedule_all(queue, CareDeadline::Incident, |after, limit| async move {
            Ok::<_, CareError>(store::incidents_due(db, &after, limit).await?)
        })
        .await
    }

    /// A new ticket, in the consumer's transaction: linked to every open incident whose
    /// scope it matches; when none does, it may make the suite propose one.
    pub async fn ticket_arrived<C: InCommand<CareDeadline>>(
        &self,
        cmd: &mut C,
        ticket: &TicketFact,
    ) -> Result<(), DbErr> {
        let mut matched = false;
        for open in store::open_incidents(cmd.txn()).await? {
            if !open.scope.matches(&ticket.dims) {
                continue;
            }
            matched = true;
            // Read unlocked to match; locked to change.
            let Some(mut incident) = store::load_incident(cmd.txn(), &open.id, true).await? else {
                continue;
            };
            if incident.is_open()
                && link(cmd, &mut incident, std::slice::from_ref(&ticket.ticket_id)).await?
            {
                store::save_incident(cmd.txn(), &incident).await?;
            }
        }
        if matched || !ticket.is_complaint() {
            return Ok(());
        }
        if let Some((kind, scope, because, ticket_ids)) = self.proposal_for(cmd, ticket).await? {
            let now = cmd.now();
            let title = format!("{} incident proposed by the suite", kind.as_str());
            let mut incident = Incident::propose(new_id(), kind, scope, title, because, now);
            if store::insert_incident(cmd.txn(), &incident).await? {
                cmd.publish(vec![events::incident_opened(&incident, now)])
                    .await?;
                link(cmd, &mut incident, &ticket_ids).await?;
                store::save_incident(cmd.txn(), &incident).await?;
            }
        }
        Ok(())
    }

    /// What the rules propose for an unmatched complaint, with the tickets to link.
    async fn proposal_for<C: InCommand<CareDeadline>>(
        &self,
        cmd: &C,
        ticket: &TicketFact,
    ) -> Result<Option<(IncidentKind, Scope, String, Vec<String>)>, DbErr> {
        let rules = self.rules.incidents;
        let dims = &ticket.dims;
        if rules.on_urgent_complaint
            && dims.severity == Some(Severity::Urgent)
            && (dims.batch.is_some() || dims.sku.is_some())
        {
            // The batch when named (what a recall takes back), else the SKU.
            let scope = match &dims.batch {
                Some(batch) => Scope {
                    batch: Some(batch.clone()),
                    ..Scope::default()
                },
                None => Scope {
                    sku: dims.sku.clone(),
                    ..Scope::default()
                },
            };
            let because = format!("urgent complaint on ticket {}", ticket.ticket_id);
            return Ok(Some((
                IncidentKind::Safety,
                scope,
                because,
                vec![ticket.ticket_id.clone()],
            )));
        }
        let (Some(batch), Some(created_at)) = (&dims.batch, ticket.created_at) else {
            return Ok(None);
        };
        if rules.batch_threshold == 0 {
            return Ok(None);
        }
        let window_start = created_at - rules.window;
        let complaints: Vec<String> = store::tickets_of_batch(
            cmd.txn(),
            batch,
            window_start,
            created_at + Duration::milliseconds(1),
        )
        .await?
        .into_iter()
        .filter(TicketFact::is_complaint)
        .map(|t| t.ticket_id)
        .collect();
        if complaints.len() < rules.batch_threshold as usize {
            return Ok(None);
        }
        let because = format!(
            "{} complaints naming batch {batch} within {} minutes",
            complaints.len(),
            rules.window.num_minutes()
        );
        let scope = Scope {
            batch: Some(batch.clone()),
            ..Scope::default()
        };
        Ok(Some((IncidentKind::Quality, scope, because, complaints)))
    }
}

/// Links the tickets not linked yet, counting them and publishing one event each; true
/// when any was new.
async fn link<C: InCommand<CareDeadline>>(
    cmd: &mut C,
    incident: &mut Incident,
    ticket_ids: &[String],
) -> Result<bool, DbErr> {
    let now = cmd.now();
    let fresh = store::link_tickets(cmd.txn(), &incident.id, ticket_ids, now).await?;
    incident.linked_tickets += fresh.len() as u64;
    cmd.publish(events::incident_tickets_linked(&incident.id, &fresh, now))
        .await?;
    Ok(!fresh.is_empty())
}

/// The due members of incidents among `batch`.
pub(super) fn incident_ids(batch: &[Due<CareDeadline>]) -> Vec<String> {
    batch
        .iter()
        .filter_map(|due| match &due.member {
            CareDeadline::Incident(id) => Some(id.clone()),
            _ => None,
        })
        .collect()
}
