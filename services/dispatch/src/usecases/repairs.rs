//! The repair job of a return resolved as repair (returns' `RepairJobRequested`): created
//! and dispatched like a `CreateJob`, as a command nested in the event consumer's
//! transaction (offers and their deadlines go out after that transaction commits). The job
//! refers to the return; its ticket is the return's, empty when the return has none. It
//! has no customer contact: the goods are repaired at the after-sales warehouse whose
//! region the event names, not at the customer's home, so dispatch never needs one.
//!
//! One job per return: the job takes the id returns chose for it and sent in the event
//! (a UUIDv7, so jobs still sort by creation; returns then knows its job before dispatch
//! says anything), and a job already there is left as it is, so a redelivered or replayed
//! event creates nothing. An event without an id (written before returns chose them) gets
//! one that follows from the return id and the instant the repair was requested.

use aftersales_platform::pii::masked;
use aftersales_runtime::command::Nested;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::{
    domain::{
        Actor, Urgency,
        job::{JobAggregate, NewJob},
    },
    error::DispatchError,
    store,
};

use super::{DispatchCore, DispatchDeadline, save};

/// What returns asks to be repaired, as dispatch needs it: ids and codes only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnRepair {
    pub return_id: String,
    /// Empty when the return came without a ticket.
    pub ticket_id: String,
    pub customer_id: String,
    /// Where the goods are repaired.
    pub region_code: String,
    pub product_line: String,
    pub fault_description: String,
    pub warranty: bool,
    /// The id returns chose for the job, if it sent one.
    pub job_id: Option<String>,
    /// When returns asked (the event's instant): with the return id, it fixes the job id
    /// when returns sent none.
    pub requested_at: DateTime<Utc>,
}

impl ReturnRepair {
    /// The id the job has: the one returns chose (a UUID), else one derived from the
    /// return and the instant.
    pub fn job_id(&self) -> String {
        self.job_id
            .as_deref()
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
            .map(|id| id.to_string())
            .unwrap_or_else(|| repair_job_id(&self.return_id, self.requested_at))
    }
}

/// The id of the repair job of `return_id` asked for at `at`: a UUIDv7 of that instant
/// whose random part is a hash of the return id.
pub fn repair_job_id(return_id: &str, at: DateTime<Utc>) -> String {
    let digest = Sha256::digest(format!("repair-job:{return_id}").as_bytes());
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or_default();
    uuid::Builder::from_unix_timestamp_millis(millis, &random)
        .into_uuid()
        .to_string()
}

impl DispatchCore {
    /// Creates and dispatches the repair job of a return inside the consumer's command;
    /// answers the new job's id, or `None` when the return has its job already.
    pub async fn create_job_for_return(
        &self,
        cmd: &mut Nested<'_, DispatchDeadline>,
        repair: &ReturnRepair,
    ) -> Result<Option<String>, DispatchError> {
        let job_id = repair.job_id();
        if store::load_job(cmd.txn(), &job_id, true).await?.is_some() {
            return Ok(None);
        }
        let now = cmd.now();
        let new = NewJob {
            ticket_id: repair.ticket_id.clone(),
            return_id: Some(repair.return_id.clone()),
            customer_id: repair.customer_id.clone(),
            region_code: repair.region_code.clone(),
            point: None,
            product_line: repair.product_line.clone(),
            fault_description: masked(&repair.fault_description),
            urgency: Urgency::Normal,
            warranty: repair.warranty,
        };
        let (mut agg, mut events) =
            JobAggregate::create(new, None, &Actor::system("dispatch"), now);
        agg.job.id = job_id;
        events.extend(self.dispatch(cmd.txn(), &mut agg, now).await?);
        save(cmd, &agg, events.into()).await?;
        Ok(Some(agg.job.id))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_return_has_one_job_id_which_sorts_by_time() {
        let at = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let id = repair_job_id("ret-1", at);
        assert_eq!(id, repair_job_id("ret-1", at));
        assert_ne!(id, repair_job_id("ret-2", at));
        let later = repair_job_id("ret-0", at + chrono::Duration::milliseconds(1));
        assert!(later > id);
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    }

    #[test]
    fn the_job_takes_the_id_returns_chose_when_it_is_a_uuid() {
        let at = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let chosen = uuid::Uuid::now_v7().to_string();
        let mut repair = ReturnRepair {
            return_id: "ret-1".into(),
            ticket_id: String::new(),
            customer_id: "c".into(),
            region_code: "310104".into(),
            product_line: "kettle".into(),
            fault_description: String::new(),
            warranty: true,
            job_id: Some(chosen.clone()),
            requested_at: at,
        };
        assert_eq!(repair.job_id(), chosen);
        repair.job_id = Some("not an id".into());
        assert_eq!(repair.job_id(), repair_job_id("ret-1", at));
        repair.job_id = None;
        assert_eq!(repair.job_id(), repair_job_id("ret-1", at));
    }
}
