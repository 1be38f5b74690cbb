//! The warehouse: goods received (a scan at the dock) into the after-sales stock ledger,
//! and each line inspected into its disposition.

use crate::{
    domain::rma::{Actor, InspectionLine, ReturnAggregate},
    error::ReturnsError,
};

use super::{Changes, ReturnsCore, masked};

impl ReturnsCore {
    pub async fn receive(
        &self,
        id: &str,
        warehouse: &str,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        let warehouse = &masked(warehouse);
        let targets = self.targets;
        self.command("returns.ReceiveReturn", id, |agg, now| {
            agg.receive(actor, warehouse, &targets, now)
                .map(Changes::from)
        })
        .await
    }

    pub async fn inspect(
        &self,
        id: &str,
        mut lines: Vec<InspectionLine>,
        actor: &Actor,
    ) -> Result<ReturnAggregate, ReturnsError> {
        for line in &mut lines {
            line.note = masked(&line.note);
        }
        let targets = self.targets;
        self.command("returns.RecordInspection", id, |agg, now| {
            agg.inspect(lines, actor, &targets, now).map(Changes::from)
        })
        .await
    }
}
