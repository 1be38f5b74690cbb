//! Regional emergencies (issue 17): the emergencies care declared, and on each ticket the
//! ones holding its clocks. Existing tickets are held by none.

use aftersales_platform::db::schema::{index, long_text, text, ts, ts_null};
use sea_orm_migration::prelude::*;

pub struct AddEmergencyHolds;

impl MigrationName for AddEmergencyHolds {
    fn name(&self) -> &str {
        "m20261202_000014_add_emergency_holds"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddEmergencyHolds {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if !m.has_column("tickets", "holds").await? {
            m.alter_table(
                Table::alter()
                    .table("tickets")
                    .add_column(long_text("holds").default("[]"))
                    .to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table("regional_emergencies")
                .if_not_exists()
                .col(text("incident_id").primary_key())
                .col(text("region_code"))
                .col(ts("started_at"))
                .col(ts_null("ended_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "regional_emergencies_region",
            "regional_emergencies",
            &["region_code", "ended_at"],
        ))
        .await
    }
}
