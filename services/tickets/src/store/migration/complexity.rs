//! The complexity of tickets (issue 16): simple or complex, which the SLA policies match
//! on for the resolution target. Existing tickets become simple, the default of a new one;
//! their policy versions and clocks stay as they are.

use aftersales_platform::db::schema::text;
use sea_orm_migration::prelude::*;

pub struct AddTicketComplexity;

impl MigrationName for AddTicketComplexity {
    fn name(&self) -> &str {
        "m20261202_000019_add_ticket_complexity"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddTicketComplexity {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if !m.has_column("tickets", "complexity").await? {
            m.alter_table(
                Table::alter()
                    .table("tickets")
                    .add_column(text("complexity").default("simple").to_owned())
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
