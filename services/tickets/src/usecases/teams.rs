//! The desk's teams as staff set them up: support groups, agents, shifts and routing
//! rules, each created or replaced by id (keyed by the caller's idempotency key; a retry
//! answers with the record as it is now), the lists of them, and the coverage check of a
//! group's roster. A shift's end is put on the deadline queue here, for
//! [`super::routing`] to hand its work over when it comes.

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::{Begun, Remembered};
use chrono::{DateTime, Duration, Utc};

use crate::{
    domain::{
        DomainError,
        routing::RoutingRule,
        team::{self, Agent, COVERAGE_WINDOW, Shift, SupportGroup},
    },
    error::TicketsError,
    store,
};

use super::{TicketsCore, TicketsDeadline, not_found, replayed};

/// A group's coverage over a window: the gaps and their total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub group_id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub gaps: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

/// A checked list as it is kept: sorted, each once.
fn sorted(values: &[String]) -> Vec<String> {
    let mut values = values.to_vec();
    values.sort();
    values.dedup();
    values
}

impl TicketsCore {
    pub async fn upsert_group(
        &self,
        group: SupportGroup,
        idem: Option<&Idempotency>,
    ) -> Result<SupportGroup, TicketsError> {
        let group = &group;
        self.pipeline
            .keyed(idem, move || async move {
                let cmd = match self
                    .pipeline
                    .begin("tickets.UpsertSupportGroup", idem)
                    .await?
                {
                    Begun::Replay(r) => return self.group(replayed(&r)?).await,
                    Begun::Fresh(cmd) => cmd,
                };
                if let Some(calendar) = &group.calendar_id
                    && store::calendars(cmd.txn(), std::slice::from_ref(calendar))
                        .await?
                        .is_empty()
                {
                    return Err(DomainError::invalid(
                        "group.calendar_id",
                        format!("unknown business calendar {calendar:?}"),
                    )
                    .into());
                }
                let group = &SupportGroup {
                    skills: sorted(&group.skills),
                    ..group.clone()
                };
                store::upsert_group(cmd.txn(), group, cmd.now()).await?;
                cmd.commit(&self.pipeline, &Remembered::id(&group.id))
                    .await?;
                Ok(group.clone())
            })
            .await
    }

    pub async fn group(&self, id: &str) -> Result<SupportGroup, TicketsError> {
        store::group(self.db(), id, false)
            .await?
            .map(|(g, _)| g)
            .ok_or_else(|| not_found("group", id))
    }

    pub async fn list_groups(&self) -> Result<Vec<SupportGroup>, TicketsError> {
        Ok(store::groups(self.db()).await?)
    }

    pub async fn upsert_agent(
        &self,
        agent: Agent,
        idem: Option<&Idempotency>,
    ) -> Result<(Agent, u32), TicketsError> {
        let agent = &agent;
        self.pipeline
            .keyed(idem, move || async move {
                let cmd = match self.pipeline.begin("tickets.UpsertAgent", idem).await? {
                    Begun::Replay(r) => return self.agent(replayed(&r)?).await,
                    Begun::Fresh(cmd) => cmd,
                };
                for (i, group_id) in agent.group_ids.iter().enumerate() {
                    if store::group(cmd.txn(), group_id, false).await?.is_none() {
                        return Err(DomainError::invalid(
                            format!("agent.group_ids[{i}]"),
                            format!("no group {group_id:?}"),
                        )
                        .into());
                    }
                }
                let agent = &Agent {
                    group_ids: sorted(&agent.group_ids),
                    skills: sorted(&agent.skills),
                    ..agent.clone()
                };
                store::upsert_agent(cmd.txn(), agent, cmd.now()).await?;
                cmd.commit(&self.pipeline, &Remembered::id(&agent.id))
                    .await?;
                self.agent(&agent.id).await
            })
            .await
    }

    /// An agent with its open tickets now.
    pub async fn agent(&self, id: &str) -> Result<(Agent, u32), TicketsError> {
        let ids = [id.to_owned()];
        let agent = store::agents(self.db(), Some(&ids), false)
            .await?
            .pop()
            .ok_or_else(|| not_found("agent", id))?;
        let load = store::loads(self.db(), &ids).await?;
        Ok((agent, load.get(id).copied().unwrap_or(0)))
    }

    /// The agents (of one group when given) by id, each with its open tickets now.
    pub async fn list_agents(
        &self,
        group_id: Option<&str>,
    ) -> Result<Vec<(Agent, u32)>, TicketsError> {
        let agents: Vec<Agent> = store::agents(self.db(), None, false)
            .await?
            .into_iter()
            .filter(|a| group_id.is_none_or(|g| a.is_member_of(g)))
            .collect();
        let ids: Vec<String> = agents.iter().map(|a| a.id.clone()).collect();
        let loads = store::loads(self.db(), &ids).await?;
        Ok(agents
            .into_iter()
            .map(|a| {
                let load = loads.get(&a.id).copied().unwrap_or(0);
                (a, load)
            })
            .collect())
    }

