//! The reference model of the week (`week`): the routing rules of the contract written out
//! plainly over the script, independent of the service's code.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::week_script::{AGENTS, GROUPS, ModelAgent, ModelShift, RULES, arrival, first_response};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTicket {
    pub group: Option<&'static str>,
    pub agent: Option<&'static str>,
    /// Every agent the ticket had, in order ("" for the queue), from its first routing.
    pub history: Vec<&'static str>,
    pub open: bool,
    pub due: DateTime<Utc>,
}

/// The reference model: the rules of the contract, written out plainly.
pub struct Model {
    /// Handed over to an agent / back to the queue at shift ends.
    pub handed: (usize, usize),
    pub tickets: Vec<ModelTicket>,
    pub last: BTreeMap<&'static str, &'static str>,
    pub shifts: Vec<ModelShift>,
}

impl Model {
    pub fn agent(id: &str) -> &'static ModelAgent {
        AGENTS.iter().find(|a| a.id == id).unwrap()
    }

    pub fn load(&self, agent: &str) -> usize {
        self.tickets
            .iter()
            .filter(|t| t.open && t.agent == Some(agent))
            .count()
    }

    pub fn on_duty(&self, group: &str, at: DateTime<Utc>) -> Vec<&'static str> {
        let mut ids: Vec<&'static str> = self
            .shifts
            .iter()
            .filter(|s| s.group == group && s.start <= at && at < s.end)
            .flat_map(|s| s.agents.iter().copied())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    pub fn qualifies(agent: &str, group: &str) -> bool {
        let a = Self::agent(agent);
        let skills = GROUPS.iter().find(|g| g.0 == group).unwrap().1;
        a.groups.contains(&group) && skills.iter().all(|s| a.skills.contains(s))
    }

    pub fn choose(&mut self, group: &'static str, at: DateTime<Utc>) -> Option<&'static str> {
        let available: Vec<&'static str> = self
            .on_duty(group, at)
            .into_iter()
            .filter(|a| Self::qualifies(a, group) && self.load(a) < Self::agent(a).capacity)
            .collect();
        let round_robin = GROUPS.iter().find(|g| g.0 == group).unwrap().2;
        let chosen = if round_robin {
            let last = self.last.get(group).copied();
            available
                .iter()
                .find(|a| last.is_none_or(|l| **a > l))
                .or(available.first())
                .copied()
        } else {
            available
                .iter()
                .min_by_key(|a| (self.load(a), **a))
                .copied()
        };
        if let Some(a) = chosen {
            self.last.insert(group, a);
        }
        chosen
    }

    pub fn arrive(&mut self, i: usize) {
        let a = arrival(i);
        let matched = RULES.iter().find(|r| {
            !r.disabled
                && (r.categories.is_empty() || r.categories.contains(&a.category))
                && (r.severities.is_empty() || r.severities.contains(&a.severity))
                && (r.channels.is_empty() || r.channels.contains(&a.channel))
                && (r.lines.is_empty() || r.lines.contains(&a.line))
                && (r.regions.is_empty() || r.regions.contains(&a.region))
        });
        let group = matched.map(|r| r.group);
        let agent = group.and_then(|g| self.choose(g, a.at));
        let history = group.map(|_| agent.unwrap_or("")).into_iter().collect();
        self.tickets.push(ModelTicket {
            group,
            agent,
            history,
            open: true,
            due: a.at + first_response(a.severity),
        });
    }

    /// The queue of a group: open, unassigned, by due instant then arrival.
    pub fn queue(&self, group: &str) -> Vec<usize> {
        let mut queue: Vec<usize> = (0..self.tickets.len())
            .filter(|&i| {
                let t = &self.tickets[i];
                t.open && t.group == Some(group) && t.agent.is_none()
            })
            .collect();
        queue.sort_by_key(|&i| (self.tickets[i].due, i));
        queue
    }

    /// `Err(())`: refused (not on duty, not qualified, at capacity).
    pub fn claim(
        &mut self,
        agent: &'static str,
        group: &'static str,
        at: DateTime<Utc>,
    ) -> Result<Option<usize>, ()> {
        if !Self::qualifies(agent, group)
            || !self.on_duty(group, at).contains(&agent)
            || self.load(agent) >= Self::agent(agent).capacity
        {
            return Err(());
        }
        let next = self.queue(group).first().copied();
        if let Some(i) = next {
            self.tickets[i].agent = Some(agent);
            self.tickets[i].history.push(agent);
        }
        Ok(next)
    }

    pub fn end_shift(&mut self, shift_id: &str) {
        let s = self.shifts.iter().find(|s| s.id == shift_id).unwrap();
        let (group, at, agents) = (s.group, s.end, s.agents.clone());
        let on_duty = self.on_duty(group, at);
        let leaving: Vec<&str> = agents
            .into_iter()
            .filter(|a| !on_duty.contains(a))
            .collect();
        let mut work: Vec<usize> = (0..self.tickets.len())
            .filter(|&i| {
                let t = &self.tickets[i];
                t.open && t.group == Some(group) && t.agent.is_some_and(|a| leaving.contains(&a))
            })
            .collect();
        work.sort_by_key(|&i| (self.tickets[i].due, i));
        for i in work {
            let agent = self.choose(group, at);
            if agent.is_some() {
                self.handed.0 += 1;
            } else {
                self.handed.1 += 1;
            }
            self.tickets[i].agent = agent;
            self.tickets[i].history.push(agent.unwrap_or(""));
        }
    }
}
