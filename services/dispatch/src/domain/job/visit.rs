//! The on-site visit: scheduling it, recording the technician's arrival, and the on-site
//! SLA that runs from acceptance and is missed once.

use chrono::{DateTime, Duration, Utc};

use super::{JobAggregate, JobEvent, StepRecord};
use crate::domain::{Actor, AreaKind, DomainError, JobStatus};

/// The on-site SLA from acceptance, by area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisitTargets {
    pub urban: Duration,
    pub county: Duration,
}

impl VisitTargets {
    /// The handbook's: urban 24 h, county 48 h.
    pub fn handbook() -> Self {
        Self {
            urban: Duration::hours(24),
            county: Duration::hours(48),
        }
    }

    pub fn of(&self, area: AreaKind) -> Duration {
        match area {
            AreaKind::Urban => self.urban,
            AreaKind::County => self.county,
        }
    }
}

impl JobAggregate {
    pub fn schedule(
        &mut self,
        at: DateTime<Utc>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DomainError> {
        if !matches!(self.job.status, JobStatus::Accepted | JobStatus::Scheduled) {
            return Err(self.illegal("be scheduled"));
        }
        self.job.scheduled_for = Some(at);
        self.move_to(
            JobStatus::Scheduled,
            actor,
            format!("visit at {}", at.to_rfc3339()),
            now,
        );
        Ok(Vec::new())
    }

    /// The technician arrived; a visit after the SLA is late (reported once).
    pub fn record_visit(
        &mut self,
        arrived_at: DateTime<Utc>,
        notes: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DomainError> {
        if !matches!(self.job.status, JobStatus::Accepted | JobStatus::Scheduled) {
            return Err(self.illegal("record a visit"));
        }
        if arrived_at > now {
            return Err(DomainError::invalid(
                "arrived_at",
                "must not lie in the future",
            ));
        }
        if self
            .job
            .accepted_at
            .is_some_and(|accepted| arrived_at < accepted)
        {
            return Err(DomainError::invalid(
                "arrived_at",
                "must not be before the job was accepted",
            ));
        }
        // A visit after the parts arrived is a return to a job visited before: the first
        // visit is the one the on-site SLA judged.
        if self.job.visited_at.is_some() {
            self.move_to(JobStatus::OnSite, actor, notes, now);
            return Ok(Vec::new());
        }
        self.job.visited_at = Some(arrived_at);
        self.move_to(JobStatus::OnSite, actor, notes, now);
        let late = self.job.visit_due_at.is_some_and(|due| arrived_at > due);
        if late && !self.job.visit_late {
            self.job.visit_late = true;
            return Ok(vec![JobEvent::VisitLate]);
        }
        Ok(Vec::new())
    }

    /// The on-site deadline passed: late once, unless the visit happened in time.
    pub fn fire_visit_deadline(&mut self, now: DateTime<Utc>) -> Vec<JobEvent> {
        let due = match self.job.visit_due_at {
            Some(due) if now >= due => due,
            _ => return Vec::new(),
        };
        if self.visit_watch().is_none() {
            return Vec::new();
        }
        self.job.visit_late = true;
        self.job.updated_at = now;
        self.job.history.push(StepRecord {
            from: self.job.status,
            to: self.job.status,
            actor_id: Actor::system("dispatch").id,
            actor_role: Actor::system("dispatch").role,
            note: format!("on-site visit due {} missed", due.to_rfc3339()),
            at: now,
        });
        vec![JobEvent::VisitLate]
    }

    /// When the visit deadline still has to be watched.
    pub fn visit_watch(&self) -> Option<DateTime<Utc>> {
        let waiting = matches!(self.job.status, JobStatus::Accepted | JobStatus::Scheduled)
            && self.job.visited_at.is_none();
        (waiting && !self.job.visit_late)
            .then_some(self.job.visit_due_at)
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::{super::fixtures::*, *};

    #[test]
    fn acceptance_starts_the_on_site_clock_by_area() {
        let mut agg = new_job();
        agg.offer_to(&ranked("A"), Duration::minutes(30), t(0))
            .unwrap();
        let offer = agg.offers[0].id.clone();
        agg.respond(&offer, accept(AreaKind::County), &partner("A"), t(10))
            .unwrap();
        assert_eq!(agg.job.visit_due_at, Some(t(10) + Duration::hours(48)));
        assert_eq!(agg.visit_watch(), agg.job.visit_due_at);
        assert!(
            agg.fire_visit_deadline(t(10) + Duration::hours(47))
                .is_empty()
        );
        assert_eq!(
            agg.fire_visit_deadline(t(10) + Duration::hours(48)),
            vec![JobEvent::VisitLate]
        );
        assert!(
            agg.fire_visit_deadline(t(10) + Duration::hours(49))
                .is_empty(),
            "late once"
        );
        let now = t(10) + Duration::hours(50);
        assert!(
            agg.record_visit(now, "", &partner("A"), now)
                .unwrap()
                .is_empty(),
            "already reported"
        );
        assert_eq!(agg.job.visit_on_time(), Some(false));
    }

    #[test]
    fn a_visit_in_time_is_on_time_and_a_late_one_reports_itself() {
        let mut agg = new_job();
        agg.offer_to(&ranked("A"), Duration::minutes(30), t(0))
            .unwrap();
        let offer = agg.offers[0].id.clone();
        agg.respond(&offer, accept(AreaKind::Urban), &partner("A"), t(1))
            .unwrap();
        let mut late = agg.clone();
        let arrived = t(60);
        assert!(
            agg.record_visit(arrived, "", &partner("A"), t(61))
                .unwrap()
                .is_empty()
        );
        assert_eq!(agg.job.visit_on_time(), Some(true));
        assert_eq!(agg.visit_watch(), None);
        let arrived = t(1) + Duration::hours(25);
        assert_eq!(
            late.record_visit(arrived, "", &partner("A"), arrived)
                .unwrap(),
            vec![JobEvent::VisitLate]
        );
        assert!(
            late.record_visit(t(0), "", &partner("A"), t(0)).is_err(),
            "on site already"
        );
    }
}
