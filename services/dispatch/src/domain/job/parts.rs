//! A job and its parts: asking for them, waiting while any is missing (the on-site clock
//! paused), and resuming once every one is reserved.

use chrono::{DateTime, Duration, Utc};

use super::{JobAggregate, JobEvent};
use crate::domain::{Actor, DomainError, JobStatus};

impl JobAggregate {
    /// Parts are asked for by open work only (accepted, scheduled, on site, or already
    /// waiting for other parts).
    pub fn check_parts_request(&self) -> Result<(), DomainError> {
        if self.job.status.is_open_work() {
            Ok(())
        } else {
            Err(self.illegal("request parts"))
        }
    }

    /// Some requested part is not there yet: the job waits. Asking for more while waiting
    /// changes nothing here.
    pub fn wait_for_parts(&mut self, actor: &Actor, now: DateTime<Utc>) {
        if self.job.status == JobStatus::WaitingForParts {
            return;
        }
        self.job.parts_waiting_since = Some(now);
        self.move_to(JobStatus::WaitingForParts, actor, "waiting for parts", now);
    }

    /// Every part the job waits for is reserved: it is accepted work again, to be
    /// scheduled. Nobody can visit without the parts, so an on-site deadline not yet met
    /// moves on by the time spent waiting.
    pub fn parts_ready(&mut self, now: DateTime<Utc>) -> Vec<JobEvent> {
        if self.job.status != JobStatus::WaitingForParts {
            return Vec::new();
        }
        let waited = self
            .job
            .parts_waiting_since
            .take()
            .map_or(Duration::zero(), |since| {
                (now - since).max(Duration::zero())
            });
        if self.job.visited_at.is_none() && !self.job.visit_late {
            self.job.visit_due_at = self.job.visit_due_at.map(|due| due + waited);
        }
        let system = Actor::system("dispatch");
        self.move_to(JobStatus::Accepted, &system, "parts arrived", now);
        vec![JobEvent::PartsReady]
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::{super::fixtures::*, *};
    use crate::domain::{AreaKind, CompletionOutcome};

    #[test]
    fn waiting_for_parts_pauses_the_on_site_clock_and_resumes_schedulable() {
        let mut agg = new_job();
        let p = partner("A");
        assert!(agg.check_parts_request().is_err(), "not accepted yet");
        agg.offer_to(&ranked("A"), Duration::minutes(30), t(0))
            .unwrap();
        let offer = agg.offers[0].id.clone();
        agg.respond(&offer, accept(AreaKind::Urban), &p, t(0))
            .unwrap();
        let due = agg.job.visit_due_at.unwrap();
        agg.check_parts_request().unwrap();
        agg.wait_for_parts(&p, t(60));
        assert_eq!(agg.job.status, JobStatus::WaitingForParts);
        assert_eq!(agg.visit_watch(), None, "no visit is due while waiting");
        assert!(agg.fire_visit_deadline(due).is_empty());
        assert!(
            agg.complete(CompletionOutcome::Fixed, vec![], "", &p, t(61))
                .is_err(),
            "no fix without the parts"
        );
        assert!(
            agg.resolve_remotely(CompletionOutcome::Fixed, "", &p, t(61))
                .is_err()
        );
        assert_eq!(agg.parts_ready(t(60 + 600)), vec![JobEvent::PartsReady]);
        assert_eq!(agg.job.status, JobStatus::Accepted);
        assert_eq!(agg.job.visit_due_at, Some(due + Duration::minutes(600)));
        assert!(agg.parts_ready(t(700)).is_empty(), "once");
        agg.schedule(t(800), &p, t(701)).unwrap();
    }

    #[test]
    fn a_second_visit_after_the_parts_arrive_is_not_judged_again() {
        let mut agg = new_job();
        let p = partner("A");
        agg.offer_to(&ranked("A"), Duration::minutes(30), t(0))
            .unwrap();
        let offer = agg.offers[0].id.clone();
        agg.respond(&offer, accept(AreaKind::Urban), &p, t(0))
            .unwrap();
        agg.record_visit(t(10), "", &p, t(10)).unwrap();
        agg.wait_for_parts(&p, t(20));
        let later = t(0) + Duration::days(5);
        agg.parts_ready(later);
        assert_eq!(agg.visit_watch(), None, "the visit happened");
        assert!(agg.fire_visit_deadline(later).is_empty());
        assert!(agg.record_visit(later, "", &p, later).unwrap().is_empty());
        assert_eq!(agg.job.visited_at, Some(t(10)), "the first visit counts");
        assert_eq!(agg.job.visit_on_time(), Some(true));
    }
}
