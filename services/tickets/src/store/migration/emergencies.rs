//! Major incidents (issue 17): the regional emergencies care declared, on each ticket the
//! ones holding its clocks (existing tickets are held by none), and the tickets care
//! linked to each incident.

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

/// The tickets care linked to each major incident (`care.IncidentTicketLinked`), for the
/// updates it asks of all of them together.
pub struct AddIncidentLinks;

impl MigrationName for AddIncidentLinks {
    fn name(&self) -> &str {
        "m20261202_000015_add_incident_links"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddIncidentLinks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("incident_links")
                .if_not_exists()
                .col(text("incident_id"))
                .col(text("ticket_id"))
                .col(ts("linked_at"))
                .primary_key(Index::create().col("incident_id").col("ticket_id"))
                .to_owned(),
        )
        .await
    }
}
