//! A return sent to repair and its settlement on the repair job's outcome: the goods the
//! job repaired go back to the customer (`repaired`); goods it could not repair (an
//! outcome that is no fix, a job cancelled or left without a partner) become a refund or
//! an exchange, as the `unrepairable` policy says. Each settles once: a return no longer
//! waiting on its job (settled already, or never sent to repair) ignores later outcomes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use aftersales_platform::text_enum;

use super::{Actor, ReturnAggregate, ReturnEvent, SYSTEM_ROLE};
use crate::domain::{DomainError, Status, Step};

text_enum!(
    /// What goods the repair job could not repair become.
    Unrepairable { Refund = "refund", Exchange = "exchange" }
);

/// What a return sent to repair keeps about it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairState {
    /// Where the goods are repaired (the after-sales warehouse's region code).
    pub region_code: Option<String>,
    /// Dispatch's job for it: its id is chosen when the goods are sent to repair (and
    /// told to dispatch in `RepairJobRequested`).
    pub job_id: Option<String>,
}

/// How the repair job ended, for the return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// Fixed or replaced: the goods go back to the customer.
    Repaired,
    /// Not fixed, waiting for parts, cancelled or without a partner.
    NotRepaired,
}

/// What settling a return on its repair job's outcome did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Nothing: the return is not waiting on a repair job (any more).
    Nothing,
    /// Repaired and shipped back, or exchanged: the events to publish.
    Done(Vec<ReturnEvent>),
    /// A refund is to be started (and paid after the commit); the return becomes
    /// `refunded` once it is paid.
    Refund,
}

impl ReturnAggregate {
    /// Still waiting for the repair job's outcome.
    pub fn awaits_repair(&self) -> bool {
        self.rma.status == Status::SentToRepair && self.rma.refund_id.is_none()
    }

    /// Dispatch reported the job created for this return.
    pub fn repair_job_created(&mut self, job_id: &str, now: DateTime<Utc>) -> bool {
        if self.rma.repair.job_id.as_deref() == Some(job_id) {
            return false;
        }
        self.rma.repair.job_id = Some(job_id.to_owned());
        self.rma.updated_at = now;
        true
    }

    /// Settles the return on the outcome of its repair job `job_id`. A refund is only
    /// asked for here: the caller starts it ([`Self::refund_started`]).
    pub fn settle_repair(
        &mut self,
        job_id: &str,
        outcome: JobOutcome,
        policy: Unrepairable,
        now: DateTime<Utc>,
    ) -> Result<Settled, DomainError> {
        if !self.awaits_repair() {
            return Ok(Settled::Nothing);
        }
        self.rma.repair.job_id = Some(job_id.to_owned());
        let dispatch = Actor::new("dispatch", SYSTEM_ROLE);
        match (outcome, policy) {
            (JobOutcome::Repaired, _) => {
                let note = format!("repair job {job_id}: repaired, shipped back");
                self.move_to(Status::Repaired, &dispatch, &note, now)?;
                Ok(Settled::Done(Vec::new()))
            }
            (JobOutcome::NotRepaired, Unrepairable::Exchange) => {
                let note = format!("repair job {job_id}: not repairable, exchanged");
                self.move_to(Status::Exchanged, &dispatch, &note, now)?;
                Ok(Settled::Done(vec![ReturnEvent::ExchangeRequested]))
            }
            (JobOutcome::NotRepaired, Unrepairable::Refund) => Ok(Settled::Refund),
        }
    }

    /// The refund for goods that could not be repaired started; the return waits for it.
    pub fn refund_started(&mut self, refund_id: String, now: DateTime<Utc>) {
        self.rma.refund_id = Some(refund_id);
        self.rma.updated_at = now;
        self.complete(Step::Refund);
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::rma::tests::sent_to_repair;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn repaired_goods_go_back_once() {
        let mut agg = sent_to_repair();
        let settled = agg
            .settle_repair("J1", JobOutcome::Repaired, Unrepairable::Refund, t(1))
            .unwrap();
        assert_eq!(settled, Settled::Done(vec![]));
        assert_eq!(agg.rma.status, Status::Repaired);
        assert_eq!(agg.rma.repair.job_id.as_deref(), Some("J1"));
        let again = agg
            .settle_repair("J1", JobOutcome::NotRepaired, Unrepairable::Refund, t(2))
            .unwrap();
        assert_eq!(again, Settled::Nothing);
        assert_eq!(agg.rma.status, Status::Repaired);
    }

    #[test]
    fn unrepairable_goods_follow_the_policy() {
        let mut exchanged = sent_to_repair();
        let settled = exchanged
            .settle_repair("J1", JobOutcome::NotRepaired, Unrepairable::Exchange, t(1))
            .unwrap();
        assert_eq!(settled, Settled::Done(vec![ReturnEvent::ExchangeRequested]));
        assert_eq!(exchanged.rma.status, Status::Exchanged);

        let mut refunded = sent_to_repair();
        let settled = refunded
            .settle_repair("J1", JobOutcome::NotRepaired, Unrepairable::Refund, t(1))
            .unwrap();
        assert_eq!(settled, Settled::Refund);
        refunded.refund_started("R1".into(), t(1));
        assert!(!refunded.awaits_repair());
        refunded.refunded("ref-1", t(2)).unwrap();
        assert_eq!(refunded.rma.status, Status::Refunded);
    }
}
