//! The on-site visit as the partner reports it: the appointment, then the arrival (late
//! after the on-site SLA, reported once).

use aftersales_platform::pii::masked;
use chrono::{DateTime, Utc};

use crate::{
    domain::{Actor, job::JobView},
    error::DispatchError,
};

use super::DispatchCore;

const SCHEDULE_SCOPE: &str = "dispatch.ScheduleVisit";
const RECORD_SCOPE: &str = "dispatch.RecordVisit";

impl DispatchCore {
    pub async fn schedule_visit(
        &self,
        id: &str,
        at: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<JobView, DispatchError> {
        self.command(SCHEDULE_SCOPE, id, actor, |agg, now| {
            Ok(agg.schedule(at, actor, now)?.into())
        })
        .await
    }

    /// Records the technician's arrival (now, unless told when).
    pub async fn record_visit(
        &self,
        id: &str,
        arrived_at: Option<DateTime<Utc>>,
        notes: &str,
        actor: &Actor,
    ) -> Result<JobView, DispatchError> {
        self.command(RECORD_SCOPE, id, actor, |agg, now| {
            Ok(agg
                .record_visit(arrived_at.unwrap_or(now), &masked(notes), actor, now)?
                .into())
        })
        .await
    }
}
