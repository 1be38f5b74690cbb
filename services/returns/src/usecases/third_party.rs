//! Third-party inspection: a return whose quality inspection could not judge goes to a
//! lab, with a step deadline of its own (scheduled and fired like every step deadline:
//! never early, missed once), and the lab's verdict puts it back to `inspected`.

use crate::{
    domain::rma::{Actor, ReturnAggregate, third_party::LabResult},
    error::ReturnsError,
};

use super::{Changes, ReturnsCore, masked};

impl ReturnsCore {
    pub async fn request_third_party(
        &self,
        id: &str,
        lab: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        let reason = &masked(reason);
        let targets = self.targets;
        self.command("returns.RequestThirdPartyInspection", id, |agg, now| {
            agg.request_third_party(lab, reason, &targets, actor, now)
                .map(Changes::from)
        })
        .await
    }

    pub async fn record_third_party(
        &self,
        id: &str,
        mut result: LabResult,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        result.notes = masked(&result.notes);
        let targets = self.targets;
        self.command("returns.RecordThirdPartyResult", id, |agg, now| {
            agg.record_third_party(result, actor, &targets, now)
                .map(Changes::from)
        })
        .await
    }
}
