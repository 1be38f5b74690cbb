//! The handbook's milestones (issue 16): when the customer reported the problem and how
//! far the complaint flow is (tickets), and the several warning thresholds of a clock
//! with how many have fired (clocks), and a reassignment a threshold asked for and routing
//! has not carried out yet. Older tickets have no report instant (their creation counts)
//! and no flow; older clocks keep their one threshold in `warning_percent`.

use aftersales_platform::db::schema::{index, text_null, ts_null};
use sea_orm_migration::prelude::*;

pub struct AddMilestones;

impl MigrationName for AddMilestones {
    fn name(&self) -> &str {
        "m20261203_000021_add_milestones"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddMilestones {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            ("tickets", ts_null("reported_at")),
            ("tickets", text_null("flow")),
            ("tickets", ts_null("reassign_at")),
            ("sla_clocks", text_null("warning_percents")),
            (
                "sla_clocks",
                ColumnDef::new("warnings_fired")
                    .integer()
                    .not_null()
                    .default(0)
                    .to_owned(),
            ),
        ];
        super::add_missing_columns(m, columns).await?;
        m.create_index(index("tickets_reassign_at", "tickets", &["reassign_at"]))
            .await?;
        Ok(())
    }
}
