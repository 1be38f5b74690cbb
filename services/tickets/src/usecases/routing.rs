//! Routing work to people: a new ticket's group by the first matching rule and its agent
//! within the group ([`crate::domain::routing::choose_agent`] at the command's instant),
//! an agent claiming the next ticket of a queue, a group's queue in order of SLA risk, an
//! explicit assignment, and a shift's end handing its open work to the agents on duty
//! then. Each writes an activity line with the fields it changed and publishes
//! `TicketAssigned`.
//!
//! Locks: every command that routes locks the group row first, then agents in id order,
//! then tickets in id order (see `store::team`); the SLA worker and the other commands lock
//! tickets only, and never wait for a group or an agent while holding one. So capacity
//! holds under concurrent routing on PostgreSQL, and no two commands wait in a cycle.

use std::collections::HashSet;

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::{Begun, Remembered};
use chrono::{DateTime, Duration, Utc};
use sea_orm::ConnectionTrait;

use crate::{
    domain::{
        Actor, ClockKind, DomainError, activity,
        routing::{self, Candidate, queue_key, risk},
        team::{self, Agent, SupportGroup, is_open},
        ticket::{Schedules, Ticket, TicketAggregate, TicketEvent},
    },
    error::TicketsError,
    store,
};

use super::{Audit, PolicyChoice, TicketsCore, TicketsDeadline, not_found, record};

/// Queued tickets a claim reads at first (more only when it passes some over).
const CLAIM_PAGE: u64 = 16;

/// What puts a queued ticket at risk: its earliest due running or breached clock.
pub type Risk = Option<(DateTime<Utc>, ClockKind)>;

/// A routing decision made while a new ticket is opened, for its activity line.
pub(super) struct Routed {
    pub before: Ticket,
    pub events: Vec<TicketEvent>,
    pub detail: String,
}

fn described(agent: Option<&str>) -> String {
    agent.map_or_else(
        || "queued: nobody on duty is available".to_owned(),
        |a| format!("agent {a}"),
    )
}

impl TicketsCore {
    /// The agent of `group` who gets `agg` at `at`, locking the group's agents on duty
    /// then (in id order); `None` when nobody is available. The group is locked already.
    /// An owed hand-off prefers agents of its role; the ticket's own agent is passed over
    /// when it is being taken from them (`exclude_assignee`).
    async fn choose<C: ConnectionTrait>(
        &self,
        conn: &C,
        group: &SupportGroup,
        last: Option<&str>,
        at: DateTime<Utc>,
        agg: &TicketAggregate,
        exclude_assignee: bool,
    ) -> Result<Option<Agent>, TicketsError> {
        let on_duty = self.on_duty(conn, &group.id, at).await?;
        let agents = store::agents(conn, Some(&on_duty), true).await?;
        let loads = store::loads(conn, &on_duty).await?;
        let candidates: Vec<Candidate<'_>> = agents
            .iter()
            .map(|agent| Candidate {
                agent,
                load: loads.get(&agent.id).copied().unwrap_or(0),
            })
            .collect();
        let exclude = agg.ticket.assignee.as_deref().filter(|_| exclude_assignee);
        let needs = agg.awaits_hand_off();
        let chosen = routing::choose_for(group, &candidates, last, needs, exclude).cloned();
        if let Some(agent) = &chosen {
            store::set_last_assigned(conn, &group.id, &agent.id).await?;
        }
        Ok(chosen)
    }

