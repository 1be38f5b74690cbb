//! Finishing a job: completion on site, remote resolution without a visit (remote
//! diagnosis), and the repeat rule that revokes a first-time fix.

use chrono::{DateTime, Utc};

use super::{Completion, JobAggregate, JobEvent, Photo};
use crate::domain::{Actor, CompletionMode, CompletionOutcome, DomainError, JobStatus};

impl JobAggregate {
    pub fn complete(
        &mut self,
        outcome: CompletionOutcome,
        photos: Vec<Photo>,
        notes: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DomainError> {
        if !self.job.status.is_open_work() {
            return Err(self.illegal("be completed"));
        }
        // A fix needs the parts the job waits for; giving up (not fixed) does not.
        if self.job.status == JobStatus::WaitingForParts && outcome.is_fix() {
            return Err(DomainError::Precondition(
                "the job waits for parts: it can be completed with a fix once they arrived".into(),
            ));
        }
        self.finish(outcome, photos, notes, CompletionMode::OnSite, actor, now)
    }

    /// Closes the job by remote diagnosis: only before anyone went on site (accepted or
    /// scheduled, no visit recorded), since a visit in progress is on-site work. A fix
    /// needs no parts to arrive, so a job waiting for parts cannot be resolved so either.
    pub fn resolve_remotely(
        &mut self,
        outcome: CompletionOutcome,
        notes: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DomainError> {
        let before_visit = matches!(self.job.status, JobStatus::Accepted | JobStatus::Scheduled)
            && self.job.visited_at.is_none();
        if !before_visit {
            return Err(self.illegal("be resolved remotely"));
        }
        if outcome == CompletionOutcome::NeedsParts {
            return Err(DomainError::invalid(
                "outcome",
                "a remote resolution is FIXED, REPLACED or NOT_FIXED; request parts instead",
            ));
        }
        self.finish(
            outcome,
            Vec::new(),
            notes,
            CompletionMode::Remote,
            actor,
            now,
        )
    }

    fn finish(
        &mut self,
        outcome: CompletionOutcome,
        photos: Vec<Photo>,
        notes: &str,
        mode: CompletionMode,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>, DomainError> {
        self.job.completion = Some(Completion {
            outcome,
            photos,
            notes: notes.to_owned(),
            completed_at: now,
            first_time_fix_revoked: false,
            repeat_job_id: None,
            mode,
        });
        let to = if outcome.is_fix() {
            JobStatus::Completed
        } else {
            JobStatus::CannotComplete
        };
        self.move_to(to, actor, format!("outcome {outcome} ({mode})"), now);
        Ok(vec![JobEvent::Completed])
    }

    /// A repeat job came for the same ticket and product line: this job's fix did not
    /// hold. True when this changed the record (only the first repeat counts).
    pub fn revoke_first_time_fix(&mut self, repeat_job_id: &str, now: DateTime<Utc>) -> bool {
        let Some(completion) = self.job.completion.as_mut() else {
            return false;
        };
        if !completion.outcome.is_fix() || completion.first_time_fix_revoked {
            return false;
        }
        completion.first_time_fix_revoked = true;
        completion.repeat_job_id = Some(repeat_job_id.to_owned());
        self.job.updated_at = now;
        true
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::{super::fixtures::*, *};
    use crate::domain::AreaKind;

    #[test]
    fn completion_outcomes_and_the_repeat_rule() {
        let mut agg = new_job();
        agg.offer_to(&ranked("A"), Duration::minutes(30), t(0))
            .unwrap();
        let offer = agg.offers[0].id.clone();
        agg.respond(&offer, accept(AreaKind::Urban), &partner("A"), t(1))
            .unwrap();
        let mut not_fixed = agg.clone();
        not_fixed
            .complete(
                CompletionOutcome::NeedsParts,
                vec![],
                "",
                &partner("A"),
                t(2),
            )
            .unwrap();
        assert_eq!(not_fixed.job.status, JobStatus::CannotComplete);
        assert!(!not_fixed.revoke_first_time_fix("J2", t(3)));
        agg.complete(CompletionOutcome::Fixed, vec![], "", &partner("A"), t(2))
            .unwrap();
        assert!(agg.job.completion.as_ref().unwrap().first_time_fix());
        assert!(agg.revoke_first_time_fix("J2", t(3)));
        assert!(
            !agg.revoke_first_time_fix("J3", t(4)),
            "only the first repeat counts"
        );
        assert_eq!(
            agg.job
                .completion
                .as_ref()
                .unwrap()
                .repeat_job_id
                .as_deref(),
            Some("J2")
        );
        assert!(
            agg.cancel("late", &Actor::system("dispatch"), t(5))
                .is_err()
        );
    }

    #[test]
    fn remote_resolution_only_before_anyone_is_on_site() {
        let mut agg = new_job();
        let p = partner("A");
        assert!(
            agg.resolve_remotely(CompletionOutcome::Fixed, "", &p, t(1))
                .is_err(),
            "not accepted yet"
        );
        agg.offer_to(&ranked("A"), Duration::minutes(30), t(0))
            .unwrap();
        let offer = agg.offers[0].id.clone();
        agg.respond(&offer, accept(AreaKind::Urban), &p, t(1))
            .unwrap();
        let mut on_site = agg.clone();
        on_site.record_visit(t(2), "", &p, t(2)).unwrap();
        assert!(matches!(
            on_site.resolve_remotely(CompletionOutcome::Fixed, "", &p, t(3)),
            Err(DomainError::IllegalTransition { .. })
        ));
        assert!(matches!(
            agg.resolve_remotely(CompletionOutcome::NeedsParts, "", &p, t(3)),
            Err(DomainError::Invalid { .. })
        ));
        assert_eq!(
            agg.resolve_remotely(CompletionOutcome::Fixed, "", &p, t(3))
                .unwrap(),
            vec![JobEvent::Completed]
        );
        let completion = agg.job.completion.as_ref().unwrap();
        assert_eq!(completion.mode, CompletionMode::Remote);
        assert!(completion.first_time_fix());
        assert_eq!(agg.job.status, JobStatus::Completed);
        assert_eq!(agg.visit_watch(), None, "the on-site clock stops");
    }
}