    /// Creates or replaces a shift and puts its end on the deadline queue. A shift that has
    /// ended (its work handed over) no longer changes.
    pub async fn upsert_shift(
        &self,
        shift: Shift,
        idem: Option<&Idempotency>,
    ) -> Result<Shift, TicketsError> {
        shift.validate()?;
        let shift = &shift;
        self.pipeline
            .keyed(idem, move || async move {
                let mut cmd = match self.pipeline.begin("tickets.UpsertShift", idem).await? {
                    Begun::Replay(r) => return self.shift(replayed(&r)?).await,
                    Begun::Fresh(cmd) => cmd,
                };
                if store::group(cmd.txn(), &shift.group_id, false)
                    .await?
                    .is_none()
                {
                    return Err(DomainError::invalid(
                        "shift.group_id",
                        format!("no group {:?}", shift.group_id),
                    )
                    .into());
                }
                let agents = store::agents(cmd.txn(), Some(&shift.agent_ids), false).await?;
                for (i, id) in shift.agent_ids.iter().enumerate() {
                    let problem = match agents.iter().find(|a| &a.id == id) {
                        None => Some(format!("no agent {id:?}")),
                        Some(a) if !a.is_member_of(&shift.group_id) => Some(format!(
                            "agent {id:?} is not a member of group {:?}",
                            shift.group_id
                        )),
                        Some(_) => None,
                    };
                    if let Some(problem) = problem {
                        return Err(
                            DomainError::invalid(format!("shift.agent_ids[{i}]"), problem).into(),
                        );
                    }
                }
                if let Some(existing) = store::shift(cmd.txn(), &shift.id, true).await?
                    && existing.ended
                {
                    return Err(DomainError::Precondition(format!(
                        "shift {} has ended and handed its work over",
                        shift.id
                    ))
                    .into());
                }
                let shift = &Shift {
                    agent_ids: sorted(&shift.agent_ids),
                    ..shift.clone()
                };
                store::upsert_shift(cmd.txn(), shift, cmd.now()).await?;
                // An end moved later fires at the earlier instant first, finds the shift
                // not due and is put back for its end: early on the queue, never early here.
                cmd.schedule(TicketsDeadline::ShiftEnd(shift.id.clone()), shift.end);
                cmd.commit(&self.pipeline, &Remembered::id(&shift.id))
                    .await?;
                Ok(shift.clone())
            })
            .await
    }

    pub async fn shift(&self, id: &str) -> Result<Shift, TicketsError> {
        store::shift(self.db(), id, false)
            .await?
            .ok_or_else(|| not_found("shift", id))
    }

    pub async fn list_shifts(
        &self,
        group_id: &str,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<Shift>, TicketsError> {
        self.group(group_id).await?;
        Ok(store::shifts_of(self.db(), group_id, from, to).await?)
    }

    /// The gaps in the group's coverage in the 7 days from `from` (now, to the second,
    /// when `None`).
    pub async fn coverage(
        &self,
        group_id: &str,
        from: Option<DateTime<Utc>>,
    ) -> Result<Coverage, TicketsError> {
        self.group(group_id).await?;
        let from = from.unwrap_or_else(|| {
            let now = self.now();
            now - Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos()))
        });
        let to = from + COVERAGE_WINDOW;
        let shifts = store::shifts_of(self.db(), group_id, Some(from), Some(to)).await?;
        Ok(Coverage {
            group_id: group_id.to_owned(),
            from,
            to,
            gaps: team::coverage_gaps(&shifts, from, to),
        })
    }

    pub async fn upsert_rule(
        &self,
        rule: RoutingRule,
        idem: Option<&Idempotency>,
    ) -> Result<RoutingRule, TicketsError> {
        let rule = &rule;
        self.pipeline
            .keyed(idem, move || async move {
                let cmd = match self
                    .pipeline
                    .begin("tickets.UpsertRoutingRule", idem)
                    .await?
                {
                    Begun::Replay(r) => {
                        let id = replayed(&r)?;
                        return store::rules(self.db())
                            .await?
                            .into_iter()
                            .find(|rule| rule.id == id)
                            .ok_or_else(|| not_found("routing rule", id));
                    }
                    Begun::Fresh(cmd) => cmd,
                };
                if store::group(cmd.txn(), &rule.group_id, false)
                    .await?
                    .is_none()
                {
                    return Err(DomainError::invalid(
                        "rule.group_id",
                        format!("no group {:?}", rule.group_id),
                    )
                    .into());
                }
                store::upsert_rule(cmd.txn(), rule, cmd.now()).await?;
                cmd.commit(&self.pipeline, &Remembered::id(&rule.id))
                    .await?;
                Ok(rule.clone())
            })
            .await
    }

    pub async fn list_rules(&self) -> Result<Vec<RoutingRule>, TicketsError> {
        Ok(store::rules(self.db()).await?)
    }
}