    /// The agents on duty in the group at `at`, by id.
    async fn on_duty<C: ConnectionTrait>(
        &self,
        conn: &C,
        group_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<String>, TicketsError> {
        // Instants are kept to the microsecond: [at, at + 1 µs) finds the shifts on at `at`.
        let next = at + Duration::microseconds(1);
        let shifts = store::shifts_of(conn, group_id, Some(at), Some(next)).await?;
        Ok(team::on_duty(&shifts, at))
    }

    /// Routes a ticket being opened: the first matching rule's group and the agent there,
    /// or the group's queue; `None` when no rule matches.
    pub(super) async fn route_new<C: ConnectionTrait>(
        &self,
        conn: &C,
        agg: &mut TicketAggregate,
        schedules: &Schedules,
        now: DateTime<Utc>,
    ) -> Result<Option<Routed>, TicketsError> {
        let rules = store::rules(conn).await?;
        let Some(rule) = routing::select_rule(&rules, &agg.ticket) else {
            return Ok(None);
        };
        let (group, last) = store::group(conn, &rule.group_id, true)
            .await?
            .ok_or_else(|| not_found("group", &rule.group_id))?;
        let agent = self
            .choose(conn, &group, last.as_deref(), now, agg, false)
            .await?;
        let before = agg.ticket.clone();
        let events = agg.route(
            Some(group.id.clone()),
            agent.as_ref(),
            "route",
            schedules,
            now,
        )?;
        let detail = format!(
            "rule {}: group {}, {}",
            rule.id,
            group.id,
            described(agent.as_ref().map(|a| a.id.as_str()))
        );
        Ok(Some(Routed {
            before,
            events,
            detail,
        }))
    }

    /// A page of the group's queue, most at risk first, with each ticket's risk.
    async fn queue_page<C: ConnectionTrait>(
        &self,
        conn: &C,
        group_id: &str,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<(TicketAggregate, Risk)>, TicketsError> {
        let ids = store::queue_page(conn, group_id, offset, limit).await?;
        let aggs = store::load_aggregates(conn, &ids, false).await?;
        Ok(by_risk(aggs))
    }

    /// A page of the group's queue, most at risk first, and how many it holds.
    pub async fn list_queue(
        &self,
        group_id: &str,
        size: u64,
    ) -> Result<(Vec<(Ticket, Risk)>, u64), TicketsError> {
        self.group(group_id).await?;
        let page = self.queue_page(self.db(), group_id, 0, size).await?;
        let total = store::queue_len(self.db(), group_id).await?;
        Ok((
            page.into_iter()
                .map(|(agg, risk)| (agg.ticket, risk))
                .collect(),
            total,
        ))
    }

    /// The agent takes the first ticket of the group's queue; `None` when it is empty. The
    /// agent must be on duty in the group now, qualify for it and be under capacity.
    pub async fn claim_next(
        &self,
        group_id: &str,
        actor: &Actor,
        idem: Option<&Idempotency>,
    ) -> Result<Option<Ticket>, TicketsError> {
        self.pipeline
            .keyed(idem, move || async move {
                let mut cmd = match self.pipeline.begin("tickets.ClaimNext", idem).await? {
                    Begun::Replay(r) => {
                        return match r.first() {
                            Some(id) => self.get_ticket(id).await.map(Some),
                            None => Ok(None),
                        };
                    }
                    Begun::Fresh(cmd) => cmd,
                };
                let now = cmd.now();
                let agent_id = actor.id.as_str();
                let (group, _) = store::group(cmd.txn(), group_id, true)
                    .await?
                    .ok_or_else(|| not_found("group", group_id))?;
                let ids = [agent_id.to_owned()];
                let agent = store::agents(cmd.txn(), Some(&ids), true)
                    .await?
                    .pop()
                    .ok_or_else(|| {
                        DomainError::invalid("agent_id", format!("no agent {agent_id:?}"))
                    })?;
                let refuse = |why: String| Err(DomainError::Precondition(why).into());
                if !agent.qualifies_for(&group) {
                    return refuse(format!(
                        "agent {agent_id} is not a member of group {group_id} with its skills"
                    ));
                }
                if !self
                    .on_duty(cmd.txn(), group_id, now)
                    .await?
                    .contains(&agent.id)
                {
                    return refuse(format!(
                        "agent {agent_id} is not on duty in group {group_id} now"
                    ));
                }
                let load = store::loads(cmd.txn(), &ids).await?;
                let load = load.get(agent_id).copied().unwrap_or(0);
                if load >= agent.capacity {
                    return refuse(format!(
                        "agent {agent_id} is at capacity ({load} of {} open tickets)",
                        agent.capacity
                    ));
                }
                // The first ticket of the queue not tried yet: one changed since it was read
                // (a status change racing the claim) is passed over for the next.
                let mut tried = HashSet::new();
                loop {
                    let limit = CLAIM_PAGE + tried.len() as u64;
                    let page = self.queue_page(cmd.txn(), group_id, 0, limit).await?;
                    let Some((queued, _)) = page
                        .into_iter()
                        .find(|(agg, _)| !tried.contains(&agg.ticket.id))
                    else {
                        break;
                    };
                    tried.insert(queued.ticket.id.clone());
                    let audit = Audit::new(
                        actor,
                        "claim",
                        format!("from the queue of group {group_id}"),
                    );
                    let claimed = self
                        .change(
                            &mut cmd,
                            &queued.ticket.id,
                            PolicyChoice::Kept,
                            audit,
                            |agg, j, now| {
                                let t = &agg.ticket;
                                if t.assignee.is_some()
                                    || t.group_id.as_deref() != Some(group_id)
                                    || !is_open(t.status)
                                {
                                    return Err(DomainError::Precondition(
                                        "no longer queued".into(),
                                    ));
                                }
                                agg.route(
                                    Some(group_id.to_owned()),
                                    Some(&agent),
                                    "claim",
                                    &j.schedules,
                                    now,
                                )
                            },
                        )
                        .await;
                    match claimed {
                        Ok(agg) => {
                            cmd.commit(&self.pipeline, &Remembered::id(&agg.ticket.id))
                                .await?;
                            return Ok(Some(agg.ticket));
                        }
                        Err(TicketsError::Domain(DomainError::Precondition(_))) => continue,
                        Err(err) => return Err(err),
                    }
                }
                cmd.commit(&self.pipeline, &Remembered::ids(Vec::<String>::new()))
                    .await?;
                Ok(None)
            })
            .await
    }

    /// Assigns or reassigns a ticket to an agent of a group (the ticket's own when `None`):
    /// the agent must exist and be a member; capacity and duty are the caller's call.
    pub async fn assign(
        &self,
        ticket_id: &str,
        agent_id: &str,
        group_id: Option<&str>,
        actor: &Actor,
        idem: Option<&Idempotency>,
    ) -> Result<Ticket, TicketsError> {
        self.pipeline
            .keyed(idem, move || async move {
                let mut cmd = match self.pipeline.begin("tickets.Assign", idem).await? {
                    Begun::Replay(r) => return self.get_ticket(super::replayed(&r)?).await,
                    Begun::Fresh(cmd) => cmd,
                };
                // The group is locked before the ticket, as every routing command does.
                let current = store::load_aggregate(cmd.txn(), ticket_id, false)
                    .await?
                    .ok_or_else(|| not_found("ticket", ticket_id))?;
                let group_id = match group_id.map(str::to_owned).or(current.ticket.group_id) {
                    Some(g) => g,
                    None => {
                        return Err(DomainError::invalid(
                            "group_id",
                            "the ticket has no group: name the group to assign it in",
                        )
                        .into());
                    }
                };
                if store::group(cmd.txn(), &group_id, true).await?.is_none() {
                    return Err(
                        DomainError::invalid("group_id", format!("no group {group_id:?}")).into(),
                    );
                }
                let ids = [agent_id.to_owned()];
                let agent = match store::agents(cmd.txn(), Some(&ids), true).await?.pop() {
                    None => {
                        return Err(DomainError::invalid(
                            "assignee",
                            format!("no agent {agent_id:?}"),
                        )
                        .into());
                    }
                    Some(a) if !a.is_member_of(&group_id) => {
                        return Err(DomainError::invalid(
                            "assignee",
                            format!("agent {agent_id:?} is not a member of group {group_id:?}"),
                        )
                        .into());
                    }
                    Some(a) => a,
                };
                let audit = Audit::new(
                    actor,
                    "assign",
                    format!("group {group_id}, agent {agent_id}"),
                );
                let agg = self
                    .change(
                        &mut cmd,
                        ticket_id,
                        PolicyChoice::Kept,
                        audit,
                        |agg, j, now| {
                            agg.route(
                                Some(group_id.clone()),
                                Some(&agent),
                                "manual",
                                &j.schedules,
                                now,
                            )
                        },
                    )
                    .await?;
                cmd.commit(&self.pipeline, &Remembered::id(&agg.ticket.id))
                    .await?;
                Ok(agg.ticket)
            })
            .await
    }

    /// A shift's end, fired by the deadline worker: once, and never before its instant.
    /// Each open ticket of the group assigned to an agent of the shift who is not on duty
    /// in the group at the end goes, most at risk first, to the agent routing chooses at
    /// that instant, or back to the queue. A shift not due yet is put back on the queue.
    pub(super) async fn end_shift(&self, shift_id: &str) -> Result<(), TicketsError> {
        let mut cmd = self.pipeline.begin_unkeyed("tickets.ShiftEnd").await?;
        let Some(peek) = store::shift(cmd.txn(), shift_id, false).await? else {
            return Ok(cmd.abandon().await?);
        };
        let (group, mut last) = store::group(cmd.txn(), &peek.group_id, true)
            .await?
            .ok_or_else(|| not_found("group", &peek.group_id))?;
        let Some(mut shift) = store::shift(cmd.txn(), shift_id, true).await? else {
            return Ok(cmd.abandon().await?);
        };
        if shift.ended {
            return Ok(cmd.abandon().await?);
        }
        let now = cmd.now();
        if now < shift.end || shift.group_id != group.id {
            cmd.schedule(TicketsDeadline::ShiftEnd(shift.id.clone()), shift.end);
            return Ok(cmd
                .commit(&self.pipeline, &Remembered::id(shift_id))
                .await?);
        }
        let at = shift.end;
        let on_duty = self.on_duty(cmd.txn(), &group.id, at).await?;
        // Agents before tickets, as every routing command locks them.
        store::agents(cmd.txn(), Some(&on_duty), true).await?;
        let leaving: Vec<String> = shift
            .agent_ids
            .iter()
            .filter(|a| !on_duty.contains(a))
            .cloned()
            .collect();
        let ids = store::open_work_of(cmd.txn(), &group.id, &leaving).await?;
        let aggs = store::load_aggregates(cmd.txn(), &ids, true).await?;
        let system = Actor::system("tickets");
        for (mut agg, _) in by_risk(aggs) {
            let agent = self
                .choose(cmd.txn(), &group, last.as_deref(), at, &agg, false)
                .await?;
            if let Some(agent) = &agent {
                last = Some(agent.id.clone());
            }
            let policy = self.policy_of(cmd.txn(), &agg.ticket).await?;
            let schedules = self.schedules(cmd.txn(), &policy, &agg.clocks).await?;
            let before = agg.ticket.clone();
            let events = agg.route(
                Some(group.id.clone()),
                agent.as_ref(),
                "handover",
                &schedules,
                now,
            )?;
            store::save_aggregate(cmd.txn(), &agg).await?;
            let agent_id = agent.as_ref().map(|a| a.id.as_str());
            let detail = format!("shift {} ended: {}", shift.id, described(agent_id));
            let audit = Audit {
                changes: activity::changes(&before, &agg.ticket),
                ..Audit::new(&system, "handover", detail)
            };
            record(&mut cmd, &agg, &events, audit).await?;
        }
        shift.ended = true;
        store::upsert_shift(cmd.txn(), &shift, now).await?;
        Ok(cmd
            .commit(&self.pipeline, &Remembered::id(shift_id))
            .await?)
    }
}

impl TicketsCore {
    /// A reassignment a warning threshold asked for, fired as a deadline of its own so it
    /// takes routing's locks in routing's order: the ticket's group, the group's agents
    /// on duty (another than the one the ticket is taken from, an owed hand-off's role
    /// first), then the ticket. Once: the request is cleared in the same transaction; a
    /// ticket that changed hands since needs none; one whose group changed in between is
    /// tried again at once.
    pub(super) async fn reassign(&self, ticket_id: &str) -> Result<(), TicketsError> {
        let mut cmd = self.pipeline.begin_unkeyed("tickets.Reassign").await?;
        let now = cmd.now();
        let peek = store::load_aggregate(cmd.txn(), ticket_id, false).await?;
        let Some(peek) = peek.filter(|agg| agg.ticket.reassign_at.is_some()) else {
            return Ok(cmd.abandon().await?);
        };
        let group_id = peek.ticket.group_id.clone();
        let group = match &group_id {
            Some(id) => store::group(cmd.txn(), id, true).await?,
            None => None,
        };
        let agent = match &group {
            Some((group, last)) => {
                self.choose(cmd.txn(), group, last.as_deref(), now, &peek, true)
                    .await?
            }
            None => None,
        };
        let asked_of = peek.ticket.assignee.clone();
        let system = Actor::system("tickets");
        let audit = Audit::new(&system, "sla_reassign", "a warning threshold asked for it");
        let agg = self
            .change(
                &mut cmd,
                ticket_id,
                PolicyChoice::Kept,
                audit,
                |agg, j, now| {
                    if agg.ticket.group_id != group_id {
                        // Moved to another group meanwhile: still asked, tried again.
                        return Ok(Vec::new());
                    }
                    agg.reassign(asked_of.as_deref(), agent.as_ref(), &j.schedules, now)
                },
            )
            .await?;
        Ok(cmd
            .commit(&self.pipeline, &Remembered::id(&agg.ticket.id))
            .await?)
    }
}

/// Tickets in queue order ([`queue_key`]), each with its risk.
fn by_risk(aggs: Vec<TicketAggregate>) -> Vec<(TicketAggregate, Risk)> {
    let mut ranked: Vec<(TicketAggregate, Risk)> = aggs
        .into_iter()
        .map(|agg| {
            let r = risk(&agg.clocks);
            (agg, r)
        })
        .collect();
    ranked.sort_by_cached_key(|(agg, r)| queue_key(&agg.ticket.id, r.map(|(at, _)| at)));
    ranked
}
