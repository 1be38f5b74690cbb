//! Third-party inspection: when inspection cannot judge the goods' quality, they go to a
//! lab (`awaiting_third_party`), which has a step deadline of its own on the same engine as
//! every other step. The lab's verdict rewrites the inspection's quality findings and the
//! return is `inspected` again, to be settled like any inspected return (refund, exchange,
//! repair or rejection).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Actor, ReturnAggregate, ReturnEvent, StepTargets};
use crate::domain::{Condition, DeadlineState, DomainError, Status, Step, Verdict};

/// The lab's inspection of a return, asked for and (once reported) its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThirdParty {
    pub lab: String,
    pub requested_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub verdict: Option<Verdict>,
    pub lab_reference: Option<String>,
    pub notes: String,
    pub reported_at: Option<DateTime<Utc>>,
}

/// What the lab reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabResult {
    pub lab_reference: String,
    pub verdict: Verdict,
    pub notes: String,
}

impl ReturnAggregate {
    /// Inspection could not judge: the goods go to `lab`, which must report within the
    /// third-party target. The decision on the return waits for the lab, so the refund
    /// step's clock (started by the inspection) is stopped; a fresh one starts with the
    /// verdict.
    pub fn request_third_party(
        &mut self,
        lab: &str,
        reason: &str,
        targets: &StepTargets,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<ReturnEvent>, DomainError> {
        self.move_to(Status::AwaitingThirdParty, actor, reason, now)?;
        for d in self
            .deadlines
            .iter_mut()
            .filter(|d| d.step == Step::Refund && d.state == DeadlineState::Running)
        {
            d.state = DeadlineState::Cancelled;
        }
        self.start(Step::ThirdPartyInspection, targets, now);
        let due_at = now + targets.of(Step::ThirdPartyInspection);
        self.rma.third_party = Some(ThirdParty {
            lab: lab.to_owned(),
            requested_at: now,
            due_at,
            verdict: None,
            lab_reference: None,
            notes: String::new(),
            reported_at: None,
        });
        Ok(vec![ReturnEvent::ThirdPartyRequested {
            lab: lab.to_owned(),
            due_at,
        }])
    }

    /// The lab's verdict: every inspected line takes its quality finding (a confirmed
    /// defect; none; or damage by the customer, which counts as damaged goods without a
    /// defect), and the return is inspected again.
    pub fn record_third_party(
        &mut self,
        result: LabResult,
        actor: &Actor,
        targets: &StepTargets,
        now: DateTime<Utc>,
    ) -> Result<Vec<ReturnEvent>, DomainError> {
        let note = format!("{}: {}", result.verdict, result.lab_reference);
        self.move_to(Status::Inspected, actor, &note, now)?;
        self.complete(Step::ThirdPartyInspection);
        self.start(Step::Refund, targets, now);
        for line in &mut self.rma.inspection {
            match result.verdict {
                Verdict::DefectConfirmed => line.quality_defect = true,
                Verdict::NoDefect => line.quality_defect = false,
                Verdict::CustomerDamage => {
                    line.quality_defect = false;
                    line.condition = Condition::Damaged;
                }
            }
        }
        if let Some(lab) = self.rma.third_party.as_mut() {
            lab.verdict = Some(result.verdict);
            lab.lab_reference = Some(result.lab_reference.clone());
            lab.notes = result.notes;
            lab.reported_at = Some(now);
        }
        Ok(vec![ReturnEvent::ThirdPartyResult {
            verdict: result.verdict,
            lab_reference: result.lab_reference,
        }])
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::domain::rma::tests::inspected;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_100 + secs, 0).unwrap()
    }

    fn lab_result(verdict: Verdict) -> LabResult {
        LabResult {
            lab_reference: "LAB-7".into(),
            verdict,
            notes: "tested".into(),
        }
    }

    #[test]
    fn the_lab_has_its_own_deadline_and_its_verdict_rewrites_the_findings() {
        let mut agg = inspected();
        let actor = Actor::new("qa", "agent");
        let targets = StepTargets::handbook();
        let events = agg
            .request_third_party("cqc", "cannot tell", &targets, &actor, t(0))
            .unwrap();
        assert_eq!(agg.rma.status, Status::AwaitingThirdParty);
        assert_eq!(
            events,
            [ReturnEvent::ThirdPartyRequested {
                lab: "cqc".into(),
                due_at: t(0) + Duration::days(7)
            }]
        );
        let lab = agg
            .deadlines
            .iter()
            .find(|d| d.step == Step::ThirdPartyInspection)
            .unwrap()
            .clone();
        assert_eq!(lab.next_fire_at(), Some(t(0) + Duration::days(7)));
        assert!(
            agg.deadlines
                .iter()
                .filter(|d| d.step == Step::Refund)
                .all(|d| d.state == DeadlineState::Cancelled)
        );
        // Never early, once.
        assert!(
            agg.fire_deadline(&lab.id, lab.due_at - Duration::milliseconds(1))
                .is_empty()
        );
        assert_eq!(agg.fire_deadline(&lab.id, lab.due_at).len(), 1);
        assert!(agg.fire_deadline(&lab.id, lab.due_at).is_empty());

        agg.record_third_party(lab_result(Verdict::CustomerDamage), &actor, &targets, t(9))
            .unwrap();
        assert_eq!(agg.rma.status, Status::Inspected);
        assert!(
            agg.rma
                .inspection
                .iter()
                .all(|l| !l.quality_defect && l.condition == Condition::Damaged)
        );
        let states: Vec<_> = agg
            .deadlines
            .iter()
            .filter(|d| {
                d.step != Step::Review && d.step != Step::Pickup && d.step != Step::Inspection
            })
            .map(|d| (d.step, d.state))
            .collect();
        assert_eq!(
            states,
            [
                (Step::Refund, DeadlineState::Cancelled),
                (Step::ThirdPartyInspection, DeadlineState::MetLate),
                (Step::Refund, DeadlineState::Running),
            ]
        );
        assert!(
            agg.record_third_party(lab_result(Verdict::NoDefect), &actor, &targets, t(10))
                .is_err(),
            "one verdict"
        );
    }
}
